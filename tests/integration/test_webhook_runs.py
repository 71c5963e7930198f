"""Runs that read the HubSpot records webhooks named (option ``hubspot_ids``, what a run started by
the webhook asset gets from its events): the payments and items flows read those records by id,
write what they need, and move no watermark. (The invoices flow's: tests/e2e/test_webhooks_in_airflow.py.)"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.support.customers import Sandboxes
from tests.support.invoices import (
    PAYMENTS_DAG,
    create_invoice,
    customers_in_hubspot,
    forget_flow_variables,
    payment_properties,
    receipts,
    record_payment,
    run,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def money_flows(customer_sandboxes, airflow_store, airflow_db):
    import json

    from airflow.models import Variable

    forget_flow_variables()
    sandboxes = customer_sandboxes(jde={"customers": 20})
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    yield sandboxes
    forget_flow_variables()


def _variable(name: str) -> Any:
    from airflow.models import Variable

    return Variable.get(name, default_var=None)


def test_a_payments_run_started_by_webhooks_posts_only_the_named_payment_and_keeps_the_watermark(money_flows):
    sandboxes: Sandboxes = money_flows
    [customer] = customers_in_hubspot(sandboxes, 1)
    invoices = [
        create_invoice(
            sandboxes,
            company_id=customer.company_id,
            contact_id=customer.contact_id,
            lines=[{"name": "Service", "quantity": "1", "price": price}],
        )
        for price in ("300", "400")
    ]
    time.sleep(1.1)
    run("mlconn_invoices_hubspot_to_jde")
    named = record_payment(sandboxes, invoices[0]["id"], "300")
    other = record_payment(sandboxes, invoices[1]["id"], "400")

    run(PAYMENTS_DAG, {"hubspot_ids": [str(named["id"])]})
    assert len(receipts(str(named["id"]))) == 1
    assert payment_properties(sandboxes, str(named["id"]))["jde_sync_status"] == "posted"
    assert receipts(str(other["id"])) == [], "a webhook run reads what its events name, nothing else"
    assert _variable("mlconn_watermark__payments__hubspot") is None

    run(PAYMENTS_DAG)  # the schedule's run still reads everything changed: the other one posts
    assert len(receipts(str(other["id"]))) == 1
    assert len(receipts(str(named["id"]))) == 1


ITEM_VARIABLES = ("mlconn_watermark__items__jde", "mlconn_watermark__items__hubspot", "mlconn_items")


@pytest.fixture
def items_flow(customer_sandboxes, airflow_store, airflow_db):
    from airflow.models import Variable

    for name in ITEM_VARIABLES:
        Variable.delete(name)
    sandboxes = customer_sandboxes(jde={"customers": 20}, hubspot={"seed": 3})
    yield sandboxes
    for name in ITEM_VARIABLES:
        Variable.delete(name)


def test_an_items_run_started_by_webhooks_makes_the_named_product_a_jde_item_and_reads_nothing_else(
    items_flow,
):
    from airflow.dag_processing.dagbag import DagBag

    sandboxes: Sandboxes = items_flow
    created = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/products",
        {"properties": {"name": "Harbour crane rental", "price": "950", "hs_sku": "crane-1"}},
    )
    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "mlconn_items_sync.py"), safe_mode=False).dags[
        "mlconn_items_sync"
    ]
    dag_run = dag.test(run_conf={"safety_lag_minutes": 0, "hubspot_ids": [created["id"]]})
    assert str(dag_run.state) == "success"
    back = sandboxes.hubspot_api(
        "GET", f"/crm/v3/objects/products/{created['id']}", properties="jde_item_number,jde_sync_status"
    )
    assert back["properties"]["jde_item_number"] == "CRANE-1"
    upserts = sandboxes.jde_control("GET", "stats")["orchestrations"]
    assert sum(n for name, n in upserts.items() if name.startswith("ORCH_55_UpsertItem ")) == 1
    others = sandboxes.hubspot_objects("products", ["jde_item_number"])
    assert [p["id"] for p in others if p["properties"].get("jde_item_number")] == [created["id"]]
    assert all(_variable(name) is None for name in ITEM_VARIABLES[:2])
