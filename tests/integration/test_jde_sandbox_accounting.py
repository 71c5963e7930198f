"""``/_sandbox/`` accounting edits: a receipt keyed in JDE, a credit memo against an invoice and an
invoice raised from a sales order, each visible to a "changed since" poll and a G/L-date poll."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.jde import JdeSandbox, condition

pytestmark = pytest.mark.integration
Start = Callable[..., JdeSandbox]


def rows(sandbox: JdeSandbox, token: str, table: str, *conditions: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"targetName": table, "maxPageSize": "No Max", "query": {"condition": list(conditions)}}
    response = sandbox.browse(token, body)
    assert response.status_code == 200, response.text
    prefix = len(table) + 1
    return [
        {k[prefix:]: v for k, v in r.items()}
        for r in response.json()[f"fs_DATABROWSE_{table}"]["data"]["gridData"]["rowset"]
    ]


def today(sandbox: JdeSandbox) -> datetime:
    return datetime.now(ZoneInfo(sandbox.state.options.timezone))


def changed_today(sandbox: JdeSandbox, token: str, table: str) -> list[dict[str, Any]]:
    """A "changed since" poll: rows stamped today in the server's zone."""
    return rows(
        sandbox, token, table, condition(f"{table}.UPMJ", "GREATER_EQUAL", f"{today(sandbox):%m/%d/%Y}")
    )


def open_invoice(sandbox: JdeSandbox, token: str) -> dict[str, Any]:
    """A seeded single-pay-item USD invoice with all of it open."""
    candidates = rows(
        sandbox,
        token,
        "F03B11",
        condition("F03B11.DCT", "EQUAL", "RI"),
        condition("F03B11.PST", "EQUAL", "A"),
        condition("F03B11.CRCD", "EQUAL", "USD"),
    )
    pay_items: dict[int, list[dict[str, Any]]] = {}
    for row in candidates:
        pay_items.setdefault(row["DOC"], []).append(row)
    return next(
        items[0] for items in pay_items.values() if len(items) == 1 and items[0]["AAP"] == items[0]["AG"]
    )


def test_a_receipt_keyed_in_jde_pays_the_invoice_and_a_changed_since_poll_finds_it(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    invoice = open_invoice(sandbox, token)
    assert not changed_today(sandbox, token, "F03B11")
    result = sandbox.control(
        "POST",
        "receipts",
        {
            "customer": invoice["AN8"],
            "receipt_number": "CHK-4711",
            "amount": f"{invoice['AAP'] + 25:.2f}",
            "applications": [{"document_number": invoice["DOC"]}],
            "user": "ARCLERK",
        },
    )
    touched = {t["table"] for t in result["touched"]}
    assert touched == {"F03B11", "F03B13", "F03B14", "F0911"}
    changed = changed_today(sandbox, token, "F03B11")
    paid = next(r for r in changed if r["DOC"] == invoice["DOC"])
    assert (paid["AAP"], paid["PST"], paid["USER"], paid["PID"]) == (0.0, "P", "ARCLERK", "P03B102")
    (unapplied,) = [r for r in changed if r["DCT"] == "RU"]
    assert unapplied["AAP"] == -25.0 and unapplied["DOC"] == result["unapplied_document_number"]
    (header,) = changed_today(sandbox, token, "F03B13")
    assert (header["PYID"], header["CKNU"], header["CKAM"], header["AAP"]) == (
        result["payment_id"], "CHK-4711", invoice["AAP"] + 25, 25.0,
    )  # fmt: skip
    lines = changed_today(sandbox, token, "F03B14")
    assert [(r["DOC"], r["PAAP"]) for r in lines] == [
        (invoice["DOC"], invoice["AAP"]),
        (unapplied["DOC"], 25.0),
    ]
    entry = changed_today(sandbox, token, "F0911")
    assert sum(r["AA"] for r in entry) == 0 and {r["DCT"] for r in entry} == {"RC"}


def test_a_credit_memo_against_an_invoice_nets_it_on_a_zero_amount_receipt(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    invoice = open_invoice(sandbox, token)
    result = sandbox.control(
        "POST",
        "credit-memos",
        {"customer": invoice["AN8"], "invoice": {"document_number": invoice["DOC"]}, "amount": "10.00"},
    )
    (memo,) = rows(sandbox, token, "F03B11", condition("F03B11.DOC", "EQUAL", str(result["document_number"])))
    assert (memo["DCT"], memo["AG"], memo["AAP"], memo["PST"]) == ("RM", -10.0, 0.0, "P")
    assert (memo["ODOC"], memo["ODCT"], memo["OKCO"]) == (invoice["DOC"], "RI", invoice["KCO"])
    (reduced,) = rows(sandbox, token, "F03B11", condition("F03B11.DOC", "EQUAL", str(invoice["DOC"])))
    assert reduced["AAP"] == pytest.approx(invoice["AAP"] - 10) and reduced["PST"] == "A"
    (header,) = rows(sandbox, token, "F03B13", condition("F03B13.PYID", "EQUAL", str(result["payment_id"])))
    assert header["CKAM"] == 0.0 and header["CKNU"] == f"RM{result['document_number']}"
    lines = rows(sandbox, token, "F03B14", condition("F03B14.PYID", "EQUAL", str(result["payment_id"])))
    assert [(r["DCT"], r["PAAP"], r["DCTM"]) for r in lines] == [("RI", 10.0, "RS"), ("RM", -10.0, "RS")]
    (debit,) = rows(sandbox, token, "F0911", condition("F0911.DOC", "EQUAL", str(result["document_number"])))
    assert (debit["ANI"].split(".")[1], debit["AA"]) == ("4900", 10.0)


def test_a_credit_memo_left_unapplied_and_one_larger_than_the_invoice(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    invoice = open_invoice(sandbox, token)
    body = {"customer": invoice["AN8"], "invoice": {"document_number": invoice["DOC"]}, "amount": "5.00"}
    result = sandbox.control("POST", "credit-memos", {**body, "apply": False})
    assert "payment_id" not in result
    (memo,) = rows(sandbox, token, "F03B11", condition("F03B11.DOC", "EQUAL", str(result["document_number"])))
    assert (memo["AAP"], memo["PST"]) == (-5.0, "A")
    too_much = {**body, "amount": f"{invoice['AAP'] + 1:.2f}"}
    response = sandbox.http.post(f"{sandbox.url}/_sandbox/credit-memos", json=too_much, timeout=10)
    assert response.status_code == 422 and "5515" in response.text


def test_an_invoice_raised_from_a_sales_order_links_history_lines_invoice_and_revenue(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    (item,) = rows(sandbox, token, "F4101", condition("F4101.ITM", "EQUAL", "60006"))
    result = sandbox.control(
        "POST",
        "sales-invoices",
        {
            "customer": 10000,
            "reference": "WEB-ORDER-77",
            "invoice_date": "2026-02-03",
            "lines": [
                {"item": item["LITM"], "quantity": 3},
                {"item": "60009", "quantity": 2, "unit_price": "9.99"},
            ],
        },
    )
    order, doc = result["order_number"], result["document_number"]
    lines = rows(sandbox, token, "F42119", condition("F42119.DOCO", "EQUAL", str(order)))
    assert [(r["LNID"], r["ITM"], r["UORG"]) for r in lines] == [(1.0, 60006, 3), (2.0, 60009, 2)]
    assert all(
        (r["DCTO"], r["DOC"], r["DCT"], r["KCO"], r["AN8"]) == ("SO", doc, "RI", "00001", 10000)
        for r in lines
    )
    assert lines[1]["AEXP"] == 19.98 and lines[0]["AEXP"] == pytest.approx(lines[0]["UPRC"] * 3, abs=0.005)
    assert all(r["TDAY"] and r["PID"] == "R42800" for r in lines)
    (billed,) = rows(sandbox, token, "F03B11", condition("F03B11.DOC", "EQUAL", str(doc)))
    assert (billed["DCT"], billed["SDOC"], billed["SDCT"], billed["VR01"]) == (
        "RI",
        order,
        "SO",
        "WEB-ORDER-77",
    )
    assert billed["AG"] == pytest.approx(sum(r["AEXP"] for r in lines))
    assert billed["DOC"] > 90_000_000, "DOC from next numbers"
    revenue = rows(
        sandbox,
        token,
        "F0911",
        condition("F0911.DGJ", "EQUAL", "02/03/2026"),
        condition("F0911.DOC", "EQUAL", str(doc)),
    )
    assert [(r["ANI"], r["AA"]) for r in revenue] == [("M30.4110", -r["AEXP"]) for r in lines]
    by_stamp = rows(
        sandbox, token, "F42119", condition("F42119.UPMJ", "GREATER_EQUAL", f"{today(sandbox):%m/%d/%Y}")
    )
    assert {r["DOCO"] for r in by_stamp} == {order}


def test_accounting_edits_refuse_unknown_items_and_documents_of_other_customers(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    invoice = open_invoice(sandbox, token)
    post = sandbox.http.post
    unknown_item = {"customer": 10000, "lines": [{"item": "NO-SUCH-ITEM", "quantity": 1}]}
    assert post(f"{sandbox.url}/_sandbox/sales-invoices", json=unknown_item, timeout=10).status_code == 404
    other = 10001 if invoice["AN8"] != 10001 else 10002
    stolen = {"customer": other, "receipt_number": "X", "applications": [{"document_number": invoice["DOC"]}]}
    assert post(f"{sandbox.url}/_sandbox/receipts", json=stolen, timeout=10).status_code in (404, 422)
    assert not changed_today(sandbox, token, "F03B13"), "a refused edit writes nothing"
