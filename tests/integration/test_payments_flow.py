"""The payments DAG through dag.test() against both sandboxes: succeeded payments post once as JDE
receipts applied to the invoices they pay (F03B13/F03B14 and the invoice's open amount and pay status
read back through AIS); partial and over-payments; a payment waits for its invoice to reach JDE; a
payment without an invoice is unapplied cash; a full refund voids the receipt once; a partial refund
after posting is a conflict; a payment in another currency than its invoice is refused."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.models import CustomerLedgerRow
from tests.support.customers import Sandboxes
from tests.support.invoices import (
    INVOICES_DAG,
    PAYMENTS_DAG,
    Customer,
    applications,
    create_invoice,
    customers_in_hubspot,
    forget_flow_variables,
    jde_posts,
    ledger,
    payment_properties,
    receipts,
    record_payment,
    run,
)

pytestmark = pytest.mark.integration
RECEIPT = "ORCH_55_CreateReceipt"


@pytest.fixture
def money_flows(customer_sandboxes, airflow_store, airflow_db):
    from airflow.models import Variable

    forget_flow_variables()
    sandboxes = customer_sandboxes(jde={"customers": 20})
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    yield sandboxes
    forget_flow_variables()


def posted_invoices(sandboxes: Sandboxes, customers: list[Customer], *prices: str) -> list[dict]:
    """One open invoice per price (customers in turn), posted to JDE by the invoices flow."""
    made = [
        create_invoice(
            sandboxes,
            company_id=customers[index % len(customers)].company_id,
            contact_id=customers[index % len(customers)].contact_id,
            lines=[{"name": "Service", "quantity": "1", "price": price}],
        )
        for index, price in enumerate(prices)
    ]
    time.sleep(1.1)
    run(INVOICES_DAG)
    for invoice in made:
        assert len(ledger(invoice["properties"]["hs_number"])) == 1
    return made


def document(invoice: dict) -> CustomerLedgerRow:
    [pay_item] = ledger(invoice["properties"]["hs_number"])
    return pay_item


def test_the_money_path_ends_with_the_invoice_paid_in_jde_and_partial_and_over_payments_apply_what_they_cover(
    money_flows,
):
    sandboxes: Sandboxes = money_flows
    customers = customers_in_hubspot(sandboxes, 2)  # JDE customers -> HubSpot companies
    full, partial, over = posted_invoices(sandboxes, customers, "1000", "1000", "1000")
    paid_in_full = record_payment(sandboxes, full["id"], "1000")
    paid_in_part = record_payment(sandboxes, partial["id"], "400")
    paid_over = record_payment(sandboxes, over["id"], "1200")
    time.sleep(1.1)
    run(PAYMENTS_DAG)

    [receipt] = receipts(paid_in_full["id"])
    assert (receipt.receipt_amount, receipt.unapplied_amount, receipt.currency) == (
        Decimal("1000.00"),
        0,
        "USD",
    )
    assert receipt.address_number == customers[0].address_number
    [line] = applications(receipt.payment_id)
    assert (line.document_number, line.document_type, line.amount_applied) == (
        document(full).document_number,
        "RI",
        Decimal("1000.00"),
    )
    assert (document(full).open_amount, document(full).pay_status) == (Decimal("0.00"), "P"), (
        "JDE shows it paid"
    )
    written = payment_properties(sandboxes, paid_in_full["id"])
    assert (written["jde_payment_id"], written["jde_receipt_number"]) == (
        str(receipt.payment_id),
        paid_in_full["id"],
    )
    assert written["jde_sync_status"] == "posted"
    assert f"applied 1000.00 to RI {document(full).document_number}" in written["jde_sync_message"]

    [part] = receipts(paid_in_part["id"])
    assert part.receipt_amount == Decimal("400.00") and part.unapplied_amount == 0
    assert (document(partial).open_amount, document(partial).pay_status) == (Decimal("600.00"), "A")

    [extra] = receipts(paid_over["id"])
    assert (extra.receipt_amount, extra.unapplied_amount) == (Decimal("1200.00"), Decimal("200.00"))
    assert document(over).open_amount == 0
    with JdeAisHook() as hook:
        unapplied = list(
            hook.iter_records(
                CustomerLedgerRow,
                query=q.all_of(q.eq("F03B11.DCT", "RU"), q.eq("F03B11.AN8", customers[0].address_number)),
            )
        )
    assert Decimal("-200.00") in [row.open_amount for row in unapplied], "unapplied cash stays on the account"
    assert (
        "200.00 unapplied on customer" in payment_properties(sandboxes, paid_over["id"])["jde_sync_message"]
    )
    posts = jde_posts(sandboxes, RECEIPT)
    assert posts == 3

    time.sleep(1.1)
    run(PAYMENTS_DAG)  # reads back its own write-backs
    run(PAYMENTS_DAG)
    assert jde_posts(sandboxes, RECEIPT) == posts, "a second run posts nothing"


def test_a_payment_waits_for_its_invoice_then_posts_and_one_without_an_invoice_is_unapplied_cash(money_flows):
    sandboxes: Sandboxes = money_flows
    [customer] = customers_in_hubspot(sandboxes, 1)
    walk_in = sandboxes.hubspot_api(
        "POST", "/crm/v3/objects/companies", {"properties": {"name": "Walk-in Traders"}}
    )
    buyer = sandboxes.hubspot_api(
        "POST", "/crm/v3/objects/contacts", {"properties": {"email": "b@walkin.example"}}
    )
    invoice = create_invoice(
        sandboxes, company_id=walk_in["id"], contact_id=buyer["id"], lines=[{"name": "Sale", "price": "120"}]
    )
    payment = record_payment(sandboxes, invoice["id"], "120")
    # A deposit with no invoice: the payment is linked to the company only (API-recorded, succeeded).
    deposit = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/commerce_payments",
        {
            "properties": {
                "hs_initial_amount": "250",
                "hs_initiated_date": str(int(datetime.now(timezone.utc).timestamp() * 1000)),
                "hs_currency_code": "USD",
                "hs_latest_status": "succeeded",
                "hs_processor_type": "none",
            },
            "associations": [
                {
                    "to": {"id": customer.company_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 389}],
                }
            ],
        },
    )
    time.sleep(1.1)
    run(INVOICES_DAG)
    run(PAYMENTS_DAG)
    assert receipts(payment["id"]) == []
    waiting = payment_properties(sandboxes, payment["id"])
    assert waiting["jde_sync_status"] == "waiting"
    # The reason goes down to what a person must do: the invoice waits for its company's JDE customer.
    assert f"waits for invoices/invoice {invoice['id']}, which is waiting" in waiting["jde_sync_message"]
    assert "(Walk-in Traders) has no JDE customer" in waiting["jde_sync_message"]
    [cash] = receipts(deposit["id"])
    assert (cash.address_number, cash.receipt_amount, cash.unapplied_amount) == (
        customer.address_number,
        Decimal("250.00"),
        Decimal("250.00"),
    )
    assert applications(cash.payment_id)[0].document_type == "RU"

    # Accounting opens the customer in JDE and enters its number on the company: all of it follows.
    added = sandboxes.jde_control(
        "POST",
        "customers",
        {
            "name": "Walk-in Traders",
            "address": {"lines": ["Quay 1"], "city": "Hull", "country": "GB"},
            "contacts": [],
        },
    )["address_number"]
    sandboxes.hubspot_api(
        "PATCH",
        f"/crm/v3/objects/companies/{walk_in['id']}",
        {"properties": {"jde_address_number": str(added)}},
    )
    time.sleep(1.1)
    run("mlconn_customers_jde_to_hubspot")
    run(INVOICES_DAG)
    run(PAYMENTS_DAG)
    [receipt] = receipts(payment["id"])
    assert receipt.address_number == added and receipt.unapplied_amount == 0
    assert document(invoice).open_amount == 0
    assert payment_properties(sandboxes, payment["id"])["jde_sync_status"] == "posted"


def test_a_full_refund_voids_the_receipt_once_and_a_partial_refund_is_for_accounting(money_flows):
    sandboxes: Sandboxes = money_flows
    customers = customers_in_hubspot(sandboxes, 1)
    refunded, trimmed = posted_invoices(sandboxes, customers, "800", "500")
    full = record_payment(sandboxes, refunded["id"], "800")
    part = record_payment(sandboxes, trimmed["id"], "500")
    time.sleep(1.1)
    run(PAYMENTS_DAG)
    assert document(refunded).open_amount == 0
    for payment, amount in ((full, None), (part, "100")):
        body = {} if amount is None else {"amount": amount}
        sandboxes.http.post(
            f"{sandboxes.hubspot.url}/_sandbox/payments/{payment['id']}/refund", json=body, timeout=30
        ).raise_for_status()
    time.sleep(1.1)
    run(PAYMENTS_DAG)
    [voided] = receipts(full["id"])
    assert voided.void_gl_date is not None
    assert document(refunded).open_amount == Decimal("800.00"), "the invoice is open again in JDE"
    shown = payment_properties(sandboxes, full["id"])
    assert (
        shown["jde_sync_status"] == "voided"
        and f"JDE receipt {voided.payment_id} voided" in shown["jde_sync_message"]
    )
    conflict = payment_properties(sandboxes, part["id"])
    assert conflict["jde_sync_status"] == "conflict"
    assert "changed in HubSpot after it was posted to JDE as receipt" in conflict["jde_sync_message"]
    assert [r.receipt_amount for r in receipts(part["id"])] == [Decimal("500.00")], "JDE untouched"
    time.sleep(1.1)
    run(PAYMENTS_DAG)
    run(PAYMENTS_DAG)
    assert jde_posts(sandboxes, "ORCH_55_VoidReceipt") == 1, "one void, however many runs read the refund"
    assert jde_posts(sandboxes, RECEIPT) == 2


def test_only_succeeded_money_posts_and_a_payment_in_another_currency_is_refused_without_failing_the_run(
    money_flows,
):
    sandboxes: Sandboxes = money_flows
    customers = customers_in_hubspot(sandboxes, 1)
    pending, mismatched = posted_invoices(sandboxes, customers, "300", "300")
    processing = record_payment(sandboxes, pending["id"], "300", status="processing")
    failed = record_payment(sandboxes, pending["id"], "300", status="failed")
    euros = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/commerce_payments",
        {
            "properties": {
                "hs_initial_amount": "300",
                "hs_initiated_date": str(int(datetime.now(timezone.utc).timestamp() * 1000)),
                "hs_currency_code": "EUR",
                "hs_latest_status": "succeeded",
            },
            "associations": [
                {
                    "to": {"id": mismatched["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 542}],
                }
            ],
        },
    )
    time.sleep(1.1)
    dag_run = run(PAYMENTS_DAG)
    assert str(dag_run.state) == "success"
    assert receipts(processing["id"]) == [] and receipts(failed["id"]) == [] and receipts(euros["id"]) == []
    refused = payment_properties(sandboxes, euros["id"])
    assert refused["jde_sync_status"] == "rejected"
    assert (
        f"is in EUR, the invoice {mismatched['properties']['hs_number']} it pays in USD"
        in refused["jde_sync_message"]
    )
    assert jde_posts(sandboxes, RECEIPT) == 0
