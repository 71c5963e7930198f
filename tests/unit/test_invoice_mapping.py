"""A HubSpot invoice -> the JDE document that posts it (mapping/invoices.py): accounts, discounts,
fees, taxes and currencies add up to HubSpot's own total to the cent, or the invoice is refused with
the figures; nothing is "fixed" silently."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_mlconn.mapping.invoices import PostingRules, Rejected, invoice_document

RULES = PostingRules(default_revenue_account="M30.4110")


def line(line_id: int, amount: str, **properties: Any) -> dict[str, Any]:
    return {"id": str(line_id), "properties": {"name": f"Line {line_id}", "amount": amount, **properties}}


def adjustment(adjustment_id: int, kind: str, value: str, order: int = 0) -> dict[str, Any]:
    return {
        "id": str(adjustment_id),
        "properties": {"hs_type": kind, "hs_value": value, "hs_sort_order": order},
    }


def source(
    lines: list[dict[str, Any]],
    *,
    billed: str | None,
    currency: str = "USD",
    discounts: list[dict[str, Any]] | None = None,
    fees: list[dict[str, Any]] | None = None,
    taxes: list[dict[str, Any]] | None = None,
    companies: int = 1,
    products: dict[str, Any] | None = None,
    **invoice: Any,
) -> dict[str, Any]:
    properties = {
        "hs_number": "INV-1001",
        "hs_currency": currency,
        "hs_amount_billed": billed,
        "hs_invoice_date": "2026-11-02T10:00:00Z",
        "hs_due_date": "1767225600000",
        **invoice,
    }
    company = {"id": "501", "properties": {"name": "Acme", "jde_address_number": "4242"}}
    return {
        "invoice": {"id": "9001", "properties": properties},
        "line_items": lines,
        "discounts": discounts or [],
        "fees": fees or [],
        "taxes": taxes or [],
        "company": company if companies == 1 else None,
        "company_count": companies,
        "products": products or {},
    }


def distribution(document: dict[str, Any] | Rejected) -> list[tuple[str, Decimal]]:
    assert isinstance(document, dict), document
    return [(d["account"], Decimal(d["amount"])) for d in document["distribution"]]


def test_one_pay_item_for_the_gross_tax_as_its_tax_and_one_gl_line_per_line_item():
    document = invoice_document(
        source(
            [line(1, "1000", jde_gl_account="M30.4120"), line(2, "250", tax="20")],
            billed="1270",
            hs_purchase_order_number="PO-7731",
        ),
        RULES,
    )
    assert isinstance(document, dict)
    assert (document["gross"], document["tax"], document["currency"]) == ("1270.00", "20.00", "USD")
    assert (document["reference"], document["customer"], document["purchase_order"]) == (
        "INV-1001",
        4242,
        "PO-7731",
    )
    assert (document["invoice_date"], document["due_date"]) == ("2026-11-02", "2026-01-01")
    assert distribution(document) == [("M30.4120", Decimal("1000")), ("M30.4110", Decimal("250"))]


def test_the_line_business_unit_replaces_the_accounts_and_the_product_gl_class_picks_one():
    rules = RULES.model_copy(update={"gl_class_accounts": {"IN30": "M30.4300"}})
    document = invoice_document(
        source(
            [
                line(1, "100", jde_gl_account="M30.4120", jde_business_unit="M40"),
                line(2, "50", hs_product_id="77"),
            ],
            billed="150",
            products={"77": {"jde_gl_class": "IN30"}},
        ),
        rules,
    )
    assert distribution(document) == [("M40.4120", Decimal("100")), ("M30.4300", Decimal("50"))]


def test_invoice_discounts_spread_over_the_lines_to_the_cent_or_go_to_a_discount_account():
    lines = [line(1, "100"), line(2, "200", jde_gl_account="M30.4120")]
    spread = invoice_document(source(lines, billed="270", discounts=[adjustment(1, "PERCENT", "10")]), RULES)
    assert distribution(spread) == [("M30.4110", Decimal("90.00")), ("M30.4120", Decimal("180.00"))]
    odd = invoice_document(source(lines, billed="290", discounts=[adjustment(1, "FIXED", "10")]), RULES)
    assert sum(amount for _, amount in distribution(odd)) == Decimal("290")
    booked = invoice_document(
        source(lines, billed="290", discounts=[adjustment(1, "FIXED", "10")]),
        RULES.model_copy(update={"discount_handling": "account", "discount_account": "M30.4900"}),
    )
    assert distribution(booked)[-1] == ("M30.4900", Decimal("-10"))
    unset = invoice_document(
        source(lines, billed="290", discounts=[adjustment(1, "FIXED", "10")]),
        RULES.model_copy(update={"discount_handling": "account"}),
    )
    assert isinstance(unset, Rejected) and "discount_account is not set" in unset.reason


def test_fees_and_invoice_taxes_apply_after_discounts_in_hubspots_order():
    document = invoice_document(
        source(
            [line(1, "200")],
            billed="206.00",
            discounts=[adjustment(1, "PERCENT", "10")],
            fees=[adjustment(2, "FIXED", "5")],
            taxes=[adjustment(3, "PERCENT", "0")],
        ),
        RULES.model_copy(update={"fee_account": "M30.4800"}),
    )
    assert isinstance(document, Rejected)  # the parts make 185, not 206
    # 200 - 10 % = 180, + a fee of 5 = 185, + 20 % tax on 185 = 37: 222.
    document = invoice_document(
        source(
            [line(1, "200")],
            billed="222.00",
            discounts=[adjustment(1, "PERCENT", "10")],
            fees=[adjustment(2, "FIXED", "5")],
            taxes=[adjustment(3, "PERCENT", "20")],
        ),
        RULES.model_copy(update={"fee_account": "M30.4800"}),
    )
    assert isinstance(document, dict)
    assert (document["gross"], document["tax"]) == ("222.00", "37.00")
    assert distribution(document) == [("M30.4110", Decimal("180.00")), ("M30.4800", Decimal("5"))]


def test_a_total_that_does_not_add_up_is_refused_with_both_figures():
    document = invoice_document(source([line(1, "100"), line(2, "50")], billed="160"), RULES)
    assert isinstance(document, Rejected)
    assert "HubSpot bills 160.00 USD, but its line items, discounts, fees and taxes add up to 150.00 USD" in (
        document.reason
    )


def test_currencies_keep_their_decimals_yen_has_none():
    assert isinstance(invoice_document(source([line(1, "1200")], billed="1200", currency="JPY"), RULES), dict)
    document = invoice_document(source([line(1, "1200.50")], billed="1200.50", currency="JPY"), RULES)
    assert isinstance(document, Rejected)
    assert "line 'Line 1' amounts to 1200.50, more decimals than JPY has (0)" in document.reason
    kwd = invoice_document(source([line(1, "10.125")], billed="10.125", currency="KWD"), RULES)
    assert isinstance(kwd, dict) and kwd["gross"] == "10.125"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"lines": []}, "invoice INV-1001 has no line items"),
        ({"companies": 0}, "invoice INV-1001 has no company: associate exactly one company"),
        ({"companies": 2}, "invoice INV-1001 has 2 companies: associate exactly one company"),
        ({"hs_number": ""}, "invoice 9001 has no invoice number (hs_number) yet"),
        ({"hs_number": "X" * 26}, "longer than JDE's reference (VR01, 25 characters)"),
        ({"hs_currency": ""}, "invoice INV-1001 has no currency (hs_currency)"),
        (
            {"lines": [{"id": "1", "properties": {"name": "Credit", "amount": "-5"}}], "billed": "-5"},
            "JDE posts no invoice",
        ),
    ],
)
def test_what_cannot_be_posted_says_what_to_fix(changes, reason):
    arguments: dict[str, Any] = {"billed": "100", **changes}
    lines = arguments.pop("lines", [line(1, "100")])
    document = invoice_document(source(lines, **arguments), RULES)
    assert isinstance(document, Rejected)
    assert reason in document.reason


def test_a_line_without_any_account_names_the_settings_to_set():
    document = invoice_document(source([line(1, "100")], billed="100"), PostingRules())
    assert isinstance(document, Rejected)
    assert "line 'Line 1' has no JDE account: pick jde_gl_account on the line item" in document.reason
    assert "default_revenue_account" in document.reason


def test_a_long_purchase_order_goes_to_the_remark_not_cut_into_the_po_field():
    document = invoice_document(
        source([line(1, "100")], billed="100", hs_purchase_order_number="PO-2026-000123"), RULES
    )
    assert isinstance(document, dict)
    assert document["purchase_order"] is None and document["remark"] == "PO PO-2026-000123"
