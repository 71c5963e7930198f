"""``make airflow``: Airflow standalone on 127.0.0.1 with both sandboxes, for the UI.

Starts the JDE and HubSpot sandboxes on free local ports, stores the connections ``jde_ais_default``
and ``hubspot_default`` in Airflow's database (so the UI lists them and its Test button works), then
runs ``airflow standalone``; once the UI answers it prints its address, user and password. Runs until
you press Ctrl-C, and stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from airflow_provider_mlconn.sandbox.connections import sandbox_connections
from airflow_provider_mlconn.sandbox.runner import SandboxProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: Airflow masks every value of a connection's extra as a secret and warns about any shorter than
#: 5 characters, once per process: so the JDE sandbox's password is not its default "JDE", and the
#: connection leaves the role to the server's default ("*ALL" is 4 characters).
JDE_PASSWORD = "jde-sandbox"
UI_DEADLINE_S = 300


def airflow_env(airflow_home: Path, port: int) -> dict[str, str]:
    # `airflow standalone` starts its components as `airflow ...` found on PATH: this venv's first.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {
        **os.environ,
        "PATH": path,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        # Airflow warns that "jde_ais" is no RFC 3986 scheme each time it turns the connection into a
        # URI (every task that reads it, every Test): the type name is the provider's contract.
        "AIRFLOW__LOGGING__NAMESPACE_LEVELS": "airflow.models.connection.Connection=ERROR",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
    }


def put_connection(env: dict[str, str], conn_id: str, definition: dict[str, object]) -> None:
    subprocess.run([AIRFLOW, "connections", "delete", conn_id], env=env, capture_output=True, check=False)
    subprocess.run(
        [AIRFLOW, "connections", "add", conn_id, "--conn-json", json.dumps(definition)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for_ui(url: str, standalone: subprocess.Popen[bytes], passwords: Path) -> str | None:
    """The admin password once the UI answers and the password file is written; None if Airflow
    stopped or did not answer within ``UI_DEADLINE_S``."""
    deadline = time.monotonic() + UI_DEADLINE_S
    while time.monotonic() < deadline and standalone.poll() is None:
        try:
            answered = requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok
        except requests.RequestException:
            answered = False
        if answered and passwords.exists():
            try:
                return str(json.loads(passwords.read_text())["admin"])
            except (ValueError, KeyError):
                pass  # written as we read it
        time.sleep(0.5)  # short steps: Ctrl-C is seen at once
    return None


def main() -> int:
    # Ctrl-C stops everything even when this was started with SIGINT ignored (a background job of a
    # non-interactive shell inherits that), and `kill` (SIGTERM) does the same as Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow-home", type=Path, default=REPO_ROOT / ".airflow")
    parser.add_argument("--port", type=int, default=8080, help="api-server port on 127.0.0.1 (default 8080)")
    parser.add_argument(
        "--customers", type=int, default=200, help="customers in the JDE sandbox (default 200)"
    )
    args = parser.parse_args()

    if port_in_use(args.port):
        print(
            f"Port {args.port} on 127.0.0.1 is in use (another Airflow?): choose another one, "
            "e.g. make airflow PORT=8081",
            file=sys.stderr,
        )
        return 2
    args.airflow_home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(args.airflow_home.resolve(), args.port)
    jde = SandboxProcess(
        "jde", ["--customers", str(args.customers), "--latency-ms", "20", "--password", JDE_PASSWORD]
    )
    hubspot = SandboxProcess("hubspot", ["--token", "pat-na1-sandbox"])
    standalone: subprocess.Popen[bytes] | None = None
    try:
        jde.start()
        hubspot.start()
        print(f"JDE AIS sandbox: {jde.url}\nHubSpot sandbox: {hubspot.url}", flush=True)
        subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        connections = sandbox_connections(
            jde_url=jde.url, hubspot_url=hubspot.url, jde_password=JDE_PASSWORD, jde_role=None
        )
        for conn_id, definition in connections.items():
            put_connection(env, conn_id, definition)
        passwords = args.airflow_home / "simple_auth_manager_passwords.json.generated"
        url = f"http://127.0.0.1:{args.port}"
        print(f"Starting Airflow on {url} ...", flush=True)
        standalone = subprocess.Popen([AIRFLOW, "standalone"], env=env, start_new_session=True)
        password = wait_for_ui(url, standalone, passwords)
        if password is None:
            print(f"Airflow did not come up on {url}; see its output above.", file=sys.stderr, flush=True)
            return 1
        print(
            f"Airflow UI: {url}  user admin  password {password}  (also in {passwords}). "
            "Ctrl-C stops everything.",
            flush=True,
        )
        # Wait in short steps: Ctrl-C may be delivered to a sandbox's output-reader thread, and a
        # main thread blocked in waitpid() would then never see it.
        while standalone.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if standalone is not None and standalone.poll() is None:
            os.killpg(standalone.pid, signal.SIGTERM)
            try:
                standalone.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(standalone.pid, signal.SIGKILL)
        hubspot.stop()
        jde.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
