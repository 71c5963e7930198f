"""Typed orchestration inputs render the published Generic inputs and refuse what cannot fit."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from airflow_provider_mlconn.jde import orchestrations as orch

pytestmark = pytest.mark.unit


def invoice(**changes: object) -> orch.CustomerInvoiceInput:
    values: dict[str, object] = {
        "customer_number": 10001,
        "external_reference": "HS-1001",
        "invoice_date": date(2024, 1, 15),
        "pay_items": [{"gross_amount": Decimal("1250.00")}],
        "gl_distribution": [{"account": "M30.4110", "amount": Decimal("1250.00")}],
    }
    values.update(changes)
    return orch.CustomerInvoiceInput.model_validate(values)


def test_invoice_inputs_use_strings_for_amounts_and_the_user_date_format() -> None:
    inputs = invoice(due_date=date(2024, 2, 14)).to_inputs("MM/dd/yyyy")
    assert inputs == {
        "CustomerNumber": "10001",
        "Company": "00001",
        "ExternalReference": "HS-1001",
        "InvoiceDate": "01/15/2024",
        "DueDate": "02/14/2024",
        "PayItems": [{"GrossAmount": "1250.00"}],
        "GLDistribution": [{"Account": "M30.4110", "Amount": "1250.00"}],
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"external_reference": "R" * 26}, "external_reference"),
        ({"pay_items": []}, "pay_items"),
        ({"remark": "x" * 31}, "remark"),
        ({"customer_number": 0}, "customer_number"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invoice_inputs_that_cannot_fit_jde_fields_are_refused_before_sending(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        invoice(**changes)


def test_receipt_inputs_list_their_applications() -> None:
    receipt = orch.ReceiptInput(
        customer_number=10001,
        receipt_number="PAY-77",
        receipt_date=date(2024, 2, 1),
        amount=Decimal("100.5"),
        applications=[orch.ReceiptApplication(document_number=90000001, amount=Decimal("100.5"))],
    )
    inputs = receipt.to_inputs("dd/MM/yyyy")
    assert inputs["ReceiptDate"] == "01/02/2024"
    assert inputs["Applications"] == [{"DocumentNumber": "90000001", "DocumentType": "RI", "Amount": "100.5"}]


def test_result_models_parse_the_published_outputs() -> None:
    result = orch.CustomerInvoiceResult.from_outputs(
        {
            "DocumentNumber": "90000001",
            "DocumentType": "RI",
            "DocumentCompany": "00001",
            "BatchNumber": "500001",
            "PayItemCount": "1",
            "GrossAmount": "1250.00",
            "DueDate": "02/14/2024",
            "ExternalReference": "HS-1001",
        }
    )
    assert (result.document_number, result.due_date, result.created) == (90000001, date(2024, 2, 14), True)
    assert orch.ItemResult.from_outputs(
        {"ShortItemNumber": "60003", "ItemNumber": "X", "Action": "CREATED"}
    ).action == ("CREATED")
