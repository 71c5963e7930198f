"""Invoices reach JDE once when answers are lost: with the JDE sandbox's duplicate check off (as a
JDE whose orchestration has no duplicate lookup), responses lost after the commit, faults before it,
expiring tokens and a flaky HubSpot, every issued invoice is one F03B11 document; and a worker killed
(SIGKILL) in the middle of posting, then its task cleared as in the UI, leaves no duplicate either."""

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
from tests.support.invoices import INVOICES_DAG, customers_in_hubspot, forget_flow_variables, jde_posts
from tests.support.reliability import KILLED_MID_LOAD, record_held

pytestmark = pytest.mark.integration

POSTING = {"posting": {"default_revenue_account": "M30.4110"}}


@pytest.fixture
def money_flows(customer_sandboxes, airflow_store, airflow_db, quick_retries):
    forget_flow_variables()
    yield customer_sandboxes
    forget_flow_variables()


def issue_invoices(sandboxes: Sandboxes, count: int) -> dict[str, str]:
    """``count`` open invoices made the way a salesperson makes them (from a product, in the invoices
    tool), spread over the customers HubSpot has from JDE; returns invoice id -> HubSpot number."""
    from airflow.models import Variable

    Variable.set("mlconn_invoices", json.dumps(POSTING))
    customers = customers_in_hubspot(sandboxes, 10)
    assert customers
    response = sandboxes.http.post(
        f"{sandboxes.hubspot.url}/_sandbox/products",
        json={"name": "Support hours", "price": "95", "sku": "SUP-H"},
        timeout=30,
    )
    response.raise_for_status()
    numbers: dict[str, str] = {}
    for index in range(count):
        customer = customers[index % len(customers)]
        response = sandboxes.http.post(
            f"{sandboxes.hubspot.url}/_sandbox/invoices",
            json={
                "currency": "USD",
                "company_id": customer.company_id,
                "contact_id": customer.contact_id,
                "lines": [{"sku": "SUP-H", "quantity": 1 + index % 7, "price": "95"}],
            },
            timeout=30,
        )
        response.raise_for_status()
        invoice = response.json()["invoice"]
        numbers[invoice["id"]] = invoice["properties"]["hs_number"]
    time.sleep(1.1)  # the search index's second-granular modified stamps
    return numbers


def documents_by_reference() -> Counter[str]:
    """How many RI documents JDE holds per HubSpot invoice number (VR01), read through AIS."""
    with JdeAisHook() as hook:
        rows = hook.iter_rows("F03B11", columns=["DOC", "VR01"], query=q.eq("F03B11.DCT", "RI"))
        documents = {(str(row["VR01"]).strip(), int(row["DOC"])) for row in rows}
    return Counter(reference for reference, _ in documents if reference)


def writeback_statuses(sandboxes: Sandboxes) -> Counter[str]:
    found = sandboxes.hubspot_objects("invoices", ["jde_sync_status", "jde_document_number"])
    return Counter(str(record["properties"].get("jde_sync_status")) for record in found)


def test_lost_answers_and_faults_post_each_invoice_once_with_jde_duplicate_check_off(money_flows):
    sandboxes: Sandboxes = money_flows(jde={"customers": 20, "token_ttl": 3.0})
    numbers = issue_invoices(sandboxes, DOCUMENTS)
    faults_on(sandboxes)
    runs = run_until_success(INVOICES_DAG)

    stats = sandboxes.jde_control("GET", "stats")
    faults = stats["faults"]
    print(f"FIGURES invoices={len(numbers)} runs={runs} faults={faults} tokens={stats['tokens_issued']}")
    assert faults["after_commit_dropped"] + faults["after_commit_gateway_timeouts"] > 0
    assert faults["errors"] + faults["dropped_connections"] > 0
    assert stats["tokens_issued"] > 1
    faults_off(sandboxes)
    documents = documents_by_reference()
    record_held(
        "answers lost after commit, faults, expiring tokens",
        flows="invoices",
        injected=f"JDE: {faults['after_commit_dropped'] + faults['after_commit_gateway_timeouts']} answers "
        f"lost after commit, {faults['errors'] + faults['dropped_connections']} calls failed, "
        f"{stats['tokens_issued']} tokens (3 s); HubSpot 5 % failed",
        runs=str(runs),
        expected=list(numbers.values()),
        held=documents,
    )
    assert {number: documents[number] for number in numbers.values()} == dict.fromkeys(numbers.values(), 1)
    # Each committed call made one document: the lost answers were settled by a lookup, not a resend.
    outcomes = sandboxes.jde_control("GET", "stats")["orchestrations"]
    assert outcomes["ORCH_55_CreateCustomerInvoice committed_response_lost"] > 0
    assert jde_posts(sandboxes) == len(numbers)
    assert writeback_statuses(sandboxes) == Counter({"posted": len(numbers)})


def test_a_worker_killed_while_posting_then_cleared_posts_the_rest_once(money_flows):
    sandboxes: Sandboxes = money_flows(jde={"customers": 20})
    numbers = issue_invoices(sandboxes, DOCUMENTS)
    # Without JDE's duplicate check; each call takes a while, so the kill lands among the posts.
    jde_settings(sandboxes, duplicate_check=False, latency_ms=150)
    finished = kill_mid_load_then_clear(
        INVOICES_DAG,
        "invoice.load",
        calls=lambda: jde_posts(sandboxes),
        kill_after=DOCUMENTS // 4,
        then=lambda: jde_settings(sandboxes, latency_ms=0),
    )
    assert str(finished.state) == "success"

    documents = documents_by_reference()
    record_held(
        KILLED_MID_LOAD,
        flows="invoices",
        injected=f"SIGKILL after {DOCUMENTS // 4} posts (150 ms each)",
        runs="1 + clear",
        expected=list(numbers.values()),
        held=documents,
    )
    assert {number: documents[number] for number in numbers.values()} == dict.fromkeys(numbers.values(), 1)
    assert jde_posts(sandboxes) == len(numbers), "nothing sent twice: the one in flight was looked up"
    assert writeback_statuses(sandboxes) == Counter({"posted": len(numbers)})
