"""The customers flow (JDE -> HubSpot) end to end: initial load, no-change rerun, and memory.

Both sandboxes run as subprocesses (``mlconn-sandbox jde`` / ``mlconn-sandbox hubspot``, HubSpot at
its default limit of 190 requests per rolling 10 s). The flow runs as the real DAG
(``mlconn_customers_jde_to_hubspot``) through ``dag.test()`` in a child process with an AIRFLOW_HOME
of its own (a SQLite metadata DB migrated once, copied for each child), so every operator, XCom,
Variable and store call of a run is in the measurement. ``dag.test()`` runs one task at a time, as a
deployment whose HubSpot pool has one slot does.

1. Initial load of 10,000 customers with 50 ms added to every call of both sandboxes: wall time per
   task, HubSpot calls by endpoint (the sandbox's own counters) and per customer, the request rate
   of the load tasks against the allowed 19/s, 429s served, JDE calls, and the total wall time
   beside the lower bound the rate limit (and JDE's latency, for a reader that sends one call at a
   time) allows.
2. The no-change rerun right after: HubSpot writes and reads (target: zero writes).
3. Peak RSS of the process running the flow for 2,000 and for 20,000 customers (fresh child, fresh
   sandboxes, no added latency).

Run alone: ``.venv/bin/python -m benchmarks.customers_flow`` (a few minutes). Knobs for a quick try:
``MLCONN_BENCH_CUSTOMERS`` (10000), ``MLCONN_BENCH_RSS_CUSTOMERS`` ("2000,20000"),
``MLCONN_BENCH_LATENCY_MS`` (50).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks.report import write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "mlconn_customers_jde_to_hubspot"
CUSTOMERS = int(os.environ.get("MLCONN_BENCH_CUSTOMERS", "10000"))
RSS_CUSTOMERS = tuple(
    int(n) for n in os.environ.get("MLCONN_BENCH_RSS_CUSTOMERS", "2000,20000").split(",") if n.strip()
)
LATENCY_MS = float(os.environ.get("MLCONN_BENCH_LATENCY_MS", "50"))
RATE_LIMIT = 190
ALLOWED_PER_S = RATE_LIMIT / 10
JDE_USER, JDE_PASSWORD = "BENCH", "bench-password"
JDE_TIMEZONE = "America/Chicago"
HUBSPOT_TOKEN = "pat-na1-benchmark"
FERNET_KEY = "4q4Jp5Fq2bW4yN0i9mQv8Yk0Xx1Jm7aXwzvB3cG5dEo="
READ_SUFFIXES = ("/search", "/batch/read")
#: Which HubSpot endpoints each entity's load tasks call (the properties ones once per process).
ENTITY_PATHS = {
    "company": ("/crm/v3/objects/companies", "/crm/v3/properties/companies"),
    "contact": ("/crm/v3/objects/contacts", "/crm/v3/properties/contacts"),
    "association": ("/crm/v4/associations/",),
}


# -- child: runs the DAG -------------------------------------------------------------------------


def _task_timings(dag_run: Any) -> list[dict[str, Any]]:
    timings = []
    for ti in dag_run.get_task_instances():
        if ti.start_date is None or ti.end_date is None:
            continue
        timings.append(
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": str(ti.state),
                "start": ti.start_date.timestamp(),
                "end": ti.end_date.timestamp(),
            }
        )
    return sorted(timings, key=lambda t: t["start"])


def _run_dag(dag: Any) -> dict[str, Any]:
    started = time.time()
    dag_run = dag.test(run_conf={"safety_lag_minutes": 0})
    ended = time.time()
    return {
        "state": str(dag_run.state),
        "start": started,
        "end": ended,
        "tasks": _task_timings(dag_run),
    }


def _stats(url: str) -> dict[str, Any]:
    response = requests.get(f"{url}/_sandbox/stats", timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def child(result_path: str, runs: int, jde_url: str, hubspot_url: str) -> None:
    """Parse the DAG, run it ``runs`` times; write timings, sandbox stats and peak RSS as JSON."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{DAG_ID}.py"), safe_mode=False)
    if bag.import_errors:
        raise RuntimeError(f"the customers DAG does not import: {bag.import_errors}")
    dag = bag.dags[DAG_ID]
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = []
    for _ in range(runs):
        run = _run_dag(dag)
        run["hubspot"] = _stats(hubspot_url)
        run["jde"] = _stats(jde_url)
        results.append(run)
    Path(result_path).write_text(
        json.dumps(
            {
                "baseline_kb": baseline_kb,
                "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "runs": results,
            }
        )
    )


# -- parent: sandboxes, homes, children ----------------------------------------------------------


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY,
        "AIRFLOW_VAR_MLCONN_CUSTOMERS_SCHEDULE": "none",
    }


def _migrated_home(root: Path) -> Path:
    """An AIRFLOW_HOME whose SQLite metadata DB is migrated (once; each child gets a copy)."""
    template = root / "template"
    template.mkdir()
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **_airflow_env(template)},
        check=True,
        capture_output=True,
    )
    return template


def _connections(jde_url: str, hubspot_url: str, store_url: str) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_JDE_AIS_DEFAULT": json.dumps(
            {
                "conn_type": "jde_ais",
                "host": jde_url,
                "login": JDE_USER,
                "password": JDE_PASSWORD,
                "extra": {
                    "environment": "JDV920",
                    "role": "*ALL",
                    "device_name": "mlconn-benchmark",
                    "server_timezone": JDE_TIMEZONE,
                },
            }
        ),
        "AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps(
            {"conn_type": "hubspot", "host": hubspot_url, "password": HUBSPOT_TOKEN}
        ),
        "AIRFLOW_CONN_MLCONN_STORE": json.dumps(
            {"conn_type": "generic", "extra": {"sqlalchemy_url": store_url, "fernet_key": FERNET_KEY}}
        ),
    }


@contextmanager
def _sandboxes(customers: int, latency_ms: float) -> Iterator[tuple[str, str]]:
    from airflow_provider_mlconn.sandbox.runner import SandboxProcess

    jde_args = [
        "--customers",
        str(customers),
        "--latency-ms",
        str(latency_ms),
        "--timezone",
        JDE_TIMEZONE,
        "--username",
        JDE_USER,
        "--password",
        JDE_PASSWORD,
    ]
    hubspot_args = ["--token", HUBSPOT_TOKEN, "--latency-ms", str(latency_ms), "--rate-limit", str(RATE_LIMIT)]
    with SandboxProcess("jde", jde_args) as jde, SandboxProcess("hubspot", hubspot_args) as hubspot:
        yield jde.url, hubspot.url


def _run_child(root: Path, template: Path, name: str, runs: int, jde_url: str, hubspot_url: str) -> Any:
    home = root / name
    shutil.copytree(template, home)
    result_path = home / "result.json"
    env = {
        **os.environ,
        **_airflow_env(home),
        **_connections(jde_url, hubspot_url, f"sqlite:///{home / 'store.db'}"),
    }
    with (home / "child.log").open("w") as log:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.customers_flow", "child", str(result_path), str(runs),
             jde_url, hubspot_url],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            check=False,
        )
    if completed.returncode != 0 or not result_path.exists():
        tail = (home / "child.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the flow's child process failed ({completed.returncode}):\n{tail}")
    return json.loads(result_path.read_text())


# -- figures -------------------------------------------------------------------------------------


def _diff(after: Mapping[str, Mapping[str, int]], before: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for call, by_status in after.items():
        for status, count in by_status.items():
            delta = count - before.get(call, {}).get(status, 0)
            if delta:
                out.setdefault(call, {})[status] = delta
    return out


def _count(requests_by_call: Mapping[str, Mapping[str, int]], *, ok_only: bool = True) -> int:
    return sum(
        n for by_status in requests_by_call.values() for status, n in by_status.items()
        if not ok_only or status != "429"
    )


def _is_read(call: str) -> bool:
    return call.startswith("GET ") or call.endswith(READ_SUFFIXES)


@dataclass
class Phase:
    name: str
    seconds: float
    tasks: int = 1
    hubspot_calls: int = 0


@dataclass
class LoadRun:
    customers: int
    contacts: int
    associations: int
    wall_s: float
    phases: list[Phase]
    hubspot_by_call: dict[str, dict[str, int]]
    hubspot_calls: int
    served_429: int
    peak_10s: int
    jde_calls: int
    jde_rows: int
    load_span_s: float
    load_task_s: float
    rerun_wall_s: float = 0.0
    rerun_writes: int = 0
    rerun_reads: int = 0
    rerun_jde_calls: int = 0
    rerun_by_call: dict[str, dict[str, int]] = field(default_factory=dict)


def _phases(run: Mapping[str, Any], hubspot_by_call: Mapping[str, Mapping[str, int]]) -> list[Phase]:
    by_name: dict[str, Phase] = {}
    for task in run["tasks"]:
        name = task["task_id"]
        seconds = task["end"] - task["start"]
        if name in by_name:
            by_name[name].seconds += seconds
            by_name[name].tasks += 1
        else:
            by_name[name] = Phase(name, seconds)
    for entity, prefixes in ENTITY_PATHS.items():
        phase = by_name.get(f"{entity}.load")
        if phase is not None:
            phase.hubspot_calls = _count(
                {c: s for c, s in hubspot_by_call.items() if c.split(" ", 1)[1].startswith(prefixes)}
            )
    return list(by_name.values())


def _jde_calls(stats: Mapping[str, Any]) -> int:
    return sum(int(n) for key, n in stats["requests"].items() if "/_sandbox" not in key)


def _load_run(customers: int, result: Mapping[str, Any]) -> LoadRun:
    first, second = result["runs"]
    if first["state"] != "success" or second["state"] != "success":
        raise RuntimeError(f"a run did not succeed: {first['state']}, {second['state']}")
    hubspot_by_call: dict[str, dict[str, int]] = first["hubspot"]["requests"]
    loads = [t for t in first["tasks"] if t["task_id"].endswith(".load")]
    records = first["hubspot"]["records"]
    rerun_by_call = _diff(second["hubspot"]["requests"], hubspot_by_call)
    return LoadRun(
        customers=customers,
        contacts=int(records.get("contacts", 0)),
        associations=int(first["hubspot"]["associations"]),
        wall_s=first["end"] - first["start"],
        phases=_phases(first, hubspot_by_call),
        hubspot_by_call=hubspot_by_call,
        hubspot_calls=_count(hubspot_by_call),
        served_429=int(first["hubspot"]["rate_limited"]),
        peak_10s=int(first["hubspot"]["peak_requests_in_10s"]),
        jde_calls=_jde_calls(first["jde"]),
        jde_rows=int(first["jde"]["rows_returned"]),
        load_span_s=max(t["end"] for t in loads) - min(t["start"] for t in loads),
        load_task_s=sum(t["end"] - t["start"] for t in loads),
        rerun_wall_s=second["end"] - second["start"],
        rerun_writes=_count({c: s for c, s in rerun_by_call.items() if not _is_read(c)}, ok_only=False),
        rerun_reads=_count({c: s for c, s in rerun_by_call.items() if _is_read(c)}, ok_only=False),
        rerun_jde_calls=_jde_calls(second["jde"]) - _jde_calls(first["jde"]),
        rerun_by_call=rerun_by_call,
    )


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mlconn-bench-customers-"))
    try:
        template = _migrated_home(root)
        with _sandboxes(CUSTOMERS, LATENCY_MS) as (jde_url, hubspot_url):
            result = _run_child(root, template, "load", 2, jde_url, hubspot_url)
        load = _load_run(CUSTOMERS, result)
        print(json.dumps(load.__dict__, default=lambda o: o.__dict__, indent=1), flush=True)
        memory: dict[int, Mapping[str, Any]] = {}
        for customers in RSS_CUSTOMERS:
            with _sandboxes(customers, 0) as (jde_url, hubspot_url):
                memory[customers] = _run_child(root, template, f"rss{customers}", 1, jde_url, hubspot_url)
            print(customers, memory[customers]["peak_kb"], flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
