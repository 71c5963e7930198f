"""The invoices DAG through dag.test() against both sandboxes: issued invoices post once to JDE's
customer ledger and G/L with the right customer, company, amounts, dates, currency, pay item and G/L
lines (read back through AIS); the JDE document is written back to HubSpot; a second run writes
nothing; an invoice whose company has no JDE customer waits and posts by itself once the customers
flow brought one; a void after posting makes one credit memo; an edit after posting is a conflict."""

from __future__ import annotations

import json
import time
from datetime import date
from decimal import Decimal

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.jde import query as q
from tests.support.customers import Sandboxes
from tests.support.invoices import (
    GL_DAG,
    INVOICES_DAG,
    create_invoice,
    customers_in_hubspot,
    forget_flow_variables,
    gl_lines,
    invoice_properties,
    jde_posts,
    ledger,
    money,
    run,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def money_flows(customer_sandboxes, airflow_store, airflow_db):
    forget_flow_variables()
    sandboxes = customer_sandboxes(jde={"customers": 20})
    yield sandboxes
    forget_flow_variables()


def revenue_accounts(count: int) -> list[str]:
    """Postable revenue accounts of business unit M30 (company 00001), as JDE writes them."""
    with JdeAisHook() as hook:
        rows = hook.iter_rows(
            "F0901", query=q.all_of(q.between("F0901.OBJ", "4000", "4999"), q.eq("F0901.CO", "00001"))
        )
        accounts = [
            ".".join(p for p in (str(r["MCU"]).strip(), str(r["OBJ"]).strip(), str(r["SUB"]).strip()) if p)
            for r in rows
            if not str(r["PEC"]).strip() and str(r["MCU"]).strip() == "M30"
        ]
    assert len(accounts) >= count
    return accounts[:count]


def test_issued_invoices_post_once_with_their_lines_and_the_document_is_written_back(money_flows):
    sandboxes: Sandboxes = money_flows
    run(GL_DAG)  # the line-item properties jde_gl_account / jde_business_unit
    consulting, travel = revenue_accounts(2)
    first, second = customers_in_hubspot(sandboxes, 2)
    issued = create_invoice(
        sandboxes,
        company_id=first.company_id,
        contact_id=first.contact_id,
        lines=[
            {"name": "Consulting", "quantity": "2", "price": "500", "jde_gl_account": consulting},
            {"name": "Travel", "quantity": "1", "price": "250", "tax": "20", "jde_gl_account": travel},
        ],
        extra={"hs_purchase_order_number": "PO-7731"},
    )
    paid = create_invoice(
        sandboxes,
        company_id=second.company_id,
        contact_id=second.contact_id,
        lines=[{"name": "Licence", "quantity": "3", "price": "99.90", "jde_gl_account": consulting}],
        status="paid",
    )
    draft = create_invoice(
        sandboxes,
        company_id=first.company_id,
        contact_id=first.contact_id,
        lines=[{"name": "Not yet", "quantity": "1", "price": "10", "jde_gl_account": consulting}],
        status="draft",
    )
    time.sleep(1.1)
    run(INVOICES_DAG)

    number = issued["properties"]["hs_number"]
    [pay_item] = ledger(number)
    assert pay_item.address_number == first.address_number
    assert pay_item.document_company == "00001"
    assert (pay_item.gross_amount, pay_item.tax_amount, pay_item.open_amount) == (
        Decimal("1270.00"),
        Decimal("20.00"),
        Decimal("1270.00"),
    )
    assert pay_item.currency == "USD" and pay_item.purchase_order == "PO-7731"
    assert pay_item.invoice_date == date.today()
    lines = gl_lines(pay_item.document_number)
    assert sorted((line.account_number, line.amount) for line in lines) == sorted(
        [(consulting, Decimal("-1000.00")), (travel, Decimal("-250.00"))]
    )
    written = invoice_properties(sandboxes, issued["id"])["properties"]
    assert written["jde_document_number"] == str(pay_item.document_number)
    assert (written["jde_document_type"], written["jde_document_company"]) == ("RI", "00001")
    assert written["jde_batch_number"] == str(pay_item.batch_number)
    assert written["jde_sync_status"] == "posted" and written["jde_posted_at"]
    [licence] = ledger(paid["properties"]["hs_number"])
    assert licence.gross_amount == Decimal("299.70") and licence.address_number == second.address_number
    assert ledger(draft["properties"]["hs_number"] or "none") == [], "a draft is not posted"
    posts = jde_posts(sandboxes)
    assert posts == 2

    time.sleep(1.1)
    run(INVOICES_DAG)  # reads back its own write-backs
    run(INVOICES_DAG)
    assert jde_posts(sandboxes) == posts, "a second run posts nothing"
    assert len(ledger(number)) == 1

    # Changed in HubSpot after posting: a conflict, JDE untouched.
    line_ids = sandboxes.hubspot_api(
        "GET", f"/crm/v4/objects/invoices/{issued['id']}/associations/line_items"
    )["results"]
    sandboxes.hubspot_api(
        "PATCH", f"/crm/v3/objects/line_items/{line_ids[0]['toObjectId']}", {"properties": {"price": "650"}}
    )
    time.sleep(1.1)
    run(INVOICES_DAG)
    assert jde_posts(sandboxes) == posts
    conflict = invoice_properties(sandboxes, issued["id"])["properties"]
    assert conflict["jde_sync_status"] == "conflict"
    assert "changed in HubSpot after it was posted to JDE" in conflict["jde_sync_message"]
    assert [p.gross_amount for p in ledger(number)] == [Decimal("1270.00")]


def test_a_void_after_posting_makes_one_credit_memo(money_flows):
    sandboxes: Sandboxes = money_flows
    from airflow.models import Variable

    [customer] = customers_in_hubspot(sandboxes, 1)
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    invoice = create_invoice(
        sandboxes,
        company_id=customer.company_id,
        contact_id=customer.contact_id,
        lines=[{"name": "Workshop", "quantity": "1", "price": "800"}],
    )
    time.sleep(1.1)
    run(INVOICES_DAG)
    number = invoice["properties"]["hs_number"]
    [original] = ledger(number)
    sandboxes.http.post(
        f"{sandboxes.hubspot.url}/_sandbox/invoices/{invoice['id']}/void", timeout=30
    ).raise_for_status()
    time.sleep(1.1)
    run(INVOICES_DAG)
    [memo] = ledger(number, "RM")
    assert memo.gross_amount == Decimal("-800.00") and memo.address_number == customer.address_number
    assert (memo.original_document_number, memo.original_document_type) == (original.document_number, "RI")
    assert invoice_properties(sandboxes, invoice["id"])["properties"]["jde_credit_memo_number"] == str(
        memo.document_number
    )
    time.sleep(1.1)
    run(INVOICES_DAG)
    run(INVOICES_DAG)
    assert len(ledger(number, "RM")) == 1, "one credit memo, however many runs read the void"
    assert jde_posts(sandboxes, "ORCH_55_CreateCreditMemo") == 1


def test_an_invoice_whose_company_has_no_jde_customer_waits_then_posts_after_the_customers_flow(money_flows):
    sandboxes: Sandboxes = money_flows
    from airflow.models import Variable

    customers_in_hubspot(sandboxes, 1)
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    walk_in = sandboxes.hubspot_api(
        "POST", "/crm/v3/objects/companies", {"properties": {"name": "Walk-in Traders"}}
    )
    contact = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/contacts",
        {"properties": {"email": "buyer@walkin.example", "firstname": "Wanda"}},
    )
    invoice = create_invoice(
        sandboxes,
        company_id=walk_in["id"],
        contact_id=contact["id"],
        lines=[{"name": "Cash sale", "quantity": "1", "price": "120"}],
    )
    number = invoice["properties"]["hs_number"]
    time.sleep(1.1)
    run(INVOICES_DAG)
    assert ledger(number) == []
    waiting = invoice_properties(sandboxes, invoice["id"])["properties"]
    assert waiting["jde_sync_status"] == "waiting"
    assert (
        f"HubSpot company {walk_in['id']} (Walk-in Traders) has no JDE customer"
        in waiting["jde_sync_message"]
    )

    # Accounting opens the customer in JDE and tells HubSpot its number; the customers flow links them.
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
    [posted] = ledger(number)
    assert posted.address_number == added
    assert invoice_properties(sandboxes, invoice["id"])["properties"]["jde_sync_status"] == "posted"


def test_discounts_fees_and_taxes_post_hubspots_own_total_and_a_bad_invoice_is_reported_not_fatal(
    money_flows,
):
    sandboxes: Sandboxes = money_flows
    from airflow.models import Variable

    first, second = customers_in_hubspot(sandboxes, 2)
    Variable.set(
        "mlconn_invoices",
        json.dumps({"posting": {"default_revenue_account": "M30.4110", "fee_account": "M30.4120"}}),
    )
    product = sandboxes.hubspot_api(
        "POST", "/crm/v3/objects/products", {"properties": {"name": "Pump", "price": "100"}}
    )
    adjusted = create_invoice(
        sandboxes,
        company_id=first.company_id,
        contact_id=first.contact_id,
        lines=[
            {"hs_product_id": product["id"], "quantity": "2", "hs_discount_percentage": "10"},
            {"name": "Service", "price": "60", "quantity": "1", "discount": "10", "tax": "5"},
        ],
        adjustments=[
            ("discounts", {"hs_label": "Loyalty", "hs_type": "FIXED", "hs_value": "30"}),
            ("fees", {"hs_label": "Handling", "hs_type": "PERCENT", "hs_value": "10"}),
            ("taxes", {"hs_label": "Sales tax", "hs_type": "PERCENT", "hs_value": "20"}),
        ],
    )
    # HubSpot's own total: 180 + 50 = 230; - 30 = 200; + 10 % fee = 220; + 20 % tax = 264; + line tax 5
    assert money(adjusted["properties"]["hs_amount_billed"]) == Decimal("269")
    orphan = create_invoice(
        sandboxes,
        company_id=None,
        contact_id=second.contact_id,
        lines=[{"name": "No company", "quantity": "1", "price": "40"}],
    )
    free = create_invoice(
        sandboxes,
        company_id=second.company_id,
        contact_id=second.contact_id,
        lines=[{"name": "Goodwill", "quantity": "1", "price": "75"}],
        extra={"hs_invoice_billable": "false"},
    )
    time.sleep(1.1)
    dag_run = run(INVOICES_DAG)  # a refused invoice does not fail the run: a person must act

    [pay_item] = ledger(adjusted["properties"]["hs_number"])
    assert (pay_item.gross_amount, pay_item.tax_amount) == (Decimal("269.00"), Decimal("49.00"))
    lines = gl_lines(pay_item.document_number)
    assert sum(line.amount for line in lines) == Decimal("-220.00"), "the G/L books gross minus tax"
    assert ("M30.4120", Decimal("-20.00")) in [(line.account_number, line.amount) for line in lines]
    refused = invoice_properties(sandboxes, orphan["id"])["properties"]
    assert refused["jde_sync_status"] == "rejected"
    assert (
        "has no company: associate exactly one company (the JDE customer) in HubSpot"
        in (refused["jde_sync_message"])
    )
    assert ledger(orphan["properties"]["hs_number"]) == []
    assert ledger(free["properties"]["hs_number"]) == [], "a non-billable invoice is not posted"
    assert not invoice_properties(sandboxes, free["id"])["properties"].get("jde_sync_status")
    assert jde_posts(sandboxes) == 1
    assert str(dag_run.state) == "success"


def test_with_ledger_ap_an_invoice_is_one_supplier_voucher_and_a_void_is_left_to_accounting(money_flows):
    sandboxes: Sandboxes = money_flows
    from airflow.models import Variable

    from airflow_provider_mlconn.jde.models import VoucherRow

    # A JDE supplier (search type V; the seeded data has two in every block of 20 numbers) entered on a
    # HubSpot company by hand: the customers flow (which makes the property) brings customers only.
    customers_in_hubspot(sandboxes, 1)
    supplier_number = 10017
    company = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/companies",
        {"properties": {"name": "Freight Partner", "jde_address_number": str(supplier_number)}},
    )
    contact = sandboxes.hubspot_api(
        "POST", "/crm/v3/objects/contacts", {"properties": {"email": "billing@freight.example"}}
    )
    Variable.set(
        "mlconn_invoices",
        json.dumps({"ledger": "ap", "posting": {"company": "00001", "default_revenue_account": "M30.4110"}}),
    )
    bill = create_invoice(
        sandboxes,
        company_id=company["id"],
        contact_id=contact["id"],
        lines=[{"name": "Freight", "quantity": "1", "price": "310"}],
    )
    time.sleep(1.1)
    run(INVOICES_DAG)
    run(INVOICES_DAG)
    number = bill["properties"]["hs_number"]
    with JdeAisHook() as hook:
        [voucher] = hook.iter_records(VoucherRow, query=q.eq("F0411.VINV", number))
    assert (voucher.address_number, voucher.gross_amount, voucher.document_company) == (
        supplier_number,
        Decimal("310.00"),
        "00001",
    )
    written = invoice_properties(sandboxes, bill["id"])["properties"]
    assert (written["jde_document_number"], written["jde_document_type"]) == (
        str(voucher.document_number),
        voucher.document_type,
    )
    assert written["jde_batch_number"] == str(voucher.batch_number)
    assert jde_posts(sandboxes, "ORCH_55_CreateVoucher") == 1

    sandboxes.http.post(
        f"{sandboxes.hubspot.url}/_sandbox/invoices/{bill['id']}/void", timeout=30
    ).raise_for_status()
    time.sleep(1.1)
    run(INVOICES_DAG)
    voided = invoice_properties(sandboxes, bill["id"])["properties"]
    assert voided["jde_sync_status"] == "conflict"
    assert "a JDE voucher is voided in JDE (P0411, Void)" in voided["jde_sync_message"]
    assert jde_posts(sandboxes, "ORCH_55_CreateCreditMemo") == 0
