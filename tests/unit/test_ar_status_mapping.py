"""A/R status mapping, pure: pay status, open amount and last receipt of a document; the HubSpot
invoice of a document raised in JDE (line items that add up to JDE's gross); a company's roll-ups."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_mlconn.jde.models import (
    AccountLedgerRow,
    CustomerLedgerRow,
    ReceiptDetailRow,
    ReceiptHeaderRow,
    SalesOrderLineRow,
)
from airflow_provider_mlconn.mapping.ar_status import (
    Document,
    balance_properties,
    jde_invoice,
    money_text,
    pay_status,
    receipt_dates,
    status_properties,
)
from airflow_provider_mlconn.rejection import Rejection

pytestmark = pytest.mark.unit

DOC = 90000123


def item(pay_item: str = "001", **values: Any) -> CustomerLedgerRow:
    row: dict[str, Any] = {
        "DOC": DOC, "DCT": "RI", "KCO": "00001", "SFX": pay_item, "AN8": 10001, "CRCD": "USD", "CRRM": "D",
        "AG": "100.00", "AAP": "100.00", "STAM": "0", "DIVJ": "20261102", "DGJ": "20261102",
        "DDJ": "20261202", "ICU": 500123, "VOD": "",
    }  # fmt: skip
    row.update(values)
    return CustomerLedgerRow.model_validate(row)


def line(pyid: int, paid: str, **values: Any) -> ReceiptDetailRow:
    row: dict[str, Any] = {
        "PYID": pyid, "RC5": 1, "DOC": DOC, "DCT": "RI", "KCO": "00001", "SFX": "001", "PAAP": paid,
        "DCTM": "RC", "DGJ": "20261110",
    }  # fmt: skip
    row.update(values)
    return ReceiptDetailRow.model_validate(row)


def receipt(pyid: int, day: str, amount: str = "60.00", **values: Any) -> ReceiptHeaderRow:
    return ReceiptHeaderRow.model_validate({"PYID": pyid, "DMTJ": day, "DGJ": day, "CKAM": amount, **values})


def test_pay_status_follows_the_open_amount_voids_and_write_offs() -> None:
    assert pay_status(Document((item(),))) == "open"
    assert pay_status(Document((item(AAP="40.00"),), (line(1, "60.00"),))) == "partially_paid"
    assert pay_status(Document((item(AAP="0"),), (line(1, "100.00"),))) == "paid"
    written_off = line(1, "70.00", AWAT="30.00", RSCO="BD")
    assert pay_status(Document((item(AAP="0"),), (written_off,))) == "written_off"
    assert pay_status(Document((item(AAP="0", VOD="V"),))) == "voided"
    assert pay_status(Document((item(AG="0", AAP="0"),))) == "paid", "nothing was ever owed"
    two_items = Document((item("001", AAP="0"), item("002", AG="50.00", AAP="50.00")))
    assert pay_status(two_items) == "partially_paid" and two_items.gross == Decimal("150.00")


def test_a_voided_receipt_and_credit_memo_netting_do_not_count_as_receipts() -> None:
    kept, voided, netting = line(1, "30.00"), line(2, "30.00", VDGJ="20261112"), line(3, "40.00", DCTM="RS")
    reversal = line(2, "-30.00", RC5=2, DCTM="RO", DGJ="20261112")
    dates = receipt_dates(
        [receipt(1, "20261105"), receipt(2, "20261111", VDGJ="20261112"), receipt(3, "20261115", "0")]
    )
    document = Document((item(AAP="30.00"),), (kept, voided, reversal, netting), dates)
    assert status_properties(document) == {
        "jde_open_amount": "30.00",
        "jde_pay_status": "partially_paid",
        "jde_last_receipt_date": "2026-11-05",
    }


def test_a_foreign_document_shows_its_own_currency_and_yen_has_no_decimals() -> None:
    yen = Document((item(CRCD="JPY", CRRM="F", AG="812.40", AAP="812.40", ACR="123456.00", FAP="23456.00"),))
    assert status_properties(yen)["jde_open_amount"] == "23456"
    assert (yen.gross, pay_status(yen)) == (Decimal("123456.00"), "partially_paid")
    assert money_text(Decimal("12.5"), "KWD") == "12.500"


def sales_line(number: int, quantity: int, extended: str, description: str = "Pump") -> SalesOrderLineRow:
    return SalesOrderLineRow.model_validate(
        {
            "DOCO": 70000001,
            "DCTO": "SO",
            "KCOO": "00001",
            "LNID": f"{number}.000",
            "UORG": quantity,
            "UPRC": "0",
            "AEXP": extended,
            "DSC1": description,
            "LITM": f"PMP-{number}",
            "DOC": DOC,
            "DCT": "RI",
            "KCO": "00001",
        }
    )


def journal(number: int, amount: str, remark: str = "", obj: str = "4110") -> AccountLedgerRow:
    return AccountLedgerRow.model_validate(
        {
            "KCO": "00001",
            "DCT": "RI",
            "DOC": DOC,
            "DGJ": "20261102",
            "JELN": number * 10,
            "LT": "AA",
            "EXTL": "",
            "OBJ": obj,
            "ANI": f"M30.{obj}",
            "AA": amount,
            "EXR": remark,
        }
    )


def test_a_sales_order_invoice_gets_its_billed_lines_with_hubspots_amounts_equal_to_jdes() -> None:
    document = Document((item(AG="117.50", AAP="117.50", SDOC=70000001, SDCT="SO"),))
    mapped = jde_invoice(
        document, sales_lines=[sales_line(1, 3, "37.50"), sales_line(2, 3, "80.00", "Valve")]
    )
    assert not isinstance(mapped, Rejection)
    lines = mapped["lines"]
    assert [(li["name"], li["quantity"], li["price"]) for li in lines] == [
        ("Pump", "3", "12.5"),
        ("Valve (3 units)", "1", "80"),  # 80 / 3 is no exact price: one line for the amount
    ]
    assert [li["jde_line_key"] for li in lines] == [f"00001-RI-{DOC}-001", f"00001-RI-{DOC}-002"]
    assert lines[0]["hs_sku"] == "PMP-1" and mapped["notes"] == []
    invoice = mapped["invoice"]
    assert invoice["hs_invoice_billable"] == "false" and invoice["jde_document_key"] == f"00001-RI-{DOC}"
    assert (invoice["hs_invoice_date"], invoice["hs_due_date"], invoice["hs_currency"]) == (
        "2026-11-02",
        "2026-12-02",
        "USD",
    )


def test_a_keyed_invoice_gets_its_revenue_lines_and_the_tax_on_the_largest() -> None:
    document = Document((item(AG="462.55", AAP="462.55", STAM="42.05"),))
    entry = [
        journal(1, "-300.00", "Installation"),
        journal(2, "-120.50", "Freight"),
        journal(3, "462.55", obj="1210"),
    ]
    mapped = jde_invoice(document, journal_lines=entry)
    assert not isinstance(mapped, Rejection)
    assert [(li["name"], li["price"], li.get("tax")) for li in mapped["lines"]] == [
        ("Installation", "300", "42.05"),
        ("Freight", "120.5", None),
    ]


def test_lines_that_do_not_add_up_become_one_line_for_the_document_and_a_credit_is_refused() -> None:
    document = Document((item(AG="250.00", AAP="250.00"),))
    mapped = jde_invoice(document, journal_lines=[journal(1, "-200.00", "Parts")])
    assert not isinstance(mapped, Rejection)
    assert [(li["name"], li["price"]) for li in mapped["lines"]] == [(f"JD Edwards RI {DOC}", "250")]
    assert "add up to 200.00 USD, the document to 250.00 USD" in mapped["notes"][0]
    refused = jde_invoice(Document((item(DCT="RM", AG="-50.00", AAP="-50.00"),)))
    assert isinstance(refused, Rejection) and "cannot be negative" in refused.reason


def test_balance_counts_open_items_in_the_customers_currency_and_only_invoices_fall_overdue() -> None:
    as_of = date(2026, 11, 30)
    items = [
        item(DOC=1, AAP="100.00", DDJ="20261001"),  # overdue
        item(DOC=2, AAP="40.00", DDJ="20261215"),  # not due yet
        item(DOC=3, DCT="RM", AG="-25.00", AAP="-25.00", DDJ="20260901"),  # a credit: never overdue
        item(DOC=4, DCT="RU", AG="-10.00", AAP="-10.00", DDJ="20260915"),  # unapplied cash
        item(DOC=5, CRCD="EUR", AAP="70.00", DDJ="20260101"),  # another currency
        item(DOC=6, AAP="55.00", VOD="V"),
    ]
    receipts = [receipt(7, "20261120"), receipt(8, "20261125", VDGJ="20261126"), receipt(9, "20261128", "0")]
    mapped = balance_properties(items, receipts, currency="USD", as_of=as_of)
    assert mapped["properties"] == {
        "jde_open_ar_balance": "105.00",
        "jde_overdue_ar_balance": "100.00",
        "jde_oldest_open_due_date": "2026-10-01",
        "jde_last_payment_date": "2026-11-20",
    }
    assert mapped["notes"] == ["open items in EUR (70.00 EUR) are not in the USD balance"]
    empty = balance_properties([], [], currency="JPY", as_of=as_of)["properties"]
    assert empty == {
        "jde_open_ar_balance": "0",
        "jde_overdue_ar_balance": "0",
        "jde_oldest_open_due_date": "",
        "jde_last_payment_date": "",
    }
