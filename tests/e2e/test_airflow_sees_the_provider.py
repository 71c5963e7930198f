"""A real `airflow` process loads the provider through its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_mlconn import __version__
from airflow_provider_mlconn.get_provider_info import get_provider_info

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _airflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRFLOW, *args], env=os.environ.copy(), capture_output=True, text=True, timeout=180, check=False
    )


def test_airflow_providers_list_shows_the_package_without_import_problems() -> None:
    result = _airflow("providers", "list", "--output", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(result.stdout)}
    assert providers["airflow-provider-mlconn"]["version"] == __version__
    assert "airflow_provider_mlconn" not in result.stderr, result.stderr[-2000:]


def test_airflow_knows_the_connection_types_the_provider_registers() -> None:
    expected = {c["connection-type"] for c in get_provider_info()["connection-types"]}
    result = _airflow("providers", "hooks", "--output", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    known = {hook["connection_type"] for hook in json.loads(result.stdout)}
    assert expected <= known
