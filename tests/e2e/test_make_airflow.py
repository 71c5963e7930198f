"""`make airflow`'s script from a plain shell (the venv not on PATH): `airflow standalone` comes up on
127.0.0.1 with both sandboxes' connections and the project's DAGs, and Ctrl-C stops all of it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
import requests

from tests.conftest import REPO_ROOT
from tests.support import free_port

pytestmark = pytest.mark.e2e

DEADLINE_S = 300
T = TypeVar("T")


def _wait_for(what: str, check: Callable[[], T | None], deadline: float) -> T:
    while time.monotonic() < deadline:
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"{what}: not within {DEADLINE_S} s")


def test_make_airflow_serves_the_dags_and_connections_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "airflow"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env["PATH"] = "/usr/bin:/bin"  # as from a shell where the venv is not activated
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "run_airflow.py"),
            "--airflow-home",
            str(home),
            "--port",
            str(port),
            "--customers",
            "20",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + DEADLINE_S
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(3)]
        assert banner[2].startswith("Airflow UI: "), banner
        # airflow standalone writes its components' logs to the same pipe: keep it drained.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        url = f"http://127.0.0.1:{port}"

        def scheduler_healthy() -> dict[str, Any] | None:
            health = requests.get(f"{url}/api/v2/monitor/health", timeout=5).json()
            return health if health.get("scheduler", {}).get("status") == "healthy" else None

        health = _wait_for("a healthy scheduler", scheduler_healthy, deadline)
        assert health["metadatabase"]["status"] == "healthy"
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        token = requests.post(
            f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=10
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def project_dags() -> set[str] | None:
            listed = requests.get(f"{url}/api/v2/dags", headers=headers, timeout=10).json()["dags"]
            ids = {dag["dag_id"] for dag in listed}
            return ids if {"mlconn_customers_jde_to_hubspot", "mlconn_replay"} <= ids else None

        dag_ids = _wait_for("the project's DAGs parsed", project_dags, deadline)
        assert "mlconn_customers_jde_to_hubspot" in dag_ids
        for conn_id, conn_type in (("jde_ais_default", "jde_ais"), ("hubspot_default", "hubspot")):
            connection = requests.get(f"{url}/api/v2/connections/{conn_id}", headers=headers, timeout=10)
            assert connection.ok and connection.json()["conn_type"] == conn_type
        assert len(psutil.Process(process.pid).children(recursive=True)) >= 3, "sandboxes and standalone"
    finally:
        started = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole group
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        _, alive = psutil.wait_procs(started, timeout=30)
        for leftover in alive:  # never leave a server behind, even when the test fails
            leftover.kill()
    assert process.returncode == 0
    assert not alive, f"still running after Ctrl-C: {[p.pid for p in alive]}"
