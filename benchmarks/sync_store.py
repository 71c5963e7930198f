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


def load_statements_alone(folder: Path, count: int) -> float | None:
    """CPU µs per record of the SQL the load step runs for each record, sent with the sqlite3 module
    and no engine, on a store the engine staged, mapped and ordered: the floor under the load.

    The same statements as ``engine.load_batch`` on SQLite: the claim of a task's batch (one
    UPDATE), then per chunk of 100 the read of the claimed rows and of their id map entries, and in
    one transaction the outcome UPDATE (which checks the claim and gives it back), the audit event
    and the id map row. None when this side's schema cannot run them.
    """
    import sqlite3

    from cryptography.fernet import Fernet

    from airflow_provider_mlconn.sync import engine
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.records import PENDING_LOAD
    from airflow_provider_mlconn.sync.store import Actor, Store

    pending = ", ".join(f"'{status.value}'" for status in PENDING_LOAD)
    path = folder / "statements.db"
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
        "id, run_key, flow, entity, source_key, payload_hash, status, attempts, remote_id, change, "
        "prerequisites, batch, created_at, updated_at, source_payload, mapped_payload, error, operation, "
        "waiting_since, dag_id, run_id, task_id, try_number, map_index"
    )
    try:
        started = time.process_time()
        for batch in batches:
            token = f"token-{batch}"
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "UPDATE mlconn_records SET claim_token = ?, claim_owner = ?, claimed_at = ? "
                f"WHERE run_key = ? AND entity = ? AND batch = ? AND status IN ({pending}) "
                "AND (claim_token IS NULL OR claim_owner = ? OR claimed_at < ?)",
                (token, "bench/run1/company.load/0", now, run_key, "company", batch, "x", now),
            )
            connection.execute("COMMIT")
            last = 0
            while True:
                rows = connection.execute(
                    f"SELECT {columns} FROM mlconn_records WHERE claim_token = ? AND id > ? "
                    f"AND entity = ? AND status IN ({pending}) ORDER BY id LIMIT 100",
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
                connection.executemany(
                    "UPDATE mlconn_records SET status = ?, attempts = ?, remote_id = ?, change = ?, "
                    "error = ?, waiting_since = ?, updated_at = ?, dag_id = ?, run_id = ?, task_id = ?, "
                    "try_number = ?, "
                    "map_index = ?, claim_token = NULL, claim_owner = NULL, claimed_at = NULL "
                    "WHERE id = ? AND claim_token = ?",
                    [
                        ("loaded", 1, f"id-{row[4]}", "created", None, None, now, *actor, row[0], token)
                        for row in rows
                    ],
                )
                connection.executemany(
                    "INSERT INTO mlconn_record_events (record_id, at, action, status, attempt, remote_id, "
                    "change, error, payload_hash, dag_id, run_id, task_id, try_number, map_index) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (row[0], now, "load", "loaded", 1, f"id-{row[4]}", "created", None, row[5], *actor)
                        for row in rows
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
        statements_us = load_statements_alone(folder, RECORDS)
    return {
        "load_statements_us": statements_us,
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
