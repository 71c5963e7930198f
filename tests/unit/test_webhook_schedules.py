"""The invoices, payments and items DAGs run on their timetable or a webhook asset event; a run
started by webhook events reads the records they name."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

WEBHOOK_DAGS = {
    "mlconn_invoices_hubspot_to_jde": ("hubspot://webhooks/invoices", "*/15 * * * *"),
    "mlconn_payments_hubspot_to_jde": ("hubspot://webhooks/commerce_payments", "*/15 * * * *"),
    "mlconn_items_sync": ("hubspot://webhooks/products", "0 * * * *"),
}


def _bag(path=None):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(path or REPO_ROOT / "dags"), safe_mode=False)


def test_the_three_hubspot_fed_dags_run_on_their_timetable_or_their_webhook_asset() -> None:
    from airflow.sdk import AssetOrTimeSchedule

    from airflow_provider_mlconn.timetables import SyncTimetable

    bag = _bag()
    for dag_id, (uri, cron) in WEBHOOK_DAGS.items():
        timetable = bag.dags[dag_id].timetable
        assert isinstance(timetable, AssetOrTimeSchedule), dag_id
        assert isinstance(timetable.timetable, SyncTimetable)
        assert timetable.timetable.summary == cron
        assert timetable.asset_condition.uri == uri
    # The other flows keep their plain timetables.
    assert isinstance(bag.dags["mlconn_customers_jde_to_hubspot"].timetable, SyncTimetable)


def test_no_task_updates_a_webhook_asset_so_no_flow_triggers_itself() -> None:
    bag = _bag()
    webhook_uris = {uri for uri, _ in WEBHOOK_DAGS.values()}
    outlets = {
        getattr(outlet, "uri", None)
        for dag in bag.dags.values()
        for task in dag.tasks
        for outlet in task.outlets
    }
    assert "hubspot://crm/objects/invoices" in outlets  # the write-back's asset is another one
    assert not webhook_uris & outlets


def test_with_the_schedule_variable_none_only_webhook_events_and_people_start_runs(monkeypatch) -> None:
    from airflow.sdk import Asset

    monkeypatch.setenv("AIRFLOW_VAR_MLCONN_INVOICES_SCHEDULE", "none")
    bag = _bag(REPO_ROOT / "dags" / "mlconn_invoices_hubspot_to_jde.py")
    timetable = bag.dags["mlconn_invoices_hubspot_to_jde"].timetable
    assert isinstance(timetable.asset_condition, Asset)
    assert timetable.asset_condition.uri == "hubspot://webhooks/invoices"


def test_the_dags_serialize_with_their_combined_schedule() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    from airflow_provider_mlconn.timetables import SyncTimetable

    dag = _bag().dags["mlconn_invoices_hubspot_to_jde"]
    again = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert again.timetable.summary == "Asset or */15 * * * *"
    assert isinstance(again.timetable.timetable, SyncTimetable)


def _events(*extras):
    from airflow.sdk import Asset

    asset = Asset(name="hubspot_webhook_invoices", uri="hubspot://webhooks/invoices")
    return {asset: [SimpleNamespace(extra=extra) for extra in extras]}


def test_a_webhook_run_reads_the_records_its_coalesced_events_name() -> None:
    from airflow_provider_mlconn.operators.sync import triggered_record_ids

    log = logging.getLogger("test")
    events = _events(
        {"source": "hubspot_webhook", "object_ids": ["12", "3"]},
        {"source": "hubspot_webhook", "object_ids": ["3", "100"]},
    )
    assert triggered_record_ids({"triggering_asset_events": events}, log) == ["3", "12", "100"]
    # An event from elsewhere (a person's POST /assets/events) names nothing: the window is read.
    mixed = _events({"source": "hubspot_webhook", "object_ids": ["1"]}, {"note": "by hand"})
    assert triggered_record_ids({"triggering_asset_events": mixed}, log) is None
    assert triggered_record_ids({}, log) is None
    many = _events({"source": "hubspot_webhook", "object_ids": [str(i) for i in range(2001)]})
    assert triggered_record_ids({"triggering_asset_events": many}, log) is None


def test_an_asset_triggered_run_plans_a_hand_picked_read_and_others_do_not() -> None:
    from airflow_provider_mlconn.flows.invoices import INVOICES
    from airflow_provider_mlconn.operators.sync import PlanWindowOperator
    from airflow_provider_mlconn.sync.engine import RunInfo

    plan = PlanWindowOperator(task_id="plan_window", flow=INVOICES)
    context = {"triggering_asset_events": _events({"source": "hubspot_webhook", "object_ids": ["7"]})}
    triggered = RunInfo(dag_id="d", run_id="r", run_type="asset_triggered")
    assert plan.run_options(context, {}, triggered) == {"hubspot_ids": ["7"]}
    assert triggered.reads_to_now
    scheduled = RunInfo(dag_id="d", run_id="r", run_type="scheduled")
    assert plan.run_options(context, {}, scheduled) == {}
