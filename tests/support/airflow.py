"""`make airflow` for the e2e tests: ``scripts/run_airflow.py`` from a plain shell, its output in a
file, its UI's address and password read from its banner, and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
import requests

from tests.conftest import REPO_ROOT
from tests.support import free_port

T = TypeVar("T")
BANNER = re.compile(r"^Airflow UI: (?P<url>\S+)\s+user (?P<user>\S+)\s+password (?P<password>\S+)")
CUSTOMERS_DAG = "mlconn_customers_jde_to_hubspot"


@dataclass
class MakeAirflow:
    """A running ``make airflow``: its UI, its admin password, a REST client, the sandboxes' URLs."""

    url: str
    password: str
    home: Path
    output: Path
    process: subprocess.Popen[bytes]
    jde_url: str
    hubspot_url: str
    http: requests.Session = field(default_factory=requests.Session)

    def login(self) -> None:
        response = requests.post(
            f"{self.url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
        )
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(
            method, f"{self.url}/api/v2{path}", json=body, params=params or None, timeout=60
        )
        if not response.ok:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def wait_for_dags(self, deadline: float) -> None:
        def listed() -> bool:
            ids = {dag["dag_id"] for dag in self.api("GET", "/dags")["dags"]}
            return {CUSTOMERS_DAG, "mlconn_replay"} <= ids

        wait_for("the project's DAGs parsed", listed, deadline)

    def wait_for_runs(self, dag_id: str, deadline: float, count: int = 1, **filters: Any) -> list[Any]:
        """The DAG's runs matching ``filters`` once ``count`` of them finished (fails on a failed one)."""

        def finished() -> list[Any] | None:
            runs = self.api("GET", f"/dags/{dag_id}/dagRuns", **filters)["dag_runs"]
            failed = [run["dag_run_id"] for run in runs if run["state"] == "failed"]
            assert not failed, f"runs failed: {failed}; see {self.output} and {self.home / 'logs'}"
            done = [run for run in runs if run["state"] == "success"]
            return done if len(done) >= count else None

        return wait_for(f"{count} finished run(s) of {dag_id}", finished, deadline)


def wait_for(what: str, check: Callable[[], T | None], deadline: float, step: float = 2.0) -> T:
    """``check()``'s first truthy value, polled until ``deadline`` (``time.monotonic()``)."""
    while time.monotonic() < deadline:
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"{what}: not by the deadline")


def _plain_shell_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a shell where the venv is not activated and no Airflow setting is made."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env["PATH"] = "/usr/bin:/bin"
    # Airflow's log servers have fixed default ports: free ones, so two Airflows can run side by side.
    env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
    env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    return {**env, **extra}


@contextmanager
def make_airflow(
    tmp_path: Path, *, deadline: float, customers: int = 20, env: Mapping[str, str] | None = None
) -> Iterator[MakeAirflow]:
    """Start ``scripts/run_airflow.py`` and yield it once its banner is printed; on the way out
    press Ctrl-C (SIGINT to its process group) and kill whatever outlives a bound."""
    port = free_port()
    home = tmp_path / "airflow"
    output = tmp_path / "make-airflow.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO_ROOT / "scripts" / "run_airflow.py"),
                "--airflow-home",
                str(home),
                "--port",
                str(port),
                "--customers",
                str(customers),
            ],
            env=_plain_shell_env(env or {}),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started: list[psutil.Process] = []
    try:

        def banner() -> dict[str, str] | None:
            assert process.poll() is None, f"make airflow stopped: {output.read_text()[-3000:]}"
            lines = output.read_text(errors="replace").splitlines()
            found = {}
            for line in lines:
                if line.startswith(("JDE AIS sandbox: ", "HubSpot sandbox: ")):
                    name, _, url = line.partition(": ")
                    found[name] = url.strip()
                if match := BANNER.match(line):
                    return {**found, **match.groupdict()}
            return None

        shown = wait_for("the banner with the UI's address and password", banner, deadline, step=1.0)
        assert shown["url"] == f"http://127.0.0.1:{port}"
        assert requests.get(f"{shown['url']}/api/v2/monitor/health", timeout=10).ok, "banner before the UI"
        started = psutil.Process(process.pid).children(recursive=True)
        airflow = MakeAirflow(
            url=shown["url"],
            password=shown["password"],
            home=home,
            output=output,
            process=process,
            jde_url=shown["JDE AIS sandbox"],
            hubspot_url=shown["HubSpot sandbox"],
        )
        airflow.login()
        yield airflow
    finally:
        started = _stop(process, started)
    assert not started, f"still running after Ctrl-C: {[p.pid for p in started]}"


def _stop(process: subprocess.Popen[bytes], started: list[psutil.Process]) -> list[psutil.Process]:
    """Ctrl-C the script's process group; kill what is left after the bound. Returns what had to be
    killed (or still ran after Ctrl-C)."""
    with_children = started or (
        psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
    )
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole group
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    _, alive = psutil.wait_procs(with_children, timeout=30)
    for leftover in alive:  # never leave a server behind, even when the test fails
        leftover.kill()
    return alive


def admin_password(home: Path) -> str:
    return str(json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"])
