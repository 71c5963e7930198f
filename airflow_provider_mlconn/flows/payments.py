"""Payments, HubSpot -> JD Edwards: every succeeded commerce payment posted once as a JDE receipt
(F03B13, applications F03B14), applied to the JDE invoices it pays; a full refund voids it.

One stream (``hubspot``): commerce payments by ``hs_lastmodifieddate`` (search windows), then their
invoices (association 542) and companies (389) by batch reads. The entities, each declared once at the
end:

==================  ============================================================  ==================
entity              write                                                         after
==================  ============================================================  ==================
receipt             ``ORCH_55_CreateReceipt``, created once (CKNU = the payment's   the invoices it
                    id), confirmed by F03B13 CKNU + customer + amount + date        pays (invoices
                    after a lost answer                                             flow); else the
                                                                                    company's customer
payment_writeback   the JDE receipt onto the HubSpot payment (``jde_*``)           receipt
receipt_void        ``ORCH_55_VoidReceipt`` for a payment refunded in full after    -
                    it was posted (repeat-safe: JDE refuses a second void, 5551)
==================  ============================================================  ==================

Rules: docs/BEHAVIOR.md, section F (payments).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mlconn.flows.hubspot_writes import ensure_properties_once, write_sync_statuses
from airflow_provider_mlconn.flows.settings import SettingsVariable
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook, JdeBusinessError, JdeDuplicateError
from airflow_provider_mlconn.http import AuthenticationError, OutcomeUnknownError, TransientApiError
from airflow_provider_mlconn.hubspot.models import HubSpotRecord, WriteStatus
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.hubspot.properties import PropertyOption, PropertySpec, jde_group
from airflow_provider_mlconn.hubspot.webhooks import HUBSPOT_IDS_OPTION
from airflow_provider_mlconn.jde import orchestrations as orch
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.models import (
    CustomerLedgerRow,
    CustomerMasterRow,
    ReceiptDetailRow,
    ReceiptHeaderRow,
)
from airflow_provider_mlconn.mapping.invoices import currency_decimals, hubspot_day
from airflow_provider_mlconn.sync.flow import (
    Absent,
    ConfirmOutcome,
    Entity,
    Failed,
    Flow,
    Loaded,
    LoadOutcome,
    LoadRecord,
    MappedRecord,
    Prerequisite,
    Rejection,
    StagingWriter,
    Stream,
    Uncertain,
    WaitingRecord,
    WriteMode,
)
from airflow_provider_mlconn.sync.watermarks import Window

log = logging.getLogger(__name__)

SETTINGS_VARIABLE = "mlconn_payments"
PAYMENTS_ASSET = "hubspot://crm/objects/commerce_payments"
JDE_RECEIPTS_ASSET = "jde://F03B13"

PAYMENT_READ = (
    "hs_initial_amount",
    "hs_initiated_date",
    "hs_currency_code",
    "hs_latest_status",
    "hs_refunds_amount",
    "hs_fees_amount",
    "hs_reference_number",
    "hs_payment_method_type",
    "jde_receipt_number",
    "jde_payment_id",
    "jde_sync_status",
    "jde_sync_message",
)
INVOICE_READ = ("hs_number", "hs_currency", "hs_invoice_status", "jde_document_number", "jde_document_key")

#: Statuses under which the customer's money arrived and stays (a partial refund: the rest stays).
POSTED_STATUSES = ("succeeded", "partially_refunded")
REFUNDED = "refunded"


class PaymentSettings(BaseModel):
    """The flow's settings: Variable ``mlconn_payments`` (JSON object; every field optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jde_conn_id: str = "jde_ais_default"
    hubspot_conn_id: str = "hubspot_default"
    #: The bank account the receipts are deposited to (``BU.Object.Subsidiary``); None: JDE's default
    #: for the company (its AAI).
    bank_account: str | None = Field(None, max_length=29)
    #: The receipt company of a payment that pays no JDE invoice; None: the customer's F03012 line.
    company: str | None = Field(None, max_length=5)
    #: The void reason code (UDC 03B/VR) a full refund voids a receipt with.
    void_reason: str = Field("RF", min_length=1, max_length=3)
    read_batch_size: int = Field(100, ge=1, le=100)


_SETTINGS = SettingsVariable(SETTINGS_VARIABLE, PaymentSettings)


def read_settings(*, fresh: bool = False) -> PaymentSettings:
    return _SETTINGS.get(fresh=fresh)


# -- HubSpot properties the flow writes (contract names) ----------------------------------------------

_GROUP = jde_group(ObjectType.COMMERCE_PAYMENTS)
SYNC_STATUS_OPTIONS = (
    PropertyOption(label="Posted to JDE", value="posted", display_order=0),
    PropertyOption(label="Waiting for JDE data", value="waiting", display_order=1),
    PropertyOption(label="Refused: see the message", value="rejected", display_order=2),
    PropertyOption(label="Changed after posting", value="conflict", display_order=3),
    PropertyOption(label="Receipt voided in JDE", value="voided", display_order=4),
)


def _text(name: str, label: str, description: str) -> PropertySpec:
    return PropertySpec(
        object_type=ObjectType.COMMERCE_PAYMENTS,
        name=name,
        label=label,
        group=_GROUP,
        description=description,
    )


PAYMENT_PROPERTIES = (
    _text("jde_receipt_number", "JDE receipt number (CKNU)", "F03B13.CKNU: this payment's record id"),
    _text("jde_payment_id", "JDE payment id (PYID)", "F03B13.PYID of the receipt"),
    PropertySpec(
        object_type=ObjectType.COMMERCE_PAYMENTS,
        name="jde_sync_status",
        label="JDE sync status",
        group=_GROUP,
        type="enumeration",
        field_type="select",
        options=SYNC_STATUS_OPTIONS,
        description="posted, waiting (for its invoice in JDE), rejected, conflict, voided (refunded)",
    ),
    _text("jde_sync_message", "JDE sync message", "what the last sync did or found, in words"),
)

# -- extract ---------------------------------------------------------------------------------------


def extract_payments(window: Window, writer: StagingWriter) -> datetime | None:
    """Stage the payments changed in the window with the invoices and company they belong to; a
    webhook run (option ``hubspot_ids``) stages the payments it names, read by id, and moves no
    watermark."""
    settings = read_settings(fresh=True)
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        named = window.options.get(HUBSPOT_IDS_OPTION)
        if named:
            found = list(
                hook.read_records(
                    ObjectType.COMMERCE_PAYMENTS, [str(i) for i in named], properties=PAYMENT_READ
                ).values()
            )
            size = settings.read_batch_size
            for offset in range(0, len(found), size):
                _stage_payments(hook, writer, found[offset : offset + size])
            return None
        end = min(window.end, hook.search_horizon())
        start = window.start or datetime(1970, 1, 1, tzinfo=timezone.utc)
        latest: datetime | None = None
        batch: list[HubSpotRecord] = []
        for record in hook.iter_changed_records(
            ObjectType.COMMERCE_PAYMENTS, start=start, end=end, properties=PAYMENT_READ
        ):
            latest = record.updated_at if latest is None else max(latest, record.updated_at)
            batch.append(record)
            if len(batch) >= settings.read_batch_size:
                _stage_payments(hook, writer, batch)
                batch = []
        _stage_payments(hook, writer, batch)
    return latest


def _stage_payments(hook: HubSpotHook, writer: StagingWriter, payments: Sequence[HubSpotRecord]) -> None:
    wanted = [payment for payment in payments if _role_of(payment.properties) is not None]
    for payment_id, source in read_payment_sources(hook, wanted).items():
        role = _role_of(source["payment"]["properties"])
        if role == "post":
            writer.stage("receipt", payment_id, source)
            if not source["payment"]["properties"].get("jde_payment_id"):
                writer.stage("payment_writeback", payment_id, source)
        elif role == "void":
            writer.stage("receipt_void", payment_id, source)


def _role_of(properties: Mapping[str, Any]) -> str | None:
    """``post``, ``void`` (refunded in full after posting) or None (nothing for JDE to do)."""
    status = str(properties.get("hs_latest_status") or "")
    if status in POSTED_STATUSES:
        return "post"
    if (
        status == REFUNDED
        and properties.get("jde_payment_id")
        and properties.get("jde_sync_status") != "voided"
    ):
        return "void"
    return None  # processing (not a payment yet), failed, canceled; refunded before it was posted


def read_payment_sources(hook: HubSpotHook, payments: Sequence[HubSpotRecord]) -> dict[str, dict[str, Any]]:
    """Each payment with its invoices (in id order) and companies (batch reads)."""
    if not payments:
        return {}
    ids = [payment.id for payment in payments]
    invoice_links = hook.read_associations(ObjectType.COMMERCE_PAYMENTS, ObjectType.INVOICES, ids)
    company_links = hook.read_associations(ObjectType.COMMERCE_PAYMENTS, ObjectType.COMPANIES, ids)
    invoices = hook.read_records(
        ObjectType.INVOICES,
        {link.to_id for found in invoice_links.values() for link in found},
        properties=INVOICE_READ,
    )
    companies = hook.read_records(
        ObjectType.COMPANIES,
        {link.to_id for found in company_links.values() for link in found},
        properties=["jde_address_number", "name"],
    )
    sources: dict[str, dict[str, Any]] = {}
    for payment in payments:
        invoice_ids = sorted({link.to_id for link in invoice_links.get(payment.id, [])}, key=int)
        company_ids = sorted({link.to_id for link in company_links.get(payment.id, [])}, key=int)
        sources[payment.id] = {
            "payment": {"id": payment.id, "properties": dict(payment.properties)},
            "invoices": [
                {"id": i, "properties": dict(invoices[i].properties)} for i in invoice_ids if i in invoices
            ],
            "companies": [
                {"id": c, "properties": dict(companies[c].properties)} for c in company_ids if c in companies
            ],
        }
    return sources


def refresh_payments(keys: Sequence[str]) -> dict[str, Mapping[str, Any] | None]:
    """Re-read payments by id, as the stream reads them (waiting ones, replays)."""
    with HubSpotHook(read_settings().hubspot_conn_id) as hook:
        found = hook.read_records(ObjectType.COMMERCE_PAYMENTS, keys, properties=PAYMENT_READ)
        sources = read_payment_sources(hook, list(found.values()))
    return {key: sources.get(key) for key in keys}


# -- map -------------------------------------------------------------------------------------------


def _number(properties: Mapping[str, Any], name: str) -> Decimal:
    value = properties.get(name)
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        raise ValueError(f"{name} is {value!r}, not a number") from None


def receipt_of(source: Mapping[str, Any]) -> dict[str, Any] | Rejection:
    """The JDE receipt of a HubSpot payment, or why it cannot be posted as it is."""
    payment = source["payment"]
    properties = payment["properties"]
    currency = str(properties.get("hs_currency_code") or "").strip().upper()
    if len(currency) != 3:
        return Rejection(f"payment {payment['id']} has no currency (hs_currency_code)")
    places = currency_decimals(currency)
    gross = _number(properties, "hs_initial_amount")
    refunded = _number(properties, "hs_refunds_amount")
    amount = gross - refunded
    if amount <= 0:
        return Rejection(
            f"payment {payment['id']} amounts to {amount} {currency} after refunds: nothing to post"
        )
    if amount.quantize(Decimal(1).scaleb(-places)) != amount:
        return Rejection(
            f"payment {payment['id']}: {amount} has more decimals than {currency} has ({places})"
        )
    received = hubspot_day(properties.get("hs_initiated_date"))
    if received is None:
        return Rejection(f"payment {payment['id']} has no payment date (hs_initiated_date)")
    invoices = source.get("invoices") or []
    for invoice in invoices:
        invoice_currency = str(invoice["properties"].get("hs_currency") or "").strip().upper()
        if invoice_currency and invoice_currency != currency:
            number = invoice["properties"].get("hs_number") or invoice["id"]
            return Rejection(
                f"payment {payment['id']} is in {currency}, the invoice {number} it pays in "
                f"{invoice_currency}: a receipt is in its invoice's currency (JDE 5517); correct the payment "
                "in HubSpot"
            )
    companies = source.get("companies") or []
    if not invoices and len(companies) != 1:
        what = "no company" if not companies else f"{len(companies)} companies"
        return Rejection(
            f"payment {payment['id']} pays no invoice and has {what}: associate the invoice it pays, or its "
            "one company (the JDE customer), in HubSpot"
        )
    company = companies[0] if len(companies) == 1 else None
    customer_text = str((company or {}).get("properties", {}).get("jde_address_number") or "").strip()
    fees = _number(properties, "hs_fees_amount")
    return {
        "payment_id": str(payment["id"]),
        "amount": str(amount),
        "currency": currency,
        "date": received.isoformat(),
        "invoices": [str(invoice["id"]) for invoice in invoices],
        "invoice_numbers": {
            str(invoice["id"]): str(invoice["properties"].get("hs_number") or invoice["id"])
            for invoice in invoices
        },
        "company_id": None if company is None else str(company["id"]),
        "company_name": None if company is None else str(company["properties"].get("name") or "").strip(),
        "customer": int(customer_text) if customer_text.isdigit() else None,
        "fees": str(fees) if fees else None,
        "remark": f"HubSpot payment {payment['id']}"[:30],
    }


def map_receipt(source: Mapping[str, Any]) -> Mapping[str, Any]:
    """The receipt, or a refusal the load reports on the HubSpot payment."""
    receipt = receipt_of(source)
    if isinstance(receipt, Rejection):
        return {"action": "reject", "reason": receipt.reason, "payment_id": str(source["payment"]["id"])}
    return {"action": "post", **receipt}


def map_writeback(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    receipt = receipt_of(source)
    if isinstance(receipt, Rejection):
        return Rejection(f"the payment is not posted: {receipt.reason}")
    return {"payment_id": receipt["payment_id"]}


def map_void(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    properties = source["payment"]["properties"]
    text = str(properties.get("jde_payment_id") or "").strip()
    if not text.isdigit():
        return Rejection(
            f"refunded payment {source['payment']['id']}: jde_payment_id {text!r} is not a JDE payment id"
        )
    return {"jde_payment_id": int(text), "refunded": str(_number(properties, "hs_refunds_amount"))}


def receipt_prerequisites(record: MappedRecord) -> list[Prerequisite]:
    """The JDE invoices it pays (the invoices flow's); with none, the JDE customer of its company."""
    payload = record.payload
    if payload.get("action") != "post":
        return []
    if payload["invoices"]:
        return [
            Prerequisite(
                "invoice",
                invoice_id,
                flow="invoices",
                when_missing=f"HubSpot invoice {payload['invoice_numbers'][invoice_id]} is not in JDE yet "
                "(see its jde_sync_status): the payment posts once the invoices flow has posted it",
            )
            for invoice_id in payload["invoices"]
        ]
    if payload.get("customer") is not None:
        return []
    return [
        Prerequisite(
            "company",
            str(payload["company_id"]),
            flow="customers",
            by_remote_id=True,
            when_missing=f"HubSpot company {payload['company_id']} ({payload['company_name'] or 'no name'}) "
            "has no JDE customer: its jde_address_number is empty and the customers flow has not written it",
        )
    ]


def writeback_prerequisites(record: MappedRecord) -> list[Prerequisite]:
    return [Prerequisite("receipt", record.key)]


# -- load: receipts --------------------------------------------------------------------------------


class _Plan(BaseModel):
    """A receipt worked out against JDE's ledger: whose, which company, what it applies."""

    model_config = ConfigDict(frozen=True)

    customer: int
    company: str
    input: orch.ReceiptInput
    applied: Decimal
    unapplied: Decimal


def _documents(record: LoadRecord) -> list[orch.DocumentResult]:
    return [
        orch.DocumentResult.from_key(record.prerequisite_id("invoice", invoice_id, "invoices"))
        for invoice_id in record.payload["invoices"]
    ]


def _customer_of_company(record: LoadRecord) -> int | None:
    if record.payload.get("customer") is not None:
        return int(record.payload["customer"])
    for prerequisite, source_key in record.prerequisite_ids.items():
        if prerequisite.entity == "company" and prerequisite.by_remote_id:
            return int(source_key)
    return None


def _plans(
    jde: JdeAisHook, records: Sequence[LoadRecord], settings: PaymentSettings
) -> dict[str, _Plan | Rejection]:
    """Each record's receipt, applied oldest invoice first up to what JDE has open on it."""
    documents = {record.key: _documents(record) for record in records}
    numbers = sorted({d.document_number for found in documents.values() for d in found})
    items: dict[tuple[str, str, int], list[CustomerLedgerRow]] = {}
    for chunk in range(0, len(numbers), 100):
        query = q.in_list("F03B11.DOC", numbers[chunk : chunk + 100])
        for row in jde.iter_records(CustomerLedgerRow, query=query):
            items.setdefault((row.document_company, row.document_type, row.document_number), []).append(row)
    lone = [
        c
        for record in records
        if not documents[record.key] and (c := _customer_of_company(record)) is not None
    ]
    companies = _companies(jde, lone, settings)
    plans: dict[str, _Plan | Rejection] = {}
    for record in records:
        payload = record.payload
        amount = Decimal(payload["amount"])
        applications: list[orch.ReceiptApplication] = []
        customers: set[int] = set()
        company: str | None = None
        left = amount
        missing = None
        for document in documents[record.key]:
            rows = items.get((document.document_company, document.document_type, document.document_number))
            if not rows:
                missing = f"{document.document_company}-{document.document_type}-{document.document_number}"
                break
            customers.add(rows[0].address_number)
            company = company or document.document_company
            open_amount = sum((row.open_amount for row in rows), Decimal(0))
            applied = min(left, open_amount)
            if applied > 0:
                applications.append(
                    orch.ReceiptApplication(
                        document_number=document.document_number,
                        document_type=document.document_type,
                        document_company=document.document_company,
                        amount=applied,
                    )
                )
                left -= applied
        if missing is not None:
            plans[record.key] = Rejection(
                f"the invoice it pays was posted as {missing}, which is no longer in JDE's customer ledger "
                "(F03B11)"
            )
            continue
        if len(customers) > 1:
            plans[record.key] = Rejection(
                f"payment {record.key} pays invoices of {len(customers)} JDE customers "
                f"({', '.join(map(str, sorted(customers)))}): one receipt is for one customer; split it in "
                "HubSpot"
            )
            continue
        customer = next(iter(customers)) if customers else _customer_of_company(record)
        if customer is None:
            plans[record.key] = Rejection(f"payment {record.key}: no JDE customer resolved")
            continue
        company = company or companies.get(customer)
        if company is None:
            plans[record.key] = Rejection(
                f"JDE customer {customer} has no Customer Master line (F03012): set 'company' in "
                f"{SETTINGS_VARIABLE}"
            )
            continue
        receipt = orch.ReceiptInput(
            customer_number=customer,
            company=company,
            receipt_number=payload["payment_id"],
            receipt_date=date.fromisoformat(payload["date"]),
            amount=amount,
            currency=payload["currency"],
            bank_account=settings.bank_account,
            remark=payload["remark"],
            applications=applications,
        )
        plans[record.key] = _Plan(
            customer=customer, company=company, input=receipt, applied=amount - left, unapplied=left
        )
    return plans


def _companies(jde: JdeAisHook, customers: Iterable[int], settings: PaymentSettings) -> dict[int, str]:
    wanted = sorted(set(customers))
    if not wanted:
        return {}
    if settings.company:
        return {customer: settings.company.zfill(5) for customer in wanted}
    found: dict[int, str] = {}
    for row in jde.iter_records(CustomerMasterRow, query=q.in_list("F03012.AN8", wanted)):
        found[row.address_number] = min(
            found.get(row.address_number, row.company.zfill(5)), row.company.zfill(5)
        )
    return found


def load_receipts(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Post the receipts once; report refusals and changes after posting on the HubSpot payment."""
    settings = read_settings()
    results: dict[str, LoadOutcome] = {}
    statuses: dict[str, dict[str, str]] = {}
    to_post = []
    for record in records:
        payload = record.payload
        if payload["action"] == "reject":
            results[record.key] = Rejection(payload["reason"])
            statuses[record.key] = {"jde_sync_status": "rejected", "jde_sync_message": payload["reason"]}
        elif record.remote_id:
            message = (
                f"changed in HubSpot after it was posted to JDE as receipt {record.remote_id} (now "
                f"{payload['amount']} {payload['currency']}); JDE was not changed: a partial refund or a "
                "changed payment is settled in JDE by accounting"
            )
            results[record.key] = Loaded(record.remote_id, note=f"conflict: {message}")
            statuses[record.key] = {"jde_sync_status": "conflict", "jde_sync_message": message}
        else:
            to_post.append(record)
    if to_post:
        with JdeAisHook(settings.jde_conn_id) as jde:
            for key, plan in _plans(jde, to_post, settings).items():
                if isinstance(plan, Rejection):
                    results[key] = plan
                    statuses[key] = {"jde_sync_status": "rejected", "jde_sync_message": plan.reason}
                    continue
                results[key] = _post(jde, key, plan, statuses)
    _report(settings, records, statuses)
    return results


def _post(jde: JdeAisHook, key: str, plan: _Plan, statuses: dict[str, dict[str, str]]) -> LoadOutcome:
    try:
        posted = jde.post_receipt_once(plan.input)
    except JdeDuplicateError as error:
        # JDE's own duplicate check (an administrator may have it on): is it ours?
        found = _find_posted(jde, {key: plan}).get(key)
        return found or Rejection(str(error))
    except JdeBusinessError as error:
        statuses[key] = {"jde_sync_status": "rejected", "jde_sync_message": str(error.text or error)[:1000]}
        return Rejection(str(error))
    except OutcomeUnknownError as error:
        return Uncertain(str(error))
    except AuthenticationError:
        raise
    except TransientApiError as error:
        return Failed(str(error))
    return Loaded(str(posted.payment_id), created=True, note=_applied_note(posted.payment_id, plan))


def _applied_note(payment_id: int, plan: _Plan) -> str:
    applied = ", ".join(
        f"{a.amount} to {a.document_company}-{a.document_type}-{a.document_number}"
        for a in plan.input.applications
    )
    parts = [f"receipt {payment_id} for {plan.input.amount} {plan.input.currency}"]
    parts.append(f"applied {applied}" if applied else "nothing applied")
    if plan.unapplied:
        parts.append(f"{plan.unapplied} unapplied on customer {plan.customer} (unapplied cash, RU)")
    return "; ".join(parts)


def confirm_receipts(records: Sequence[LoadRecord]) -> Mapping[str, ConfirmOutcome]:
    """After a lost answer: is the receipt in JDE? F03B13 by CKNU among the customer's receipts, with
    the same amount and date (a person may key any CKNU; ours is matched on all three)."""
    settings = read_settings()
    with JdeAisHook(settings.jde_conn_id) as jde:
        plans = {key: plan for key, plan in _plans(jde, records, settings).items() if isinstance(plan, _Plan)}
        found = _find_posted(jde, plans)
    return {record.key: found.get(record.key) or Absent() for record in records}


def _find_posted(jde: JdeAisHook, plans: Mapping[str, _Plan]) -> dict[str, Loaded]:
    if not plans:
        return {}
    receipts = jde.find_receipts(
        [plan.input.receipt_number for plan in plans.values()],
        customers=[plan.customer for plan in plans.values()],
    )
    found: dict[str, Loaded] = {}
    for key, plan in plans.items():
        matches = [
            row
            for row in receipts.get(plan.input.receipt_number, [])
            if row.address_number == plan.customer
            and row.receipt_amount == plan.input.amount
            and row.receipt_date == plan.input.receipt_date
        ]
        if matches:
            first = min(matches, key=lambda row: row.payment_id)
            note = (
                None
                if len(matches) == 1
                else f"JDE holds {len(matches)} receipts numbered {plan.input.receipt_number}"
            )
            found[key] = Loaded(str(first.payment_id), created=True, note=note)
    return found


def on_payments_wait(records: Sequence[WaitingRecord]) -> None:
    """Tell HubSpot why a payment is not posted yet (``jde_sync_status = waiting``), once."""
    write_sync_statuses(
        conn_id=read_settings().hubspot_conn_id,
        object_type=ObjectType.COMMERCE_PAYMENTS,
        specs=PAYMENT_PROPERTIES,
        noun="payment",
        current={record.key: record.source["payment"]["properties"] for record in records},
        statuses={
            record.key: {"jde_sync_status": "waiting", "jde_sync_message": record.reason}
            for record in records
        },
    )


def _report(
    settings: PaymentSettings, records: Sequence[LoadRecord], statuses: Mapping[str, Mapping[str, str]]
) -> None:
    """Write refusal and conflict statuses to the HubSpot payments (those that do not show them yet)."""
    write_sync_statuses(
        conn_id=settings.hubspot_conn_id,
        object_type=ObjectType.COMMERCE_PAYMENTS,
        specs=PAYMENT_PROPERTIES,
        noun="payment",
        current={record.key: record.source["payment"]["properties"] for record in records},
        statuses=statuses,
    )


# -- load: write-back and voids --------------------------------------------------------------------


def load_writebacks(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Write each posted payment's JDE receipt onto the HubSpot payment, as JDE holds it."""
    settings = read_settings()
    payment_ids = {record.key: int(record.prerequisite_id("receipt", record.key)) for record in records}
    headers: dict[int, ReceiptHeaderRow] = {}
    applications: dict[int, list[ReceiptDetailRow]] = {}
    with JdeAisHook(settings.jde_conn_id) as jde:
        numbers = sorted(set(payment_ids.values()))
        for chunk in range(0, len(numbers), 100):
            part = numbers[chunk : chunk + 100]
            for row in jde.iter_records(ReceiptHeaderRow, query=q.in_list("F03B13.PYID", part)):
                headers[row.payment_id] = row
            for detail in jde.iter_records(ReceiptDetailRow, query=q.in_list("F03B14.PYID", part)):
                applications.setdefault(detail.payment_id, []).append(detail)
    updates: dict[str, dict[str, Any]] = {}
    for key, payment_id in payment_ids.items():
        header = headers.get(payment_id)
        applied = [
            f"{_money(d.amount_applied, d.currency)} to {d.document_type} {d.document_number}"
            for d in sorted(applications.get(payment_id, []), key=lambda d: d.line_number)
            if d.amount_applied > 0 and not d.void_gl_date
        ]
        message = f"posted to JDE as receipt {payment_id}"
        if header is not None:
            message += f" (batch {header.batch_number})"
            if applied:
                message += ": applied " + ", ".join(applied)
            if header.unapplied_amount:
                message += (
                    f"; {_money(header.unapplied_amount, header.currency)} unapplied on customer "
                    f"{header.address_number}"
                )
        updates[key] = {
            "jde_receipt_number": key,
            "jde_payment_id": str(payment_id),
            "jde_sync_status": "posted",
            "jde_sync_message": message[:1000],
        }
    return _write(settings, updates)


def _money(value: Decimal, currency: str) -> str:
    """An amount as JDE's ledger holds it, in its currency's decimals (AIS answers 1000.0)."""
    return str(value.quantize(Decimal(1).scaleb(-currency_decimals(currency.strip() or "USD"))))


def _write(settings: PaymentSettings, updates: Mapping[str, dict[str, Any]]) -> dict[str, LoadOutcome]:
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        ensure_properties_once(hook, PAYMENT_PROPERTIES)
        written = hook.update_records(ObjectType.COMMERCE_PAYMENTS, updates)
    results: dict[str, LoadOutcome] = {}
    for key, outcome in written.items():
        if outcome.status is WriteStatus.FAILED:
            error = outcome.error
            results[key] = Failed(f"HubSpot: {error.message if error else 'no result'}")
        else:
            results[key] = Loaded(key, note=updates[key]["jde_sync_message"])
    return results


def load_voids(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Void the JDE receipt of each payment refunded in full; a second void finds it voided (5551)."""
    settings = read_settings()
    results: dict[str, LoadOutcome] = {}
    updates: dict[str, dict[str, Any]] = {}
    with JdeAisHook(settings.jde_conn_id) as jde:
        for record in records:
            payment_id = int(record.payload["jde_payment_id"])
            void = orch.VoidReceiptInput(
                payment_id=payment_id, void_date=date.today(), reason=settings.void_reason
            )
            try:
                voided = jde.void_receipt(void)
                reopened = ", ".join(voided.reopened) or "nothing"
                message = f"refunded in HubSpot: JDE receipt {payment_id} voided ({reopened} reopened)"
            except JdeBusinessError as error:
                if error.code != orch.RECEIPT_ALREADY_VOIDED:
                    results[record.key] = Rejection(str(error))
                    updates[record.key] = {
                        "jde_sync_status": "conflict",
                        "jde_sync_message": f"refunded in HubSpot, but JDE receipt {payment_id} could not be "
                        f"voided: {error.text or error}"[:1000],
                    }
                    continue
                message = f"refunded in HubSpot: JDE receipt {payment_id} is voided"
            except AuthenticationError:
                raise
            except TransientApiError as error:
                results[record.key] = Failed(str(error))
                continue
            results[record.key] = Loaded(str(payment_id), note=message)
            updates[record.key] = {"jde_sync_status": "voided", "jde_sync_message": message[:1000]}
    if updates:
        for key, outcome in _write(settings, updates).items():
            if isinstance(outcome, Failed) and isinstance(results.get(key), Loaded):
                results[key] = outcome
    return results


RECEIPT = Entity(
    "receipt",
    target="jde",
    key="the HubSpot payment id; F03B13.CKNU = the same id",
    write=WriteMode.CREATE_ONCE,
    map=map_receipt,
    prerequisites=receipt_prerequisites,
    load=load_receipts,
    confirm=confirm_receipts,
    refresh=refresh_payments,
    on_wait=on_payments_wait,
    asset_uri=JDE_RECEIPTS_ASSET,
    call_batch_size=20,
    task_batch_size=500,
)
PAYMENT_WRITEBACK = Entity(
    "payment_writeback",
    target="hubspot",
    key="the HubSpot payment id",
    write=WriteMode.UPSERT,
    map=map_writeback,
    prerequisites=writeback_prerequisites,
    load=load_writebacks,
    refresh=refresh_payments,
    depends_on=("receipt",),
    asset_uri=PAYMENTS_ASSET,
    call_batch_size=100,
    task_batch_size=2000,
)
RECEIPT_VOID = Entity(
    "receipt_void",
    target="jde",
    key="the HubSpot payment id; the JDE receipt by jde_payment_id",
    write=WriteMode.UPSERT,
    map=map_void,
    load=load_voids,
    refresh=refresh_payments,
    asset_uri=JDE_RECEIPTS_ASSET,
    call_batch_size=20,
    task_batch_size=500,
)

PAYMENTS = Flow(
    name="payments",
    description=(
        "HubSpot commerce payments to JD Edwards receipts (F03B13 + F03B14), each posted once and applied "
        "to the invoices it pays; refunded in full: the receipt voided. See docs/BEHAVIOR.md (F)."
    ),
    streams=(Stream("hubspot", extract=extract_payments),),
    entities=(RECEIPT, PAYMENT_WRITEBACK, RECEIPT_VOID),
)
