"""Where the engine's time goes: each step of ``sync_store``'s run under cProfile, summarised.

The run of ``benchmarks/sync_store.py`` (N changed records, toy target) with every step profiled
by cProfile; self time is summed by where the code lives (SQLite's C calls, encryption and
hashing, JSON, SQLAlchemy, pydantic, the engine itself, threads). With ``MLCONN_BENCH_BASELINE``
the baseline commit is profiled the same way, side by side. cProfile slows Python code down more
than C code: read the shares, not the seconds, as the absolute figures.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.baseline import sides
from benchmarks.report import write_section

RECORDS = int(os.environ.get("MLCONN_BENCH_PROFILE_RECORDS", "20000"))
AS_RUN = "stage + map, as a run does them"
STEPS = ("extract (stage)", "map", "order", "load", AS_RUN)
CATEGORIES = (
    "SQLite (C calls, waits included)",
    "encryption and hashing",
    "JSON",
    "SQLAlchemy (Python)",
    "pydantic",
    "engine and store (Python)",
    "threads and queues",
    "other",
)


def category(filename: str, function: str) -> str:
    if "sqlite3" in function or filename.endswith("sqlite3/dbapi2.py"):
        return CATEGORIES[0]
    if any(part in filename or part in function for part in ("cryptography", "hmac", "hashlib", "base64")):
        return CATEGORIES[1]
    if "urandom" in function or "ciphers" in function or "binascii" in function:
        return CATEGORIES[1]
    if "json" in filename or "orjson" in function or "json" in function:
        return CATEGORIES[2]
    if "sqlalchemy" in filename:
        return CATEGORIES[3]
    if "pydantic" in filename or "pydantic" in function:
        return CATEGORIES[4]
    if "airflow_provider_mlconn" in filename or "benchmarks" in filename:
        return CATEGORIES[5]
    if any(part in filename or part in function for part in ("threading", "queue", "concurrent", "lock")):
        return CATEGORIES[6]
    return CATEGORIES[7]


def profile_side() -> dict[str, Any]:
    """Runs in the child: one profiled run of every step; self time per category and step."""
    from cryptography.fernet import Fernet

    from airflow_provider_mlconn.sync import engine
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.store import Actor, Store
    from benchmarks.sync_store import NOW, T0, _Variables, benchmark_flow

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mlconn-profile-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'store.db'}", PayloadCipher(Fernet.generate_key().decode()))
        flow = benchmark_flow(RECORDS, [1])
        info = engine.RunInfo(dag_id="bench", run_id="run1", data_interval_end=NOW)
        ref = info.ref(flow)
        plan = engine.plan_windows(flow, info, _Variables(), now=NOW, window_start=T0)
        batches: list[int] = []

        def load() -> None:
            for batch in batches:
                engine.load_batch(
                    flow,
                    store,
                    run_key=ref.run_key,
                    entity_name="company",
                    batch=batch,
                    actor=Actor("bench", "run1", "company.load", 1, batch),
                )

        work = {
            "extract (stage)": lambda: engine.extract(
                flow, store, info, Actor("bench", "run1", "extract"), plan
            ),
            "map": lambda: engine.map_records(flow, store, ref.run_key, Actor("bench", "run1", "map")),
            "order": lambda: batches.extend(
                engine.order_entity(
                    flow, store, ref, "company", max_map_length=1024, actor=Actor("bench", "run1", "order")
                ).batches
            ),
            "load": load,
            AS_RUN: lambda: stage_and_map_as_run(Path(tmp) / "as-run.db", flow),
        }
        for step in STEPS:
            profiler = cProfile.Profile()
            profiler.runcall(work[step])
            stats = pstats.Stats(profiler)
            seconds: Counter[str] = Counter()
            for (filename, _, function), (_, _, self_time, _, _) in stats.stats.items():  # type: ignore[attr-defined]
                seconds[category(filename, function)] += self_time
            result[step] = dict(seconds)
        store.dispose()
    return result


def stage_and_map_as_run(path: Path, flow: Any) -> None:
    """The first run's extract and map task on a store of their own, as the DAG runs them: mapping
    while extracting where the engine does it, the map task then mapping what is left staged."""
    import inspect

    from cryptography.fernet import Fernet

    from airflow_provider_mlconn.sync import engine
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.flow import RecordStatus
    from airflow_provider_mlconn.sync.store import Actor, Store
    from benchmarks.sync_store import NOW, T0, _Variables

    store = Store(f"sqlite:///{path}", PayloadCipher(Fernet.generate_key().decode()))
    info = engine.RunInfo(dag_id="bench", run_id="run1", data_interval_end=NOW)
    plan = engine.plan_windows(flow, info, _Variables(), now=NOW, window_start=T0)
    early = "map_while_extracting" in inspect.signature(engine.extract).parameters
    options: dict[str, Any] = {"map_while_extracting": True} if early else {}
    engine.extract(flow, store, info, Actor("bench", "run1", "extract"), plan, **options)
    left: dict[str, Any] = {"statuses": (RecordStatus.STAGED,)} if early else {}
    engine.map_records(flow, store, info.ref(flow).run_key, Actor("bench", "run1", "map"), **left)
    store.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlconn-profile-sides-") as tmp:
        compared = sides(Path(tmp))
        found: dict[str, dict[str, Any]] = {}
        for side in compared:
            out = Path(tmp) / "profile.json"
            subprocess.run(
                [sys.executable, "-m", "benchmarks.profile_steps", "child", str(out)],
                env=side.env(),
                cwd=side.root if side.rev else None,
                check=True,
            )
            found[side.label] = json.loads(out.read_text())
    labels = [side.label for side in compared]
    lines = [
        "| step | where | " + " | ".join(f"{label}: s (µs/record, share)" for label in labels) + " |",
        "|---|---|" + "---:|" * len(labels),
    ]
    for step in STEPS:
        for name in CATEGORIES:
            cells = []
            for label in labels:
                seconds = found[label][step].get(name, 0.0)
                total = sum(found[label][step].values()) or 1.0
                cells.append(f"{seconds:.2f} ({seconds / RECORDS * 1e6:.0f}, {seconds / total:.0%})")
            if all(found[label][step].get(name, 0.0) < 0.005 for label in labels):
                continue
            lines.append(f"| {step} | {name} | " + " | ".join(cells) + " |")
        totals = [sum(found[label][step].values()) for label in labels]
        lines.append(
            f"| {step} | **total** | "
            + " | ".join(f"**{t:.2f}** ({t / RECORDS * 1e6:.0f})" for t in totals)
            + " |"
        )
    markdown = f"""## Where the engine's time goes (`benchmarks/profile_steps.py`)

`sync_store`'s run of {RECORDS:,} changed records, each step under cProfile, self time summed by
where the code lives (seconds, µs per record, share of the step). cProfile inflates Python code
more than C calls; the shares say where to look.

{chr(10).join(lines)}
"""
    print(markdown)
    write_section("profile_steps", markdown)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        Path(sys.argv[2]).write_text(json.dumps(profile_side()))
    else:
        main()
