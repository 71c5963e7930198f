"""Every flow under faults on both sides, then the reconciliation as the judge: nothing lost, nothing
duplicated.

Both sandboxes fail 10 % of calls (JDE also loses 10 % of orchestration answers after committing,
with its duplicate check off), AIS tokens expire every 3 s and HubSpot answers nothing but 429 for
a few seconds in the middle. The customers, GL accounts, items, invoices, payments and A/R status
flows run until a run succeeds (bounded); then, faults off, ``mlconn_reconcile`` compares both
systems through their APIs: no record missing on either side, no duplicate, no drift, and the
money totals agree.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.customers import Sandboxes
from tests.support.faults import faults_off, hubspot_faults, jde_settings, run_until_success
from tests.support.invoices import (
    CUSTOMERS_DAG,
    INVOICES_DAG,
    PAYMENTS_DAG,
    create_invoice,
    customers_in_hubspot,
    dag,
    forget_flow_variables,
    receipts,
    record_payment,
)
from tests.support.reliability import record

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

GL_DAG = "mlconn_gl_accounts_sync"
ITEMS_DAG = "mlconn_items_sync"
AR_DAG = "mlconn_ar_jde_to_hubspot"
RECONCILE_DAG = "mlconn_reconcile"
ITEM_VARIABLES = ("mlconn_watermark__items__jde", "mlconn_watermark__items__hubspot", "mlconn_items")


@pytest.fixture
def faulty_world(customer_sandboxes, airflow_store, quick_retries):
    from airflow.models import Variable

    forget_flow_variables()
    for name in ITEM_VARIABLES:
        Variable.delete(name)
    sandboxes: Sandboxes = customer_sandboxes(jde={"customers": 15, "token_ttl": 3.0})
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    yield sandboxes
    forget_flow_variables()
    for name in ITEM_VARIABLES:
        Variable.delete(name)


def _faults_on(sandboxes: Sandboxes) -> None:
    jde_settings(sandboxes, duplicate_check=False, fault_after_commit_rate=0.1, fault_rate=0.1)
    hubspot_faults(sandboxes, 0.1)


def _storm(sandboxes: Sandboxes, seconds: float) -> None:
    response = sandboxes.http.post(
        f"{sandboxes.hubspot.url}/_sandbox/storm", json={"seconds": seconds}, timeout=30
    )
    response.raise_for_status()


def _reconcile() -> dict[str, Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    dag_run = dag(RECONCILE_DAG).test(run_conf={})
    assert str(dag_run.state) == "success"
    run_key = f"{RECONCILE_DAG}/{dag_run.run_id}"
    with create_session() as session:
        extras = [
            dict(event.extra or {})
            for event in session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "mlconn_reconcile")
        ]
    [summary] = [extra for extra in extras if extra.get("run_key") == run_key]
    return summary


def test_every_flow_under_faults_storms_and_expiring_tokens_loses_and_duplicates_nothing(faulty_world):
    sandboxes: Sandboxes = faulty_world
    _faults_on(sandboxes)
    runs = {CUSTOMERS_DAG: run_until_success(CUSTOMERS_DAG), GL_DAG: run_until_success(GL_DAG)}
    runs[ITEMS_DAG] = run_until_success(ITEMS_DAG)

    faults_off(sandboxes)  # the test's own setup calls go through cleanly
    customers = customers_in_hubspot(sandboxes, 3)  # reads what the faulted runs wrote
    invoices = [
        create_invoice(
            sandboxes,
            company_id=customer.company_id,
            contact_id=customer.contact_id,
            lines=[{"name": "Service", "quantity": "1", "price": price}],
        )
        for customer, price in zip(customers, ("700", "300", "450"), strict=True)
    ]
    time.sleep(1.1)
    _faults_on(sandboxes)
    _storm(sandboxes, 3)
    runs[INVOICES_DAG] = run_until_success(INVOICES_DAG)
    faults_off(sandboxes)
    payments = [
        record_payment(sandboxes, invoices[0]["id"], "700"),
        record_payment(sandboxes, invoices[1]["id"], "100"),
    ]
    time.sleep(1.1)
    _faults_on(sandboxes)
    runs[PAYMENTS_DAG] = run_until_success(PAYMENTS_DAG)
    runs[AR_DAG] = run_until_success(AR_DAG)
    faults_off(sandboxes)

    for payment in payments:
        assert len(receipts(payment["id"])) == 1, "each payment is one JDE receipt"
    stats = sandboxes.jde_control("GET", "stats")
    assert stats["tokens_issued"] >= 2, "tokens expired and were renewed"
    summary = _reconcile()
    kinds = summary["by_kind"]
    record(
        "every flow under faults, then reconciled",
        flows="customers, GL accounts, items, invoices, payments, A/R status",
        injected=f"10 % failed calls on both sides, 10 % of JDE answers lost after commit, "
        f"{stats['tokens_issued']} tokens (3 s), a 3 s HubSpot 429 storm",
        records=sum(int(counts["jde"]) for counts in summary["checked"].values()),
        lost=int(kinds.get("missing_in_hubspot", 0)) + int(kinds.get("missing_in_jde", 0)),
        duplicated=int(kinds.get("duplicate", 0)),
        runs=", ".join(f"{dag_id.removeprefix('mlconn_')} {count}" for dag_id, count in runs.items()),
    )
    assert summary["differences"] == 0, (summary, runs)
    checked = summary["checked"]
    assert checked["customers.company"]["jde"] == checked["customers.company"]["hubspot"] >= 15, checked
    # Records the flows' mappings refuse (a credit memo cannot be a HubSpot invoice) are in JDE only.
    assert all(counts["jde"] - counts["not_sent"] == counts["hubspot"] for counts in checked.values()), (
        checked
    )
