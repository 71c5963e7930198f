"""Sync engine throughput and memory on the default SQLite store, with an in-memory toy target.

What one run of a flow costs in the engine itself (encryption, hashing, SQLite writes, claims,
outcomes, audit events), without any remote latency: records per second and CPU per record for
each step of a run of N changed records, for a second run where nothing changed (all
``unchanged``), and the peak Python memory of staging N records versus 4N records (streaming: it
should not grow with N).

Each measurement runs in a child process. With ``MLCONN_BENCH_BASELINE=<git rev>`` the children
alternate between that commit and the work tree (``benchmarks/baseline.py``); each side's figures
are its best of ``MLCONN_BENCH_ROUNDS`` rounds.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.baseline import ROUNDS, Side, sides
from benchmarks.report import write_section

RECORDS = int(os.environ.get("MLCONN_BENCH_RECORDS", "20000"))
UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
STEPS = ("extract (stage)", "map", "order", "load")
#: The same run the way the DAG's tasks run it: the extract maps each chunk as it stages it, the
#: map task's first try maps what is left staged (an engine without that maps after staging).
AS_RUN = "stage + map, as a run does them"
#: The runs each side measures, and their names in the table.
RUNS = {
    "first": "first run",
    "unchanged": "nothing changed",
    "first_as_run": "first run",
    "unchanged_as_run": "nothing changed",
}


def customer(number: int, version: int) -> dict[str, object]:
    return {
        "address_number": 100_000 + number,
        "name": f"Customer {number} GmbH",
        "email": f"buyer{number}@customer{number}.example.com",
        "city": "Stuttgart",
        "postal_code": f"{70000 + number % 1000}",
        "version": version,
    }


def benchmark_flow(count: int, version: list[int]) -> Any:
    from airflow_provider_mlconn.sync.flow import Entity, Flow, Loaded, Stream, WriteMode
    from airflow_provider_mlconn.sync.watermarks import Window

    def extract(window: Window, writer: Any) -> datetime:
        for number in range(count):
            writer.stage("company", number, customer(number, version[0]))
        return T0 + timedelta(hours=1)

    return Flow(
        name=f"bench_{count}",
        streams=(Stream("changes", extract=extract),),
        entities=(
            Entity(
                "company",
                target="hubspot",
                key="address_number",
                write=WriteMode.UPSERT,
                map=lambda source: {
                    "name": source["name"],
                    "email": source["email"],
                    "zip": source["postal_code"],
                },
                load=lambda records: {r.key: Loaded(f"id-{r.key}", created=True) for r in records},
                call_batch_size=100,
                task_batch_size=5_000,
            ),
        ),
    )


class _Variables:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``work``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def one_run(
    store: Any, flow: Any, run_id: str, count: int, *, as_run: bool = False
) -> dict[str, dict[str, float] | None]:
    """Each step's records/s and CPU per record. ``as_run``: stage and map as the DAG does them,
    reported as one step (``AS_RUN``)."""
    import inspect

    from airflow_provider_mlconn.sync import engine
    from airflow_provider_mlconn.sync.flow import RecordStatus
    from airflow_provider_mlconn.sync.store import Actor

    info = engine.RunInfo(dag_id="bench", run_id=run_id, data_interval_end=NOW)
    run_key = info.ref(flow).run_key
    plan = engine.plan_windows(flow, info, _Variables(), now=NOW, window_start=T0)
    early = as_run and "map_while_extracting" in inspect.signature(engine.extract).parameters
    left: dict[str, Any] = {"statuses": (RecordStatus.STAGED,)} if early else {}
    extract_options: dict[str, Any] = {"map_while_extracting": True} if early else {}
    seconds = {
        "extract (stage)": timed(
            lambda: engine.extract(
                flow, store, info, Actor("bench", run_id, "extract"), plan, **extract_options
            )
        ),
        "map": timed(lambda: engine.map_records(flow, store, run_key, Actor("bench", run_id, "map"), **left)),
    }
    if as_run:
        (stage_wall, stage_cpu), (map_wall, map_cpu) = seconds.pop("extract (stage)"), seconds.pop("map")
        seconds = {AS_RUN: (stage_wall + map_wall, stage_cpu + map_cpu)}
    batches: list[int] = []
    seconds["order"] = timed(
        lambda: batches.extend(
            engine.order_entity(
                flow,
                store,
                info.ref(flow),
                "company",
                max_map_length=1024,
                actor=Actor("bench", run_id, "order"),
            ).batches
        )
    )

    def load_all() -> None:
        for batch in batches:
            engine.load_batch(
                flow,
                store,
                run_key=run_key,
                entity_name="company",
                batch=batch,
                actor=Actor("bench", run_id, "company.load", 1, batch),
            )

    seconds["load"] = timed(load_all)
    figures: dict[str, dict[str, float] | None] = {
        step: {"per_s": count / wall, "cpu_us": cpu / count * 1e6} for step, (wall, cpu) in seconds.items()
    }
    if not batches:
        figures["order"] = figures["load"] = None  # nothing to order or load: no rate to speak of
    return figures


def staging_peak(folder: Path, count: int) -> float:
    from cryptography.fernet import Fernet

    from airflow_provider_mlconn.sync import engine
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.store import Actor, Store

    store = Store(f"sqlite:///{folder / f'peak-{count}.db'}", PayloadCipher(Fernet.generate_key().decode()))
    flow = benchmark_flow(count, [1])
    info = engine.RunInfo(dag_id="bench", run_id="peak", data_interval_end=NOW)
    plan = engine.plan_windows(flow, info, _Variables(), now=NOW, window_start=T0)
    gc.collect()
    tracemalloc.start()
    engine.extract(flow, store, info, Actor("bench", "peak", "extract"), plan)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.dispose()
    return peak / 1024 / 1024


#: What the floor under the load would be if a loaded record cost fewer rows: each shape changes
#: one thing in the statements ``load_statements_alone`` sends (the first is the load as it is).
LOAD_SHAPES = {
    "as the load writes today": frozenset(),
    "a claim per batch, not per record": frozenset({"batch_claim"}),
    "payloads in a table of their own (narrow record rows)": frozenset({"narrow_rows"}),
    "one audit event per call, not per record": frozenset({"event_per_call"}),
    "all three": frozenset({"batch_claim", "narrow_rows", "event_per_call"}),
}


def load_statements_alone(folder: Path, count: int, shape: frozenset[str] = frozenset()) -> float | None:
    """CPU µs per record of the SQL the load step runs for each record, sent with the sqlite3 module
    and no engine, on a store the engine staged, mapped and ordered: the floor under the load.

    The same statements as ``engine.load_batch`` on SQLite: the claim of a task's batch (one
    UPDATE), then per chunk of 100 the read of the claimed rows and of their id map entries, and in
    one transaction the outcome UPDATE (which checks the claim and gives it back), the audit event
    and the id map row. None when this side's schema cannot run them.

    ``shape`` (``LOAD_SHAPES``) sends what a differently shaped store would: ``batch_claim`` claims
    the batch in a row of its own and writes no claim columns per record; ``narrow_rows`` keeps the
    payloads in a side table (read with the records, never rewritten by the outcome); and
    ``event_per_call`` writes one audit event per call of 100 records.
    """
    import sqlite3

    from cryptography.fernet import Fernet

    from airflow_provider_mlconn.sync import engine
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.records import PENDING_LOAD
    from airflow_provider_mlconn.sync.store import Actor, Store

    pending = ", ".join(f"'{status.value}'" for status in PENDING_LOAD)
    path = folder / f"statements-{'-'.join(sorted(shape)) or 'today'}.db"
    store = Store(f"sqlite:///{path}", PayloadCipher(Fernet.generate_key().decode()))
    flow = benchmark_flow(count, [1])
    info = engine.RunInfo(dag_id="bench", run_id="run1", data_interval_end=NOW)
    run_key = info.ref(flow).run_key
    plan = engine.plan_windows(flow, info, _Variables(), now=NOW, window_start=T0)
    engine.extract(flow, store, info, Actor("bench", "run1", "extract"), plan)
    engine.map_records(flow, store, run_key, Actor("bench", "run1", "map"))
    batches = engine.order_entity(
        flow, store, info.ref(flow), "company", max_map_length=1024, actor=Actor("bench", "run1", "order")
    ).batches
    store.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    now = "2026-01-02 00:00:00.000000"
    actor = ("bench", "run1", "company.load", 1, 0)
    columns = (
        "r.id, run_key, flow, entity, source_key, payload_hash, status, attempts, remote_id, change, "
        "prerequisites, batch, created_at, updated_at, {payloads}.source_payload, {payloads}.mapped_payload, "
        "error, operation, waiting_since, dag_id, run_id, task_id, try_number, map_index"
    )
    try:
        if "narrow_rows" in shape:
            connection.execute(
                "CREATE TABLE bench_payloads "
                "(id INTEGER PRIMARY KEY, source_payload TEXT, mapped_payload TEXT)"
            )
            connection.execute(
                "INSERT INTO bench_payloads SELECT id, source_payload, mapped_payload FROM mlconn_records"
            )
            connection.execute("UPDATE mlconn_records SET source_payload = '', mapped_payload = NULL")
            connection.execute("VACUUM")
            read = (
                columns.format(payloads="p") + " FROM mlconn_records r JOIN bench_payloads p ON p.id = r.id"
            )
        else:
            read = columns.format(payloads="r") + " FROM mlconn_records r"
        if "batch_claim" in shape:
            connection.execute(
                "CREATE TABLE bench_claims (run_key TEXT, entity TEXT, batch INTEGER, token TEXT, "
                "owner TEXT, claimed_at TEXT, PRIMARY KEY (run_key, entity, batch))"
            )
        started = time.process_time()
        for batch in batches:
            token = f"token-{batch}"
            connection.execute("BEGIN IMMEDIATE")
            if "batch_claim" in shape:
                connection.execute(
                    "INSERT INTO bench_claims VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_key, entity, batch) "
                    "DO UPDATE SET token = excluded.token, owner = excluded.owner, "
                    "claimed_at = excluded.claimed_at",
                    (run_key, "company", batch, token, "bench/run1/company.load/0", now),
                )
            else:
                connection.execute(
                    "UPDATE mlconn_records SET claim_token = ?, claim_owner = ?, claimed_at = ? "
                    f"WHERE run_key = ? AND entity = ? AND batch = ? AND status IN ({pending}) "
                    "AND (claim_token IS NULL OR claim_owner = ? OR claimed_at < ?)",
                    (token, "bench/run1/company.load/0", now, run_key, "company", batch, "x", now),
                )
            connection.execute("COMMIT")
            last = 0
            while True:
                if "batch_claim" in shape:
                    rows = connection.execute(
                        f"SELECT {read} WHERE run_key = ? AND entity = ? AND batch = ? AND r.id > ? "
                        f"AND status IN ({pending}) ORDER BY r.id LIMIT 100",
                        (run_key, "company", batch, last),
                    ).fetchall()
                else:
                    rows = connection.execute(
                        f"SELECT {read} WHERE claim_token = ? AND r.id > ? "
                        f"AND entity = ? AND status IN ({pending}) ORDER BY r.id LIMIT 100",
                        (token, last, "company"),
                    ).fetchall()
                if not rows:
                    break
                last = rows[-1][0]
                keys = [row[4] for row in rows]
                connection.execute(
                    "SELECT source_key, remote_id, last_loaded_hash, last_record_id, last_links, deleted_at "
                    "FROM mlconn_id_map WHERE flow = ? AND entity = ? "
                    f"AND source_key IN ({', '.join('?' * len(keys))})",
                    (flow.name, "company", *keys),
                ).fetchall()
                connection.execute("BEGIN IMMEDIATE")
                outcome = (
                    "UPDATE mlconn_records SET status = ?, attempts = ?, remote_id = ?, change = ?, "
                    "error = ?, waiting_since = ?, updated_at = ?, dag_id = ?, run_id = ?, task_id = ?, "
                    "try_number = ?, map_index = ?"
                )
                if "batch_claim" in shape:
                    # The claim is checked once per transaction, then each row by its id alone.
                    connection.execute(
                        "SELECT token FROM bench_claims WHERE run_key = ? AND entity = ? AND batch = ?",
                        (run_key, "company", batch),
                    ).fetchone()
                    outcome += " WHERE id = ? AND ? IS NOT NULL"
                else:
                    outcome += ", claim_token = NULL, claim_owner = NULL, claimed_at = NULL "
                    outcome += "WHERE id = ? AND claim_token = ?"
                connection.executemany(
                    outcome,
                    [
                        ("loaded", 1, f"id-{row[4]}", "created", None, None, now, *actor, row[0], token)
                        for row in rows
                    ],
                )
                events = rows[:1] if "event_per_call" in shape else rows
                connection.executemany(
                    "INSERT INTO mlconn_record_events (record_id, at, action, status, attempt, remote_id, "
                    "change, error, payload_hash, dag_id, run_id, task_id, try_number, map_index) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (row[0], now, "load", "loaded", 1, f"id-{row[4]}", "created", None, row[5], *actor)
                        for row in events
                    ],
                )
                connection.executemany(
                    "INSERT INTO mlconn_id_map (flow, entity, source_key, remote_id, last_loaded_hash, "
                    "last_record_id, last_run_key, last_links, deleted_at, created_at, loaded_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (flow, entity, source_key) DO UPDATE SET "
                    "remote_id = excluded.remote_id, last_loaded_hash = excluded.last_loaded_hash, "
                    "last_record_id = excluded.last_record_id, last_run_key = excluded.last_run_key, "
                    "last_links = excluded.last_links, deleted_at = excluded.deleted_at, "
                    "loaded_at = excluded.loaded_at "
                    "WHERE mlconn_id_map.last_record_id <= excluded.last_record_id",
                    [
                        (
                            flow.name,
                            "company",
                            row[4],
                            f"id-{row[4]}",
                            row[5],
                            row[0],
                            run_key,
                            None,
                            None,
                            now,
                            now,
                        )
                        for row in rows
                    ],
                )
                connection.execute("COMMIT")
        return (time.process_time() - started) / count * 1e6
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def measure() -> dict[str, Any]:
    """One side's figures (runs in the child process)."""
    from cryptography.fernet import Fernet

    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.store import Store

    with tempfile.TemporaryDirectory(prefix="mlconn-bench-") as tmp:
        folder = Path(tmp)
        store = Store(f"sqlite:///{folder / 'store.db'}", PayloadCipher(Fernet.generate_key().decode()))
        flow = benchmark_flow(RECORDS, [1])
        first = one_run(store, flow, "run1", RECORDS)
        unchanged = one_run(store, flow, "run2", RECORDS)
        store.dispose()
        database_mb = sum(path.stat().st_size for path in folder.glob("store.db*")) / 1024 / 1024
        # The same two runs on a store of their own, as the DAG runs them.
        store = Store(f"sqlite:///{folder / 'as-run.db'}", PayloadCipher(Fernet.generate_key().decode()))
        first_as_run = one_run(store, flow, "run1", RECORDS, as_run=True)
        unchanged_as_run = one_run(store, flow, "run2", RECORDS, as_run=True)
        store.dispose()
        small, large = RECORDS // 4, RECORDS
        peaks = {str(small): staging_peak(folder, small), str(large): staging_peak(folder, large)}
        shapes = {name: load_statements_alone(folder, RECORDS, shape) for name, shape in LOAD_SHAPES.items()}
    return {
        "load_statements_us": next(iter(shapes.values())),
        "load_shapes_us": shapes,
        "first": first,
        "unchanged": unchanged,
        "first_as_run": first_as_run,
        "unchanged_as_run": unchanged_as_run,
        "database_mb": database_mb,
        "peaks": peaks,
    }


def _run_side(side: Side, folder: Path) -> dict[str, Any]:
    out = folder / "result.json"
    load_average = os.getloadavg()[0]
    subprocess.run(
        [sys.executable, "-m", "benchmarks.sync_store", "child", str(out)],
        env=side.env(),
        cwd=side.root if side.rev else None,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    result["load_average"] = load_average
    return result


def _best(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of each step over the rounds (other engineers share the machine)."""
    best = dict(results[0])
    for run in RUNS:
        best[run] = {}
        for step in results[0][run]:
            figures = [r[run][step] for r in results if r[run][step] is not None]
            best[run][step] = max(figures, key=lambda f: f["per_s"]) if figures else None
    best["load_averages"] = [r["load_average"] for r in results]
    floors = [r["load_statements_us"] for r in results if r.get("load_statements_us") is not None]
    best["load_statements_us"] = min(floors) if floors else None
    shapes: dict[str, float | None] = {}
    for name in LOAD_SHAPES:
        figures = [r.get("load_shapes_us", {}).get(name) for r in results]
        shapes[name] = min((f for f in figures if f is not None), default=None)
    best["load_shapes_us"] = shapes
    return best


def _cell(figures: dict[str, float] | None) -> str:
    if figures is None:
        return "-"
    return f"{figures['per_s']:,.0f} ({figures['cpu_us']:,.0f} µs)"


def _speedup(before: dict[str, float] | None, after: dict[str, float] | None) -> str:
    if before is None or after is None:
        return "-"
    return f"**{after['per_s'] / before['per_s']:.1f}x** / {before['cpu_us'] / after['cpu_us']:.1f}x"


def report(results: dict[str, dict[str, Any]], labels: list[str]) -> str:
    current = results[labels[-1]]
    header = (
        "| step | run | "
        + " | ".join(labels)
        + (" | speed-up (records/s / CPU) |" if len(labels) > 1 else "")
    )
    rows = [header, "|---|---|" + "---:|" * len(labels) + ("---:|" if len(labels) > 1 else "")]
    for run, name in RUNS.items():
        for step in current[run]:
            if run.endswith("_as_run") and step != AS_RUN:
                continue  # order and load as in the rows above
            if all(results[label][run][step] is None for label in labels):
                continue
            cells = " | ".join(_cell(results[label][run][step]) for label in labels)
            ratio = (
                f" | {_speedup(results[labels[0]][run][step], current[run][step])}" if len(labels) > 1 else ""
            )
            rows.append(f"| {step} | {name} | {cells}{ratio} |")
    loads = "; ".join(
        f"{label}: {', '.join(f'{value:.2f}' for value in results[label]['load_averages'])}"
        for label in labels
    )
    sizes = ", ".join(f"{label} {results[label]['database_mb']:,.1f} MB" for label in labels)
    floors = "; ".join(
        f"{label}: "
        + (f"{results[label]['load_statements_us']:.0f} µs" if results[label]["load_statements_us"] else "-")
        for label in labels
    )
    shapes = current.get("load_shapes_us") or {}
    today = shapes.get(next(iter(LOAD_SHAPES)))
    shape_rows = "\n".join(
        f"| {name} | {us:.1f} µs | {us / today:.2f} |" if us is not None and today else f"| {name} | - | - |"
        for name, us in shapes.items()
    )
    peaks = "; ".join(
        f"{label}: "
        + ", ".join(f"{int(n):,} records {mb:.1f} MB" for n, mb in results[label]["peaks"].items())
        for label in labels
    )
    return f"""## Sync engine: store throughput (`benchmarks/sync_store.py`)

One run of {RECORDS:,} changed company records through the engine on the default SQLite store
(WAL), with a toy target that answers at once: the engine's own cost per step (encryption,
keyed hashing, SQLite writes, claims, outcomes, audit events). The second run stages the same
{RECORDS:,} records again; they map to `unchanged` and cost no load call. Each cell is records/s
(wall) and, in brackets, CPU time per record, the best of {ROUNDS} rounds; the sides ran in
alternation, each in a fresh child process. Load average (2 CPUs, shared) before each child: {loads}.

"{AS_RUN}" is the same two runs on a store of their own, staged and mapped the way the DAG's
tasks do it: the extract maps each chunk as it stages it and writes its new records mapped, and
the map task's first try maps what is left `staged` (nothing, here). An engine without mapping
while extracting stages, then maps: its cell is the sum of the two. The separate `map` rows are
what a map retry and a replay still do: read the records back and map them.

{chr(10).join(rows)}

Store files after both runs (record rows plus their events): {sizes}.

SQLite alone, the statements the load step runs for each record (claim, read of the claimed
rows and their id map entries, outcome update, audit event, id map row, commit), sent with the
sqlite3 module and no engine on a store the engine staged, mapped and ordered
(`load_statements_alone`): {floors} CPU per record, best of the rounds.

The same floor if a loaded record cost fewer rows ({labels[-1]}, best of the rounds): each shape
sends the statements a store shaped that way would (`LOAD_SHAPES`). A claim per batch claims in a
row of its own, checks it once per transaction and writes no claim columns on the records;
narrow rows keep the payloads in a side table that the read joins and the outcome never
rewrites; one event per call writes one audit row for 100 records. None of them is built: each
changes what the audit trail or the claims hold (S3, S7), a decision for the team.

| shape | CPU per loaded record | / today |
|---|---:|---:|
{shape_rows}

Peak Python memory while staging (tracemalloc): {peaks} — staging streams in chunks, so memory
does not grow with the number of records.
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlconn-bench-sides-") as tmp:
        folder = Path(tmp)
        compared = sides(folder)
        rounds: dict[str, list[dict[str, Any]]] = {side.label: [] for side in compared}
        for _ in range(ROUNDS):
            for side in compared:
                rounds[side.label].append(_run_side(side, folder))
                print(f"{side.label}: {rounds[side.label][-1]['first']}", flush=True)
    labels = [side.label for side in compared]
    markdown = report({label: _best(found) for label, found in rounds.items()}, labels)
    print(markdown)
    write_section("sync_store", markdown)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        Path(sys.argv[2]).write_text(json.dumps(measure()))
    else:
        main()
