"""The AIS sandbox keeps its CLI contract and models the server without importing our client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_provider_mlconn.sandbox.jde as sandbox_package
from airflow_provider_mlconn.sandbox.cli import build_parser

pytestmark = pytest.mark.unit


def test_the_documented_flags_reach_the_sandbox_options() -> None:
    args = build_parser().parse_args(
        [
            "jde",
            "--port", "0", "--username", "U", "--password", "P", "--token-ttl", "2", "--customers", "10",
            "--seed", "3", "--latency-ms", "5", "--fault-rate", "0.1",
        ]
    )  # fmt: skip
    options = sandbox_package.app_from_args(args).state.sandbox.options
    assert (options.username, options.password, options.token_ttl, options.customers) == ("U", "P", 2.0, 10)
    assert (options.seed, options.latency_ms, options.fault_rate) == (3, 5.0, 0.1)
    assert build_parser().parse_args(["jde"]).port == 7077


def test_a_fault_rate_outside_0_to_1_is_refused() -> None:
    with pytest.raises(SystemExit, match="fault-rate"):
        sandbox_package.app_from_args(build_parser().parse_args(["jde", "--fault-rate", "1.5"]))
    with pytest.raises(SystemExit, match="fault-after-commit-rate"):
        sandbox_package.app_from_args(build_parser().parse_args(["jde", "--fault-after-commit-rate", "-0.1"]))


def test_the_write_path_switches_reach_the_options_and_default_to_checked_and_fault_free() -> None:
    default = sandbox_package.app_from_args(build_parser().parse_args(["jde", "--customers", "5"]))
    assert default.state.sandbox.options.duplicate_check is True
    assert default.state.sandbox.options.fault_after_commit_rate == 0.0
    args = ["jde", "--customers", "5", "--no-duplicate-check", "--fault-after-commit-rate", "0.25"]
    options = sandbox_package.app_from_args(build_parser().parse_args(args)).state.sandbox.options
    assert (options.duplicate_check, options.fault_after_commit_rate) == (False, 0.25)
    with pytest.raises(ValueError, match="fault_after_commit_rate"):
        sandbox_package.create_app(customers=5, fault_after_commit_rate=2.0)


def test_the_sandbox_imports_nothing_from_the_client_side() -> None:
    root = Path(sandbox_package.__file__).parent
    for source in root.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("airflow_provider_mlconn"):
                    assert name.startswith("airflow_provider_mlconn.sandbox"), f"{source.name} imports {name}"
