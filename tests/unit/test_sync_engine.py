"""The engine's steps on a real SQLite store with the toy flow: load semantics, ordering, replay."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.errors import (
    CallableContractError,
    LoadBlocked,
    LoadIncomplete,
    WatermarkNotCommitted,
)
from airflow_provider_mlconn.sync.flow import Prerequisite, RecordStatus, Rejection
from airflow_provider_mlconn.sync.store import RunRef, Store
from airflow_provider_mlconn.sync.watermarks import watermark_variable
from tests.support.sync import (
    NOW,
    T0,
    DictVariables,
    ToyWorld,
    actor_for,
    make_toy_flow,
    toy_load,
    toy_map,
    with_entity,
)
from tests.support.sync import EngineRun as Run

pytestmark = pytest.mark.unit


@pytest.fixture
def world() -> ToyWorld:
    world = ToyWorld()
    for number in range(1, 5):
        world.company(f"C{number}", f"Company {number}", T0 + timedelta(minutes=number))
        world.contact(
            f"P{number}", f"C{number}", f"person{number}@example.com", T0 + timedelta(minutes=10 + number)
        )
    return world


def test_a_clean_run_loads_every_record_once_and_moves_the_watermark_to_the_last_change(sqlite_store, world):
    flow = make_toy_flow("clean_run", world)
    variables = DictVariables()
    run = Run(flow, sqlite_store, variables, "run1")
    assert run.prepare() == {"company": [0], "contact": [0]}
    assert run.load("company").loaded == 4
    contacts = run.load("contact")
    assert (contacts.loaded, contacts.created) == (4, 4)
    assert world.target[("contact", "P3")]["company_id"] == "co-C3"
    manifest = run.commit()
    assert manifest.moved["changes"]["to"] == (T0 + timedelta(minutes=14)).isoformat()
    stored = json.loads(variables.values[watermark_variable("clean_run", "changes")])
    assert stored["at"] == (T0 + timedelta(minutes=14)).isoformat()


def test_a_retry_loads_exactly_the_failed_records_and_never_reposts_a_success(sqlite_store, world):
    flow = make_toy_flow("retry_half", world)
    world.fail_first = {("company", "C2"), ("company", "C4")}
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    with pytest.raises(LoadIncomplete, match="2 loaded, 0 rejected, 2 failed") as raised:
        run.load("company")
    assert not isinstance(raised.value, LoadBlocked)
    statuses = run.statuses()
    assert [statuses[("company", k)] for k in ("C1", "C2", "C3", "C4")] == [
        "loaded",
        "failed",
        "loaded",
        "failed",
    ]

    retry = run.load("company", try_number=2)
    assert retry.loaded == 2
    assert world.calls[-1] == ("company", ["C2", "C4"])
    assert sorted(world.posted("company")) == ["C1", "C2", "C3", "C4"]
    record = next(r for r in sqlite_store.records.of_run(run.ref.run_key) if r.key == "C2")
    assert (record.status, record.attempts) == (RecordStatus.LOADED, 2)


def test_watermark_stays_while_a_load_has_failed_and_moves_after_the_retry(sqlite_store, world):
    flow = make_toy_flow("stuck_mark", world)
    world.fail_first = {("contact", "P1")}
    variables = DictVariables()
    run = Run(flow, sqlite_store, variables, "run1")
    run.prepare()
    run.load("company")
    with pytest.raises(LoadIncomplete):
        run.load("contact")
    with pytest.raises(WatermarkNotCommitted, match="records not final"):
        run.commit()
    assert variables.values == {}
    run.load("contact", try_number=2)
    assert run.commit().moved


def test_dependents_of_a_failed_prerequisite_are_held_back_and_load_with_it_later(sqlite_store, world):
    flow = make_toy_flow("held_back", world)
    world.fail_always = {("company", "C2")}
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    with pytest.raises(LoadIncomplete):
        run.load("company")
    with pytest.raises(LoadBlocked, match="1 held back for a prerequisite that failed"):
        run.load("contact")
    assert ("contact", ["P1", "P3", "P4"]) in world.calls
    assert "P2" not in world.posted("contact")
    held = next(r for r in sqlite_store.records.of_run(run.ref.run_key) if r.key == "P2")
    assert held.status is RecordStatus.FAILED
    assert held.error == "prerequisite company C2 failed: toy target: HTTP 503 writing company C2"
    assert held.attempts == 0

    world.fail_always.clear()
    run.load("company", try_number=2)
    run.load("contact", try_number=2)
    assert world.posted("contact").count("P2") == 1
    assert set(run.statuses().values()) == {"loaded"}


def test_a_prerequisite_outside_the_run_is_taken_from_the_id_map(sqlite_store, world):
    flow = make_toy_flow("id_map_prereq", world)
    variables = DictVariables()
    Run.completed(flow, sqlite_store, variables, "run1")
    world.contact("P9", "C1", "new@example.com", T0 + timedelta(minutes=30))
    second = Run(flow, sqlite_store, variables, "run2")
    second.prepare()
    second.load("contact")
    assert world.target[("contact", "P9")]["company_id"] == "co-C1"


def test_a_prerequisite_never_loaded_makes_the_record_wait_without_failing_the_run(sqlite_store):
    world = ToyWorld()
    world.contact("P1", "C404", "x@example.com", T0)
    flow = make_toy_flow("missing_prereq", world)
    variables = DictVariables()
    run = Run(flow, sqlite_store, variables, "run1")
    run.prepare()
    manifest = run.load("contact")
    assert manifest.waiting == 1
    assert world.calls == []
    record = sqlite_store.records.of_run(run.ref.run_key)[0]
    assert record.status is RecordStatus.WAITING
    assert record.error == "waits for company C404, which is not in the target: never read or loaded"
    assert record.attempts == 0
    assert run.commit().moved, "a waiting record does not hold the watermark"


def test_a_record_waits_for_a_rejected_prerequisite_and_names_its_reason(sqlite_store):
    world = ToyWorld()
    world.company("C1", "   ", T0)
    world.contact("P1", "C1", "x@example.com", T0)
    flow = make_toy_flow("rejected_prereq", world)

    def blank_names_rejected(source):
        if not source["name"].strip():
            return Rejection(f"company {source['key']}: the name is blank")
        return toy_map(world)("company", source)

    flow = with_entity(flow, "company", map=blank_names_rejected)
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    run.load("company")
    run.load("contact")
    contact = next(r for r in sqlite_store.records.of_run(run.ref.run_key) if r.entity == "contact")
    assert contact.status is RecordStatus.WAITING
    assert contact.error == "waits for company C1, which is rejected: company C1: the name is blank"
    assert run.commit().moved


def test_records_equal_to_the_last_load_are_unchanged_and_cost_no_call(sqlite_store, world):
    flow = make_toy_flow("unchanged", world)
    variables = DictVariables()
    Run.completed(flow, sqlite_store, variables, "run1")
    calls_before = len(world.calls)

    world.company("C3", "Company 3 renamed", T0 + timedelta(minutes=40))
    second = Run(flow, sqlite_store, variables, "run2")
    second.plan = engine.plan_windows(flow, second.info, variables, now=NOW, overlap_minutes=60)
    second.extracted = engine.extract(flow, sqlite_store, second.info, second.actor("extract"), second.plan)
    counts = engine.map_records(flow, sqlite_store, second.ref.run_key, second.actor("map")).counts
    assert counts == {"unchanged": 7, "mapped": 1}
    contacts = engine.order_entity(
        flow, sqlite_store, second.ref, "contact", max_map_length=1024, actor=second.actor("order")
    )
    assert contacts.batches == []
    engine.order_entity(
        flow, sqlite_store, second.ref, "company", max_map_length=1024, actor=second.actor("order")
    )
    second.load("company")
    assert world.calls[calls_before:] == [("company", ["C3"])]


def test_an_unchanged_record_loads_again_when_its_prerequisite_moved_to_another_target_id(
    sqlite_store, world
):
    flow = make_toy_flow("relinked", world)
    variables = DictVariables()
    Run.completed(flow, sqlite_store, variables, "run1")
    assert world.target[("contact", "P1")]["company_id"] == "co-C1"

    # C1 is renamed and the target now answers with another record; P1 and P2 are read again,
    # unchanged; C2 is read again and keeps its id.
    later = T0 + timedelta(minutes=40)
    world.company("C1", "Company 1 renamed", later)
    world.company("C2", "Company 2", later)
    world.contact("P1", "C1", "person1@example.com", later)
    world.contact("P2", "C2", "person2@example.com", later)
    world.remote_ids[("company", "C1")] = "co-C1-merged"
    second = Run(flow, sqlite_store, variables, "run2")
    second.plan = engine.plan_windows(flow, second.info, variables, now=NOW)
    second.extracted = engine.extract(flow, sqlite_store, second.info, second.actor("extract"), second.plan)
    counts = engine.map_records(flow, sqlite_store, second.ref.run_key, second.actor("map")).counts
    assert counts["mapped"] == 1  # C1; the rest read again (the overlap included) is unchanged
    calls_before = len(world.calls)
    for entity in ("company", "contact"):
        for batch in engine.order_entity(
            flow, sqlite_store, second.ref, entity, max_map_length=1024, actor=second.actor("order")
        ).batches:
            second.load(entity, batch)

    assert world.calls[calls_before:] == [("company", ["C1"]), ("contact", ["P1"])]
    assert world.target[("contact", "P1")]["company_id"] == "co-C1-merged"
    statuses = {r.key: r.status for r in sqlite_store.records.of_run(second.ref.run_key)}
    assert {key for key, status in statuses.items() if status is RecordStatus.LOADED} == {"C1", "P1"}
    assert {"C2", "P2"} <= {key for key, status in statuses.items() if status is RecordStatus.UNCHANGED}
    history = sqlite_store.audit.history(flow="relinked", entity="contact", key="P1")
    relink = [event for _, events in history for event in events if event.action == "relink"]
    assert [event.error for event in relink] == ["company C1 is now co-C1-merged in the target (was co-C1)"]


def test_a_load_is_told_which_other_keys_share_its_records_target_id(sqlite_store, world):
    world.remote_ids[("contact", "P1")] = world.remote_ids[("contact", "P2")] = "co-shared"
    flow = make_toy_flow("shared_ids", world)
    variables = DictVariables()
    Run.completed(flow, sqlite_store, variables, "run1")
    assert all(record.remote_id_shared_by == () for record in world.received)

    world.contact("P1", "C1", "person1.new@example.com", T0 + timedelta(minutes=40))
    world.contact("P3", "C3", "person3.new@example.com", T0 + timedelta(minutes=40))
    world.received.clear()
    second = Run(flow, sqlite_store, variables, "run2")
    second.prepare()
    second.load("contact")
    received = {record.key: record for record in world.received}
    assert received["P1"].remote_id == "co-shared" and received["P1"].remote_id_shared_by == ("P2",)
    assert received["P3"].remote_id == "co-P3" and received["P3"].remote_id_shared_by == ()


def test_a_rejected_record_does_not_stop_the_run_and_keeps_an_actionable_reason(sqlite_store, world):
    world.contact("P5", "C1", "eve at example.com", T0 + timedelta(minutes=20))
    flow = make_toy_flow("rejects", world)
    variables = DictVariables()
    run = Run(flow, sqlite_store, variables, "run1")
    run.prepare()
    run.load("company")
    run.load("contact")
    assert run.commit().moved
    rejected = next(r for r in sqlite_store.records.of_run(run.ref.run_key) if r.key == "P5")
    assert rejected.status is RecordStatus.REJECTED
    assert rejected.error == "contact P5: e-mail 'eve at example.com' has no '@'; correct it in JDE"


def test_extracting_again_in_the_same_run_keeps_loaded_records_and_restages_changed_ones(sqlite_store, world):
    flow = make_toy_flow("re_extract", world)
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    run.load("company")
    world.company("C1", "Company 1 changed", T0 + timedelta(minutes=1))
    again = engine.extract(flow, sqlite_store, run.info, run.actor("extract", 2), run.plan)
    assert (again.new, again.changed, again.same) == (0, 1, 7)
    statuses = run.statuses()
    assert statuses[("company", "C1")] == "staged"
    assert statuses[("company", "C2")] == "loaded"


def test_a_load_call_that_raises_fails_its_records_and_three_in_a_row_stop_the_task(sqlite_store, world):
    flow = make_toy_flow("raising_load", world, call_batch_size=1)

    def broken_load(records):
        world.calls.append(("company", [r.key for r in records]))
        raise ConnectionError("target unreachable")

    flow = with_entity(flow, "company", load=broken_load)
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    with pytest.raises(
        LoadIncomplete, match="3 failed, 0 held back for a prerequisite that failed, 1 not attempted"
    ):
        run.load("company")
    assert len(world.calls) == 3
    errors = {r.key: r.error for r in sqlite_store.records.of_run(run.ref.run_key) if r.entity == "company"}
    assert errors["C1"] == "ConnectionError: target unreachable"
    assert errors["C4"] is None


def test_every_load_call_finds_the_outcomes_of_the_calls_before_it_saved(sqlite_store, world):
    flow = make_toy_flow("saved_before_next", world, call_batch_size=1)
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    loaded_when_called: list[int] = []
    load = toy_load(world)

    def watching_load(records):
        statuses = run.statuses()
        loaded_when_called.append(sum(s == "loaded" for (e, _), s in statuses.items() if e == "company"))
        return load("company", records)

    run.flow = with_entity(flow, "company", load=watching_load)
    run.prepare()
    assert run.load("company").loaded == 4
    assert loaded_when_called == [0, 1, 2, 3]


def test_an_outcome_missing_from_the_load_result_fails_that_record(sqlite_store, world):
    flow = with_entity(make_toy_flow("missing_outcome", world), "company", load=lambda records: {})
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    with pytest.raises(LoadIncomplete):
        run.load("company")
    record = sqlite_store.records.of_run(run.ref.run_key)[0]
    assert record.error == "company: the load returned no outcome for this record"


def test_dependencies_on_an_entity_not_declared_as_depends_on_are_refused(sqlite_store, world):
    flow = with_entity(
        make_toy_flow("bad_deps", world),
        "company",
        prerequisites=lambda record: [Prerequisite("contact", "P1")],
    )
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.plan = engine.plan_windows(flow, run.info, run.variables, now=NOW)
    run.extracted = engine.extract(flow, sqlite_store, run.info, run.actor("extract"), run.plan)
    engine.map_records(flow, sqlite_store, run.ref.run_key, run.actor("map"))
    with pytest.raises(CallableContractError, match="entity company does not declare depends_on 'contact'"):
        engine.order_entity(
            flow, sqlite_store, run.ref, "company", max_map_length=1024, actor=run.actor("order")
        )


def test_batches_stay_within_the_flow_cap_and_max_map_length(sqlite_store):
    world = ToyWorld()
    for number in range(45):
        world.company(f"C{number:03}", f"Company {number}", T0 + timedelta(seconds=number))
    flow = make_toy_flow("batches", world, task_batch_size=10, call_batch_size=5)
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.plan = engine.plan_windows(flow, run.info, run.variables, now=NOW)
    run.extracted = engine.extract(flow, sqlite_store, run.info, run.actor("extract"), run.plan)
    engine.map_records(flow, sqlite_store, run.ref.run_key, run.actor("map"))
    first = engine.order_entity(
        flow, sqlite_store, run.ref, "company", max_map_length=1024, actor=run.actor("order")
    )
    assert first.batches == [0, 1, 2, 3, 4]
    second = engine.order_entity(
        flow, sqlite_store, run.ref, "company", max_map_length=3, actor=run.actor("order")
    )
    assert second.batches == [0, 1, 2]
    for batch in range(3):
        run.load("company", batch=batch)
    assert sorted(world.posted("company")) == sorted(f"C{n:03}" for n in range(45))
    assert max(len(keys) for _, keys in world.calls) == 5


def test_replay_remaps_from_the_stored_source_loads_and_appends_to_the_history(sqlite_store, world):
    world.contact("P5", "C1", "eve at example.com", T0 + timedelta(minutes=20))
    flow = make_toy_flow("replayed", world)
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    run.load("company")
    run.load("contact")
    request = engine.ReplayRequest(flow="replayed", statuses=["rejected"], dry_run=False)
    ids = engine.select_replay(flow, sqlite_store, request)
    assert len(ids) == 1

    replay_run = RunRef("replayed", "mlconn_replay", "manual__1")
    still = engine.replay(flow, sqlite_store, ids, actor_for(replay_run, "replay_records"))
    assert still.loaded == 0
    assert still.still_not_loaded_count == 1
    assert still.still_not_loaded[0]["reason"].startswith(
        "contact P5: e-mail 'eve at example.com' has no '@'"
    )
    world.mapping_version = 2
    manifest = engine.replay(flow, sqlite_store, ids, actor_for(replay_run, "replay_records", try_number=2))
    assert manifest.loads[0].loaded == 1
    assert world.target[("contact", "P5")]["email"] == "eve@example.com"
    [(record, events)] = sqlite_store.audit.history(flow="replayed", entity="contact", key="P5")
    assert record.status is RecordStatus.LOADED
    assert [e.action for e in events] == ["stage", "map", "replay-map", "replay-map", "replay-load"]
    assert events[-1].actor == "mlconn_replay/manual__1/replay_records try 2"
    assert engine.select_replay(flow, sqlite_store, request) == []


def test_replay_skips_a_record_superseded_by_a_later_run(sqlite_store, world):
    world.contact("P5", "C1", "eve at example.com", T0 + timedelta(minutes=20))
    flow = make_toy_flow("superseded", world)
    variables = DictVariables()
    Run.completed(flow, sqlite_store, variables, "run1")
    world.contact("P5", "C1", "eve@example.com", T0 + timedelta(minutes=50))
    second = Run(flow, sqlite_store, variables, "run2")
    second.prepare()
    second.load("contact")
    request = engine.ReplayRequest(flow="superseded", statuses=["rejected"], dry_run=False)
    assert engine.select_replay(flow, sqlite_store, request) == []


def test_mapping_while_extracting_maps_each_record_once_and_leaves_the_map_step_nothing(sqlite_store, world):
    flow = make_toy_flow("mapped_early", world)
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    run.plan = engine.plan_windows(flow, run.info, run.variables, now=NOW)
    extracted = engine.extract(
        flow, sqlite_store, run.info, run.actor("extract"), run.plan, map_while_extracting=True
    )
    assert extracted.mapped == {"mapped": 8}
    left = engine.map_records(
        flow, sqlite_store, run.ref.run_key, run.actor("map"), statuses=(RecordStatus.STAGED,)
    )
    assert left.counts == {}
    record = next(r for r in sqlite_store.records.of_run(run.ref.run_key) if r.key == "P2")
    assert record.status is RecordStatus.MAPPED
    assert record.prerequisites  # worked out while mapping: ordering only splits batches
    [(_, events)] = sqlite_store.audit.history(flow="mapped_early", entity="contact", key="P2")
    assert [(e.action, e.status.value) for e in events] == [("stage", "staged"), ("map", "mapped")]
    batches = engine.order_entity(
        flow, sqlite_store, run.ref, "company", max_map_length=1024, actor=run.actor("company.order")
    ).batches
    assert batches == [0]
    assert run.load("company").loaded == 4


def _decisions(store, run_key):
    """What the store holds of a run, by (entity, key): the record's columns the map step sets and
    its events, without ids and times (two stores number and stamp them differently)."""
    records = store.records.of_run(run_key)
    events = store.audit.events_of([r.id for r in records])
    return {
        (r.entity, r.key): (
            r.status.value,
            r.payload,
            r.payload_hash,
            r.remote_id,
            r.error,
            r.prerequisites,
            [
                (e.action, e.status.value, e.attempt, e.payload_hash, e.remote_id, e.error)
                for e in events[r.id]
            ],
        )
        for r in records
    }


def test_mapping_while_staging_leaves_the_store_as_the_map_step_would(tmp_path, fernet_key, world):
    """Each new record is mapped from the source in hand and written mapped, with its stage and map
    events: the records, payloads, verdicts (mapped, rejected, unchanged) and audit trail are those
    of staging, then reading back and mapping, run by run."""
    world.contact("P5", "C1", "eve at example.com", T0 + timedelta(minutes=20))  # rejected
    stores = {
        early: Store(f"sqlite:///{tmp_path / f'{early}.db'}", PayloadCipher(fernet_key))
        for early in (True, False)
    }
    flow = make_toy_flow("same_either_way", world)
    variables = {early: DictVariables() for early in stores}
    try:
        for run_id, change in (("run1", None), ("run2", "C2"), ("run3", None)):
            if change:  # one company changes; another is read again as it was: unchanged
                world.company(change, "Renamed GmbH", T0 + timedelta(minutes=70))
                world.company("C1", world.rows[("company", "C1")]["name"], T0 + timedelta(minutes=70))
            decided = {}
            for early, store in stores.items():
                run = Run(flow, store, variables[early], run_id, map_while_extracting=early)
                run.prepare()
                run.load("company")
                run.load("contact")
                run.commit()
                decided[early] = _decisions(store, run.ref.run_key)
            assert decided[True] == decided[False], run_id
            statuses = Counter(status for status, *_ in decided[True].values())
            if run_id == "run1":
                assert statuses["loaded"] and statuses["rejected"] == 1
            if run_id == "run2":
                assert statuses["unchanged"] and statuses["loaded"] == 1
    finally:
        for store in stores.values():
            store.dispose()


def test_records_with_the_same_batch_key_share_a_load_batch(sqlite_store):
    world = ToyWorld()
    for number in range(40):
        world.company(f"C{number:03}", f"Company {number % 7}", T0 + timedelta(seconds=number))
    flow = with_entity(
        make_toy_flow("keyed_batches", world, task_batch_size=10, call_batch_size=5),
        "company",
        batch_key=lambda payload: payload["name"],
    )
    run = Run(flow, sqlite_store, DictVariables(), "run1")
    batches = run.prepare()["company"]
    assert len(batches) > 1
    by_name: dict[str, set[int]] = {}
    for record in sqlite_store.records.of_run(run.ref.run_key):
        by_name.setdefault(record.payload["name"], set()).add(record.batch)
    assert all(len(found) == 1 for found in by_name.values()), by_name
    for batch in batches:
        run.load("company", batch=batch)
    assert sorted(world.posted("company")) == sorted(f"C{n:03}" for n in range(40))
