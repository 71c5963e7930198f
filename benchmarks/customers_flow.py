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

import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from airflow_provider_mlconn.sandbox.connections import connection_environment, sandbox_connections
from benchmarks.baseline import ROUNDS, Side, sides
from benchmarks.deployment import LocalDeployment
from benchmarks.report import write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "mlconn_customers_jde_to_hubspot"
CUSTOMERS = int(os.environ.get("MLCONN_BENCH_CUSTOMERS", "10000"))
RSS_CUSTOMERS = tuple(
    int(n) for n in os.environ.get("MLCONN_BENCH_RSS_CUSTOMERS", "2000,20000").split(",") if n.strip()
)
LATENCY_MS = float(os.environ.get("MLCONN_BENCH_LATENCY_MS", "50"))
#: How the DAG runs: "local" (a LocalExecutor deployment), "dag_test" (``dag.test()``), or both.
MODES = tuple(m for m in os.environ.get("MLCONN_BENCH_MODES", "local,dag_test").split(",") if m.strip())
PARALLELISM = int(os.environ.get("MLCONN_BENCH_PARALLELISM", "8"))
POOL_SLOTS = int(os.environ.get("MLCONN_BENCH_POOL_SLOTS", "4"))
#: Which section of BENCHMARKS.md the results replace (``benchmarks.customers_100k`` writes its own).
SECTION = os.environ.get("MLCONN_BENCH_SECTION", "customers_flow")
#: JDE reads the work tree keeps in flight (the connection's max_parallel_reads default).
JDE_READS_IN_FLIGHT = 4
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
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.store import Store, run_key_for

    started = time.time()
    dag_run = dag.test(run_conf={"safety_lag_minutes": 0})
    ended = time.time()
    extra = json.loads(os.environ["AIRFLOW_CONN_MLCONN_STORE"])["extra"]
    store = Store(extra["sqlalchemy_url"], PayloadCipher(extra["fernet_key"]))
    run_key = run_key_for(dag_run.dag_id, dag_run.run_id)
    try:
        records = {entity: store.runs.status_counts(run_key, entity=entity) for entity in ENTITY_PATHS}
    finally:
        store.dispose()
    return {
        "state": str(dag_run.state),
        "start": started,
        "end": ended,
        "tasks": _task_timings(dag_run),
        "records": records,
    }


def _stats(url: str) -> dict[str, Any]:
    response = requests.get(f"{url}/_sandbox/stats", timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(result_path: str, runs: int, jde_url: str, hubspot_url: str) -> None:
    """Parse the DAG, run it ``runs`` times; write timings, sandbox stats and peak RSS as JSON."""
    from airflow.dag_processing.dagbag import DagBag

    # The DAG of the side this child runs (its export's dags folder), not this checkout's.
    dags = Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or REPO_ROOT / "dags")
    bag = DagBag(dag_folder=str(dags / f"{DAG_ID}.py"), safe_mode=False)
    if bag.import_errors:
        raise RuntimeError(f"the customers DAG does not import: {bag.import_errors}")
    dag = bag.dags[DAG_ID]
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = []
    for _ in range(runs):
        cpu_before = _cpu_seconds()
        run = _run_dag(dag)
        run["cpu_s"] = _cpu_seconds() - cpu_before
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


def _airflow_env(home: Path, dags: Path = REPO_ROOT / "dags") -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
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
    definitions = sandbox_connections(
        jde_url=jde_url,
        hubspot_url=hubspot_url,
        jde_user=JDE_USER,
        jde_password=JDE_PASSWORD,
        jde_timezone=JDE_TIMEZONE,
        hubspot_token=HUBSPOT_TOKEN,
        device_name="mlconn-benchmark",
    )
    definitions["mlconn_store"] = {
        "conn_type": "generic",
        "extra": {"sqlalchemy_url": store_url, "fernet_key": FERNET_KEY},
    }
    return connection_environment(definitions)


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
    hubspot_args = [
        "--token",
        HUBSPOT_TOKEN,
        "--latency-ms",
        str(latency_ms),
        "--rate-limit",
        str(RATE_LIMIT),
    ]
    with SandboxProcess("jde", jde_args) as jde, SandboxProcess("hubspot", hubspot_args) as hubspot:
        yield jde.url, hubspot.url


def _run_child(
    root: Path, template: Path, name: str, side: Side, *, runs: int, jde_url: str, hubspot_url: str
) -> Any:
    """``runs`` runs of the DAG through ``dag.test()`` in a child process running ``side``'s code."""
    home = root / name
    shutil.copytree(template, home)
    result_path = home / "result.json"
    env = {
        **side.env(),
        **_airflow_env(home, side.dags),
        **_connections(jde_url, hubspot_url, f"sqlite:///{home / 'store.db'}"),
    }
    with (home / "child.log").open("w") as log:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.customers_flow",
                "child",
                str(result_path),
                str(runs),
                jde_url,
                hubspot_url,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=side.root,
            check=False,
        )
    if completed.returncode != 0 or not result_path.exists():
        tail = (home / "child.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the flow's child process failed ({completed.returncode}):\n{tail}")
    return json.loads(result_path.read_text())


def _store_counts(store_url: str, run_id: str) -> dict[str, dict[str, int]]:
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.store import Store, run_key_for

    store = Store(store_url, PayloadCipher(FERNET_KEY))
    try:
        run_key = run_key_for(DAG_ID, run_id)
        return {entity: store.runs.status_counts(run_key, entity=entity) for entity in ENTITY_PATHS}
    finally:
        store.dispose()


def _run_deployment(
    root: Path, template: Path, name: str, side: Side, *, runs: int, jde_url: str, hubspot_url: str
) -> Any:
    """``runs`` runs of the DAG by a LocalExecutor deployment (``benchmarks/deployment.py``) running
    ``side``'s code; the same result shape as the ``dag.test()`` child."""
    home = root / name
    shutil.copytree(template, home)
    store_url = f"sqlite:///{home / 'store.db'}"
    env = {
        **side.env(),
        **_airflow_env(home, side.dags),
        **_connections(jde_url, hubspot_url, store_url),
    }
    results = []
    with LocalDeployment(
        home, env, parallelism=PARALLELISM, pool_slots=POOL_SLOTS, cwd=side.root
    ) as deployment:
        deployment.wait_for_dag(DAG_ID)
        for _ in range(runs):
            run = deployment.run(DAG_ID, {"safety_lag_minutes": 0})
            run["records"] = _store_counts(store_url, run["run_id"])
            run["cpu_s"] = float("nan")
            run["hubspot"] = _stats(hubspot_url)
            run["jde"] = _stats(jde_url)
            results.append(run)
    return {"runs": results}


# -- figures -------------------------------------------------------------------------------------

Calls = Mapping[str, Mapping[str, int]]


def _calls_since(after: Calls, before: Calls) -> dict[str, dict[str, int]]:
    """Requests per "METHOD path" and status counted between two stats snapshots."""
    counted: dict[str, dict[str, int]] = {}
    for call, by_status in after.items():
        for status, number in by_status.items():
            delta = number - before.get(call, {}).get(status, 0)
            if delta:
                counted.setdefault(call, {})[status] = delta
    return counted


def _total(calls: Calls, *, without_429: bool = True) -> int:
    return sum(
        number
        for by_status in calls.values()
        for status, number in by_status.items()
        if not (without_429 and status == "429")
    )


def _is_read(call: str) -> bool:
    return call.startswith("GET ") or call.endswith(READ_SUFFIXES)


def _jde_calls(stats: Mapping[str, Any]) -> int:
    return sum(int(number) for route, number in stats["requests"].items() if "/_sandbox" not in route)


@dataclass
class Phase:
    """One task of the DAG (mapped tasks summed): wall time and the HubSpot calls it made."""

    name: str
    seconds: float
    tasks: int = 1
    hubspot_calls: int = 0


@dataclass
class InitialLoad:
    customers: int
    records: dict[str, dict[str, int]]
    hubspot_contacts: int
    associations: int
    wall_s: float
    phases: list[Phase]
    hubspot_by_call: dict[str, dict[str, int]]
    served_429: int
    busiest_10s: int
    jde_calls: int
    jde_rows: int
    load_tasks_s: float
    load_span_s: float
    rerun_wall_s: float
    rerun_by_call: dict[str, dict[str, int]]
    rerun_jde_calls: int
    cpu_s: float
    load_average: float

    @property
    def hubspot_calls(self) -> int:
        return _total(self.hubspot_by_call)

    @property
    def rerun_writes(self) -> int:
        return _total({c: s for c, s in self.rerun_by_call.items() if not _is_read(c)}, without_429=False)

    @property
    def rerun_reads(self) -> int:
        return _total({c: s for c, s in self.rerun_by_call.items() if _is_read(c)}, without_429=False)

    def staged(self, entity: str) -> int:
        return sum(self.records.get(entity, {}).values())

    def ratio(self, seconds: float) -> float:
        return self.hubspot_calls / seconds / ALLOWED_PER_S

    @property
    def company_contact_ratio(self) -> float:
        loads = [p for p in self.phases if p.name in ("company.load", "contact.load")]
        return sum(p.hubspot_calls for p in loads) / sum(p.seconds for p in loads) / ALLOWED_PER_S

    @property
    def email_conflict_calls(self) -> int:
        upserts = self.hubspot_by_call.get("POST /crm/v3/objects/contacts/batch/upsert", {})
        reads = self.hubspot_by_call.get("POST /crm/v3/objects/contacts/batch/read", {})
        return upserts.get("409", 0) + sum(reads.values())

    @property
    def hubspot_bound_s(self) -> float:
        return self.hubspot_calls / ALLOWED_PER_S

    @property
    def jde_bound_s(self) -> float:
        return self.jde_calls * LATENCY_MS / 1000


def _phases(run: Mapping[str, Any], hubspot_by_call: Calls) -> list[Phase]:
    by_name: dict[str, Phase] = {}
    for task in run["tasks"]:
        seconds = task["end"] - task["start"]
        phase = by_name.get(task["task_id"])
        if phase is None:
            by_name[task["task_id"]] = Phase(task["task_id"], seconds)
        else:
            phase.seconds += seconds
            phase.tasks += 1
    for entity, prefixes in ENTITY_PATHS.items():
        load = by_name.get(f"{entity}.load")
        if load is not None:
            load.hubspot_calls = _total(
                {c: s for c, s in hubspot_by_call.items() if c.split(" ", 1)[1].startswith(prefixes)}
            )
    return list(by_name.values())


def initial_load(customers: int, result: Mapping[str, Any], *, load_average: float) -> InitialLoad:
    first, rerun = result["runs"]
    if first["state"] != "success" or rerun["state"] != "success":
        raise RuntimeError(f"a run of the DAG did not succeed: {first['state']}, {rerun['state']}")
    hubspot_by_call: dict[str, dict[str, int]] = first["hubspot"]["requests"]
    loads = [task for task in first["tasks"] if task["task_id"].endswith(".load")]
    return InitialLoad(
        customers=customers,
        records=first["records"],
        hubspot_contacts=int(first["hubspot"]["records"].get("contacts", 0)),
        associations=int(first["hubspot"]["associations"]),
        wall_s=first["end"] - first["start"],
        phases=_phases(first, hubspot_by_call),
        hubspot_by_call=hubspot_by_call,
        served_429=int(first["hubspot"]["rate_limited"]),
        busiest_10s=int(first["hubspot"]["peak_requests_in_10s"]),
        jde_calls=_jde_calls(first["jde"]),
        jde_rows=int(first["jde"]["rows_returned"]),
        load_tasks_s=sum(task["end"] - task["start"] for task in loads),
        load_span_s=max(task["end"] for task in loads) - min(task["start"] for task in loads),
        rerun_wall_s=rerun["end"] - rerun["start"],
        rerun_by_call=_calls_since(rerun["hubspot"]["requests"], hubspot_by_call),
        rerun_jde_calls=_jde_calls(rerun["jde"]) - _jde_calls(first["jde"]),
        cpu_s=float(first["cpu_s"]),
        load_average=load_average,
    )


@dataclass
class Memory:
    customers: int
    contacts: int
    hubspot_calls: int
    wall_s: float
    before_run_kb: int
    peak_kb: int


def memory(customers: int, result: Mapping[str, Any]) -> Memory:
    (run,) = result["runs"]
    if run["state"] != "success":
        raise RuntimeError(f"the run of {customers} customers did not succeed: {run['state']}")
    return Memory(
        customers=customers,
        contacts=sum(run["records"].get("contact", {}).values()),
        hubspot_calls=_total(run["hubspot"]["requests"]),
        wall_s=run["end"] - run["start"],
        before_run_kb=int(result["baseline_kb"]),
        peak_kb=int(result["peak_kb"]),
    )


# -- report --------------------------------------------------------------------------------------


def _phase_table(load: InitialLoad) -> str:
    lines = [
        "| task | runs | seconds | HubSpot calls | calls/s | / allowed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for phase in load.phases:
        if phase.hubspot_calls:
            rate = phase.hubspot_calls / phase.seconds
            figures = f"{phase.hubspot_calls:,} | {rate:.1f} | {rate / ALLOWED_PER_S:.2f}"
        else:
            figures = "- | - | -"
        lines.append(f"| `{phase.name}` | {phase.tasks} | {phase.seconds:.1f} | {figures} |")
    return "\n".join(lines)


def _calls_table(calls: Calls) -> str:
    grouped: dict[str, dict[str, int]] = {}
    for call, by_status in calls.items():
        # One GET per custom property (and group) the flow checks: one line for all of them.
        method, path = call.split(" ", 1)
        if method == "GET" and "/properties/" in path:
            path = path.rsplit("/", 1)[0] + "/{name}"
        line = grouped.setdefault(f"{method} {path}", {})
        for status, number in by_status.items():
            line[status] = line.get(status, 0) + number
    lines = ["| endpoint | answers |", "|---|---|"]
    for call, by_status in sorted(grouped.items(), key=lambda item: -sum(item[1].values())):
        answers = ", ".join(f"{number:,} x {status}" for status, number in sorted(by_status.items()))
        lines.append(f"| `{call}` | {answers} |")
    return "\n".join(lines)


def _what_limits(load: InitialLoad) -> str:
    phases = {phase.name: phase for phase in load.phases}
    association = phases.get("association.load")
    if load.busiest_10s >= RATE_LIMIT:
        text = (
            f"What sets the pace: the contact load runs into the limit (busiest 10 s window "
            f"{load.busiest_10s} of {RATE_LIMIT}; {load.served_429} 429s: the throttle waits instead); "
            f"the company load fits in the first window's burst of {RATE_LIMIT}."
        )
    else:
        text = f"The run never reached the limit (busiest 10 s window {load.busiest_10s} of {RATE_LIMIT})."
    if association is not None:
        text += (
            f" The association load sends 1,000 links per request, so its {association.seconds:.1f} s "
            f"for {load.staged('association'):,} records are the engine's work per record (read and "
            "decrypt, prerequisite check, outcome and audit rows), not HubSpot's: it pulls the "
            "whole-phase ratio down, one load task at a time as `dag.test()` runs them."
        )
    return textwrap.fill(text, width=100)


def _bounds(load: InitialLoad) -> tuple[float, float]:
    """The lower bound with JDE calls one after another, and with JDE_READS_IN_FLIGHT at once."""
    return (
        load.hubspot_bound_s + load.jde_bound_s,
        load.hubspot_bound_s + load.jde_bound_s / JDE_READS_IN_FLIGHT,
    )


def comparison(loads: dict[tuple[str, str], InitialLoad], columns: list[tuple[str, str]]) -> str:
    """The side-by-side summary: one column per (mode, side)."""

    def row(label: str, value: Any) -> str:
        return f"| {label} | " + " | ".join(value(loads[column]) for column in columns) + " |"

    def ratio(index: int) -> Any:
        return lambda load: f"**{load.wall_s / _bounds(load)[index]:.2f}**"

    header = "| figure | " + " | ".join(f"{side}, {MODE_NAMES[mode]}" for mode, side in columns) + " |"
    lines = [
        header,
        "|---|" + "---:|" * len(columns),
        row("wall time of the run", lambda load: f"{load.wall_s:.1f} s"),
        row(
            f"bound, JDE calls one after another (HubSpot / 19 per s + JDE x {LATENCY_MS:.0f} ms)",
            lambda load: f"{_bounds(load)[0]:.1f} s",
        ),
        row(f"bound, {JDE_READS_IN_FLIGHT} JDE reads in flight", lambda load: f"{_bounds(load)[1]:.1f} s"),
        row("wall / bound (JDE one after another)", ratio(0)),
        row(f"wall / bound ({JDE_READS_IN_FLIGHT} JDE reads in flight)", ratio(1)),
        row("JDE calls / rows", lambda load: f"{load.jde_calls:,} / {load.jde_rows:,}"),
        row("HubSpot calls (429s: served)", lambda load: f"{load.hubspot_calls:,} ({load.served_429})"),
        row(
            "429s / HubSpot calls",
            lambda load: f"{load.served_429 / max(load.hubspot_calls, 1):.2%}",
        ),
        row("busiest 10 s window", lambda load: f"{load.busiest_10s} of {RATE_LIMIT}"),
        row(
            "CPU of the process running it",
            lambda load: "-" if load.cpu_s != load.cpu_s else f"{load.cpu_s:.1f} s",
        ),
        row(
            "no-change rerun: wall, HubSpot writes / reads, JDE calls",
            lambda load: (
                f"{load.rerun_wall_s:.1f} s, {load.rerun_writes} / {load.rerun_reads}, {load.rerun_jde_calls}"
            ),
        ),
        row("load average when the run started", lambda load: f"{load.load_average:.2f}"),
    ]
    return "\n".join(lines)


MODE_NAMES = {"local": "LocalExecutor", "dag_test": "`dag.test()`"}


def report_all(
    loads: dict[tuple[str, str], InitialLoad],
    columns: list[tuple[str, str]],
    memories: dict[str, list[Memory]],
) -> str:
    current = columns[-1]
    main_load = loads[current]
    module = "customers_flow" if SECTION == "customers_flow" else SECTION
    text = f"""## Customers flow JDE -> HubSpot, {CUSTOMERS:,} customers (`benchmarks/{module}.py`)

The real DAG (`{DAG_ID}`) against both sandboxes as subprocesses:
`mlconn-sandbox jde --customers {CUSTOMERS}` (exactly {CUSTOMERS:,} AT1 `C` customers) and
`mlconn-sandbox hubspot` at its default limit of {RATE_LIMIT} requests per rolling 10 s, with
{LATENCY_MS:.0f} ms added to every call of both, run two ways: by a **LocalExecutor deployment**
(`benchmarks/deployment.py`: api-server, scheduler and dag-processor of this venv, SQLite metadata
database, `[core] parallelism` {PARALLELISM}, pool `mlconn_hubspot` with {POOL_SLOTS} slots, so an
entity's load batches run side by side within the pool), and through **`dag.test()`** (one task at a
time in one process, as the issue measured). Each side of a comparison ran its own code (the
baseline from `git archive`, `benchmarks/baseline.py`) against fresh sandboxes; best of {ROUNDS}
round(s) by wall time. Calls are counted by the sandboxes; the wall time of a LocalExecutor run is
from the trigger to the run's end as the REST API reports it (scheduling included). The bound
counts HubSpot calls at exactly 19/s plus the JDE calls' added latency, once one after another and
once {JDE_READS_IN_FLIGHT} at a time (the connection's `max_parallel_reads`). The machine (2 CPUs) is
shared with other engineers and with both sandboxes: the load average is beside each figure.

{comparison(loads, columns)}

### Tasks of the runs (seconds summed over a task's mapped instances)
"""
    for column in columns:
        mode, side = column
        text += f"\n{side}, {MODE_NAMES[mode]}:\n\n{_phase_table(loads[column])}\n"
    text += f"""
{_what_limits(main_load)}

HubSpot calls by endpoint ({current[1]}, {MODE_NAMES[current[0]]}):

{_calls_table(main_load.hubspot_by_call)}
"""
    if memories:
        rows = [
            "| code | customers | contacts | HubSpot calls | run | RSS before the run | peak RSS | growth |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        ratios = []
        for side, found in memories.items():
            for m in found:
                rows.append(
                    f"| {side} | {m.customers:,} | {m.contacts:,} | {m.hubspot_calls:,} | {m.wall_s:.0f} s "
                    f"| {m.before_run_kb / 1024:.0f} MB | {m.peak_kb / 1024:.0f} MB "
                    f"| {(m.peak_kb - m.before_run_kb) / 1024:.0f} MB |"
                )
            if len(found) > 1:
                small, large = found[0], found[-1]
                ratios.append(
                    f"{side}: **{large.peak_kb / small.peak_kb:.2f}** ({large.customers:,} / "
                    f"{small.customers:,} customers)"
                )
        text += f"""
### Peak RSS of the process running the flow

Each size in a fresh child process (the DAG parsed, then one run through `dag.test()`, every task
in that one process) against fresh sandboxes without added latency; `ru_maxrss` of that process.

{chr(10).join(rows)}

Peak RSS ratio: {"; ".join(ratios)}.
"""
    return text


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mlconn-bench-customers-"))
    try:
        template = _migrated_home(root)
        compared = sides(root)
        loads: dict[tuple[str, str], InitialLoad] = {}
        runners = {"local": _run_deployment, "dag_test": _run_child}
        homes = itertools.count()  # each run's own AIRFLOW_HOME (round after round)
        for round_number in range(ROUNDS):
            for mode in MODES:
                for side in compared:
                    with _sandboxes(CUSTOMERS, LATENCY_MS) as (jde_url, hubspot_url):
                        load_average = os.getloadavg()[0]
                        result = runners[mode](
                            root,
                            template,
                            f"load-{mode}-{round_number}-{next(homes)}",
                            side,
                            runs=2,
                            jde_url=jde_url,
                            hubspot_url=hubspot_url,
                        )
                        load = initial_load(CUSTOMERS, result, load_average=load_average)
                    print(
                        f"{side.label}, {mode}: {load.wall_s:.1f} s, {load.hubspot_calls} HubSpot calls, "
                        f"{load.jde_calls} JDE calls; rerun writes {load.rerun_writes}; "
                        f"load {load_average:.2f}",
                        flush=True,
                    )
                    key = (mode, side.label)
                    if key not in loads or load.wall_s < loads[key].wall_s:
                        loads[key] = load
        memories: dict[str, list[Memory]] = {}
        for side in compared:
            for customers in RSS_CUSTOMERS:
                with _sandboxes(customers, 0) as (jde_url, hubspot_url):
                    result = _run_child(
                        root,
                        template,
                        f"memory-{len(memories)}-{customers}",
                        side,
                        runs=1,
                        jde_url=jde_url,
                        hubspot_url=hubspot_url,
                    )
                memories.setdefault(side.label, []).append(memory(customers, result))
                print(
                    f"{side.label}, {customers} customers: "
                    f"peak RSS {memories[side.label][-1].peak_kb / 1024:.0f} MB",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    columns = [(mode, side.label) for mode in MODES for side in compared]
    text = report_all(loads, columns, memories)
    write_section(SECTION, text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
