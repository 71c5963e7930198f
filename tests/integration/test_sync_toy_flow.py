"""The toy flow through Airflow (dag.test(), in-process): retries, failing runs and the watermark."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_mlconn.operators.common import store_from_airflow
from airflow_provider_mlconn.sync.flow import RecordStatus
from airflow_provider_mlconn.sync.store import run_key_for
from airflow_provider_mlconn.sync.watermarks import watermark_variable
from tests.support.sync import ToyWorld, toy_flow_dag

pytestmark = pytest.mark.integration

UTC = timezone.utc


def seed(world: ToyWorld) -> datetime:
    """Four companies and their four contacts, changed in the last hour; returns the last change."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for number in range(1, 5):
        world.company(f"C{number}", f"Company {number}", start + timedelta(minutes=number))
        world.contact(
            f"P{number}", f"C{number}", f"p{number}@example.com", start + timedelta(minutes=10 + number)
        )
    return start + timedelta(minutes=14)


def watermark(flow_name: str) -> str | None:
    from airflow.models import Variable

    return Variable.get(watermark_variable(flow_name, "changes"), default_var=None)


def task_states(dag_run) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return states


def test_a_retry_of_the_load_task_posts_exactly_the_failed_half_and_the_watermark_moves_after(
    toy_bundle, toy_world, airflow_store
):
    bundle = toy_bundle(load_retries=1)
    last_change = seed(toy_world)
    toy_world.fail_first = {("company", "C2"), ("company", "C4"), ("contact", "P1"), ("contact", "P3")}
    toy_world.watch_variable = watermark_variable(bundle.flow_name, "changes")

    dag_run = toy_flow_dag(bundle.dag_id, bundle.flow_name, load_retries=1).test()

    assert str(dag_run.state) == "success", task_states(dag_run)
    assert toy_world.calls == [
        ("company", ["C1", "C2", "C3", "C4"]),
        ("company", ["C2", "C4"]),
        ("contact", ["P1", "P2", "P3", "P4"]),
        ("contact", ["P1", "P3"]),
    ]
    assert sorted(toy_world.posts) == sorted({*toy_world.rows})
    assert toy_world.watermark_during_load == [None, None, None, None]
    assert json.loads(watermark(bundle.flow_name))["at"] == last_change.isoformat()

    records = store_from_airflow().records.of_run(run_key_for(bundle.dag_id, dag_run.run_id))
    attempts = {(r.entity, r.key): r.attempts for r in records}
    assert attempts == {pair: 2 if pair in toy_world.fail_first else 1 for pair in toy_world.rows}
    assert {r.status for r in records} == {RecordStatus.LOADED}
    loads = [ti for ti in dag_run.get_task_instances() if ti.task_id == "company.load"]
    assert [ti.try_number for ti in loads] == [2]


def test_a_failing_run_keeps_the_watermark_and_the_next_run_posts_only_what_failed(
    toy_bundle, toy_world, airflow_store
):
    bundle = toy_bundle(load_retries=0)
    last_change = seed(toy_world)
    toy_world.fail_always = {("company", "C2")}
    dag = toy_flow_dag(bundle.dag_id, bundle.flow_name, load_retries=0)

    failed_run = dag.test()

    assert str(failed_run.state) == "failed"
    states = task_states(failed_run)
    assert states["company.load"] == ["failed"]
    assert states["contact.load"] == ["failed"]
    assert states["commit_watermark"] == ["failed"]  # it reports, then refuses to move the watermark
    assert watermark(bundle.flow_name) is None
    assert sorted(toy_world.posted("contact")) == ["P1", "P3", "P4"]
    records = {
        (r.entity, r.key): r
        for r in store_from_airflow().records.of_run(run_key_for(bundle.dag_id, failed_run.run_id))
    }
    assert records[("company", "C2")].status is RecordStatus.FAILED
    assert records[("company", "C2")].error == "toy target: HTTP 503 writing company C2"
    assert records[("contact", "P2")].error == (
        "prerequisite company C2 failed: toy target: HTTP 503 writing company C2"
    )

    toy_world.fail_always.clear()
    toy_world.calls.clear()
    second_run = dag.test()

    assert str(second_run.state) == "success", task_states(second_run)
    assert toy_world.calls == [("company", ["C2"]), ("contact", ["P2"])]
    assert sorted(toy_world.posts) == sorted({*toy_world.rows})
    assert json.loads(watermark(bundle.flow_name))["at"] == last_change.isoformat()


def test_clearing_the_failed_load_task_in_the_same_run_posts_only_what_failed(
    toy_bundle, toy_world, airflow_store
):
    from tests.support.sync import clear_and_rerun

    bundle = toy_bundle(load_retries=0)
    last_change = seed(toy_world)
    toy_world.fail_always = {("company", "C3"), ("contact", "P4")}
    dag = toy_flow_dag(bundle.dag_id, bundle.flow_name, load_retries=0)
    failed_run = dag.test()
    assert str(failed_run.state) == "failed"
    assert watermark(bundle.flow_name) is None

    toy_world.fail_always.clear()
    toy_world.calls.clear()
    cleared = clear_and_rerun(dag, failed_run.run_id, "company.load")

    assert cleared.run_id == failed_run.run_id
    assert str(cleared.state) == "success", task_states(cleared)
    assert toy_world.calls == [("company", ["C3"]), ("contact", ["P3", "P4"])]
    assert sorted(toy_world.posts) == sorted({*toy_world.rows})
    assert json.loads(watermark(bundle.flow_name))["at"] == last_change.isoformat()


def test_a_run_where_only_dependent_records_changed_loads_them(toy_bundle, toy_world, airflow_store):
    bundle = toy_bundle(load_retries=0)
    seed(toy_world)
    dag = toy_flow_dag(bundle.dag_id, bundle.flow_name, load_retries=0)
    assert str(dag.test().state) == "success"

    changed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    toy_world.contact("P3", "C3", "p3.new@example.com", changed_at)
    toy_world.calls.clear()
    second_run = dag.test()

    states = task_states(second_run)
    assert str(second_run.state) == "success", states
    assert states["company.load"] == ["skipped"], "no company changed: its load expands to nothing"
    assert states["contact.order"] == ["success"]
    assert toy_world.calls == [("contact", ["P3"])]
    assert toy_world.target[("contact", "P3")]["email"] == "p3.new@example.com"
    assert json.loads(watermark(bundle.flow_name))["at"] == changed_at.isoformat()


def test_when_the_map_step_fails_nothing_is_ordered_or_loaded(toy_bundle, toy_world, airflow_store):
    bundle = toy_bundle(load_retries=0)
    seed(toy_world)
    toy_world.mapping_crashes = True

    failed_run = toy_flow_dag(bundle.dag_id, bundle.flow_name, load_retries=0).test()

    states = task_states(failed_run)
    assert str(failed_run.state) == "failed", states
    assert states["map"] == ["failed"]
    assert states["company.order"] == ["skipped"] and states["contact.order"] == ["skipped"]
    assert toy_world.calls == []
    assert watermark(bundle.flow_name) is None
