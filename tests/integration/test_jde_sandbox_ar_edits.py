"""The ``/_sandbox/`` edits the A/R status flow is tested with, on the wire: an invoice keyed in
P03B11, a void (refused while receipts are applied), a receipt voided in P03B102 and a write-off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.integration.test_jde_sandbox_ledgers import CUSTOMER, rows
from tests.support.jde import JdeSandbox, condition

pytestmark = pytest.mark.integration
Start = Callable[..., JdeSandbox]


def refused(sandbox: JdeSandbox, path: str, body: dict[str, Any]) -> str:
    response = requests.post(f"{sandbox.url}/_sandbox/{path}", json=body, timeout=30)
    assert response.status_code == 422, response.text
    return str(response.json()["detail"])


def test_an_invoice_keyed_in_p03b11_books_its_lines_and_a_void_reverses_it(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    made = sandbox.control(
        "POST",
        "invoices",
        {
            "customer": CUSTOMER,
            "lines": [
                {"amount": "300.00", "remark": "Installation"},
                {"amount": "120.50", "account": "M30.4120"},
            ],
            "tax": "42.05",
            "reference": "CUST-PO-9",
        },
    )
    doc = str(made["document_number"])
    (item,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", doc))
    assert (item["DCT"], item["AG"], item["AAP"], item["STAM"], item["VR01"], item["PID"]) == (
        "RI", 462.55, 462.55, 42.05, "CUST-PO-9", "P03B11",
    )  # fmt: skip
    assert item["DDJ"] > item["DIVJ"], "due by the customer's payment terms"
    entry = rows(sandbox, "F0911", condition("F0911.DOC", "EQUAL", doc))
    assert [(r["ANI"], r["AA"], r["EXR"]) for r in entry] == [
        ("M30.4110", -300.0, "Installation"),
        ("M30.4120", -120.5, ""),
    ]
    touched = {t["table"] for t in made["touched"]}
    assert touched == {"F03B11", "F0911"}

    sandbox.control("POST", "documents/void", {"customer": CUSTOMER, "document_number": int(doc)})
    (voided,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", doc))
    assert (voided["VOD"], voided["AAP"], voided["PST"]) == ("V", 0.0, "P")
    entry = rows(sandbox, "F0911", condition("F0911.DOC", "EQUAL", doc))
    assert sum(r["AA"] for r in entry) == 0 and len({r["JELN"] for r in entry}) == 4
    assert "5561" in refused(sandbox, "documents/void", {"customer": CUSTOMER, "document_number": int(doc)})


def test_a_document_with_receipts_is_not_voided_until_its_receipt_is(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    doc = sandbox.control("POST", "invoices", {"customer": CUSTOMER, "lines": [{"amount": "200.00"}]})[
        "document_number"
    ]
    application = {"document_number": doc, "amount": "80.00"}
    first = sandbox.control(
        "POST", "receipts", {"customer": CUSTOMER, "receipt_number": "CHK-1", "applications": [application]}
    )
    sandbox.control(
        "POST", "receipts", {"customer": CUSTOMER, "receipt_number": "CHK-1", "applications": [application]}
    )
    (item,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", str(doc)))
    assert item["AAP"] == 40.0, "a receipt keyed twice is applied twice"
    assert "5560" in refused(sandbox, "documents/void", {"customer": CUSTOMER, "document_number": doc})

    voided = sandbox.control("POST", f"receipts/{first['payment_id']}/void", {"reason": "dup"})
    assert voided["reopened"] == [doc]
    (item,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", str(doc)))
    assert item["AAP"] == 120.0
    (header,) = rows(sandbox, "F03B13", condition("F03B13.PYID", "EQUAL", str(first["payment_id"])))
    assert (header["VRE"], header["NFVD"]) == ("DUP", "V")


def test_a_write_off_closes_what_the_receipt_does_not_pay(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    doc = sandbox.control("POST", "invoices", {"customer": CUSTOMER, "lines": [{"amount": "80.00"}]})[
        "document_number"
    ]
    paid = sandbox.control(
        "POST",
        "receipts",
        {
            "customer": CUSTOMER,
            "receipt_number": "CHK-WO",
            "applications": [{"document_number": doc, "write_off": "30.00", "write_off_reason": "bd"}],
        },
    )
    (item,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", str(doc)))
    assert (item["AAP"], item["PST"]) == (0.0, "P")
    (line,) = rows(sandbox, "F03B14", condition("F03B14.PYID", "EQUAL", str(paid["payment_id"])))
    assert (line["PAAP"], line["AWAT"], line["RSCO"]) == (50.0, 30.0, "BD")
    (header,) = rows(sandbox, "F03B13", condition("F03B13.PYID", "EQUAL", str(paid["payment_id"])))
    assert header["CKAM"] == 50.0, "the cash is what was paid, not what was closed"
    entry = rows(sandbox, "F0911", condition("F0911.DOC", "EQUAL", str(paid["payment_id"])))
    assert sorted((r["ANI"], r["AA"]) for r in entry) == [
        ("M30.1110", 50.0),
        ("M30.1210", -80.0),
        ("M30.4910", 30.0),
    ]
