"""The A/R status DAG through dag.test() against both sandboxes: what accounting keys in JDE reaches
HubSpot. A receipt on an invoice issued in HubSpot moves its jde_pay_status/jde_open_amount and the
company's balances (the round trip through the invoices flow); a document raised in JDE appears in
HubSpot once, with its line items, associated, open and non-billable, and never travels back; a
credit memo lowers the balance; a run with no JDE change writes nothing. Expected figures are read
from JDE through AIS and summed here, not by the flow's code."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from tests.support.ar_status import (
    AR_DAG,
    amount,
    associated,
    company,
    customers_in,
    enter_invoice,
    forget_ar_variables,
    invoice,
    invoices_of_document,
    jde_today,
    key_receipt,
    line_items,
    open_balance,
    overdue_balance,
)
from tests.support.customers import Sandboxes
from tests.support.invoices import (
    CUSTOMERS_DAG,
    INVOICES_DAG,
    create_invoice,
    jde_posts,
    ledger,
    run,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def ar_flows(customer_sandboxes, airflow_store, airflow_db):
    from airflow.models import Variable

    forget_ar_variables()
    sandboxes = customer_sandboxes(jde={"customers": 20})
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    yield sandboxes
    forget_ar_variables()


def settle() -> None:
    """JDE stamps whole seconds and a window ends before the current one: let the second pass."""
    time.sleep(1.1)


def test_round_trip_issued_in_hubspot_posted_paid_in_jde_status_and_balance_follow(ar_flows):
    sandboxes: Sandboxes = ar_flows
    [first] = customers_in(sandboxes, 1)
    balance_before = open_balance(first.address_number)
    issued = create_invoice(
        sandboxes,
        company_id=first.company_id,
        contact_id=first.contact_id,
        lines=[{"name": "Pump overhaul", "quantity": "2", "price": "500"}],
    )
    settle()
    run(INVOICES_DAG)
    [posted] = ledger(issued["properties"]["hs_number"])
    settle()
    run(AR_DAG)  # the first run reads the whole ledger

    shown = invoice(sandboxes, issued["id"])
    assert (shown["jde_pay_status"], amount(shown["jde_open_amount"])) == ("open", Decimal("1000"))
    assert not shown["jde_last_receipt_date"]
    assert not shown.get("jde_document_key"), "an invoice from HubSpot is not keyed as raised in JDE"
    assert shown["hs_invoice_status"] == "open", "HubSpot's own status is HubSpot's"
    balance = company(sandboxes, first.company_id)
    assert amount(balance["jde_open_ar_balance"]) == balance_before + Decimal("1000")
    assert amount(balance["jde_overdue_ar_balance"]) == overdue_balance(first.address_number)
    assert balance["jde_oldest_open_due_date"]

    # Accounting keys the customer's cheque against the invoice in JDE: paid, and the company owes
    # what it owed before the invoice.
    key_receipt(sandboxes, first.address_number, posted.document_number, number="CHK-77002")
    settle()
    writes_before = sandboxes.hubspot_write_calls()
    run(AR_DAG)
    assert sandboxes.hubspot_write_calls() - writes_before == 2, "one status write and one balance write"
    shown = invoice(sandboxes, issued["id"])
    assert (shown["jde_pay_status"], amount(shown["jde_open_amount"])) == ("paid", Decimal("0"))
    assert shown["jde_last_receipt_date"] == jde_today()
    balance = company(sandboxes, first.company_id)
    assert amount(balance["jde_open_ar_balance"]) == balance_before
    assert balance["jde_last_payment_date"] == jde_today()
    assert amount(company(sandboxes, first.company_id)["jde_open_ar_balance"]) == open_balance(
        first.address_number
    )

    # Nothing changed in JDE: nothing is written (the overlap re-reads the receipt: unchanged).
    writes_before = sandboxes.hubspot_write_calls()
    run(AR_DAG)
    assert sandboxes.hubspot_write_calls() == writes_before, "a run with no JDE change writes nothing"

    # The invoices flow reads our writes back and posts nothing again.
    posts = jde_posts(sandboxes)
    settle()
    run(INVOICES_DAG)
    assert jde_posts(sandboxes) == posts
    assert len(ledger(issued["properties"]["hs_number"])) == 1


def _store() -> Any:
    from airflow_provider_mlconn.operators.common import store_from_airflow

    return store_from_airflow()


def _records(dag_run: Any) -> dict[tuple[str, str], Any]:
    return {(r.entity, r.key): r for r in _store().records.of_run(f"{dag_run.dag_id}/{dag_run.run_id}")}


def _items(count: int) -> list[str]:
    with JdeAisHook() as hook:
        rows = hook.iter_rows("F4101", columns=["ITM", "LITM"], page_size=count)
        return [str(row["LITM"]).strip() for _, row in zip(range(count), rows, strict=False)]


def test_documents_raised_in_jde_appear_once_open_non_billable_and_never_travel_back(ar_flows):
    sandboxes: Sandboxes = ar_flows
    first, second = customers_in(sandboxes, 2)
    pump, valve = _items(2)
    billed = sandboxes.jde_control(
        "POST",
        "sales-invoices",
        {
            "customer": first.address_number,
            "lines": [
                {"item": pump, "quantity": 3, "unit_price": "12.5"},
                {"item": valve, "quantity": 2, "unit_price": "40"},
            ],
        },
    )
    from_order = f"{billed['document_company']}-RI-{billed['document_number']}"
    keyed = enter_invoice(
        sandboxes, second.address_number, [("300.00", "Installation"), ("120.50", "Freight")], tax="42.05"
    )
    credited = enter_invoice(sandboxes, first.address_number, [("500.00", "Maintenance contract")])
    written_off = enter_invoice(sandboxes, second.address_number, [("80.00", "Callout")])
    voided = enter_invoice(sandboxes, first.address_number, [("75.00", "Sample")])
    key_receipt(
        sandboxes,
        second.address_number,
        int(written_off.split("-")[2]),
        Decimal("50"),
        number="CHK-4410",
        write_off=Decimal("30"),
    )
    # A document whose reference is the number of a HubSpot invoice the invoices flow did not post
    # (non-billable here): it may be that invoice on its way, so it is not shown a second time.
    goodwill = create_invoice(
        sandboxes,
        company_id=second.company_id,
        contact_id=second.contact_id,
        lines=[{"name": "Goodwill", "quantity": "1", "price": "20"}],
        extra={"hs_invoice_billable": "false"},
    )
    lookalike = sandboxes.jde_control(
        "POST",
        "invoices",
        {
            "customer": second.address_number,
            "lines": [{"amount": "20.00"}],
            "reference": goodwill["properties"]["hs_number"],
        },
    )
    settle()
    dag_run = run(AR_DAG)

    refused = _records(dag_run)[
        ("jde_invoice", f"{lookalike['document_company']}-RI-{lookalike['document_number']}")
    ]
    assert refused.status.value == "rejected" and "has this document's reference" in refused.error
    [order] = invoices_of_document(sandboxes, from_order)
    shown = order["properties"]
    assert (shown["hs_invoice_status"], shown["hs_invoice_billable"], shown["hs_currency"]) == (
        "open",
        "false",
        "USD",
    )
    assert amount(shown["hs_amount_billed"]) == Decimal("117.5")
    assert (shown["jde_pay_status"], amount(shown["jde_open_amount"])) == ("open", Decimal("117.5"))
    assert associated(order, "companies") == [first.company_id]
    [contact] = associated(order, "contacts")
    types = sandboxes.contact_company_types([contact])
    assert 1 in types[(contact, first.company_id)], "the customer's primary contact"
    lines = line_items(sandboxes, associated(order, "line items"))
    assert sorted(
        (amount(li["properties"]["quantity"]), amount(li["properties"]["amount"])) for li in lines
    ) == [
        (Decimal(2), Decimal(80)),
        (Decimal(3), Decimal("37.5")),
    ], "the billed sales order lines (F42119)"

    [entered] = invoices_of_document(sandboxes, keyed)
    assert amount(entered["properties"]["hs_amount_billed"]) == Decimal("462.55"), "JDE's gross, tax included"
    lines = line_items(sandboxes, associated(entered, "line items"))
    assert sorted((li["properties"]["name"], amount(li["properties"]["amount"])) for li in lines) == [
        ("Freight", Decimal("120.5")),
        ("Installation", Decimal(300)),
    ], "the revenue lines of its journal entry (F0911)"
    assert [
        amount(li["properties"].get("tax")) for li in lines if li["properties"]["name"] == "Installation"
    ] == [Decimal("42.05")]
    [closed] = invoices_of_document(sandboxes, written_off)
    assert (closed["properties"]["jde_pay_status"], amount(closed["properties"]["jde_open_amount"])) == (
        "written_off",
        Decimal(0),
    )

    # Accounting credits one invoice (a memo applied to it, another left open) and voids another.
    balance_before = amount(company(sandboxes, first.company_id)["jde_open_ar_balance"])
    document = int(credited.split("-")[2])
    sandboxes.jde_control(
        "POST",
        "credit-memos",
        {"customer": first.address_number, "invoice": {"document_number": document}, "amount": "200"},
    )
    sandboxes.jde_control(
        "POST",
        "credit-memos",
        {
            "customer": first.address_number,
            "invoice": {"document_number": document},
            "amount": "50",
            "apply": False,
        },
    )
    sandboxes.jde_control(
        "POST",
        "documents/void",
        {"customer": first.address_number, "document_number": int(voided.split("-")[2])},
    )
    settle()
    run(AR_DAG)
    [memo_target] = invoices_of_document(sandboxes, credited)
    assert (
        memo_target["properties"]["jde_pay_status"],
        amount(memo_target["properties"]["jde_open_amount"]),
    ) == (
        "partially_paid",
        Decimal(300),
    )
    balance = amount(company(sandboxes, first.company_id)["jde_open_ar_balance"])
    assert balance == balance_before - Decimal(200) - Decimal(50) - Decimal(75), (
        "credit memos lower the balance"
    )
    assert balance == open_balance(first.address_number)
    [cancelled] = invoices_of_document(sandboxes, voided)
    assert (cancelled["properties"]["hs_invoice_status"], cancelled["properties"]["jde_pay_status"]) == (
        "voided",
        "voided",
    )

    writes_before = sandboxes.hubspot_write_calls()
    run(AR_DAG)
    assert sandboxes.hubspot_write_calls() == writes_before, "a run with no JDE change writes nothing"
    for key in (from_order, keyed, credited, written_off, voided):
        assert len(invoices_of_document(sandboxes, key)) == 1, f"{key} appears once"

    settle()
    run(INVOICES_DAG)
    assert jde_posts(sandboxes) == 0, "an invoice raised in JDE is never posted back"
    assert jde_posts(sandboxes, "ORCH_55_CreateCreditMemo") == 0


def test_new_customers_wait_yen_keeps_no_decimals_and_a_receipt_keyed_twice_is_undone_by_its_void(ar_flows):
    sandboxes: Sandboxes = ar_flows
    [usd] = customers_in(sandboxes, 1)
    address = {"lines": ["1-2-3 Umeda"], "city": "Osaka", "country": "JP"}
    yen = sandboxes.jde_control(
        "POST",
        "customers",
        {
            "name": "Kansai Kiki KK",
            "currency": "JPY",
            "address": address,
            "contacts": [{"given_name": "Haruto", "surname": "Sato", "email": "sato@kansai.example"}],
        },
    )["address_number"]
    lonely = sandboxes.jde_control("POST", "customers", {"name": "Solo Trading", "address": address})[
        "address_number"
    ]
    in_yen = enter_invoice(sandboxes, yen, [("123456", "Pump")])
    no_contact = enter_invoice(sandboxes, lonely, [("99.00", "Parts")])
    nothing_due = enter_invoice(sandboxes, usd.address_number, [("0", "Warranty repair")])
    twice = enter_invoice(sandboxes, usd.address_number, [("1000.00", "Compressor")])
    document = int(twice.split("-")[2])
    key_receipt(sandboxes, usd.address_number, document, Decimal(300), number="CHK-5501")
    duplicate = key_receipt(sandboxes, usd.address_number, document, Decimal(300), number="CHK-5501")
    settle()
    dag_run = run(AR_DAG)  # the customers flow has not brought the new customers yet: a green run

    records = _records(dag_run)
    waiting = records[("jde_invoice", in_yen)]
    assert waiting.status.value == "waiting" and f"customer {yen} is not in HubSpot" in waiting.error
    assert records[("company_balance", str(yen))].status.value == "waiting"
    refused = records[("jde_invoice", no_contact)]
    assert refused.status.value == "rejected" and "has no active contact in JDE (F0111)" in refused.error
    [zero] = invoices_of_document(sandboxes, nothing_due)
    assert (zero["properties"]["jde_pay_status"], amount(zero["properties"]["hs_amount_billed"])) == (
        "paid",
        0,
    )
    [paid_twice] = invoices_of_document(sandboxes, twice)
    assert (
        paid_twice["properties"]["jde_pay_status"],
        amount(paid_twice["properties"]["jde_open_amount"]),
    ) == (
        "partially_paid",
        Decimal(400),
    )

    # The customers flow brings the yen customer; the waiting invoice and balance follow by
    # themselves. Accounting voids the receipt keyed twice.
    settle()
    run(CUSTOMERS_DAG)
    sandboxes.jde_control("POST", f"receipts/{duplicate['payment_id']}/void", {"reason": "DUP"})
    settle()
    run(AR_DAG)
    [yen_invoice] = invoices_of_document(sandboxes, in_yen)
    shown = yen_invoice["properties"]
    assert (shown["hs_currency"], shown["jde_open_amount"], shown["hs_invoice_status"]) == (
        "JPY",
        "123456",
        "open",
    )
    yen_company = associated(yen_invoice, "companies")
    assert company(sandboxes, yen_company[0])["jde_open_ar_balance"] == "123456", "yen without decimals"
    [paid_twice] = invoices_of_document(sandboxes, twice)
    assert amount(paid_twice["properties"]["jde_open_amount"]) == Decimal(700)
    assert amount(company(sandboxes, usd.company_id)["jde_open_ar_balance"]) == open_balance(
        usd.address_number
    )
    assert invoices_of_document(sandboxes, no_contact) == []
