"""`make airflow`'s script from a plain shell (the venv not on PATH): `airflow standalone` comes up on
127.0.0.1 with both sandboxes' connections and the project's DAGs, the banner with the UI's address
and password comes once the UI answers, and Ctrl-C stops all of it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.airflow import make_airflow, wait_for

pytestmark = pytest.mark.e2e

DEADLINE_S = 300


def test_make_airflow_serves_the_dags_and_connections_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    with make_airflow(tmp_path, deadline=deadline) as airflow:

        def scheduler_healthy() -> dict[str, Any] | None:
            health: dict[str, Any] = airflow.api("GET", "/monitor/health")
            return health if health.get("scheduler", {}).get("status") == "healthy" else None

        health = wait_for("a healthy scheduler", scheduler_healthy, deadline)
        assert health["metadatabase"]["status"] == "healthy"
        airflow.wait_for_dags(deadline)
        for conn_id, conn_type in (("jde_ais_default", "jde_ais"), ("hubspot_default", "hubspot")):
            assert airflow.api("GET", f"/connections/{conn_id}")["conn_type"] == conn_type
        assert len(psutil.Process(airflow.process.pid).children(recursive=True)) >= 3, "sandboxes, standalone"
        output = airflow.output.read_text()
        assert "RFC3986" not in output, "Airflow's scheme warning about jde_ais is not silenced"
        assert "too short" not in output, "a secret shorter than Airflow masks"
    assert airflow.process.returncode == 0
