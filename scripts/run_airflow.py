"""``make airflow``: Airflow standalone on 127.0.0.1 with both sandboxes, for the UI.

Starts the JDE and HubSpot sandboxes on free local ports, stores the connections ``jde_ais_default``
and ``hubspot_default`` in Airflow's database (so the UI lists them and its Test button works), then
runs ``airflow standalone`` until you press Ctrl-C, and stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from airflow_provider_mlconn.sandbox.connections import sandbox_connections
from airflow_provider_mlconn.sandbox.runner import SandboxProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


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

    args.airflow_home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(args.airflow_home.resolve(), args.port)
    jde = SandboxProcess("jde", ["--customers", str(args.customers), "--latency-ms", "20"])
    hubspot = SandboxProcess("hubspot", ["--token", "pat-na1-sandbox"])
    standalone: subprocess.Popen[bytes] | None = None
    try:
        jde.start()
        hubspot.start()
        print(f"JDE AIS sandbox: {jde.url}\nHubSpot sandbox: {hubspot.url}", flush=True)
        subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        for conn_id, definition in sandbox_connections(jde_url=jde.url, hubspot_url=hubspot.url).items():
            put_connection(env, conn_id, definition)
        passwords = args.airflow_home / "simple_auth_manager_passwords.json.generated"
        print(
            f"Airflow UI: http://127.0.0.1:{args.port} (user admin; password in {passwords}). "
            "Ctrl-C stops everything.",
            flush=True,
        )
        standalone = subprocess.Popen([AIRFLOW, "standalone"], env=env, start_new_session=True)
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
