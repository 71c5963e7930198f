"""Writes that are not upserts: a target that creates a document on every post, commits and then
loses responses, answers 504 before committing, and a worker that dies mid-call. Nothing may be
lost and nothing posted twice: the engine notes each send before making it and confirms every
doubtful one by a lookup before it is ever sent again."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.errors import LoadIncomplete
from airflow_provider_mlconn.sync.flow import (
    Absent,
    Entity,
    Failed,
    Flow,
    Loaded,
    LoadRecord,
    RecordStatus,
    Stream,
    Uncertain,
    WriteMode,
)
from airflow_provider_mlconn.sync.store import Actor, Store
from tests.support.sync import T0, DictVariables, ToyWorld, toy_extract

pytestmark = pytest.mark.unit

NOW = T0 + timedelta(hours=2)


class WorkerDied(BaseException):
    """The load process is killed mid-call (SIGKILL): nothing after it runs, not even ``finally``
    blocks that save outcomes (the test's own claim release aside)."""


@dataclass
class Ledger:
    """A target that creates a new document on every post (no duplicate check), like a JDE
    orchestration built without one. ``lost_after_commit`` of the posts commit and then lose the
    response; ``refused_before_commit`` answer 504 without committing; both look the same to a
    client. ``die_after`` kills the worker after that many posts."""

    seed: int = 7
    lost_after_commit: float = 0.2
    refused_before_commit: float = 0.1
    die_after: int | None = None
    documents: list[tuple[str, str]] = field(default_factory=list)
    posts: int = 0
    lookups: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def post(self, key: str) -> str | None:
        """The document number, or None when the response is lost (whether committed or not)."""
        with self.lock:
            self.posts += 1
            if self.die_after is not None and self.posts > self.die_after:
                self.die_after = None
                raise WorkerDied
            roll = self.random.random()
            if roll < self.refused_before_commit:
                return None
            number = f"D{len(self.documents) + 1:05}"
            self.documents.append((key, number))
            if roll < self.refused_before_commit + self.lost_after_commit:
                return None
            return number

    def find(self, key: str) -> str | None:
        with self.lock:
            self.lookups += 1
            found = [number for reference, number in self.documents if reference == key]
        return found[0] if found else None

    def documents_per_key(self) -> Counter[str]:
        return Counter(reference for reference, _ in self.documents)


def ledger_flow(name: str, world: ToyWorld, ledger: Ledger) -> Flow:
    def post_invoices(records: Sequence[LoadRecord]) -> dict[str, Loaded | Uncertain | Failed]:
        results: dict[str, Loaded | Uncertain | Failed] = {}
        for record in records:
            number = ledger.post(record.key)
            results[record.key] = (
                Uncertain("HTTP 504 from the gateway: the post may have been committed")
                if number is None
                else Loaded(number, created=True)
            )
        return results

    def find_invoices(records: Sequence[LoadRecord]) -> dict[str, Loaded | Absent]:
        found = {record.key: ledger.find(record.key) for record in records}
        return {key: Loaded(number) if number else Absent() for key, number in found.items()}

    return Flow(
        name=name,
        streams=(Stream("changes", extract=toy_extract(world)),),
        entities=(
            Entity(
                "company",
                target="jde",
                key="the external reference (VR01)",
                write=WriteMode.CREATE_ONCE,
                map=lambda source: {"name": source["name"]},
                load=post_invoices,
                confirm=find_invoices,
                call_batch_size=25,
                task_batch_size=1000,
            ),
        ),
        safety_lag=timedelta(0),
    )


def _prepared_run(flow: Flow, store: Store, run_id: str) -> engine.RunInfo:
    info = engine.RunInfo(dag_id=f"dag_{flow.name}", run_id=run_id, run_type="manual", data_interval_end=NOW)
    ref = info.ref(flow)
    plan = engine.plan_windows(flow, info, DictVariables(), now=NOW)
    engine.extract(flow, store, info, Actor(ref.dag_id, ref.run_id, "extract"), plan)
    engine.map_records(flow, store, ref.run_key, Actor(ref.dag_id, ref.run_id, "map"))
    engine.order_entity(
        flow, store, ref, "company", max_map_length=16, actor=Actor(ref.dag_id, ref.run_id, "order")
    )
    return info


def _load_until_done(flow: Flow, store: Store, info: engine.RunInfo, *, first_try: int = 1) -> int:
    """Airflow's retries of one load task (same task instance, next try numbers); returns the tries."""
    ref = info.ref(flow)
    for attempt in range(first_try, first_try + 40):  # bounded
        actor = Actor(ref.dag_id, ref.run_id, "company.load", attempt, 0)
        try:
            engine.load_batch(flow, store, run_key=ref.run_key, entity_name="company", batch=0, actor=actor)
        except LoadIncomplete:
            continue
        return attempt
    raise AssertionError("the load did not finish in 40 tries")


def _world(count: int) -> ToyWorld:
    world = ToyWorld()
    for number in range(count):
        world.company(f"INV-{number:04}", f"Invoice {number}", T0 + timedelta(seconds=number % 600))
    return world


def test_lost_responses_and_504s_never_post_a_document_twice_and_lose_none(sqlite_store):
    world, ledger = _world(1000), Ledger()
    flow = ledger_flow("ledger_faults", world, ledger)
    info = _prepared_run(flow, sqlite_store, "run1")
    tries = _load_until_done(flow, sqlite_store, info)

    per_key = ledger.documents_per_key()
    assert len(per_key) == 1000, "every invoice is in the ledger"
    assert set(per_key.values()) == {1}, "no invoice is in the ledger twice"
    records = sqlite_store.records.of_run(info.ref(flow).run_key)
    assert {r.status for r in records} == {RecordStatus.LOADED}
    numbers = dict(ledger.documents)
    assert all(r.remote_id == numbers[r.key] for r in records), "each record points at its own document"
    confirmed = [r for r in records if r.error and "confirmed by lookup" in r.error]
    assert confirmed, "some lost responses had committed and were found by the lookup"
    assert tries > 1 and ledger.lookups >= len(confirmed)
    assert sqlite_store.journal.count("ledger_faults") == 0, "nothing is left in doubt"


def test_a_worker_killed_mid_call_leaves_its_sends_in_the_journal_and_the_next_try_confirms_them(
    sqlite_store,
):
    world, ledger = _world(200), Ledger(lost_after_commit=0.0, refused_before_commit=0.0, die_after=60)
    flow = ledger_flow("ledger_killed", world, ledger)
    info = _prepared_run(flow, sqlite_store, "run1")
    ref = info.ref(flow)
    with pytest.raises(WorkerDied):
        engine.load_batch(
            flow,
            sqlite_store,
            run_key=ref.run_key,
            entity_name="company",
            batch=0,
            actor=Actor(ref.dag_id, ref.run_id, "company.load", 1, 0),
        )
    # The third call (records 51..75) was cut after 10 posts: 25 notes are in the journal, 10
    # of them committed. Nothing else says so: the outcomes of that call were never saved.
    assert sqlite_store.journal.count("ledger_killed") == 25
    assert len(ledger.documents) == 60
    _load_until_done(flow, sqlite_store, info, first_try=2)
    per_key = ledger.documents_per_key()
    assert len(per_key) == 200 and set(per_key.values()) == {1}
    assert sqlite_store.journal.count("ledger_killed") == 0


def test_a_record_in_doubt_is_confirmed_by_a_later_run_before_it_is_sent(sqlite_store):
    world, ledger = _world(30), Ledger(lost_after_commit=1.0, refused_before_commit=0.0)
    flow = ledger_flow("ledger_next_run", world, ledger)
    first = _prepared_run(flow, sqlite_store, "run1")
    ref = first.ref(flow)
    with pytest.raises(LoadIncomplete, match="30 uncertain"):
        engine.load_batch(
            flow,
            sqlite_store,
            run_key=ref.run_key,
            entity_name="company",
            batch=0,
            actor=Actor(ref.dag_id, ref.run_id, "company.load", 1, 0),
        )
    assert len(ledger.documents) == 30
    # The run is abandoned; the next run reads the same invoices again.
    ledger.lost_after_commit = 0.0
    second = _prepared_run(flow, sqlite_store, "run2")
    _load_until_done(flow, sqlite_store, second)
    assert len(ledger.documents) == 30, "the next run found them instead of posting again"
    history = sqlite_store.audit.history(flow="ledger_next_run", entity="company", key="INV-0007")
    assert [record.status for record, _ in history] == [RecordStatus.UNCERTAIN, RecordStatus.LOADED]
    assert "confirmed by lookup" in (history[-1][0].error or "")


def test_a_failed_lookup_sends_nothing_and_keeps_the_record_in_doubt(sqlite_store):
    world, ledger = _world(5), Ledger(lost_after_commit=1.0, refused_before_commit=0.0)
    flow = ledger_flow("ledger_lookup_down", world, ledger)
    info = _prepared_run(flow, sqlite_store, "run1")
    ref = info.ref(flow)
    actor = Actor(ref.dag_id, ref.run_id, "company.load", 1, 0)
    with pytest.raises(LoadIncomplete):
        engine.load_batch(
            flow, sqlite_store, run_key=ref.run_key, entity_name="company", batch=0, actor=actor
        )

    def lookup_down(records: Sequence[LoadRecord]) -> dict[str, Failed]:
        return {record.key: Failed("AIS answered 503 to the data service") for record in records}

    import dataclasses

    broken = dataclasses.replace(flow, entities=(dataclasses.replace(flow.entities[0], confirm=lookup_down),))
    with pytest.raises(LoadIncomplete, match="5 uncertain"):
        engine.load_batch(
            broken,
            sqlite_store,
            run_key=ref.run_key,
            entity_name="company",
            batch=0,
            actor=Actor(ref.dag_id, ref.run_id, "company.load", 2, 0),
        )
    assert ledger.posts == 5, "nothing was posted again while the lookup was down"
    record = sqlite_store.records.of_run(ref.run_key)[0]
    assert record.status is RecordStatus.UNCERTAIN
    assert "could not be confirmed: AIS answered 503" in (record.error or "")
