"""Run options every flow gets: dry run, full resync, flow-specific options, run-time time zone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from airflow_provider_mlconn.jde.dates import JDE_STAMP
from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.errors import FlowDefinitionError, WindowError
from airflow_provider_mlconn.sync.flow import Flow, RecordStatus, Stream
from airflow_provider_mlconn.sync.watermarks import WindowMode, watermark_variable
from tests.support.sync import T0, DictVariables, ToyWorld, actor_for, toy_entities, toy_extract

pytestmark = pytest.mark.unit

NOW = T0 + timedelta(hours=2)


def _world() -> ToyWorld:
    world = ToyWorld()
    for number in range(1, 4):
        world.company(f"C{number}", f"Company {number}", T0 + timedelta(minutes=number))
    return world


def _flow(name: str, world: ToyWorld, seen: list, **stream_options) -> Flow:
    toy = toy_extract(world)

    def extract(window, writer):
        seen.append(window)
        return toy(window, writer)

    return Flow(
        name=name,
        streams=(Stream("changes", extract=extract, **stream_options),),
        entities=toy_entities(world)[:1],
        safety_lag=timedelta(0),
    )


def _run(flow, store, variables, run_id, **plan_options):
    info = engine.RunInfo(dag_id=f"dag_{flow.name}", run_id=run_id, run_type="manual", data_interval_end=NOW)
    ref = info.ref(flow)
    plan = engine.plan_windows(flow, info, variables, now=NOW, **plan_options)
    extracted = engine.extract(flow, store, info, actor_for(ref, "extract"), plan)
    engine.map_records(flow, store, ref.run_key, actor_for(ref, "map"))
    return info, ref, plan, extracted


def test_a_dry_run_maps_everything_loads_nothing_and_keeps_the_watermark(sqlite_store):
    world, seen, variables = _world(), [], DictVariables()
    flow = _flow("dry_run_flow", world, seen)
    _, ref, plan, extracted = _run(flow, sqlite_store, variables, "dry", dry_run=True)
    assert plan.dry_run
    statuses = {r.key: r.status for r in sqlite_store.records.of_run(ref.run_key)}
    assert statuses == {"C1": RecordStatus.MAPPED, "C2": RecordStatus.MAPPED, "C3": RecordStatus.MAPPED}
    manifest = engine.commit_watermarks(
        flow, sqlite_store, variables, run_key=ref.run_key, plan=plan, extract_manifest=extracted, now=NOW
    )
    assert manifest.moved == {} and manifest.kept == {"changes": "dry run: nothing was loaded"}
    assert variables.values == {} and world.calls == []


def test_a_full_resync_reads_from_the_beginning_whatever_the_watermark(sqlite_store):
    world, seen, variables = _world(), [], DictVariables()
    variables.set(
        watermark_variable("resync_flow", "changes"),
        json.dumps({"at": (T0 + timedelta(hours=1)).isoformat()}),
    )
    flow = _flow("resync_flow", world, seen)
    _, ref, _plan, _ = _run(flow, sqlite_store, variables, "resync", full_resync=True)
    assert seen[-1].start is None and seen[-1].mode is WindowMode.RANGE
    assert {r.key for r in sqlite_store.records.of_run(ref.run_key)} == {"C1", "C2", "C3"}
    _run(flow, sqlite_store, variables, "incremental")
    assert seen[-1].start == T0 + timedelta(hours=1) - flow.overlap


def test_a_full_resync_with_a_start_is_refused_with_a_reason(sqlite_store):
    flow = _flow("resync_start", _world(), [])
    with pytest.raises(WindowError, match="leave window_start empty"):
        engine.plan_windows(
            flow,
            engine.RunInfo(dag_id="d", run_id="r"),
            DictVariables(),
            now=NOW,
            full_resync=True,
            window_start=T0,
        )


def test_run_options_reach_the_extract_through_the_window(sqlite_store):
    seen: list = []
    flow = _flow("options_flow", _world(), seen)
    _, _, plan, _ = _run(flow, sqlite_store, DictVariables(), "opts", options={"address_numbers": [4242]})
    assert plan.options == {"address_numbers": [4242]}
    assert seen[-1].options == {"address_numbers": [4242]}


def test_the_source_time_zone_is_resolved_when_the_run_plans_not_when_the_dag_is_parsed(sqlite_store):
    calls: list[str] = []

    def zone() -> str:
        calls.append("asked")
        return "America/Chicago"

    flow = _flow("zone_flow", _world(), [], codec=JDE_STAMP, timezone_from=zone)
    assert calls == []
    _info, ref, plan, extracted = _run(flow, sqlite_store, DictVariables(), "zone")
    assert calls == ["asked"]
    assert plan.windows["changes"]["source_timezone"] == "America/Chicago"
    variables = DictVariables()
    for entity_batch in engine.order_entity(
        flow, sqlite_store, ref, "company", max_map_length=16, actor=actor_for(ref, "order")
    ).batches:
        engine.load_batch(
            flow,
            sqlite_store,
            run_key=ref.run_key,
            entity_name="company",
            batch=entity_batch,
            actor=actor_for(ref, "company.load"),
        )
    engine.commit_watermarks(
        flow, sqlite_store, variables, run_key=ref.run_key, plan=plan, extract_manifest=extracted, now=NOW
    )
    stored = json.loads(variables.values[watermark_variable("zone_flow", "changes")])
    assert stored["timezone"] == "America/Chicago"


def test_a_time_zone_source_giving_a_non_zone_is_a_clear_error():
    flow = _flow("bad_zone", _world(), [], timezone_from=lambda: "Mars/Olympus")
    with pytest.raises(FlowDefinitionError, match="Mars/Olympus"):
        engine.plan_windows(flow, engine.RunInfo(dag_id="d", run_id="r"), DictVariables(), now=NOW)
