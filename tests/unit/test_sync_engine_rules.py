"""The engine's rules for the five flows: waiting records taken over by later runs, waits that
expire, deletions a full read finds, echoes in a two-way flow, periodic full reads, retention."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.flow import (
    Entity,
    Flow,
    Loaded,
    LoadRecord,
    RecordStatus,
    Stream,
    WriteMode,
)
from airflow_provider_mlconn.sync.retention import prune_store
from airflow_provider_mlconn.sync.schema import id_map, record_events, records, runs
from airflow_provider_mlconn.sync.watermarks import Window, watermark_variable
from tests.support.sync import (
    NOW,
    T0,
    DictVariables,
    EngineRun,
    ToyWorld,
    actor_for,
    make_toy_flow,
    with_entity,
)

pytestmark = pytest.mark.unit


def _statuses(store, run) -> dict[str, RecordStatus]:
    return {r.key: r.status for r in store.records.of_run(run.ref.run_key)}


# -- waiting records ---------------------------------------------------------------------------


def _waiting_contact_world() -> ToyWorld:
    """P1 waits for company C9, which the source does not have yet; C2 moves the watermark past
    P1's change, so later runs (without overlap) do not read P1 again."""
    world = ToyWorld()
    world.contact("P1", "C9", "p1@example.com", T0)
    world.company("C2", "Company 2", T0 + timedelta(minutes=10))
    return world


def test_a_waiting_record_is_taken_over_by_the_run_that_brings_its_prerequisite(sqlite_store):
    world = _waiting_contact_world()
    flow = make_toy_flow("adopted", world, overlap=timedelta(0))
    variables = DictVariables()
    first = EngineRun(flow, sqlite_store, variables, "run1")
    first.prepare()
    first.load("company")
    first.load("contact")
    assert _statuses(sqlite_store, first) == {"C2": RecordStatus.LOADED, "P1": RecordStatus.WAITING}
    first.commit()

    # The company arrives later; the contact is not read again (nothing changed at it).
    world.company("C9", "Company 9", T0 + timedelta(minutes=40))
    second = EngineRun(flow, sqlite_store, variables, "run2")
    second.prepare()
    assert second.extracted.adopted == {"contact": 1}
    second.load("company")
    second.load("contact")
    assert _statuses(sqlite_store, second) == {
        "C2": RecordStatus.UNCHANGED,  # the watermark's own instant is read again
        "C9": RecordStatus.LOADED,
        "P1": RecordStatus.LOADED,
    }
    assert world.posted("contact") == ["P1"]
    assert world.target[("contact", "P1")]["company_id"] == "co-C9"
    history = sqlite_store.audit.history(flow="adopted", entity="contact", key="P1")
    assert [e.action for e in history[-1][1]] == ["adopt", "map", "load"]


def test_a_waiting_record_is_left_alone_while_nothing_it_waits_for_changed(sqlite_store):
    world = _waiting_contact_world()
    flow = make_toy_flow("not_adopted", world, overlap=timedelta(0))
    variables = DictVariables()
    EngineRun.completed(flow, sqlite_store, variables, "run1")
    world.company("C2", "Company 2 renamed", T0 + timedelta(minutes=40))
    second = EngineRun(flow, sqlite_store, variables, "run2")
    second.prepare()
    assert second.extracted.adopted == {}
    assert set(_statuses(sqlite_store, second)) == {"C2"}


def test_a_record_that_waits_longer_than_the_flow_allows_is_rejected_with_the_reason(sqlite_store):
    world = _waiting_contact_world()
    flow = make_toy_flow("expired", world)
    flow = Flow(
        name=flow.name,
        streams=flow.streams,
        entities=flow.entities,
        overlap=timedelta(0),
        safety_lag=timedelta(0),
        max_wait=timedelta(hours=1),
    )
    variables = DictVariables()
    first = EngineRun(flow, sqlite_store, variables, "run1")
    first.prepare()
    first.load("company")
    first.load("contact")
    first.commit()
    with sqlite_store.engine.begin() as connection:  # two hours pass
        connection.execute(
            records.update().values(waiting_since=datetime.now().astimezone() - timedelta(hours=2))
        )
    second = EngineRun(flow, sqlite_store, variables, "run2")
    second.prepare()
    assert second.extracted.expired == 1
    record = next(r for r in sqlite_store.records.of_run(first.ref.run_key) if r.key == "P1")
    assert record.status is RecordStatus.REJECTED
    assert record.error.startswith("waited 0.1 days, longer than 1:00:00: waits for company C9")


# -- deletions ---------------------------------------------------------------------------------


@dataclass
class Deletions:
    calls: list[list[str]] = field(default_factory=list)

    def rule(self, records: Sequence[LoadRecord]) -> dict[str, Loaded]:
        self.calls.append(sorted(record.key for record in records))
        return {record.key: Loaded(str(record.remote_id), note="marked deleted") for record in records}


def test_a_full_read_applies_the_deletion_rule_once_to_keys_the_source_no_longer_has(sqlite_store):
    world = ToyWorld()
    for number in range(1, 5):
        world.company(f"C{number}", f"Company {number}", T0 + timedelta(minutes=number))
    deletions = Deletions()
    flow = with_entity(make_toy_flow("deleting", world), "company", delete=deletions.rule)
    variables = DictVariables()
    EngineRun.completed(flow, sqlite_store, variables, "run1")
    assert deletions.calls == []

    del world.rows[("company", "C3")]
    resync = EngineRun(flow, sqlite_store, variables, "run2")
    resync.plan = engine.plan_windows(flow, resync.info, variables, now=NOW, full_resync=True)
    resync.extracted = engine.extract(flow, sqlite_store, resync.info, resync.actor("extract"), resync.plan)
    assert resync.extracted.complete == ["company"]
    engine.map_records(flow, sqlite_store, resync.ref.run_key, resync.actor("map"))
    order = engine.order_entity(
        flow,
        sqlite_store,
        resync.ref,
        "company",
        max_map_length=16,
        actor=resync.actor("order"),
        complete=["company"],
    )
    assert order.deletions == 1
    manifest = resync.load("company")
    assert (manifest.deleted, manifest.loaded) == (1, 1)
    assert deletions.calls == [["C3"]]
    assert [r.key for r in sqlite_store.records.of_run(resync.ref.run_key) if r.change == "deleted"] == ["C3"]
    with sqlite_store.engine.connect() as connection:
        deleted = connection.execute(
            sa.select(id_map.c.source_key).where(
                id_map.c.flow == "deleting", id_map.c.deleted_at.is_not(None)
            )
        ).scalars()
        assert list(deleted) == ["C3"]

    # Another full read: the rule fired once and does not fire again.
    again = EngineRun(flow, sqlite_store, variables, "run3")
    again.plan = engine.plan_windows(flow, again.info, variables, now=NOW, full_resync=True)
    again.extracted = engine.extract(flow, sqlite_store, again.info, again.actor("extract"), again.plan)
    engine.map_records(flow, sqlite_store, again.ref.run_key, again.actor("map"))
    assert (
        engine.order_entity(
            flow,
            sqlite_store,
            again.ref,
            "company",
            max_map_length=16,
            actor=again.actor("order"),
            complete=["company"],
        ).deletions
        == 0
    )
    assert deletions.calls == [["C3"]]

    # The key comes back at the source: it is written again, not taken for unchanged.
    world.company("C3", "Company 3", T0 + timedelta(minutes=3))
    back = EngineRun(flow, sqlite_store, variables, "run4")
    back.plan = engine.plan_windows(flow, back.info, variables, now=NOW, full_resync=True)
    back.extracted = engine.extract(flow, sqlite_store, back.info, back.actor("extract"), back.plan)
    counts = engine.map_records(flow, sqlite_store, back.ref.run_key, back.actor("map")).counts
    assert counts == {"unchanged": 3, "mapped": 1}


def test_an_incremental_run_never_applies_deletions(sqlite_store, world):
    deletions = Deletions()
    flow = with_entity(make_toy_flow("no_deleting", world), "company", delete=deletions.rule)
    variables = DictVariables()
    EngineRun.completed(flow, sqlite_store, variables, "run1")
    del world.rows[("company", "C3")]
    world.company("C1", "Company 1 renamed", T0 + timedelta(minutes=40))
    second = EngineRun(flow, sqlite_store, variables, "run2")
    second.prepare()
    assert second.extracted.complete == []
    second.load("company")
    assert deletions.calls == []


@pytest.fixture
def world() -> ToyWorld:
    world = ToyWorld()
    for number in range(1, 5):
        world.company(f"C{number}", f"Company {number}", T0 + timedelta(minutes=number))
    return world


def test_a_scheduled_run_reads_everything_again_when_the_periodic_full_read_is_due(sqlite_store, world):
    flow = make_toy_flow("periodic", world)
    flow = Flow(
        name=flow.name, streams=flow.streams, entities=flow.entities, full_resync_every=timedelta(days=7)
    )
    variables = DictVariables()
    scheduled = engine.RunInfo(dag_id="d", run_id="s1", run_type="scheduled", data_interval_end=NOW)
    first = engine.plan_windows(flow, scheduled, variables, now=NOW)
    assert not first.full_resync, "a first run reads everything anyway"
    variables.set(watermark_variable(flow.name, "changes"), json.dumps({"at": NOW.isoformat()}))
    due = engine.plan_windows(flow, scheduled, variables, now=NOW)
    assert due.full_resync and "none recorded yet" in (due.full_resync_reason or "")
    variables.set(engine.full_read_variable(flow.name), (NOW - timedelta(days=1)).isoformat())
    assert not engine.plan_windows(flow, scheduled, variables, now=NOW).full_resync
    variables.set(engine.full_read_variable(flow.name), (NOW - timedelta(days=8)).isoformat())
    assert engine.plan_windows(flow, scheduled, variables, now=NOW).full_resync
    manual = engine.RunInfo(dag_id="d", run_id="m1", run_type="manual", data_interval_end=NOW)
    assert not engine.plan_windows(flow, manual, variables, now=NOW).full_resync
    variables.set(f"mlconn_window__{flow.name}", json.dumps({"full_resync_every_days": 0}))
    assert not engine.plan_windows(flow, scheduled, variables, now=NOW).full_resync


def test_a_committed_full_read_records_when_it_happened(sqlite_store, world):
    flow = make_toy_flow("records_full_read", world)
    variables = DictVariables()
    run = EngineRun.completed(flow, sqlite_store, variables, "run1")
    assert run.commit().full_read_recorded
    assert variables.values[engine.full_read_variable(flow.name)] == NOW.isoformat()


# -- echoes ------------------------------------------------------------------------------------


@dataclass
class TwoSides:
    """Two toy systems holding the same products; every write stamps the record with the clock."""

    a: dict[str, dict[str, Any]] = field(default_factory=dict)
    b: dict[str, dict[str, Any]] = field(default_factory=dict)
    clock: datetime = T0
    writes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def edit(self, side: str, key: str, **values: Any) -> None:
        records = self.a if side == "a" else self.b
        records[key] = {**records.get(key, {"key": key}), **values, "changed_at": self.tick().isoformat()}


def two_way_flow(sides: TwoSides) -> Flow:
    def extract(side: str) -> Any:
        def read(window: Window, writer: Any) -> datetime | None:
            records = sides.a if side == "a" else sides.b
            seen = None
            for key, row in records.items():
                changed_at = datetime.fromisoformat(row["changed_at"])
                if window.contains(changed_at):
                    writer.stage(f"{side}_to_{'b' if side == 'a' else 'a'}", key, row)
                    seen = changed_at if seen is None else max(seen, changed_at)
            return seen

        return read

    def product(source: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": source["name"], "price": source["price"]}

    def write(side: str) -> Any:
        def load(records: Sequence[LoadRecord]) -> dict[str, Loaded]:
            for record in records:
                sides.writes[side] += 1
                sides.edit(side, record.key, **record.payload)
            return {record.key: Loaded(f"{side}-{record.key}") for record in records}

        return load

    def entity(name: str, side: str, other: str) -> Entity:
        return Entity(
            name,
            target="hubspot",
            key="the product code",
            write=WriteMode.UPSERT,
            map=product,
            load=write(side),
            echo_of=other,
            echo_view=product,
        )

    return Flow(
        name="two_way",
        streams=(Stream("a", extract=extract("a")), Stream("b", extract=extract("b"))),
        entities=(entity("a_to_b", "b", "b_to_a"), entity("b_to_a", "a", "a_to_b")),
        overlap=timedelta(0),
        safety_lag=timedelta(0),
    )


def _run_two_way(flow: Flow, store, variables: DictVariables, sides: TwoSides, run_id: str) -> dict[str, int]:
    before = dict(sides.writes)
    now = sides.tick()
    info = engine.RunInfo(dag_id="two_way", run_id=run_id, run_type="manual", data_interval_end=now)
    ref = info.ref(flow)
    plan = engine.plan_windows(flow, info, variables, now=now)
    extracted = engine.extract(flow, store, info, actor_for(ref, "extract"), plan)
    engine.map_records(flow, store, ref.run_key, actor_for(ref, "map"))
    for name in ("a_to_b", "b_to_a"):
        for batch in engine.order_entity(
            flow, store, ref, name, max_map_length=16, actor=actor_for(ref, "order")
        ).batches:
            engine.load_batch(
                flow, store, run_key=ref.run_key, entity_name=name, batch=batch, actor=actor_for(ref, "load")
            )
    engine.commit_watermarks(
        flow, store, variables, run_key=ref.run_key, plan=plan, extract_manifest=extracted, now=now
    )
    return {side: sides.writes[side] - before[side] for side in ("a", "b")}


def test_an_edit_on_one_side_costs_one_write_on_the_other_and_none_back(sqlite_store):
    sides = TwoSides()
    sides.edit("a", "P1", name="Widget", price="10.00")
    flow, variables = two_way_flow(sides), DictVariables()
    assert _run_two_way(flow, sqlite_store, variables, sides, "r1") == {"a": 0, "b": 1}
    assert _run_two_way(flow, sqlite_store, variables, sides, "r2") == {"a": 0, "b": 0}, "our write read back"

    sides.edit("a", "P1", price="12.00")
    assert _run_two_way(flow, sqlite_store, variables, sides, "r3") == {"a": 0, "b": 1}
    assert _run_two_way(flow, sqlite_store, variables, sides, "r4") == {"a": 0, "b": 0}
    assert sides.b["P1"]["price"] == "12.00"

    sides.edit("b", "P1", name="Widget XL")
    assert _run_two_way(flow, sqlite_store, variables, sides, "r5") == {"a": 1, "b": 0}
    assert _run_two_way(flow, sqlite_store, variables, sides, "r6") == {"a": 0, "b": 0}
    assert sides.a["P1"]["name"] == "Widget XL"

    # An edit back to what was once written on that side is still a change: it is sent.
    sides.edit("a", "P1", name="Widget")
    assert _run_two_way(flow, sqlite_store, variables, sides, "r7") == {"a": 0, "b": 1}
    assert sides.b["P1"]["name"] == "Widget"
    echoes = [
        e.error
        for record, events in sqlite_store.audit.history(flow="two_way", entity="b_to_a", key="P1")
        for e in events
        if e.status is RecordStatus.UNCHANGED
    ]
    assert sum("read back" in (text or "") for text in echoes) >= 2


# -- retention ---------------------------------------------------------------------------------


def test_pruning_keeps_each_records_latest_row_and_the_id_map(sqlite_store, world):
    flow = make_toy_flow("pruned", world)
    variables = DictVariables()
    EngineRun.completed(flow, sqlite_store, variables, "run1")
    world.company("C1", "Company 1 renamed", T0 + timedelta(minutes=40))
    second = EngineRun(flow, sqlite_store, variables, "run2")
    second.prepare()
    second.load("company")
    old = datetime.now().astimezone() - timedelta(days=120)
    for run_key in ("dag_pruned/run1", second.ref.run_key):  # each run's task tries (run reports)
        sqlite_store.reports.save_task(
            run_key, second.actor("extract"), state="success", started_at=old, ended_at=old, calls={}
        )
    with sqlite_store.engine.begin() as connection:
        connection.execute(records.update().values(updated_at=old))
        connection.execute(runs.update().values(updated_at=old))
        rows_before = connection.execute(sa.select(sa.func.count()).select_from(records)).scalar_one()
        events_before = connection.execute(sa.select(sa.func.count()).select_from(record_events)).scalar_one()
    # The second run read all four companies again (the overlap): run 1's rows are superseded.
    preview = prune_store(sqlite_store, older_than_days=90, dry_run=True)
    assert (preview.records, preview.dry_run) == (4, True)
    result = prune_store(sqlite_store, older_than_days=90)
    assert result.records == 4 and result.events > 0 and result.runs == 1
    with sqlite_store.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(records)).scalar_one()
            == rows_before - 4
        )
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(record_events)).scalar_one()
            == events_before - result.events
        )
        assert connection.execute(sa.select(sa.func.count()).select_from(id_map)).scalar_one() == 4
        left = set(connection.execute(sa.select(runs.c.run_key)).scalars())
    assert left == {second.ref.run_key}
    assert [task.task_id for task in sqlite_store.reports.tasks("dag_pruned/run1")] == []  # gone with its run
    assert [task.task_id for task in sqlite_store.reports.tasks(second.ref.run_key)] == ["extract"]
    history = sqlite_store.audit.history(flow="pruned", entity="company", key="C1")
    assert [record.run_key for record, _ in history] == [second.ref.run_key], "only the latest row is left"
    assert prune_store(sqlite_store, older_than_days=90).records == 0
