"""Payments reach JDE once when answers are lost: with the JDE sandbox's duplicate check off (CKNU is
not unique in real JDE), receipts losing their answer after the commit, faults before it, expiring
tokens and a flaky HubSpot, every payment is exactly one F03B13 receipt applied to its invoice; and a
worker killed (SIGKILL) in the middle of posting, then its task cleared, leaves no duplicate either."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.jde import query as q
from tests.support.customers import Sandboxes
from tests.support.faults import (
    DOCUMENTS,
    faults_off,
    faults_on,
    jde_settings,
    kill_mid_load_then_clear,
    run_until_success,
)
from tests.support.invoices import (
    INVOICES_DAG,
    PAYMENTS_DAG,
    customers_in_hubspot,
    forget_flow_variables,
    jde_posts,
    record_payment,
    run,
)
from tests.support.reliability import KILLED_MID_LOAD, record_held

pytestmark = pytest.mark.integration
RECEIPT = "ORCH_55_CreateReceipt"


@pytest.fixture
def money_flows(customer_sandboxes, airflow_store, airflow_db, quick_retries):
    forget_flow_variables()
    yield customer_sandboxes
    forget_flow_variables()


def paid_invoices(sandboxes: Sandboxes, count: int) -> dict[str, str]:
    """``count`` invoices posted to JDE (faults off), each then paid in full in HubSpot; returns
    payment id -> the invoice's number."""
    from airflow.models import Variable

    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    customers = customers_in_hubspot(sandboxes, 10)
    sandboxes.http.post(
        f"{sandboxes.hubspot.url}/_sandbox/products",
        json={"name": "Hours", "price": "80", "sku": "H"},
        timeout=30,
    ).raise_for_status()
    invoices = []
    for index in range(count):
        customer = customers[index % len(customers)]
        response = sandboxes.http.post(
            f"{sandboxes.hubspot.url}/_sandbox/invoices",
            json={
                "currency": "USD",
                "company_id": customer.company_id,
                "contact_id": customer.contact_id,
                "lines": [{"sku": "H", "quantity": 1 + index % 5, "price": "80"}],
            },
            timeout=30,
        )
        response.raise_for_status()
        invoices.append(response.json()["invoice"])
    time.sleep(1.1)
    run(INVOICES_DAG)
    payments = {}
    for invoice in invoices:
        payment = record_payment(sandboxes, invoice["id"], invoice["properties"]["hs_amount_billed"])
        payments[payment["id"]] = invoice["properties"]["hs_number"]
    time.sleep(1.1)
    return payments


def receipts_by_number() -> Counter[str]:
    """Live receipts JDE holds per receipt number (CKNU), read through AIS."""
    with JdeAisHook() as hook:
        rows = hook.iter_rows("F03B13", columns=["PYID", "CKNU", "VDGJ"])
        return Counter(str(row["CKNU"]).strip() for row in rows if not str(row["VDGJ"] or "").strip())


def open_invoices() -> int:
    with JdeAisHook() as hook:
        rows = hook.iter_rows("F03B11", columns=["DOC", "AAP", "VR01"], query=q.eq("F03B11.DCT", "RI"))
        return sum(1 for row in rows if str(row["VR01"]).startswith("INV-") and float(row["AAP"]) != 0)


def test_lost_answers_and_faults_post_each_payment_once_with_jde_duplicate_check_off(money_flows):
    sandboxes: Sandboxes = money_flows(jde={"customers": 20, "token_ttl": 3.0})
    payments = paid_invoices(sandboxes, DOCUMENTS)
    faults_on(sandboxes)
    runs = run_until_success(PAYMENTS_DAG)

    stats = sandboxes.jde_control("GET", "stats")
    print(
        f"FIGURES payments={len(payments)} runs={runs} faults={stats['faults']} "
        f"tokens={stats['tokens_issued']}"
    )
    assert stats["orchestrations"][f"{RECEIPT} committed_response_lost"] > 0
    assert stats["faults"]["errors"] + stats["faults"]["dropped_connections"] > 0
    assert stats["tokens_issued"] > 1
    faults_off(sandboxes)
    found = receipts_by_number()
    faults = stats["faults"]
    record_held(
        "answers lost after commit, faults, expiring tokens",
        flows="payments",
        injected=f"JDE: {stats['orchestrations'][f'{RECEIPT} committed_response_lost']} answers lost after "
        f"commit, {faults['errors'] + faults['dropped_connections']} calls failed, "
        f"{stats['tokens_issued']} tokens (3 s); HubSpot 5 % failed",
        runs=str(runs),
        expected=list(payments),
        held=found,
    )
    assert {payment: found[payment] for payment in payments} == dict.fromkeys(payments, 1), "0 lost, 0 twice"
    assert jde_posts(sandboxes, RECEIPT) == len(payments), "each committed once: lost answers were looked up"
    assert open_invoices() == 0, "every invoice paid in JDE"
    statuses = Counter(
        str(p["properties"].get("jde_sync_status"))
        for p in sandboxes.hubspot_objects("commerce_payments", ["jde_sync_status"])
    )
    assert statuses == Counter({"posted": len(payments)})


def test_a_worker_killed_while_posting_receipts_then_cleared_posts_the_rest_once(money_flows):
    sandboxes: Sandboxes = money_flows(jde={"customers": 20})
    payments = paid_invoices(sandboxes, DOCUMENTS)
    jde_settings(sandboxes, duplicate_check=False, latency_ms=150)
    finished = kill_mid_load_then_clear(
        PAYMENTS_DAG,
        "receipt.load",
        calls=lambda: jde_posts(sandboxes, RECEIPT),
        kill_after=DOCUMENTS // 4,
        then=lambda: jde_settings(sandboxes, latency_ms=0),
    )
    assert str(finished.state) == "success"
    found = receipts_by_number()
    record_held(
        KILLED_MID_LOAD,
        flows="payments",
        injected=f"SIGKILL after {DOCUMENTS // 4} receipts (150 ms each)",
        runs="1 + clear",
        expected=list(payments),
        held=found,
    )
    assert {payment: found[payment] for payment in payments} == dict.fromkeys(payments, 1)
    assert jde_posts(sandboxes, RECEIPT) == len(payments), (
        "nothing sent twice: the one in flight was looked up"
    )
    assert open_invoices() == 0
