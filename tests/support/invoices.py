"""Helpers of the money-flow tests: customers brought to HubSpot, invoices made the way a salesperson
makes them (through HubSpot's API), and what JDE holds, read back through AIS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.models import (
    AccountLedgerRow,
    CustomerLedgerRow,
    ReceiptDetailRow,
    ReceiptHeaderRow,
)
from tests.conftest import REPO_ROOT
from tests.support.customers import Sandboxes

INVOICES_DAG = "mlconn_invoices_hubspot_to_jde"
CUSTOMERS_DAG = "mlconn_customers_jde_to_hubspot"
GL_DAG = "mlconn_gl_accounts_sync"
#: invoice -> discount / fee / tax association type ids
ADJUSTMENT_TYPES = {"discounts": 411, "fees": 413, "taxes": 415}
FLOW_VARIABLES = (
    "mlconn_watermark__invoices__hubspot",
    "mlconn_watermark__payments__hubspot",
    "mlconn_payments",
    "mlconn_watermark__customers__jde",
    "mlconn_watermark__gl_accounts__jde",
    "mlconn_invoices",
    "mlconn_gl_accounts",
)


def dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{dag_id}.py"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def run(dag_id: str, conf: dict[str, Any] | None = None, *, expect: str | None = "success") -> Any:
    dag_run = dag(dag_id).test(run_conf={"safety_lag_minutes": 0, **(conf or {})})
    if expect is not None:
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        assert str(dag_run.state) == expect, sorted(states.items())
    return dag_run


def forget_flow_variables() -> None:
    from airflow.models import Variable

    for name in FLOW_VARIABLES:
        Variable.delete(name)


@dataclass(frozen=True)
class Customer:
    address_number: int
    company_id: str
    contact_id: str


def customers_in_hubspot(sandboxes: Sandboxes, count: int = 3, *, company: str = "00001") -> list[Customer]:
    """Run the customers flow; the first ``count`` customers with a contact whose only (or first)
    Customer Master line is in ``company``, as HubSpot has them."""
    run(CUSTOMERS_DAG)
    with JdeAisHook() as hook:
        lines: dict[int, str] = {}
        for row in hook.iter_rows("F03012", columns=["AN8", "CO"]):
            lines[int(row["AN8"])] = min(lines.get(int(row["AN8"]), str(row["CO"])), str(row["CO"]))
    companies = sandboxes.hubspot_objects("companies", ["jde_address_number"], associations="contacts")
    found = []
    for record in sorted(companies, key=lambda c: int(c["properties"]["jde_address_number"])):
        contacts = record.get("associations", {}).get("contacts", {}).get("results", [])
        if contacts and lines.get(int(record["properties"]["jde_address_number"])) == company:
            number = int(record["properties"]["jde_address_number"])
            found.append(Customer(number, record["id"], str(contacts[0]["id"])))
        if len(found) == count:
            break
    return found


def create_invoice(
    sandboxes: Sandboxes,
    *,
    company_id: str | None,
    contact_id: str,
    lines: Sequence[dict[str, Any]],
    currency: str = "USD",
    status: str = "open",
    extra: dict[str, Any] | None = None,
    adjustments: Sequence[tuple[str, dict[str, Any]]] = (),
) -> dict[str, Any]:
    """Line items (and invoice-level ``adjustments``: ("discounts" | "fees" | "taxes", properties)),
    then a draft invoice associated to them, the contact and the company, then issued (the order
    HubSpot needs); returns the invoice as HubSpot holds it."""
    created = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/line_items/batch/create",
        {"inputs": [{"properties": {"hs_line_item_currency_code": currency, **line}} for line in lines]},
    )
    line_ids = [result["id"] for result in created["results"]]
    associations = [_to(line_id, 409) for line_id in line_ids] + [_to(contact_id, 177)]
    for kind, properties in adjustments:
        made = sandboxes.hubspot_api("POST", f"/crm/v3/objects/{kind}", {"properties": properties})
        associations.append(_to(made["id"], ADJUSTMENT_TYPES[kind]))
    if company_id is not None:
        associations.append(_to(company_id, 179))
    invoice = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/invoices",
        {"properties": {"hs_currency": currency, **(extra or {})}, "associations": associations},
    )
    if status != "draft":
        sandboxes.hubspot_api(
            "PATCH",
            f"/crm/v3/objects/invoices/{invoice['id']}",
            {"properties": {"hs_invoice_status": "open"}},
        )
    if status == "paid":
        sandboxes.hubspot_api(
            "PATCH",
            f"/crm/v3/objects/invoices/{invoice['id']}",
            {"properties": {"hs_invoice_status": "paid"}},
        )
    return invoice_properties(sandboxes, invoice["id"])


def invoice_properties(sandboxes: Sandboxes, invoice_id: str) -> dict[str, Any]:
    names = (
        "hs_number,hs_invoice_status,hs_amount_billed,jde_document_number,jde_document_type,jde_document_company,"
        "jde_batch_number,jde_posted_at,jde_sync_status,jde_sync_message,jde_credit_memo_number"
    )
    return sandboxes.hubspot_api("GET", f"/crm/v3/objects/invoices/{invoice_id}", properties=names)


def _to(record_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": record_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def ledger(reference: str, document_type: str = "RI") -> list[CustomerLedgerRow]:
    """F03B11 pay items carrying ``reference`` (VR01), through AIS."""
    with JdeAisHook() as hook:
        return list(
            hook.iter_records(
                CustomerLedgerRow,
                query=q.all_of(q.eq("F03B11.VR01", reference), q.eq("F03B11.DCT", document_type)),
            )
        )


def gl_lines(document_number: int, document_type: str = "RI") -> list[AccountLedgerRow]:
    with JdeAisHook() as hook:
        return list(
            hook.iter_records(
                AccountLedgerRow,
                query=q.all_of(q.eq("F0911.DOC", document_number), q.eq("F0911.DCT", document_type)),
            )
        )


def jde_posts(sandboxes: Sandboxes, orchestration: str = "ORCH_55_CreateCustomerInvoice") -> int:
    """Calls of one orchestration the JDE sandbox served (any outcome)."""
    outcomes = sandboxes.jde_control("GET", "stats")["orchestrations"]
    return sum(count for name, count in outcomes.items() if name.startswith(f"{orchestration} "))


def money(value: Any) -> Decimal:
    return Decimal(str(value))


PAYMENTS_DAG = "mlconn_payments_hubspot_to_jde"


def record_payment(
    sandboxes: Sandboxes, invoice_id: str, amount: str, *, status: str = "succeeded", at_ms: int | None = None
) -> dict[str, Any]:
    """A payment recorded on an open invoice as a person does in HubSpot ("Record payment")."""
    body: dict[str, Any] = {"invoice_id": invoice_id, "amount": amount, "status": status}
    if at_ms is not None:
        body["at"] = at_ms
    response = sandboxes.http.post(f"{sandboxes.hubspot.url}/_sandbox/payments", json=body, timeout=30)
    response.raise_for_status()
    payment: dict[str, Any] = response.json()
    return payment


def payment_properties(sandboxes: Sandboxes, payment_id: str) -> dict[str, Any]:
    names = (
        "hs_initial_amount,hs_latest_status,jde_receipt_number,jde_payment_id,"
        "jde_sync_status,jde_sync_message"
    )
    properties: dict[str, Any] = sandboxes.hubspot_api(
        "GET", f"/crm/v3/objects/commerce_payments/{payment_id}", properties=names
    )["properties"]
    return properties


def receipts(receipt_number: str) -> list[ReceiptHeaderRow]:
    """F03B13 receipts numbered ``receipt_number`` (CKNU), through AIS."""
    with JdeAisHook() as hook:
        return list(hook.iter_records(ReceiptHeaderRow, query=q.eq("F03B13.CKNU", receipt_number)))


def applications(payment_id: int) -> list[ReceiptDetailRow]:
    with JdeAisHook() as hook:
        return list(hook.iter_records(ReceiptDetailRow, query=q.eq("F03B14.PYID", payment_id)))
