"""Two writers at once on the same store, on SQLite and on PostgreSQL (MLCONN_TEST_POSTGRES_URL)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.errors import LoadIncomplete
from airflow_provider_mlconn.sync.flow import Loaded, RecordStatus
from airflow_provider_mlconn.sync.store import Actor, RunRef, Store
from tests.support.sync import T0, DictVariables, ToyWorld, make_toy_flow, with_entity

pytestmark = pytest.mark.unit

WORKERS = 2


def test_two_writers_staging_at_once_lose_nothing_and_hit_no_lock_error(store_url, fernet_key):
    stores = [Store(store_url, PayloadCipher(fernet_key)) for _ in range(WORKERS)]
    barrier = threading.Barrier(WORKERS)

    def stage(worker: int) -> int:
        run = RunRef("flow", "dag", f"run{worker}")
        # Chunks of 25: many short transactions, interleaved with the other writer's.
        writer = stores[worker].staging_writer(
            run, Actor("dag", run.run_id, "extract"), entities=["company"], chunk_size=25
        )
        barrier.wait()
        for number in range(400):
            writer.stage("company", number, {"n": number, "worker": worker})
        writer.flush()
        return writer.counts.new

    with ThreadPoolExecutor(WORKERS) as pool:
        assert list(pool.map(stage, range(WORKERS))) == [400, 400]
    for worker in range(WORKERS):
        assert stores[0].runs.status_counts(f"dag/run{worker}") == {"staged": 400}
    for store in stores:
        store.dispose()


def test_two_workers_loading_the_same_batch_post_each_record_exactly_once(store_url, fernet_key):
    world = ToyWorld()
    for number in range(120):
        world.company(f"C{number:03}", f"Company {number}", T0)
    flow = make_toy_flow(f"concurrent_{abs(hash(store_url)) % 10_000}", world, call_batch_size=10)
    posts: Counter[str] = Counter()
    lock = threading.Lock()

    def slow_load(records):
        time.sleep(0.01)  # keep the first worker busy while the second one claims
        with lock:
            posts.update(record.key for record in records)
        return {record.key: Loaded(f"id-{record.key}", created=True) for record in records}

    flow = with_entity(flow, "company", load=slow_load)
    setup = Store(store_url, PayloadCipher(fernet_key))
    info = engine.RunInfo(dag_id="dag", run_id="run1", data_interval_end=T0.replace(hour=9))
    run = info.ref(flow)
    plan = engine.plan_windows(flow, info, DictVariables(), now=T0.replace(hour=9))
    engine.extract(flow, setup, info, Actor("dag", "run1", "extract"), plan)
    engine.map_records(flow, setup, run.run_key, Actor("dag", "run1", "map"))
    assert engine.order_entity(
        flow, setup, run, "company", max_map_length=1024, actor=Actor("dag", "run1", "order")
    ).batches == [0]

    stores = [Store(store_url, PayloadCipher(fernet_key)) for _ in range(WORKERS)]
    barrier = threading.Barrier(WORKERS)

    def load(worker: int) -> str:
        # Two owners (e.g. a flow retry and a replay, or a zombie and its successor) on one batch.
        actor = Actor("dag", "run1", f"worker{worker}.load", 1, 0)
        barrier.wait()
        try:
            engine.load_batch(
                flow, stores[worker], run_key=run.run_key, entity_name="company", batch=0, actor=actor
            )
        except LoadIncomplete:
            return "records held by the other worker"
        return "done"

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(load, range(WORKERS)))
    # Either one worker claimed the whole batch, or both took part of it (SKIP LOCKED) and each
    # says the rest is held by the other; which one happens is timing. Exactly once holds in both.
    assert set(results) <= {"done", "records held by the other worker"}
    assert sorted(posts) == sorted(f"C{n:03}" for n in range(120))
    assert set(posts.values()) == {1}
    assert setup.runs.status_counts(run.run_key) == {RecordStatus.LOADED.value: 120}
    for store in (setup, *stores):
        store.dispose()
