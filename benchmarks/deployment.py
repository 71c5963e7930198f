"""An Airflow deployment on this machine, for benchmarks that must run a DAG the way one does.

``dag.test()`` runs one task at a time in one process. A deployment runs the scheduler, the
dag-processor and the api-server (the task SDK's Execution API), and the LocalExecutor starts each
task in a process of its own, as many at once as ``[core] parallelism`` and the pools allow: the
mapped load tasks of an entity run side by side within their pool's slots. ``LocalDeployment``
starts those three components on a free port with an AIRFLOW_HOME of its own (SQLite metadata
database, as ``airflow standalone`` uses), creates the mlconn pools, and triggers and watches runs
through the REST API (SimpleAuthManager, everyone admin).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

AIRFLOW = [sys.executable, "-m", "airflow"]
COMPONENTS = ("api-server", "scheduler", "dag-processor")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalDeployment:
    """api-server, scheduler and dag-processor with the LocalExecutor, for one AIRFLOW_HOME."""

    def __init__(
        self, home: Path, env: Mapping[str, str], *, parallelism: int, pool_slots: int, cwd: Path
    ) -> None:
        self.home = home
        # The components import the package from where they start (``python -m`` puts the working
        # folder first on sys.path): a baseline's export, or the work tree.
        self.cwd = cwd
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.parallelism = parallelism
        self.pool_slots = pool_slots
        self.env = {
            **env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            # Only the DAG under test runs (``wait_for_dag`` unpauses it): the other flows' schedules
            # (reconcile, A/R status, ...) would compete with it for the same 2 CPUs and sandboxes.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__MLCONN__POOL_SLOTS_HUBSPOT": str(pool_slots),
            "AIRFLOW__MLCONN__POOL_SLOTS_JDE": str(pool_slots),
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.http = requests.Session()

    def __enter__(self) -> LocalDeployment:
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from airflow_provider_mlconn.sync.pools import ensure_pools; ensure_pools()",
            ],
            env=self.env,
            cwd=self.cwd,
            check=True,
            capture_output=True,
        )
        for component in COMPONENTS:
            log = (self.home / f"{component}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [*AIRFLOW, component],
                    env=self.env,
                    cwd=self.cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        self._wait_for_api()
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def _wait_for_api(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = self.http.get(f"{self.base}/auth/token", timeout=5)
                if response.status_code in (200, 201):
                    token = response.json()["access_token"]
                    self.http.headers["Authorization"] = f"Bearer {token}"
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise RuntimeError(f"the api-server did not come up on {self.base} (see {self.home}/api-server.log)")

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base}/api/v2{path}", timeout=60, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api("GET", f"/dags/{dag_id}")
                self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
                return
            except requests.HTTPError:
                time.sleep(2)
        raise RuntimeError(
            f"DAG {dag_id} was not parsed in {timeout:.0f} s (see {self.home}/dag-processor.log)"
        )

    def run(self, dag_id: str, conf: Mapping[str, Any], *, timeout: float = 1800.0) -> dict[str, Any]:
        """Trigger a run and wait for it; returns its state, the trigger and end times and the task
        instances' times."""
        triggered = time.time()
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf)})
        run_id = run["dag_run_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"run {run_id} of {dag_id} did not finish in {timeout:.0f} s")
        ended = time.time()
        instances = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]
        tasks = [
            {
                "task_id": ti["task_id"],
                "map_index": ti["map_index"],
                "state": str(ti["state"]),
                "start": _epoch(ti["start_date"]),
                "end": _epoch(ti["end_date"]),
            }
            for ti in instances
            if ti.get("start_date") and ti.get("end_date")
        ]
        return {
            "run_id": run_id,
            "state": run["state"],
            "start": triggered,
            "end": ended,
            "tasks": sorted(tasks, key=lambda t: t["start"]),
        }


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
