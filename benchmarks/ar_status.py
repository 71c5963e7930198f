"""The A/R status flow (JDE -> HubSpot) at 10,000 customers with 3 open items each, 50 ms latency.

Both sandboxes run as subprocesses (``mlconn-sandbox jde --open-items 3``: every customer has exactly
three open invoices, and ``mlconn-sandbox hubspot`` at its default 190 requests per rolling 10 s),
50 ms added to every call of both. The DAGs run through ``dag.test()`` in a child process with an
AIRFLOW_HOME of its own (one task at a time, as a deployment whose HubSpot pool has one slot), so
every operator, Variable and store call is in the measurement:

1. the customers flow brings the companies and contacts (not measured here: BENCHMARKS customers);
2. the A/R flow's first run reads the whole ledger: every document raised in JDE becomes a HubSpot
   invoice (line items, associations, open), with its status, and every company gets its balances;
3. accounting keys a receipt for one invoice of 1 % of the customers (``/_sandbox/receipts``); the
   next run: HubSpot and JDE calls per changed customer, wall time beside the lower bound (every
   call made one after the other at the sandboxes' latency, and HubSpot's rate limit);
4. a run with no JDE change: HubSpot writes (target: zero);
5. ``mlconn_reconcile`` with ``flows=["ar_status"]`` in a fresh child process: the whole ledger
   compared with HubSpot (target: no difference), its calls, wall time and peak RSS.

Run alone: ``.venv/bin/python -m benchmarks.ar_status`` (a few minutes). Knobs for a quick try:
``MLCONN_BENCH_AR_CUSTOMERS`` (10000), ``MLCONN_BENCH_AR_CHANGED`` (1 % of them),
``MLCONN_BENCH_LATENCY_MS`` (50).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
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
AR_DAG = "mlconn_ar_jde_to_hubspot"
CUSTOMERS_DAG = "mlconn_customers_jde_to_hubspot"
RECONCILE_DAG = "mlconn_reconcile"
CUSTOMERS = int(os.environ.get("MLCONN_BENCH_AR_CUSTOMERS", "10000"))
CHANGED = int(os.environ.get("MLCONN_BENCH_AR_CHANGED", str(max(1, CUSTOMERS // 100))))
OPEN_ITEMS = 3
LATENCY_MS = float(os.environ.get("MLCONN_BENCH_LATENCY_MS", "50"))
RATE_LIMIT = 190
ALLOWED_PER_S = RATE_LIMIT / 10
JDE_USER, JDE_PASSWORD = "BENCH", "bench-password"
JDE_TIMEZONE = "America/Chicago"
HUBSPOT_TOKEN = "pat-na1-benchmark"
FERNET_KEY = "4q4Jp5Fq2bW4yN0i9mQv8Yk0Xx1Jm7aXwzvB3cG5dEo="
READ_SUFFIXES = ("/search", "/batch/read")
ENTITIES = ("jde_invoice", "invoice_status", "company_balance")


# -- child: runs the DAGs --------------------------------------------------------------------------


def _stats(url: str) -> dict[str, Any]:
    response = requests.get(f"{url}/_sandbox/stats", timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _run(dag: Any, jde_url: str, hubspot_url: str, entities: tuple[str, ...] = ENTITIES) -> dict[str, Any]:
    """One ``dag.test()`` run: its wall time, tasks, the store's counts of ``entities`` and both
    sandboxes' counters before and after (``benchmarks/money_flows.py`` runs its DAGs this way too)."""
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.store import Store, run_key_for

    before = {"hubspot": _stats(hubspot_url), "jde": _stats(jde_url)}
    started = time.time()
    dag_run = dag.test(run_conf={"safety_lag_minutes": 0})
    ended = time.time()
    extra = json.loads(os.environ["AIRFLOW_CONN_MLCONN_STORE"])["extra"]
    store = Store(extra["sqlalchemy_url"], PayloadCipher(extra["fernet_key"]))
    try:
        run_key = run_key_for(dag_run.dag_id, dag_run.run_id)
        records = {entity: store.runs.status_counts(run_key, entity=entity) for entity in entities}
    finally:
        store.dispose()
    tasks = [
        {"task_id": ti.task_id, "seconds": (ti.end_date - ti.start_date).total_seconds()}
        for ti in dag_run.get_task_instances()
        if ti.start_date is not None and ti.end_date is not None
    ]
    return {
        "dag": dag_run.dag_id,
        "state": str(dag_run.state),
        "wall_s": ended - started,
        "tasks": tasks,
        "records": records,
        "before": before,
        "hubspot": _stats(hubspot_url),
        "jde": _stats(jde_url),
    }


def _key_receipts(jde_url: str, count: int) -> int:
    """One receipt, paying one open invoice in full, for ``count`` customers spread over the book."""
    from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
    from airflow_provider_mlconn.jde import query as q

    step = max(1, CUSTOMERS // count)
    with JdeAisHook() as hook:
        customers = [
            int(row["AN8"]) for row in hook.iter_rows("F0101", query=q.eq("F0101.AT1", "C"), columns=["AN8"])
        ][::step][:count]
        first_invoice: dict[int, int] = {}
        for start in range(0, len(customers), 100):
            chunk = customers[start : start + 100]
            query = q.all_of(q.in_list("F03B11.AN8", chunk), q.ne("F03B11.AAP", 0))
            for row in hook.iter_rows("F03B11", query=query, columns=["AN8"]):
                first_invoice.setdefault(int(row["AN8"]), int(row["DOC"]))
    with requests.Session() as http:
        for number, (customer, document) in enumerate(sorted(first_invoice.items())):
            body = {
                "customer": customer,
                "receipt_number": f"BENCH-{number:05d}",
                "applications": [{"document_number": document}],
            }
            http.post(f"{jde_url}/_sandbox/receipts", json=body, timeout=60).raise_for_status()
    return len(first_invoice)


def child(result_path: str, jde_url: str, hubspot_url: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dags = {}
    for dag_id in (CUSTOMERS_DAG, AR_DAG):
        bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{dag_id}.py"), safe_mode=False)
        if bag.import_errors:
            raise RuntimeError(f"{dag_id} does not import: {bag.import_errors}")
        dags[dag_id] = bag.dags[dag_id]
    runs = {"customers": _run(dags[CUSTOMERS_DAG], jde_url, hubspot_url)}
    time.sleep(1.1)
    runs["initial"] = _run(dags[AR_DAG], jde_url, hubspot_url)
    changed = _key_receipts(jde_url, CHANGED)
    time.sleep(1.1)
    runs["changed"] = _run(dags[AR_DAG], jde_url, hubspot_url)
    runs["changed"]["customers_changed"] = changed
    runs["unchanged"] = _run(dags[AR_DAG], jde_url, hubspot_url)
    Path(result_path).write_text(json.dumps(runs))


def reconcile_child(result_path: str, jde_url: str, hubspot_url: str) -> None:
    """``mlconn_reconcile`` (A/R status only) through ``dag.test()``, alone in this process: the
    summary, the sandboxes' counters around it and the process's peak RSS."""
    import resource

    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.store import Store, run_key_for

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{RECONCILE_DAG}.py"), safe_mode=False)
    if bag.import_errors:
        raise RuntimeError(f"{RECONCILE_DAG} does not import: {bag.import_errors}")
    dag = bag.dags[RECONCILE_DAG]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    before = {"hubspot": _stats(hubspot_url), "jde": _stats(jde_url)}
    started = time.time()
    dag_run = dag.test(run_conf={"flows": ["ar_status"]})
    wall = time.time() - started
    extra = json.loads(os.environ["AIRFLOW_CONN_MLCONN_STORE"])["extra"]
    store = Store(extra["sqlalchemy_url"], PayloadCipher(extra["fernet_key"]))
    try:
        stored = store.reconcile_reports.latest(run_key_for(dag_run.dag_id, dag_run.run_id))
        summary = None if stored is None else stored.summary
    finally:
        store.dispose()
    result = {
        "state": str(dag_run.state),
        "wall_s": wall,
        "summary": summary,
        "before": before,
        "hubspot": _stats(hubspot_url),
        "jde": _stats(jde_url),
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(result_path).write_text(json.dumps(result))


# -- parent: sandboxes, home, child -----------------------------------------------------------------


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__FERNET_KEY": FERNET_KEY,
        "AIRFLOW_VAR_MLCONN_CUSTOMERS_SCHEDULE": "none",
        "AIRFLOW_VAR_MLCONN_AR_STATUS_SCHEDULE": "none",
    }


@contextmanager
def _sandboxes() -> Iterator[tuple[str, str]]:
    from airflow_provider_mlconn.sandbox.runner import SandboxProcess

    jde_args = [
        "--customers", str(CUSTOMERS), "--open-items", str(OPEN_ITEMS), "--latency-ms", str(LATENCY_MS),
        "--timezone", JDE_TIMEZONE, "--username", JDE_USER, "--password", JDE_PASSWORD,
    ]  # fmt: skip
    hubspot_args = [
        "--token",
        HUBSPOT_TOKEN,
        "--latency-ms",
        str(LATENCY_MS),
        "--rate-limit",
        str(RATE_LIMIT),
    ]
    with SandboxProcess("jde", jde_args) as jde, SandboxProcess("hubspot", hubspot_args) as hubspot:
        yield jde.url, hubspot.url


def _run_child(
    module: str, home: Path, env: dict[str, str], jde_url: str, hubspot_url: str, *, command: str = "child"
) -> dict[str, Any]:
    """Run ``python -m <module> <command>`` in ``home`` (its log in <command>.log); the JSON it
    wrote. ``benchmarks/money_flows.py`` runs its child this way too."""
    result_path = home / f"{command}.json"
    with (home / f"{command}.log").open("w") as log:
        completed = subprocess.run(
            [sys.executable, "-m", module, command, str(result_path), jde_url, hubspot_url],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, check=False,
        )  # fmt: skip
    if completed.returncode != 0 or not result_path.exists():
        tail = (home / f"{command}.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the benchmark's child process failed ({completed.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    return result


def _measure() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="mlconn-bench-ar-"))
    try:
        home = root / "home"
        home.mkdir()
        env = {**os.environ, **_airflow_env(home)}
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )
        with _sandboxes() as (jde_url, hubspot_url):
            definitions = sandbox_connections(
                jde_url=jde_url, hubspot_url=hubspot_url, jde_user=JDE_USER, jde_password=JDE_PASSWORD,
                jde_timezone=JDE_TIMEZONE, hubspot_token=HUBSPOT_TOKEN, device_name="mlconn-benchmark",
            )  # fmt: skip
            definitions["mlconn_store"] = {
                "conn_type": "generic",
                "extra": {"sqlalchemy_url": f"sqlite:///{home / 'store.db'}", "fernet_key": FERNET_KEY},
            }
            env.update(connection_environment(definitions))
            runs = _run_child("benchmarks.ar_status", home, env, jde_url, hubspot_url)
            runs["reconcile"] = _run_child(
                "benchmarks.ar_status", home, env, jde_url, hubspot_url, command="reconcile"
            )
            return runs
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- figures ----------------------------------------------------------------------------------------

Calls = Mapping[str, Mapping[str, int]]


def _since(after: Calls, before: Calls) -> dict[str, dict[str, int]]:
    counted: dict[str, dict[str, int]] = {}
    for call, by_status in after.items():
        for status, number in by_status.items():
            delta = number - before.get(call, {}).get(status, 0)
            if delta:
                counted.setdefault(call, {})[status] = delta
    return counted


def _total(calls: Calls) -> int:
    return sum(n for by_status in calls.values() for status, n in by_status.items() if status != "429")


def _is_read(call: str) -> bool:
    return call.startswith("GET ") or call.endswith(READ_SUFFIXES)


def _jde_calls(stats: Mapping[str, Any]) -> int:
    return sum(int(n) for route, n in stats["requests"].items() if "/_sandbox" not in route)


@dataclass
class Run:
    """One A/R run: what it wrote and read, and how long its tasks took."""

    name: str
    wall_s: float
    hubspot: dict[str, dict[str, int]]
    jde_calls: int
    records: dict[str, dict[str, int]]
    tasks: list[dict[str, Any]]
    customers_changed: int = 0

    @property
    def hubspot_writes(self) -> int:
        return _total({c: s for c, s in self.hubspot.items() if not _is_read(c)})

    @property
    def hubspot_reads(self) -> int:
        return _total({c: s for c, s in self.hubspot.items() if _is_read(c)})

    @property
    def hubspot_calls(self) -> int:
        return _total(self.hubspot)

    @property
    def sequential_bound_s(self) -> float:
        """Every call one after the other at the sandboxes' latency."""
        return (self.jde_calls + self.hubspot_calls) * LATENCY_MS / 1000

    @property
    def bound_s(self) -> float:
        return max(
            self.sequential_bound_s if self.name != "initial" else 0.0, self.hubspot_calls / ALLOWED_PER_S
        )

    def seconds(self, suffix: str) -> float:
        return sum(t["seconds"] for t in self.tasks if t["task_id"].endswith(suffix))

    def loaded(self, entity: str) -> int:
        return int(self.records.get(entity, {}).get("loaded", 0))


def _runs(raw: Mapping[str, Any]) -> dict[str, Run]:
    for name, run in raw.items():
        if name == "reconcile":
            continue
        if run["state"] != "success":
            raise RuntimeError(f"the {name} run did not succeed: {run['state']}")
    found: dict[str, Run] = {}
    for name in ("initial", "changed", "unchanged"):
        run = raw[name]
        before = run["before"]  # taken right before the run: the benchmark's own edits are not in it
        found[name] = Run(
            name=name,
            wall_s=run["wall_s"],
            hubspot=_since(run["hubspot"]["requests"], before["hubspot"]["requests"]),
            jde_calls=_jde_calls(run["jde"]) - _jde_calls(before["jde"]),
            records=run["records"],
            tasks=run["tasks"],
            customers_changed=int(run.get("customers_changed", 0)),
        )
    return found


def _calls_table(run: Run) -> str:
    rows = sorted(run.hubspot.items(), key=lambda item: -sum(item[1].values()))
    return "\n".join(f"| `{call}` | {sum(by_status.values()):,} |" for call, by_status in rows)


def _row(label: str, run: Run) -> str:
    loaded = " / ".join(f"{run.loaded(entity):,}" for entity in ENTITIES)
    bound = f"{run.bound_s:.1f} s | {run.wall_s / run.bound_s:.1f}" if run.hubspot_calls else "- | -"
    writes = f"**{run.hubspot_writes:,}**" if run.name == "unchanged" else f"{run.hubspot_writes:,}"
    return (
        f"| {label} | {run.wall_s:.1f} s | {bound} | {writes} | {run.hubspot_reads:,} | {run.jde_calls:,} "
        f"| {loaded} |"
    )


def reconcile_report(raw: Mapping[str, Any]) -> str:
    """The reconciliation of the A/R flow's result: differences, records compared, cost."""
    if raw["state"] != "success" or raw["summary"] is None:
        raise RuntimeError(f"the reconciliation did not succeed: {raw['state']}")
    summary = raw["summary"]
    hubspot = _total(_since(raw["hubspot"]["requests"], raw["before"]["hubspot"]["requests"]))
    jde = _jde_calls(raw["jde"]) - _jde_calls(raw["before"]["jde"])
    checked = "\n".join(
        f"| {name} | {counts['jde']:,} | {counts['hubspot']:,} | {counts.get('not_sent', 0):,} |"
        for name, counts in summary["checked"].items()
    )
    return f"""Then `mlconn_reconcile` with `flows=["ar_status"]`, alone in a fresh process (the whole ledger
read as the flow reads it, compared with HubSpot through its API): **{summary["differences"]:,}
difference(s)** ({summary["by_kind"] or "none"}), {raw["wall_s"]:.1f} s, {hubspot:,} HubSpot and
{jde:,} JDE calls, peak RSS {raw["peak_rss_mb"]:.0f} MB ({raw["rss_before_mb"]:.0f} MB with Airflow
loaded, before the run).

| compared | JDE | HubSpot | not sent |
|---|---:|---:|---:|
{checked}
"""


def report(runs: Mapping[str, Run], reconciled: Mapping[str, Any] | None = None) -> str:
    initial, changed, unchanged = runs["initial"], runs["changed"], runs["unchanged"]
    per = max(1, changed.customers_changed)
    after = "" if reconciled is None else reconcile_report(reconciled)
    return f"""## A/R status JDE -> HubSpot (`benchmarks/ar_status.py`)

{CUSTOMERS:,} customers with {OPEN_ITEMS} open invoices each (`mlconn-sandbox jde --open-items
{OPEN_ITEMS}`), {LATENCY_MS:.0f} ms added to every call of both sandboxes, HubSpot at {RATE_LIMIT} requests
per rolling 10 s; the DAG through `dag.test()` (one task at a time), after the customers flow.
Writes and reads are HubSpot requests (the sandbox's counters), JDE calls AIS requests.

| run | wall | bound | wall / bound | writes | reads | JDE calls | loaded (jde_invoice, status, balance) |
|---|---|---|---|---|---|---|---|
{_row("first run (whole ledger)", initial)}
{_row(f"receipts for {changed.customers_changed:,} customers", changed)}
{_row("no JDE change", unchanged)}

Per changed customer: **{changed.hubspot_calls / per:.3f} HubSpot calls** and **{changed.jde_calls / per:.3f}
JDE calls** (statuses and balances go 100 to a `batch/update`; changed customers are read 100 to a
query). The lower bound of a small run is its calls one after the other at {LATENCY_MS:.0f} ms
({changed.sequential_bound_s:.1f} s); the rest of its {changed.wall_s:.1f} s is Airflow running
{len(changed.tasks)} tasks (extract {changed.seconds("extract"):.1f} s, loads
{changed.seconds(".load"):.1f} s). The first run's bound is HubSpot's rate limit
({initial.hubspot_calls:,} calls at {ALLOWED_PER_S:.0f}/s); its loads took {initial.seconds(".load"):.1f} s,
{initial.hubspot_calls / max(initial.seconds(".load"), 0.001) / ALLOWED_PER_S:.0%} of the allowed rate,
its extract {initial.seconds("extract"):.1f} s for {initial.jde_calls:,} JDE calls.

{after}
HubSpot calls of the first run by endpoint:

| call | requests |
|---|---|
{_calls_table(initial)}
"""


def main() -> None:
    raw = _measure()
    runs = _runs(raw)
    markdown = report(runs, raw["reconcile"])
    write_section("ar_status", markdown)
    print(markdown)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "reconcile":
        reconcile_child(*sys.argv[2:5])
    else:
        main()
