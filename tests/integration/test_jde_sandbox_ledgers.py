"""The AIS sandbox's write orchestrations on the wire: credit memos, vouchers, receipts with unapplied
cash, voids, the duplicate-check switch and answers lost after the commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.support.jde import PASSWORD, USERNAME, JdeSandbox, condition

pytestmark = pytest.mark.integration
Start = Callable[..., JdeSandbox]
CUSTOMER = 10000  # company 00001, USD
SUPPLIER = 10017


def run(sandbox: JdeSandbox, name: str, inputs: dict[str, Any]) -> requests.Response:
    return sandbox.ais("POST", f"/v3/orchestrator/{name}", inputs, auth=(USERNAME, PASSWORD))


def ok(sandbox: JdeSandbox, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    response = run(sandbox, name, inputs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["jde__status"] == "SUCCESS"
    return body


def refused(sandbox: JdeSandbox, name: str, inputs: dict[str, Any]) -> tuple[str, str]:
    """(code, field) of a business error."""
    response = run(sandbox, name, inputs)
    assert response.status_code == 500, response.text
    body = response.json()
    return body["errorText"].split(" ")[0], body["userDefinedErrorText"].split(": ")[0]


def rows(sandbox: JdeSandbox, table: str, *conditions: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"targetName": table, "maxPageSize": "No Max", "query": {"condition": list(conditions)}}
    response = sandbox.ais(
        "POST", "/v2/dataservice", {"targetType": "table", **body}, auth=(USERNAME, PASSWORD)
    )
    assert response.status_code == 200, response.text
    prefix = len(table) + 1
    return [
        {k[prefix:]: v for k, v in r.items()}
        for r in response.json()[f"fs_DATABROWSE_{table}"]["data"]["gridData"]["rowset"]
    ]


def invoice(reference: str, amount: str = "300.00") -> dict[str, Any]:
    return {
        "CustomerNumber": CUSTOMER,
        "Company": "00001",
        "ExternalReference": reference,
        "InvoiceDate": "01/15/2026",
        "PayItems": [{"GrossAmount": amount}],
        "GLDistribution": [{"Account": "M30.4110", "Amount": amount}],
    }


def credit_memo(reference: str, amount: str = "50.00", **extra: Any) -> dict[str, Any]:
    return {
        "CustomerNumber": CUSTOMER,
        "Company": "00001",
        "ExternalReference": reference,
        "InvoiceDate": "01/20/2026",
        "Remark": "returned goods",
        "PayItems": [{"GrossAmount": amount}],
        "GLDistribution": [{"Account": "M30.4900", "Amount": amount}],
        **extra,
    }


def voucher(supplier_invoice: str, amount: str = "80.00", **extra: Any) -> dict[str, Any]:
    return {
        "SupplierNumber": SUPPLIER,
        "Company": "00001",
        "SupplierInvoiceNumber": supplier_invoice,
        "InvoiceDate": "01/10/2026",
        "PayItems": [{"GrossAmount": amount}],
        "GLDistribution": [{"Account": "M30.6110", "Amount": amount}],
        **extra,
    }


def receipt(number: str, amount: str, applications: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "CustomerNumber": CUSTOMER,
        "Company": "00001",
        "ReceiptNumber": number,
        "ReceiptDate": "01/25/2026",
        "Amount": amount,
        "Applications": applications,
    }


def test_a_credit_memo_is_stored_negative_tied_to_its_invoice_with_debit_gl_lines(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    posted = ok(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-CM-1"))
    original = {"DocumentNumber": posted["DocumentNumber"], "DocumentType": "RI", "DocumentCompany": "00001"}
    memo = ok(sandbox, "ORCH_55_CreateCreditMemo", credit_memo("CM-1", OriginalDocument=original))
    assert (memo["DocumentType"], memo["GrossAmount"], memo["OriginalDocument"]) == ("RM", "-50.00", original)
    (item,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", memo["DocumentNumber"]))
    assert (item["DCT"], item["AG"], item["AAP"], item["PST"], item["VR01"]) == (
        "RM",
        -50.0,
        -50.0,
        "A",
        "CM-1",
    )
    assert (item["ODOC"], item["ODCT"], item["OKCO"]) == (int(posted["DocumentNumber"]), "RI", "00001")
    (line,) = rows(sandbox, "F0911", condition("F0911.DOC", "EQUAL", memo["DocumentNumber"]))
    assert (line["DCT"], line["ANI"], line["AA"]) == ("RM", "M30.4900", 50.0)
    (still_open,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", posted["DocumentNumber"]))
    assert still_open["AAP"] == 300.0, "a credit memo is an open item of its own until it is applied"


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"PayItems": [{"GrossAmount": "-50.00"}]}, "5510", "PayItems[0].GrossAmount"),
        ({"OriginalDocument": {"DocumentNumber": "12345678"}}, "5513", "OriginalDocument.DocumentNumber"),
        ({"GLDistribution": [{"Account": "M30.4900", "Amount": "40.00"}]}, "5503", "GLDistribution"),
        (
            {"GLDistribution": [{"Account": "M30.4190", "Amount": "50.00"}]},
            "0026",
            "GLDistribution[0].Account",
        ),
    ],
)
def test_credit_memo_business_errors_name_the_field(
    jde_sandbox: Start, changes: dict[str, Any], code: str, field: str
) -> None:
    sandbox = jde_sandbox()
    assert refused(sandbox, "ORCH_55_CreateCreditMemo", credit_memo("CM-BAD", **changes)) == (code, field)
    assert not rows(sandbox, "F03B11", condition("F03B11.VR01", "EQUAL", "CM-BAD"))


def test_a_voucher_writes_f0411_and_expense_debits_and_refuses_a_customer(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    posted = ok(sandbox, "ORCH_55_CreateVoucher", voucher("SUP-INV-7", "80.00", DueDate="02/28/2026"))
    assert (posted["DocumentType"], posted["GrossAmount"], posted["DueDate"]) == ("PV", "80.00", "02/28/2026")
    (item,) = rows(sandbox, "F0411", condition("F0411.DOC", "EQUAL", posted["DocumentNumber"]))
    assert (item["AN8"], item["VINV"], item["AG"], item["AAP"], item["PST"]) == (
        SUPPLIER,
        "SUP-INV-7",
        80,
        80,
        "A",
    )
    assert (item["SFX"], item["SFXE"], item["ICUT"], item["PID"]) == ("001", 0, "V", "P0411")
    (line,) = rows(sandbox, "F0911", condition("F0911.DOC", "EQUAL", posted["DocumentNumber"]))
    assert (line["DCT"], line["ANI"], line["AA"], line["AN8"]) == ("PV", "M30.6110", 80.0, SUPPLIER)
    assert refused(sandbox, "ORCH_55_CreateVoucher", {**voucher("X"), "SupplierNumber": CUSTOMER}) == (
        "0037",
        "SupplierNumber",
    )


def test_a_duplicate_reference_is_refused_with_the_check_on_and_accepted_with_it_off(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox()
    ok(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-DUP"))
    ok(sandbox, "ORCH_55_CreateCreditMemo", credit_memo("CM-DUP"))
    ok(sandbox, "ORCH_55_CreateVoucher", voucher("V-DUP"))
    ok(sandbox, "ORCH_55_CreateReceipt", receipt("PAY-DUP", "10.00", []))
    assert refused(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-DUP")) == (
        "5502",
        "ExternalReference",
    )
    assert refused(sandbox, "ORCH_55_CreateCreditMemo", credit_memo("CM-DUP")) == (
        "5530",
        "ExternalReference",
    )
    assert refused(sandbox, "ORCH_55_CreateVoucher", voucher("V-DUP")) == ("5540", "SupplierInvoiceNumber")
    assert refused(sandbox, "ORCH_55_CreateReceipt", receipt("PAY-DUP", "10.00", [])) == (
        "5512",
        "ReceiptNumber",
    )
    assert sandbox.control("PATCH", "settings", {"duplicate_check": False})["duplicate_check"] is False
    ok(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-DUP"))
    ok(sandbox, "ORCH_55_CreateCreditMemo", credit_memo("CM-DUP"))
    ok(sandbox, "ORCH_55_CreateVoucher", voucher("V-DUP"))
    ok(sandbox, "ORCH_55_CreateReceipt", receipt("PAY-DUP", "10.00", []))
    assert len({r["DOC"] for r in rows(sandbox, "F03B11", condition("F03B11.VR01", "EQUAL", "HS-DUP"))}) == 2
    assert len(rows(sandbox, "F0411", condition("F0411.VINV", "EQUAL", "V-DUP"))) == 2
    assert len(rows(sandbox, "F03B13", condition("F03B13.CKNU", "EQUAL", "PAY-DUP"))) == 2


def test_the_duplicate_check_can_be_off_from_the_start(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox(duplicate_check=False)
    first = ok(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-TWICE"))
    second = ok(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-TWICE"))
    assert first["DocumentNumber"] != second["DocumentNumber"]
    assert sandbox.stats()["options"]["duplicate_check"] is False


def test_cash_a_receipt_does_not_apply_becomes_an_ru_document_with_a_negative_open_amount(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox()
    posted = ok(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-RU", "300.00"))
    paid = ok(
        sandbox,
        "ORCH_55_CreateReceipt",
        receipt("PAY-RU", "500.00", [{"DocumentNumber": posted["DocumentNumber"], "Amount": "300.00"}]),
    )
    assert (paid["AppliedAmount"], paid["UnappliedAmount"]) == ("300.00", "200.00")
    unapplied = paid["UnappliedDocument"]
    assert (unapplied["DocumentType"], unapplied["OpenAmount"]) == ("RU", "-200.00")
    (document,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", unapplied["DocumentNumber"]))
    assert (document["DCT"], document["AG"], document["AAP"], document["PST"]) == ("RU", -200.0, -200.0, "A")
    assert document["PYID"] == int(paid["PaymentId"]) and document["AN8"] == CUSTOMER
    (header,) = rows(sandbox, "F03B13", condition("F03B13.PYID", "EQUAL", paid["PaymentId"]))
    assert (header["CKAM"], header["AAP"]) == (500.0, 200.0)
    lines = rows(sandbox, "F03B14", condition("F03B14.PYID", "EQUAL", paid["PaymentId"]))
    assert [(r["DCT"], r["PAAP"], r["DCTM"]) for r in lines] == [("RI", 300.0, "RC"), ("RU", 200.0, "RU")]
    entry = rows(sandbox, "F0911", condition("F0911.DOC", "EQUAL", paid["PaymentId"]))
    assert [(r["ANI"], r["AA"]) for r in entry] == [
        ("M30.1110", 500.0),
        ("M30.1210", -300.0),
        ("M30.1290", -200.0),
    ]


def test_voiding_a_receipt_reopens_its_invoice_voids_its_ru_and_a_second_void_is_refused(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox()
    posted = ok(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-VOID", "300.00"))
    paid = ok(
        sandbox,
        "ORCH_55_CreateReceipt",
        receipt("PAY-VOID", "350.00", [{"DocumentNumber": posted["DocumentNumber"], "Amount": "300.00"}]),
    )
    voided = ok(
        sandbox,
        "ORCH_55_VoidReceipt",
        {
            "ReceiptNumber": "PAY-VOID",
            "CustomerNumber": CUSTOMER,
            "VoidDate": "02/01/2026",
            "VoidReason": "nsf",
        },
    )
    assert (voided["PaymentId"], voided["VoidReason"], voided["ReversalLineCount"]) == (
        paid["PaymentId"],
        "NSF",
        "2",
    )
    assert [(d["DocumentNumber"], d["OpenAmount"], d["PayStatus"]) for d in voided["ReopenedDocuments"]] == [
        (posted["DocumentNumber"], "300.00", "A")
    ]
    (reopened,) = rows(sandbox, "F03B11", condition("F03B11.DOC", "EQUAL", posted["DocumentNumber"]))
    assert (reopened["AAP"], reopened["PST"]) == (300.0, "A")
    (ru,) = rows(sandbox, "F03B11", condition("F03B11.PYID", "EQUAL", paid["PaymentId"]))
    assert (ru["DCT"], ru["AAP"], ru["VOD"], ru["VDGJ"]) == ("RU", 0.0, "V", "20260201")
    (header,) = rows(sandbox, "F03B13", condition("F03B13.PYID", "EQUAL", paid["PaymentId"]))
    assert (header["VDGJ"], header["VRE"], header["AAP"]) == ("20260201", "NSF", 0.0)
    lines = rows(sandbox, "F03B14", condition("F03B14.PYID", "EQUAL", paid["PaymentId"]))
    assert [(r["DCTM"], r["PAAP"], r["VDGJ"]) for r in lines] == [
        ("RC", 300.0, "20260201"),
        ("RU", 50.0, "20260201"),
        ("RO", -300.0, "20260201"),
        ("RO", -50.0, "20260201"),
    ]
    reversal = rows(
        sandbox,
        "F0911",
        condition("F0911.DOC", "EQUAL", paid["PaymentId"]),
        condition("F0911.DCT", "EQUAL", "RO"),
    )
    assert sorted(r["AA"] for r in reversal) == [-350.0, 50.0, 300.0]
    again = {"PaymentId": paid["PaymentId"], "VoidReason": "NSF"}
    assert refused(sandbox, "ORCH_55_VoidReceipt", again) == ("5551", "PaymentId")
    assert refused(sandbox, "ORCH_55_VoidReceipt", {"PaymentId": "1", "VoidReason": "NSF"}) == (
        "5550",
        "PaymentId",
    )
    early = {"PaymentId": paid["PaymentId"], "VoidReason": "X", "VoidDate": "01/01/2026"}
    assert refused(sandbox, "ORCH_55_VoidReceipt", early)[0] == "5551", "already voided wins over the date"


def test_a_seeded_receipt_can_be_voided_and_its_invoice_reopens(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    header = next(r for r in rows(sandbox, "F03B13", condition("F03B13.AAP", "EQUAL", "0")) if r["CKAM"] > 0)
    lines = rows(sandbox, "F03B14", condition("F03B14.PYID", "EQUAL", str(header["PYID"])))
    voided = ok(sandbox, "ORCH_55_VoidReceipt", {"PaymentId": str(header["PYID"]), "VoidReason": "ERR"})
    assert len(voided["ReopenedDocuments"]) == len(lines)
    for line in lines:
        (item,) = rows(
            sandbox,
            "F03B11",
            condition("F03B11.DOC", "EQUAL", str(line["DOC"])),
            condition("F03B11.SFX", "EQUAL", line["SFX"]),
        )
        assert item["AAP"] >= line["PAAP"] and item["PST"] == "A"


def test_with_fault_after_commit_rate_1_every_call_loses_its_answer_yet_the_documents_are_posted(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox(fault_after_commit_rate=1.0)
    outcomes = []
    for n in range(8):
        try:
            response = run(sandbox, "ORCH_55_CreateCustomerInvoice", invoice(f"HS-LOST-{n}"))
        except requests.ConnectionError:
            outcomes.append("dropped")
        else:
            assert response.status_code == 504 and response.headers["content-type"].startswith("text/html")
            assert "Gateway Timeout" in response.text
            outcomes.append("504")
    assert set(outcomes) == {"dropped", "504"}
    posted = rows(sandbox, "F03B11", condition("F03B11.VR01", "STR_START_WITH", "HS-LOST-"))
    assert sorted(r["VR01"] for r in posted) == sorted(f"HS-LOST-{n}" for n in range(8))
    stats = sandbox.stats()
    assert stats["orchestrations"]["ORCH_55_CreateCustomerInvoice committed_response_lost"] == 8
    assert "ORCH_55_CreateCustomerInvoice success" not in stats["orchestrations"]
    faults = stats["faults"]
    assert faults["after_commit_dropped"] + faults["after_commit_gateway_timeouts"] == 8
    assert faults["after_commit_dropped"] == outcomes.count("dropped")
    # the retry a client makes is a duplicate: answered, because nothing new was committed
    assert refused(sandbox, "ORCH_55_CreateCustomerInvoice", invoice("HS-LOST-0")) == (
        "5502",
        "ExternalReference",
    )


def test_the_after_commit_fault_can_be_switched_at_run_time_and_spares_refused_calls(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox()
    assert sandbox.control("GET", "settings") == {
        "duplicate_check": True,
        "fault_after_commit_rate": 0.0,
        "fault_rate": 0.0,
        "latency_ms": 0.0,
    }
    sandbox.control("PATCH", "settings", {"fault_after_commit_rate": 1.0})
    assert refused(sandbox, "ORCH_55_CreateVoucher", voucher("V-1", SupplierNumber=CUSTOMER))[0] == "0037"
    with pytest.raises(requests.RequestException):
        response = run(sandbox, "ORCH_55_CreateVoucher", voucher("V-1"))
        response.raise_for_status()
    sandbox.control("PATCH", "settings", {"fault_after_commit_rate": 0.0})
    assert refused(sandbox, "ORCH_55_CreateVoucher", voucher("V-1")) == ("5540", "SupplierInvoiceNumber")
    assert sandbox.ais("PATCH", f"{sandbox.url}/_sandbox/settings", {"fault_rate": 2}).status_code == 422


def key_after(table: str, key: list[str], row: dict[str, Any]) -> dict[str, Any]:
    """``k1 > v1 OR (k1 = v1 AND k2 > v2) ...``: where a client resumes after a lost page."""
    entries = []
    for depth, column in enumerate(key):
        equal = [condition(f"{table}.{c}", "EQUAL", str(row[c])) for c in key[:depth]]
        entries.append(
            {
                "andOr": "OR",
                "query": {
                    "matchType": "MATCH_ALL",
                    "condition": [*equal, condition(f"{table}.{column}", "GREATER", str(row[column]))],
                },
            }
        )
    return {"complexQuery": entries}


@pytest.mark.parametrize(
    ("table", "key"),
    [("F42119", ["DOCO", "DCTO", "KCOO", "LNID"]), ("F0411", ["DOC", "DCT", "KCO", "SFX", "SFXE"])],
)
def test_the_new_ledgers_page_in_key_order_and_resume_by_key(
    jde_sandbox: Start, table: str, key: list[str]
) -> None:
    sandbox = jde_sandbox()
    everything = rows(sandbox, table)
    assert len(everything) > 20
    assert [tuple(r[c] for c in key) for r in everything] == sorted(
        tuple(r[c] for c in key) for r in everything
    )
    token = sandbox.login()
    body = {"targetName": table, "maxPageSize": "7", "enableNextPageProcessing": True}
    page = sandbox.browse(token, body).json()
    seen = page[f"fs_DATABROWSE_{table}"]["data"]["gridData"]["rowset"]
    # the next page is lost (say the connection dropped): the client asks for what follows the last key
    last = {k[len(table) + 1 :]: v for k, v in seen[-1].items()}
    response = sandbox.ais(
        "POST",
        "/v2/dataservice",
        {
            "targetName": table,
            "targetType": "table",
            "maxPageSize": "No Max",
            "query": key_after(table, key, last),
        },
        auth=(USERNAME, PASSWORD),
    )
    assert response.status_code == 200, response.text
    resumed = response.json()[f"fs_DATABROWSE_{table}"]["data"]["gridData"]["rowset"]
    assert len(seen) + len(resumed) == len(everything)
    assert [r[f"{table}_{key[0]}"] for r in resumed] == [r[key[0]] for r in everything[len(seen) :]]


def test_base_prices_answer_list_queries_on_the_item_and_carry_their_whole_key(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    prices = rows(sandbox, "F4106", condition("F4106.ITM", "LIST", "60003", "60006", "99999"))
    assert {r["ITM"] for r in prices} == {60003, 60006}
    assert set(prices[0]) >= {
        "ITM",
        "MCU",
        "LOCN",
        "LOTN",
        "AN8",
        "IGID",
        "CGID",
        "LOTG",
        "FRMP",
        "CRCD",
        "UOM",
    }
    assert set(prices[0]) >= {"EFTJ", "EXDJ", "UPRC", "UPMJ", "TDAY"} and "UPMT" not in prices[0]
    count = sandbox.ais(
        "POST",
        "/v2/dataservice",
        {"targetName": "F4106", "targetType": "table", "dataServiceType": "COUNT"},
        auth=(USERNAME, PASSWORD),
    ).json()["count"]
    assert count >= 50, "every item has a price"
