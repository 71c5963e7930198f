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
import textwrap
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from airflow_provider_mlconn.sandbox.connections import connection_environment, sandbox_connections
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

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{DAG_ID}.py"), safe_mode=False)
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


def _run_child(root: Path, template: Path, name: str, *, runs: int, jde_url: str, hubspot_url: str) -> Any:
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
            cwd=REPO_ROOT,
            check=False,
        )
    if completed.returncode != 0 or not result_path.exists():
        tail = (home / "child.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the flow's child process failed ({completed.returncode}):\n{tail}")
    return json.loads(result_path.read_text())


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


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---:|"]
    lines += [f"| {label} | {value} |" for label, value in rows]
    return "\n".join(lines)


def report(load: InitialLoad, memories: list[Memory]) -> str:
    bound_s = load.hubspot_bound_s + load.jde_bound_s
    figures = _table(
        ("figure", "value"),
        [
            ("HubSpot calls (429s not counted)", f"{load.hubspot_calls:,}"),
            ("HubSpot calls per customer", f"{load.hubspot_calls / load.customers:.3f}"),
            (
                f"request rate over the load tasks ({load.load_tasks_s:.1f} s) / allowed 19/s",
                f"**{load.ratio(load.load_tasks_s):.2f}**",
            ),
            (
                f"same over the load span, order tasks between included ({load.load_span_s:.1f} s)",
                f"{load.ratio(load.load_span_s):.2f}",
            ),
            (
                "HubSpot-bound loads only (company + contact)",
                f"{load.company_contact_ratio:.2f}",
            ),
            (
                "calls spent on e-mails HubSpot already had (contact upserts refused 409 + owner reads)",
                f"{load.email_conflict_calls:,}",
            ),
            ("429s served", f"{load.served_429}"),
            ("busiest 10 s window (sandbox)", f"{load.busiest_10s} of {RATE_LIMIT}"),
            ("JDE calls / rows returned", f"{load.jde_calls:,} / {load.jde_rows:,}"),
            ("wall time of the run (`dag.test()`)", f"{load.wall_s:.1f} s"),
            ("CPU time of the process running it", f"{load.cpu_s:.1f} s"),
            (
                f"lower bound: HubSpot calls / 19 per s + JDE calls x {LATENCY_MS:.0f} ms",
                f"{bound_s:.1f} s ({load.hubspot_bound_s:.1f} + {load.jde_bound_s:.1f})",
            ),
            ("wall time / lower bound", f"{load.wall_s / bound_s:.2f}"),
        ],
    )
    text = f"""## Customers flow JDE -> HubSpot (`benchmarks/customers_flow.py`)

The real DAG (`{DAG_ID}`) through `dag.test()` in a child process with an
AIRFLOW_HOME of its own (SQLite metadata DB and store), against both sandboxes as subprocesses:
`mlconn-sandbox jde --customers {load.customers}` (exactly {load.customers:,} AT1 `C` customers) and
`mlconn-sandbox hubspot` at its default limit of {RATE_LIMIT} requests per rolling 10 s, with
{LATENCY_MS:.0f} ms added to every call of both. `dag.test()` runs one task at a time, as a deployment
whose `mlconn_hubspot` pool has one slot. Calls are counted by the sandboxes (`GET /_sandbox/stats`);
task times are the task instances' start and end. The lower bound counts JDE calls one after
another (the extract reads one page at a time) and HubSpot calls at exactly 19/s. Extract, map,
order and the association load are CPU-bound, so their times move with what else runs on the
machine: load average {load.load_average:.2f} when the run started ({os.cpu_count()} CPUs).

### Initial load of {load.customers:,} customers

Staged from JDE: {load.staged("company"):,} companies, {load.staged("contact"):,} contacts (Who's Who
lines: 1.9 per customer in the seeded data, not the ~2.5 the issue assumed) and
{load.staged("association"):,} associations. HubSpot holds {load.hubspot_contacts:,} contacts afterwards (the
others share an e-mail with one of them and are linked to it) and {load.associations:,} association labels.

{_phase_table(load)}

{figures}

{_what_limits(load)}

HubSpot calls by endpoint:

{_calls_table(load.hubspot_by_call)}

### No-change rerun

Right after the initial load, nothing changed in JDE: {load.rerun_wall_s:.1f} s,
**{load.rerun_writes} HubSpot writes**, {load.rerun_reads} HubSpot reads, {load.rerun_jde_calls} JDE calls.
"""
    if memories:
        rows = [
            "| customers | contacts | HubSpot calls | run | RSS before the run | peak RSS | growth |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in memories:
            rows.append(
                f"| {m.customers:,} | {m.contacts:,} | {m.hubspot_calls:,} | {m.wall_s:.0f} s "
                f"| {m.before_run_kb / 1024:.0f} MB | {m.peak_kb / 1024:.0f} MB "
                f"| {(m.peak_kb - m.before_run_kb) / 1024:.0f} MB |"
            )
        small, large = memories[0], memories[-1]
        growth_ratio = (large.peak_kb - large.before_run_kb) / max(small.peak_kb - small.before_run_kb, 1)
        text += f"""
### Peak RSS of the process running the flow

Each size in a fresh child process (the DAG parsed, then one run through `dag.test()`) against
fresh sandboxes without added latency; `ru_maxrss` of that process (the sandboxes are others).

{chr(10).join(rows)}

Peak RSS, {large.customers:,} / {small.customers:,} customers: **{large.peak_kb / small.peak_kb:.2f}**
(growth during the run: {growth_ratio:.2f}).
"""
    return text


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="mlconn-bench-customers-"))
    try:
        template = _migrated_home(root)
        with _sandboxes(CUSTOMERS, LATENCY_MS) as (jde_url, hubspot_url):
            load_average = os.getloadavg()[0]
            result = _run_child(root, template, "load", runs=2, jde_url=jde_url, hubspot_url=hubspot_url)
            load = initial_load(CUSTOMERS, result, load_average=load_average)
        print(
            f"{CUSTOMERS} customers: {load.wall_s:.1f} s, {load.hubspot_calls} HubSpot calls, "
            f"rate/allowed {load.ratio(load.load_tasks_s):.2f}; rerun writes {load.rerun_writes}",
            flush=True,
        )
        memories = []
        for customers in RSS_CUSTOMERS:
            with _sandboxes(customers, 0) as (jde_url, hubspot_url):
                result = _run_child(
                    root, template, f"memory-{customers}", runs=1, jde_url=jde_url, hubspot_url=hubspot_url
                )
            memories.append(memory(customers, result))
            print(f"{customers} customers: peak RSS {memories[-1].peak_kb / 1024:.0f} MB", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = report(load, memories)
    write_section("customers_flow", text)
    print(text)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()
