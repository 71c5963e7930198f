"""docker-compose.airflow.yml as local processes: Airflow 3 on the CeleryExecutor with its metadata
database on this machine's PostgreSQL and its broker on this machine's Redis.

Every Airflow service runs the compose file's own command with the compose file's environment
variables (values pointed at 127.0.0.1 instead of the compose network), each in its own
AIRFLOW_HOME (as on its own machine) and its own process group, so that one worker can be killed
like a lost machine and everything is stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import psycopg2
import pytest
import redis
import requests
import yaml
from cryptography.fernet import Fernet

from tests.conftest import REPO_ROOT
from tests.support import free_port
from tests.support.airflow import wait_for

COMPOSE_FILE = REPO_ROOT / "docker-compose.airflow.yml"
AIRFLOW_BIN = Path(sys.executable).parent
#: The compose services that run Airflow, and what the test calls each.
SERVICES = {
    "init": "airflow-init",
    "api-server": "airflow-apiserver",
    "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor",
    "triggerer": "airflow-triggerer",
    "worker": "airflow-worker",
}
#: The worker's hostname as the task instances record it (Airflow's ``[core] hostname_callable``):
#: on one machine both workers would report the same FQDN, so each reports its Celery hostname.
HOSTNAME_MODULE = '''"""Each test worker reports its own hostname, as if it ran on its own machine."""
import os


def worker_hostname():
    return os.environ["MLCONN_STACK_HOSTNAME"]
'''


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def compose_command(service: str) -> list[str]:
    return [str(part) for part in compose()["services"][SERVICES[service]]["command"]]


def compose_environment() -> dict[str, str]:
    """The environment every Airflow service of the compose file gets (``x-airflow-common``)."""
    return {name: str(value) for name, value in compose()["x-airflow-common"]["environment"].items()}


def _replace_option(command: list[str], option: str, value: str) -> list[str]:
    assert option in command, f"compose command {command} has no {option}"
    at = command.index(option)
    return [*command[: at + 1], value, *command[at + 2 :]]


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    home: Path
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@dataclass
class CeleryStack:
    """The stack under ``root``; ``start()`` runs ``airflow db migrate`` and the services but the
    workers, ``start_worker(name)`` adds a worker, ``stop()`` ends every process it started."""

    root: Path
    postgres_url: str
    redis_url: str
    connections: Mapping[str, str]
    dags: list[Path]
    worker_concurrency: int = 2
    heartbeat_timeout_s: int = 30
    variables: Mapping[str, str] = field(default_factory=dict)
    airflow_database: str = "mlconn_celery_airflow"
    store_database: str = "mlconn_celery_store"
    components: dict[str, Component] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    password: str = ""
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.fernet_key = Fernet.generate_key().decode()
        self.jwt_secret = secrets.token_urlsafe(32)
        self.dags_folder = self.root / "dags"
        self.python_path = self.root / "pythonpath"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _database_url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        parsed = urlparse(self.postgres_url)
        return f"{driver}://{parsed.netloc}/{database}"

    @property
    def store_url(self) -> str:
        return self._database_url(self.store_database)

    def environment(self) -> dict[str, str]:
        """The compose file's variables with local values, plus what the test adds (its own ports,
        short heartbeat thresholds, the worker size). Fails if the compose file names a variable
        the test does not set, or the test replaces one the compose file does not name."""
        declared = compose_environment()
        local = {
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self._database_url(self.airflow_database),
            "AIRFLOW__CELERY__BROKER_URL": self.redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": self._database_url(self.airflow_database, "db+postgresql"),
            **self.connections,
        }
        unknown = set(local) - set(declared)
        assert not unknown, f"the compose file does not set {sorted(unknown)}: make it agree"
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env.update(declared)
        env.update(local)
        env.update(
            {
                "PATH": os.pathsep.join([str(AIRFLOW_BIN), "/usr/bin", "/bin"]),
                "PYTHONPATH": str(self.python_path),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
                # A lost worker's task is failed (and retried) this long after its last heartbeat.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout_s),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "3",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__LOGGING__NAMESPACE_LEVELS": "airflow.models.connection.Connection=ERROR",
                **{f"AIRFLOW_VAR_{name.upper()}": value for name, value in self.variables.items()},
            }
        )
        return env

    # -- set-up ---------------------------------------------------------------------------------

    def recreate_databases(self) -> None:
        connection = psycopg2.connect(self._database_url("postgres", "postgresql"))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for database in (self.airflow_database, self.store_database):
                    cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                    cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            connection.close()

    def empty_store(self) -> None:
        """Every table of the mlconn store emptied (its schema stays), between runs."""
        connection = psycopg2.connect(self._database_url(self.store_database, "postgresql"))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '20s'")
                cursor.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'mlconn_schema_migrations'"
                )
                tables = [row[0] for row in cursor.fetchall()]
                if tables:
                    cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        finally:
            connection.close()

    def flush_broker(self) -> None:
        redis.Redis.from_url(self.redis_url).flushdb()

    def prepare(self) -> None:
        self.recreate_databases()
        self.flush_broker()
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        for dag_file in self.dags:
            (self.dags_folder / dag_file.name).symlink_to(dag_file)
        self.python_path.mkdir(parents=True, exist_ok=True)
        (self.python_path / "mlconn_stack_hostname.py").write_text(HOSTNAME_MODULE)
        home = self.root / "init"
        home.mkdir(parents=True, exist_ok=True)
        with (home / "output.log").open("wb") as sink:
            result = subprocess.run(
                compose_command("init"),
                env={**self.environment(), "AIRFLOW_HOME": str(home)},
                cwd=home,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=300,
                check=False,
            )
        assert result.returncode == 0, (home / "output.log").read_text()[-3000:]

    # -- processes ------------------------------------------------------------------------------

    def _start(self, name: str, command: list[str], env: Mapping[str, str] | None = None) -> Component:
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        log = home / "output.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                command,
                env={**self.environment(), "AIRFLOW_HOME": str(home), **(env or {})},
                cwd=home,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        component = Component(name, process, home, log)
        self.components[name] = component
        return component

    def start(self, deadline: float) -> None:
        """api-server, scheduler, dag-processor and triggerer; back once the api-server reports
        them all healthy and the admin is logged in."""
        api = _replace_option(compose_command("api-server"), "--host", "127.0.0.1")
        self._start("api-server", _replace_option(api, "--port", str(self.port)))
        self._start("scheduler", compose_command("scheduler"))
        self._start("dag-processor", compose_command("dag-processor"))
        # The log servers of the triggerer and the workers bind every address (not configurable in
        # Airflow): this test reads no task log through the UI, so they are not started.
        self._start("triggerer", [*compose_command("triggerer"), "--skip-serve-logs"])

        def healthy() -> bool:
            self.assert_running()
            response = requests.get(f"{self.url}/api/v2/monitor/health", timeout=10)
            if not response.ok:
                return False
            health = response.json()
            return all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        wait_for("api-server, scheduler, dag-processor and triggerer healthy", healthy, deadline)
        passwords = self.components["api-server"].home / "simple_auth_manager_passwords.json.generated"
        self.password = str(json.loads(passwords.read_text())["admin"])
        self.login()

    def start_worker(self, name: str, deadline: float) -> Component:
        """``airflow celery worker -H <name>`` (the compose command plus its hostname)."""
        command = [*compose_command("worker"), "-H", name, "--skip-serve-logs"]
        worker = self._start(
            name,
            command,
            {
                "MLCONN_STACK_HOSTNAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "mlconn_stack_hostname.worker_hostname",
            },
        )

        def ready() -> bool:
            self.assert_running()
            return f"{name} ready." in worker.log.read_text(errors="replace")

        wait_for(f"Celery worker {name} ready", ready, deadline, step=1.0)
        return worker

    def assert_running(self) -> None:
        for name, component in self.components.items():
            if name.startswith("killed:"):
                continue
            code = component.process.poll()
            assert code is None, f"{component.name} exited with {code}:\n{component.tail()}"

    def kill(self, name: str) -> None:
        """SIGKILL the component's whole process group (the worker and the tasks it runs), as when
        its machine is lost."""
        component = self.components.pop(name)
        os.killpg(component.process.pid, signal.SIGKILL)
        component.process.wait(30)
        self.components[f"killed:{name}"] = component

    def listening_addresses(self) -> set[str]:
        """The addresses the stack's processes listen on."""
        addresses = set()
        for component in self.components.values():
            if component.process.poll() is not None:
                continue
            try:
                group = [psutil.Process(component.process.pid)]
                group += group[0].children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for process in group:
                try:
                    connections = process.net_connections(kind="inet")
                except psutil.Error:
                    continue
                addresses |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}
        return addresses

    def stop(self) -> list[int]:
        """SIGTERM every process group, SIGKILL what outlives 20 s; the pids that had to be killed."""
        tracked: list[psutil.Process] = []
        for component in self.components.values():
            if component.process.poll() is None:
                try:
                    tracked.append(psutil.Process(component.process.pid))
                    tracked += tracked[-1].children(recursive=True)
                except psutil.NoSuchProcess:
                    pass
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(component.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for component in self.components.values():
            try:
                component.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(component.process.pid, signal.SIGKILL)
                component.process.wait(10)
        _, alive = psutil.wait_procs(tracked, timeout=10)
        for leftover in alive:
            leftover.kill()
        self.flush_broker()
        return [process.pid for process in alive]

    # -- REST API -------------------------------------------------------------------------------

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
        if response.status_code == 401:  # the token expired on a long run
            self.login()
            response = self.http.request(
                method, f"{self.url}/api/v2{path}", json=body, params=params or None, timeout=60
            )
        if not response.ok:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000
        )["task_instances"]
        return listed

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        )["task_instances"]
        return listed

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf)})
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, deadline: float) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            self.assert_running()
            run: dict[str, Any] = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] == "failed":
                states = sorted(
                    (ti["task_id"], ti["map_index"], ti["state"])
                    for ti in self.task_instances(dag_id, run_id)
                )
                pytest.fail(f"run {run_id} failed: {states}; logs under {self.root}")
            return run if run["state"] == "success" else None

        return wait_for(f"run {run_id} of {dag_id} finished", finished, deadline, step=1.0)
