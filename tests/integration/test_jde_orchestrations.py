"""The published write orchestrations, through the hook's typed calls, against the AIS sandbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook, JdeBusinessError, JdeDuplicateError
from airflow_provider_mlconn.jde import orchestrations as orch
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.models import AccountLedgerRow, CustomerLedgerRow
from tests.support.jde import PASSWORD, USERNAME, JdeSandbox

pytestmark = pytest.mark.integration
Start = Callable[..., JdeSandbox]
MakeHook = Callable[..., JdeAisHook]
CUSTOMER = 10000  # first seeded customer; company 00001 for seed 42 (checked below)


def invoice(reference: str, amount: str = "1250.00", **changes: object) -> orch.CustomerInvoiceInput:
    values: dict[str, object] = {
        "customer_number": CUSTOMER,
        "company": "00001",
        "external_reference": reference,
        "invoice_date": date(2026, 1, 15),
        "pay_items": [{"gross_amount": Decimal(amount)}],
        "gl_distribution": [
            {"account": "M30.4110", "amount": Decimal(amount), "remark": "HubSpot line items"}
        ],
    }
    values.update(changes)
    return orch.CustomerInvoiceInput.model_validate(values)


@pytest.fixture
def customer_hook(jde_sandbox: Start, jde_hook: MakeHook) -> tuple[JdeSandbox, JdeAisHook]:
    sandbox = jde_sandbox(customers=300)
    hook = jde_hook(sandbox)
    (master,) = [m for m in hook.iter_rows("F03012", query=q.eq("F03012.AN8", CUSTOMER))]
    assert master["CO"] == "00001"
    return sandbox, hook


def test_an_invoice_writes_pay_items_and_its_gl_distribution(
    customer_hook: tuple[JdeSandbox, JdeAisHook],
) -> None:
    _, hook = customer_hook
    result = hook.create_customer_invoice(
        invoice(
            "HS-1001", pay_items=[{"gross_amount": Decimal("1000.00")}, {"gross_amount": Decimal("250.00")}]
        )
    )
    assert result.created and result.document_type == "RI" and result.pay_item_count == 2
    assert result.gross_amount == Decimal("1250.00") and result.due_date is not None
    items = hook.find_invoices_by_reference("HS-1001", company="00001")
    assert [(i.pay_item, i.gross_amount, i.open_amount, i.pay_status) for i in items] == [
        ("001", Decimal("1000.00"), Decimal("1000.00"), "A"),
        ("002", Decimal("250.00"), Decimal("250.00"), "A"),
    ]
    assert all(i.document_number == result.document_number and i.address_number == CUSTOMER for i in items)
    gl = list(hook.iter_records(AccountLedgerRow, query=q.eq("F0911.DOC", result.document_number)))
    assert [(g.account_number, g.amount, g.posted_code) for g in gl] == [
        ("M30.4110", Decimal("-1250.00"), "")
    ]


def test_posting_the_same_reference_twice_returns_the_existing_invoice(
    customer_hook: tuple[JdeSandbox, JdeAisHook],
) -> None:
    _, hook = customer_hook
    first = hook.create_customer_invoice(invoice("HS-2002"))
    again = hook.create_customer_invoice(invoice("HS-2002"))
    assert not again.created and again.document_number == first.document_number
    with pytest.raises(JdeDuplicateError) as caught:
        hook.create_customer_invoice(invoice("HS-2002"), on_duplicate="raise")
    assert caught.value.field == "ExternalReference" and caught.value.code == "5502"
    assert len(hook.find_invoices_by_reference("HS-2002")) == 1


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"customer_number": 99999}, "CustomerNumber", "0037"),
        ({"customer_number": 10017}, "CustomerNumber", "0037"),  # a supplier, not a customer
        ({"company": "00200"}, "CustomerNumber", "5501"),
        (
            {"gl_distribution": [{"account": "M30.4110", "amount": Decimal("1000.00")}]},
            "GLDistribution",
            "5503",
        ),
        (
            {"gl_distribution": [{"account": "M30.4100", "amount": Decimal("1250.00")}]},
            "GLDistribution[0].Account",
            "0026",
        ),
        (
            {"gl_distribution": [{"account": "M99.9999", "amount": Decimal("1250.00")}]},
            "GLDistribution[0].Account",
            "0025",
        ),
        (
            {"currency": "JPY", "pay_items": [{"gross_amount": Decimal("1250.50")}]},
            "PayItems[0].GrossAmount",
            "5507",
        ),
    ],
)
def test_business_errors_name_the_record_and_the_field(
    customer_hook: tuple[JdeSandbox, JdeAisHook], changes: dict[str, object], field: str, code: str
) -> None:
    sandbox, hook = customer_hook
    with pytest.raises(JdeBusinessError) as caught:
        hook.create_customer_invoice(invoice("HS-BAD", "1250.00", **changes))
    error = caught.value
    assert (error.field, error.code) == (field, code)
    assert "HS-BAD" in str(error) and field in str(error)
    assert not error.retriable
    assert sandbox.stats()["requests"]["POST /jderest/v3/orchestrator/ORCH_55_CreateCustomerInvoice 500"] == 1


def test_a_receipt_is_applied_to_its_invoice(customer_hook: tuple[JdeSandbox, JdeAisHook]) -> None:
    _, hook = customer_hook
    posted = hook.create_customer_invoice(invoice("HS-3003", amount="300.00"))
    receipt = orch.ReceiptInput(
        customer_number=CUSTOMER,
        receipt_number="PAY-3003",
        receipt_date=date(2026, 1, 20),
        amount=Decimal("500.00"),
        applications=[
            orch.ReceiptApplication(document_number=posted.document_number, amount=Decimal("300.00"))
        ],
    )
    result = hook.create_receipt(receipt)
    assert (result.applied_amount, result.unapplied_amount) == (Decimal("300.00"), Decimal("200.00"))
    assert result.applications[0].pay_status == "P"
    (item,) = hook.iter_records(CustomerLedgerRow, query=q.eq("F03B11.DOC", posted.document_number))
    assert (item.open_amount, item.pay_status) == (Decimal("0.00"), "P")
    again = hook.create_receipt(receipt)
    assert not again.created and again.payment_id == result.payment_id
    assert again.applications[0].amount_applied == Decimal("300.00")


def test_a_receipt_cannot_take_more_than_the_invoice_has_open(
    customer_hook: tuple[JdeSandbox, JdeAisHook],
) -> None:
    _, hook = customer_hook
    posted = hook.create_customer_invoice(invoice("HS-4004", amount="100.00"))
    receipt = orch.ReceiptInput(
        customer_number=CUSTOMER,
        receipt_number="PAY-4004",
        receipt_date=date(2026, 1, 20),
        amount=Decimal("150.00"),
        applications=[
            orch.ReceiptApplication(document_number=posted.document_number, amount=Decimal("150.00"))
        ],
    )
    with pytest.raises(JdeBusinessError) as caught:
        hook.create_receipt(receipt)
    assert caught.value.field == "Applications[0].Amount" and caught.value.code == "5515"


def test_an_item_is_created_updated_and_left_alone(customer_hook: tuple[JdeSandbox, JdeAisHook]) -> None:
    _, hook = customer_hook
    created = hook.upsert_item(
        orch.ItemInput(item_number="HS-SKU-1", description="Widget", unit_of_measure="EA")
    )
    updated = hook.upsert_item(orch.ItemInput(item_number="HS-SKU-1", description="Widget, blue"))
    unchanged = hook.upsert_item(orch.ItemInput(item_number="HS-SKU-1", description="Widget, blue"))
    assert [created.action, updated.action, unchanged.action] == ["CREATED", "UPDATED", "UNCHANGED"]
    assert created.short_item_number == updated.short_item_number
    with pytest.raises(JdeBusinessError) as caught:
        hook.upsert_item(orch.ItemInput(item_number="HS-SKU-1", unit_of_measure="ZZ"))
    assert caught.value.field == "UnitOfMeasure"


def test_invoices_are_posted_once_even_when_the_connection_drops_after_the_post(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    sandbox = jde_sandbox(customers=300, fault_rate=0.4)
    hook = jde_hook(sandbox)
    results = [hook.create_customer_invoice(invoice(f"HS-F{n}")) for n in range(12)]
    assert len({r.document_number for r in results}) == 12
    posted = list(hook.iter_rows("F03B11", query=q.starts_with("F03B11.VR01", "HS-F"), columns=["VR01"]))
    assert sorted(row["VR01"] for row in posted) == sorted(f"HS-F{n}" for n in range(12))
    assert sandbox.stats()["faults"]["dropped_connections"] >= 1


def test_discover_lists_the_published_orchestrations(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    listing = sandbox.ais("GET", "/discover", auth=(USERNAME, PASSWORD)).json()
    names = {o["name"]: o for o in listing["orchestrations"]}
    assert set(names) == {
        orch.CREATE_CUSTOMER_INVOICE,
        orch.CREATE_RECEIPT,
        orch.UPSERT_ITEM,
        "ORCH_55_CreateCreditMemo",
        "ORCH_55_CreateVoucher",
        "ORCH_55_VoidReceipt",
    }
    assert all(o["inputFormat"] == "Generic" for o in names.values())
    assert {"PaymentId", "ReceiptNumber", "CustomerNumber", "VoidDate", "VoidReason"} == {
        i["name"] for i in names["ORCH_55_VoidReceipt"]["inputs"]
    }


def test_an_invoice_whose_answer_is_lost_after_the_commit_is_found_on_retry_not_posted_twice(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    sandbox = jde_sandbox(customers=300, fault_after_commit_rate=1.0)
    hook = jde_hook(sandbox)
    results = [hook.create_customer_invoice(invoice(f"HS-AC-{n}")) for n in range(4)]
    assert not any(r.created for r in results), "each post committed, lost its answer, and was found"
    for n, result in enumerate(results):
        (item,) = hook.find_invoices_by_reference(f"HS-AC-{n}", company="00001")
        assert item.document_number == result.document_number
    lost = sandbox.stats()["orchestrations"]["ORCH_55_CreateCustomerInvoice committed_response_lost"]
    assert lost == 4


def test_post_document_once_never_repeats_a_call_whose_answer_was_lost(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    """The flows' way in: no retry, no duplicate check to lean on. A lost answer is OutcomeUnknownError
    and the document is in JDE; a refusal is a business error with nothing written."""
    from airflow_provider_mlconn.http import OutcomeUnknownError

    sandbox = jde_sandbox(customers=300, duplicate_check=False, fault_after_commit_rate=1.0)
    hook = jde_hook(sandbox)
    with pytest.raises(OutcomeUnknownError):
        hook.post_document_once(orch.CREATE_CUSTOMER_INVOICE, invoice("HS-ONCE-1"))
    outcomes = sandbox.stats()["orchestrations"]
    assert sum(n for name, n in outcomes.items() if name.startswith("ORCH_55_CreateCustomerInvoice ")) == 1
    found = hook.find_documents(["HS-ONCE-1", "HS-ONCE-2"], customers=[CUSTOMER])
    assert [row.gross_amount for row in found["HS-ONCE-1"]] == [Decimal("1250.00")] and found[
        "HS-ONCE-2"
    ] == []

    sandbox.http.patch(
        f"{sandbox.url}/_sandbox/settings", json={"fault_after_commit_rate": 0}
    ).raise_for_status()
    with pytest.raises(JdeBusinessError):
        hook.post_document_once(
            orch.CREATE_CUSTOMER_INVOICE, invoice("HS-ONCE-2", customer_number=99_999_999)
        )
    assert hook.find_documents(["HS-ONCE-2"])["HS-ONCE-2"] == []


def test_post_document_once_logs_in_again_after_444_and_posts_once(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    """A 444 is refused before anything runs: repeating it after a new login is safe."""
    sandbox = jde_sandbox(customers=300, duplicate_check=False)
    hook = jde_hook(sandbox)
    hook.post_document_once(orch.CREATE_CUSTOMER_INVOICE, invoice("HS-444-1"))
    sandbox.http.post(f"{sandbox.url}/_sandbox/sessions/expire").raise_for_status()
    posted = hook.post_document_once(orch.CREATE_CUSTOMER_INVOICE, invoice("HS-444-2"))
    assert posted.document_type == "RI"
    assert [r.document_number for r in hook.find_documents(["HS-444-2"])["HS-444-2"]] == [
        posted.document_number
    ]
    assert sandbox.stats()["tokens_issued"] == 2
