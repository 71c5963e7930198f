"""The provider metadata Airflow loads through the entry point: an invalid one breaks every command."""

from __future__ import annotations

import copy
import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

from airflow_provider_mlconn.get_provider_info import get_provider_info

pytestmark = pytest.mark.unit

SCHEMA = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())


def provider_info_problems(info: dict[str, Any]) -> list[str]:
    """Everything Airflow's providers manager would trip over, as readable lines."""
    problems = [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in jsonschema.Draft7Validator(SCHEMA).iter_errors(info)
    ]
    if info.get("package-name") != "airflow-provider-mlconn":
        problems.append(f"package-name is {info.get('package-name')!r}, not the distribution name")
    for conn in info.get("connection-types", []):
        module_name, _, class_name = conn.get("hook-class-name", "").rpartition(".")
        try:
            hook_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError, ValueError) as error:
            problems.append(f"connection type {conn.get('connection-type')!r}: cannot import hook: {error}")
            continue
        if getattr(hook_class, "conn_type", None) != conn.get("connection-type"):
            problems.append(f"{hook_class.__name__}.conn_type does not match {conn.get('connection-type')!r}")
    for hook in info.get("hooks", []):
        for module_name in hook.get("python-modules", []):
            try:
                importlib.import_module(module_name)
            except ImportError as error:
                problems.append(f"hook module {module_name}: {error}")
    for plugin in info.get("plugins", []):
        module_name, _, class_name = plugin.get("plugin-class", "").rpartition(".")
        try:
            getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError, ValueError) as error:
            problems.append(f"plugin {plugin.get('name')!r}: {error}")
    return problems


def test_entry_point_resolves_to_get_provider_info() -> None:
    (entry,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_mlconn")
    ]
    assert entry.load() is get_provider_info


def test_provider_info_is_valid_for_airflow() -> None:
    assert provider_info_problems(get_provider_info()) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda info: info.pop("name"), "'name' is a required property"),
        (
            lambda info: info.__setitem__("connection-types", [{"hook-class-name": "x.Y"}]),
            "'connection-type'",
        ),
        (
            lambda info: info.__setitem__(
                "connection-types",
                [
                    {
                        "connection-type": "jde_ais",
                        "hook-class-name": "airflow_provider_mlconn.hooks.missing.NoHook",
                    }
                ],
            ),
            "cannot import hook",
        ),
        (
            lambda info: info.__setitem__("hooks", [{"python-modules": ["airflow_provider_mlconn.nope"]}]),
            "hook module",
        ),
    ],
)
def test_a_broken_provider_info_is_caught(breakage: Any, expected: str) -> None:
    info = copy.deepcopy(get_provider_info())
    breakage(info)
    assert any(expected in problem for problem in provider_info_problems(info))
