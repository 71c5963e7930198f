"""Helpers of the A/R status tests: what JDE has open for a customer (read through AIS, summed here,
not by the flow's code), what HubSpot shows (read through HubSpot's own API), and edits a person
makes at a JDE screen (``/_sandbox/``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.models import CustomerLedgerRow
from tests.support.customers import JDE_TIMEZONE, Sandboxes
from tests.support.invoices import FLOW_VARIABLES, Customer, customers_in_hubspot

AR_DAG = "mlconn_ar_jde_to_hubspot"
AR_VARIABLES = ("mlconn_watermark__ar_status__jde", "mlconn_ar_status", *FLOW_VARIABLES)
STATUS_PROPERTIES = ["jde_open_amount", "jde_pay_status", "jde_last_receipt_date"]
BALANCE_PROPERTIES = [
    "jde_open_ar_balance",
    "jde_overdue_ar_balance",
    "jde_oldest_open_due_date",
    "jde_last_payment_date",
]
INVOICE_PROPERTIES = [
    "hs_currency",
    "hs_invoice_status",
    "hs_invoice_billable",
    "hs_amount_billed",
    "hs_number",
    "jde_document_key",
    "jde_document_number",
    *STATUS_PROPERTIES,
]


def customers_in(sandboxes: Sandboxes, count: int, currency: str = "USD") -> list[Customer]:
    """Runs the customers flow; ``count`` customers in HubSpot (with a contact) billed in ``currency``."""
    found = [
        customer
        for customer in customers_in_hubspot(sandboxes, 8)
        if sandboxes.hubspot_api(
            "GET", f"/crm/v3/objects/companies/{customer.company_id}", properties="jde_currency"
        )["properties"]["jde_currency"]
        == currency
    ]
    assert len(found) >= count, f"the seeded data has {len(found)} such customers"
    return found[:count]


def forget_ar_variables() -> None:
    from airflow.models import Variable

    for name in AR_VARIABLES:
        Variable.delete(name)


def amount(value: Any) -> Decimal:
    return Decimal(str(value or "0"))


def open_items(customer: int) -> list[CustomerLedgerRow]:
    with JdeAisHook() as hook:
        return [
            row
            for row in hook.iter_records(CustomerLedgerRow, query=q.eq("F03B11.AN8", customer))
            if row.open_amount and row.void_flag != "V"
        ]


def open_balance(customer: int, currency: str = "USD") -> Decimal:
    """What JDE has open for the customer in ``currency``, summed from F03B11 here."""
    total = Decimal(0)
    for row in open_items(customer):
        if row.currency == currency:
            total += row.foreign_open_amount if row.currency_mode == "F" else row.open_amount
    return total


def overdue_balance(customer: int, currency: str = "USD") -> Decimal:
    """What the customer's invoices have open past their due date (the JDE server's today)."""
    today = datetime.now(ZoneInfo(JDE_TIMEZONE)).date()
    total = Decimal(0)
    for row in open_items(customer):
        value = row.foreign_open_amount if row.currency_mode == "F" else row.open_amount
        if row.currency == currency and value > 0 and row.due_date is not None and row.due_date < today:
            total += value
    return total


def company(sandboxes: Sandboxes, company_id: str) -> dict[str, Any]:
    record: dict[str, Any] = sandboxes.hubspot_api(
        "GET", f"/crm/v3/objects/companies/{company_id}", properties=",".join(BALANCE_PROPERTIES)
    )["properties"]
    return record


def invoice(sandboxes: Sandboxes, invoice_id: str) -> dict[str, Any]:
    record: dict[str, Any] = sandboxes.hubspot_api(
        "GET", f"/crm/v3/objects/invoices/{invoice_id}", properties=",".join(INVOICE_PROPERTIES)
    )["properties"]
    return record


def invoices_of_document(sandboxes: Sandboxes, key: str) -> list[dict[str, Any]]:
    """Every HubSpot invoice with ``jde_document_key`` = key (listed, not searched: all of them)."""
    return [
        record
        for record in sandboxes.hubspot_objects(
            "invoices", INVOICE_PROPERTIES, associations="line_items,companies,contacts"
        )
        if record["properties"].get("jde_document_key") == key
    ]


def line_items(sandboxes: Sandboxes, ids: list[str]) -> list[dict[str, Any]]:
    found = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/line_items/batch/read",
        {"inputs": [{"id": i} for i in ids], "properties": ["name", "quantity", "price", "amount", "tax"]},
    )["results"]
    return sorted(found, key=lambda r: r["id"])


def associated(record: dict[str, Any], kind: str) -> list[str]:
    return [str(r["id"]) for r in record.get("associations", {}).get(kind, {}).get("results", [])]


def key_receipt(
    sandboxes: Sandboxes,
    customer: int,
    document: int,
    value: Decimal | None = None,
    *,
    number: str,
    write_off: Decimal | None = None,
) -> dict[str, Any]:
    application: dict[str, Any] = {"document_number": document}
    if value is not None:
        application["amount"] = str(value)
    if write_off is not None:
        application.update(write_off=str(write_off), write_off_reason="BD")
    result: dict[str, Any] = sandboxes.jde_control(
        "POST", "receipts", {"customer": customer, "receipt_number": number, "applications": [application]}
    )
    return result


def enter_invoice(
    sandboxes: Sandboxes, customer: int, lines: list[tuple[str, str]], *, tax: str = "0"
) -> str:
    """A standard invoice keyed in P03B11: (amount, remark) per revenue line; its key KCO-DCT-DOC."""
    result = sandboxes.jde_control(
        "POST",
        "invoices",
        {"customer": customer, "lines": [{"amount": a, "remark": r} for a, r in lines], "tax": tax},
    )
    return f"{result['document_company']}-RI-{result['document_number']}"


def jde_today() -> str:
    """Today on the JDE server (receipts are dated in its zone)."""
    return datetime.now(ZoneInfo(JDE_TIMEZONE)).date().isoformat()
