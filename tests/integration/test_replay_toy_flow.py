"""The mlconn_replay DAG (dag.test(), in-process) re-posts a rejected record once its mapping is fixed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_mlconn.operators.common import store_from_airflow
from airflow_provider_mlconn.sync.flow import RecordStatus
from tests.support.sync import toy_flow_dag

pytestmark = pytest.mark.integration


def test_replay_dag_reposts_a_rejected_record_after_its_mapping_is_fixed(
    toy_bundle, toy_world, airflow_store
):
    from airflow_provider_mlconn.operators.replay import replay_dag

    bundle = toy_bundle(load_retries=0)
    changed = datetime.now(timezone.utc) - timedelta(minutes=30)
    toy_world.company("C1", "Acme", changed)
    toy_world.contact("P1", "C1", "ann@example.com", changed)
    toy_world.contact("P2", "C1", "eve at example.com", changed)
    flow_run = toy_flow_dag(bundle.dag_id, bundle.flow_name, load_retries=0).test()
    assert str(flow_run.state) == "success"
    assert toy_world.posted("contact") == ["P1"]

    replay = replay_dag()
    conf = {"flow": bundle.flow_name, "statuses": ["rejected"], "run_id": flow_run.run_id}
    dry = replay.test(run_conf={**conf, "dry_run": True})
    assert str(dry.state) == "success"
    states = {ti.task_id: str(ti.state) for ti in dry.get_task_instances()}
    assert states == {"select_records": "success", "replay_records": "skipped"}
    assert toy_world.posted("contact") == ["P1"]

    toy_world.mapping_version = 2
    replayed = replay.test(run_conf={**conf, "dry_run": False})

    assert str(replayed.state) == "success"
    assert toy_world.posted("contact") == ["P1", "P2"]
    assert toy_world.target[("contact", "P2")]["email"] == "eve@example.com"
    [(record, events)] = store_from_airflow().audit.history(flow=bundle.flow_name, entity="contact", key="P2")
    assert record.status is RecordStatus.LOADED
    assert [(e.action, e.status.value) for e in events] == [
        ("stage", "staged"),
        ("map", "rejected"),
        ("replay-map", "mapped"),
        ("replay-load", "loaded"),
    ]
    assert events[-1].actor.startswith(f"mlconn_replay/{replayed.run_id}/replay_records")
