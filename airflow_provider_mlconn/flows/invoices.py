"""Invoices, HubSpot -> JD Edwards: every issued invoice posted to the customer ledger and the G/L
once, with the JDE document written back.

One stream (``hubspot``): invoices by ``hs_lastmodifieddate`` (search windows), then their line
items, discounts, fees, taxes, company and products (search results carry no associations). The
entities, each declared once at the end:

==================  ===========================================================  ===============
entity              write                                                        after
==================  ===========================================================  ===============
invoice             ``ORCH_55_CreateCustomerInvoice`` (RI), created once,        the customer
                    confirmed by F03B11.VR01 = ``hs_number`` after a lost answer  (customers flow)
invoice_writeback   the JDE document onto the HubSpot invoice (``jde_*``)        invoice
credit_memo         ``ORCH_55_CreateCreditMemo`` (RM) for an invoice voided       -
                    after it was posted, created once, confirmed by VR01
==================  ===========================================================  ===============

Open and paid invoices are posted (a draft waits until it is issued; a paid one not yet posted is
posted, its payment follows in the payments flow). Invoices raised in JDE (``jde_document_key``, the
AR flow's) and non-billable ones are not posted. With setting ``ledger = "ap"`` invoices are
supplier bills: vouchers (F0411, ``ORCH_55_CreateVoucher``, confirmed by VINV). Rules:
docs/BEHAVIOR.md, section F (invoices).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

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
from airflow_provider_mlconn.jde.models import CustomerLedgerRow, CustomerMasterRow, VoucherRow
from airflow_provider_mlconn.mapping.invoices import PostingRules, Rejected, invoice_document
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

SETTINGS_VARIABLE = "mlconn_invoices"
INVOICES_ASSET = "hubspot://crm/objects/invoices"
JDE_LEDGER_ASSET = "jde://F03B11"

INVOICE_READ = (
    "hs_number",
    "hs_invoice_status",
    "hs_currency",
    "hs_invoice_date",
    "hs_due_date",
    "hs_createdate",
    "hs_amount_billed",
    "hs_subtotal",
    "hs_balance_due",
    "hs_purchase_order_number",
    "hs_invoice_billable",
    "jde_document_number",
    "jde_document_type",
    "jde_document_company",
    "jde_document_key",
    "jde_credit_memo_number",
    "jde_sync_status",
    "jde_sync_message",
)
LINE_ITEM_READ = (
    "name",
    "quantity",
    "price",
    "amount",
    "discount",
    "hs_discount_percentage",
    "tax",
    "hs_tax_amount",
    "hs_product_id",
    "jde_gl_account",
    "jde_business_unit",
)
ADJUSTMENT_READ = ("hs_label", "hs_type", "hs_value", "hs_sort_order")


class InvoiceSettings(BaseModel):
    """The flow's settings: Variable ``mlconn_invoices`` (JSON object; every field optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jde_conn_id: str = "jde_ais_default"
    hubspot_conn_id: str = "hubspot_default"
    #: ``ar``: A/R invoices (F03B11) for customers; ``ap``: supplier vouchers (F0411).
    ledger: Literal["ar", "ap"] = "ar"
    posting: PostingRules = PostingRules()
    #: Post non-billable invoices too (HubSpot renders and sends nothing for them).
    post_non_billable: bool = False
    read_batch_size: int = Field(100, ge=1, le=100)


_SETTINGS = SettingsVariable(SETTINGS_VARIABLE, InvoiceSettings)


def read_settings(*, fresh: bool = False) -> InvoiceSettings:
    return _SETTINGS.get(fresh=fresh)


# -- HubSpot properties the flow writes (contract names) ----------------------------------------------

_GROUP = jde_group(ObjectType.INVOICES)
SYNC_STATUS_OPTIONS = (
    PropertyOption(label="Posted to JDE", value="posted", display_order=0),
    PropertyOption(label="Waiting for JDE data", value="waiting", display_order=1),
    PropertyOption(label="Refused: see the message", value="rejected", display_order=2),
    PropertyOption(label="Changed after posting", value="conflict", display_order=3),
)


def _text(name: str, label: str, description: str) -> PropertySpec:
    return PropertySpec(
        object_type=ObjectType.INVOICES, name=name, label=label, group=_GROUP, description=description
    )


INVOICE_PROPERTIES = (
    _text("jde_document_number", "JDE document number (DOC)", "F03B11.DOC of the posted invoice"),
    _text("jde_document_type", "JDE document type (DCT)", "RI for an invoice, PV for a voucher"),
    _text("jde_document_company", "JDE document company (KCO)", "F03B11.KCO"),
    _text("jde_batch_number", "JDE batch number (ICU)", "the batch JDE posted it in"),
    PropertySpec(
        object_type=ObjectType.INVOICES,
        name="jde_posted_at",
        label="Posted to JDE at",
        group=_GROUP,
        type="datetime",
        field_type="date",
        description="when JDE wrote the document (its audit stamp)",
    ),
    PropertySpec(
        object_type=ObjectType.INVOICES,
        name="jde_sync_status",
        label="JDE sync status",
        group=_GROUP,
        type="enumeration",
        field_type="select",
        options=SYNC_STATUS_OPTIONS,
        description="posted, waiting (for a JDE customer), rejected, conflict (changed after posting)",
    ),
    _text("jde_sync_message", "JDE sync message", "what the last sync did or found, in words"),
    _text("jde_credit_memo_number", "JDE credit memo (RM)", "the credit memo that reversed a voided invoice"),
)

# -- extract ---------------------------------------------------------------------------------------

#: What the flow does with an invoice it reads, by its status.
POSTED_STATUSES = ("open", "paid")


def extract_invoices(window: Window, writer: StagingWriter) -> datetime | None:
    """Stage the invoices changed in the window with everything their posting needs; a webhook run
    (option ``hubspot_ids``) stages the invoices it names, read by id, and moves no watermark."""
    settings = read_settings(fresh=True)
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        named = window.options.get(HUBSPOT_IDS_OPTION)
        if named:
            found = hook.read_records(ObjectType.INVOICES, [str(i) for i in named], properties=INVOICE_READ)
            for chunk in _chunked(list(found.values()), settings.read_batch_size):
                _stage_invoices(hook, writer, chunk, settings)
            return None
        end = min(window.end, hook.search_horizon())
        start = window.start or datetime(1970, 1, 1, tzinfo=timezone.utc)
        latest: datetime | None = None
        batch: list[HubSpotRecord] = []
        for record in hook.iter_changed_records(
            ObjectType.INVOICES, start=start, end=end, properties=INVOICE_READ
        ):
            latest = record.updated_at if latest is None else max(latest, record.updated_at)
            batch.append(record)
            if len(batch) >= settings.read_batch_size:
                _stage_invoices(hook, writer, batch, settings)
                batch = []
        _stage_invoices(hook, writer, batch, settings)
    return latest


def _chunked(records: Sequence[HubSpotRecord], size: int) -> list[list[HubSpotRecord]]:
    return [list(records[start : start + size]) for start in range(0, len(records), size)]


def _stage_invoices(
    hook: HubSpotHook, writer: StagingWriter, invoices: Sequence[HubSpotRecord], settings: InvoiceSettings
) -> None:
    wanted = [invoice for invoice in invoices if _role(invoice, settings) is not None]
    for invoice_id, source in read_invoice_sources(hook, wanted).items():
        role = _role_of(source["invoice"]["properties"], settings)
        if role == "post":
            writer.stage("invoice", invoice_id, source)
            if not source["invoice"]["properties"].get("jde_document_number"):
                writer.stage("invoice_writeback", invoice_id, source)
        elif role == "credit":
            writer.stage("credit_memo", invoice_id, source)


def _role(invoice: HubSpotRecord, settings: InvoiceSettings) -> str | None:
    return _role_of(invoice.properties, settings)


def _role_of(properties: Mapping[str, Any], settings: InvoiceSettings) -> str | None:
    """``post``, ``credit`` (voided after posting) or None (nothing for JDE to do)."""
    if properties.get("jde_document_key"):
        return None  # raised in JDE (the AR flow's): never travels back
    if (
        str(properties.get("hs_invoice_billable") or "true").lower() == "false"
        and not settings.post_non_billable
    ):
        return None
    status = str(properties.get("hs_invoice_status") or "")
    if status in POSTED_STATUSES:
        return "post"
    if (
        status == "voided"
        and properties.get("jde_document_number")
        and not properties.get("jde_credit_memo_number")
    ):
        return "credit"
    return None


def read_invoice_sources(hook: HubSpotHook, invoices: Sequence[HubSpotRecord]) -> dict[str, dict[str, Any]]:
    """Each invoice with its line items, discounts, fees, taxes, company and products (batch reads)."""
    if not invoices:
        return {}
    ids = [invoice.id for invoice in invoices]
    links = {
        kind: hook.read_associations(ObjectType.INVOICES, kind, ids)
        for kind in (
            ObjectType.LINE_ITEMS,
            ObjectType.COMPANIES,
            ObjectType.DISCOUNTS,
            ObjectType.FEES,
            ObjectType.TAXES,
        )
    }

    def linked(kind: ObjectType) -> set[str]:
        return {link.to_id for found in links[kind].values() for link in found}

    lines = hook.read_records(ObjectType.LINE_ITEMS, linked(ObjectType.LINE_ITEMS), properties=LINE_ITEM_READ)
    companies = hook.read_records(
        ObjectType.COMPANIES, linked(ObjectType.COMPANIES), properties=["jde_address_number", "name"]
    )
    adjustments = {
        kind: hook.read_records(kind, linked(kind), properties=ADJUSTMENT_READ)
        for kind in (ObjectType.DISCOUNTS, ObjectType.FEES, ObjectType.TAXES)
    }
    product_ids = {
        str(line.properties.get("hs_product_id"))
        for line in lines.values()
        if line.properties.get("hs_product_id")
    }
    products = hook.read_records(
        ObjectType.PRODUCTS, product_ids, properties=["jde_gl_class", "jde_item_number"]
    )
    sources: dict[str, dict[str, Any]] = {}
    for invoice in invoices:

        def records(
            kind: ObjectType, found: Mapping[str, HubSpotRecord], invoice_id: str = invoice.id
        ) -> list[dict[str, Any]]:
            ids_ = sorted({link.to_id for link in links[kind].get(invoice_id, [])}, key=int)
            return [{"id": i, "properties": dict(found[i].properties)} for i in ids_ if i in found]

        company_records = records(ObjectType.COMPANIES, companies)
        line_records = records(ObjectType.LINE_ITEMS, lines)
        sources[invoice.id] = {
            "invoice": {"id": invoice.id, "properties": dict(invoice.properties)},
            "line_items": line_records,
            "discounts": records(ObjectType.DISCOUNTS, adjustments[ObjectType.DISCOUNTS]),
            "fees": records(ObjectType.FEES, adjustments[ObjectType.FEES]),
            "taxes": records(ObjectType.TAXES, adjustments[ObjectType.TAXES]),
            "company": company_records[0] if len(company_records) == 1 else None,
            "company_count": len(company_records),
            "products": {
                pid: dict(products[pid].properties)
                for pid in {str(line["properties"].get("hs_product_id") or "") for line in line_records}
                if pid in products
            },
        }
    return sources


def refresh_invoices(keys: Sequence[str]) -> dict[str, Mapping[str, Any] | None]:
    """Re-read invoices by id, as the stream reads them (waiting ones, replays)."""
    with HubSpotHook(read_settings().hubspot_conn_id) as hook:
        found = hook.read_records(ObjectType.INVOICES, keys, properties=INVOICE_READ)
        sources = read_invoice_sources(hook, list(found.values()))
    return {key: sources.get(key) for key in keys}


# -- map -------------------------------------------------------------------------------------------


def map_invoice(source: Mapping[str, Any]) -> Mapping[str, Any]:
    """The JDE document, or a refusal the load reports on the HubSpot invoice."""
    document = invoice_document(source, read_settings().posting)
    if isinstance(document, Rejected):
        return {"action": "reject", "reason": document.reason, "reference": _reference(source)}
    return {"action": "post", **document}


def map_writeback(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    """Nothing to compute: the write-back copies the JDE document once the invoice is posted."""
    document = invoice_document(source, read_settings().posting)
    if isinstance(document, Rejected):
        return Rejection(f"the invoice is not posted: {document.reason}")
    return {"reference": document["reference"]}


def map_credit_memo(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    properties = source["invoice"]["properties"]
    document = invoice_document(source, read_settings().posting)
    if isinstance(document, Rejected):
        return Rejection(
            f"voided invoice {_reference(source)}: no credit memo can mirror it: {document.reason}"
        )
    original = "-".join(
        str(properties.get(name) or "")
        for name in ("jde_document_company", "jde_document_type", "jde_document_number")
    )
    return {**document, "original": original}


def _reference(source: Mapping[str, Any]) -> str:
    return str(source["invoice"]["properties"].get("hs_number") or source["invoice"]["id"])


def invoice_prerequisites(record: MappedRecord) -> list[Prerequisite]:
    """The JDE customer: the company's ``jde_address_number``, else the customers flow's company
    behind the HubSpot company (the id map read backwards)."""
    payload = record.payload
    if payload.get("action") != "post" or payload.get("customer") is not None:
        return []
    name = payload.get("company_name") or "no name"
    return [
        Prerequisite(
            "company",
            str(payload["company_id"]),
            flow="customers",
            by_remote_id=True,
            when_missing=f"HubSpot company {payload['company_id']} ({name}) has no JDE customer: its "
            "jde_address_number is empty and the customers flow has not written it",
        )
    ]


def writeback_prerequisites(record: MappedRecord) -> list[Prerequisite]:
    return [Prerequisite("invoice", record.key)]


# -- load ------------------------------------------------------------------------------------------


def _customer(record: LoadRecord) -> int:
    customer = record.payload.get("customer")
    if customer is not None:
        return int(customer)
    for prerequisite, source_key in record.prerequisite_ids.items():
        if prerequisite.entity == "company" and prerequisite.by_remote_id:
            return int(source_key)
    raise ValueError(f"invoice {record.key}: no JDE customer resolved")


def _companies(jde: JdeAisHook, customers: Iterable[int], rules: PostingRules) -> dict[int, str]:
    """The document company of each customer: the setting's, else its first Customer Master line."""
    wanted = sorted(set(customers))
    if rules.company:
        return {customer: rules.company.zfill(5) for customer in wanted}
    found: dict[int, str] = {}
    for row in jde.iter_records(CustomerMasterRow, query=q.in_list("F03012.AN8", wanted)):
        found[row.address_number] = min(
            found.get(row.address_number, row.company.zfill(5)), row.company.zfill(5)
        )
    return found


def _as_date(text: str | None) -> date | None:
    return None if not text else date.fromisoformat(text)


def _invoice_input(record: LoadRecord, customer: int, company: str) -> orch.CustomerInvoiceInput:
    payload = record.payload
    return orch.CustomerInvoiceInput(
        customer_number=customer,
        company=company,
        external_reference=payload["reference"],
        invoice_date=_as_date(payload["invoice_date"]) or date.today(),
        gl_date=_as_date(payload["invoice_date"]),
        due_date=_as_date(payload["due_date"]),
        currency=payload["currency"],
        purchase_order=payload.get("purchase_order"),
        remark=payload.get("remark"),
        pay_items=[
            orch.InvoicePayItem(gross_amount=Decimal(payload["gross"]), tax_amount=Decimal(payload["tax"]))
        ],
        gl_distribution=[
            orch.GlDistributionLine(
                account=line["account"], amount=Decimal(line["amount"]), remark=line["remark"]
            )
            for line in payload["distribution"]
        ],
    )


def _voucher_input(record: LoadRecord, supplier: int, company: str) -> orch.VoucherInput:
    payload = record.payload
    return orch.VoucherInput(
        supplier_number=supplier,
        company=company,
        supplier_invoice_number=payload["reference"],
        invoice_date=_as_date(payload["invoice_date"]) or date.today(),
        gl_date=_as_date(payload["invoice_date"]),
        due_date=_as_date(payload["due_date"]),
        currency=payload["currency"],
        remark=payload.get("remark"),
        pay_items=[
            orch.InvoicePayItem(gross_amount=Decimal(payload["gross"]), tax_amount=Decimal(payload["tax"]))
        ],
        gl_distribution=[
            orch.GlDistributionLine(
                account=line["account"], amount=Decimal(line["amount"]), remark=line["remark"]
            )
            for line in payload["distribution"]
        ],
    )


def load_invoices(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Post the invoices once; report refusals and edits after posting on the HubSpot invoice."""
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
            # Posted before, and its content changed since: a posted document is corrected in JDE.
            message = (
                f"changed in HubSpot after it was posted to JDE as {record.remote_id}; JDE was not changed: "
                "a posted document is corrected in JDE (credit memo or adjustment)"
            )
            results[record.key] = Loaded(record.remote_id, note=f"conflict: {message}")
            statuses[record.key] = {"jde_sync_status": "conflict", "jde_sync_message": message}
        else:
            to_post.append(record)
    if to_post:
        with JdeAisHook(settings.jde_conn_id) as jde:
            customers = {record.key: _customer(record) for record in to_post}
            companies = _companies(jde, customers.values(), settings.posting)
            for record in to_post:
                customer = customers[record.key]
                company = companies.get(customer)
                if company is None:
                    reason = (
                        f"JDE customer {customer} has no Customer Master line (F03012): set 'company' in "
                        f"{SETTINGS_VARIABLE}"
                    )
                    results[record.key] = Rejection(reason)
                    statuses[record.key] = {"jde_sync_status": "rejected", "jde_sync_message": reason}
                    continue
                results[record.key] = _post(
                    jde, record, customer, company, settings=settings, statuses=statuses
                )
    _report(settings, records, statuses)
    return results


def _post(
    jde: JdeAisHook,
    record: LoadRecord,
    customer: int,
    company: str,
    *,
    settings: InvoiceSettings,
    statuses: dict[str, dict[str, str]],
) -> LoadOutcome:
    try:
        if settings.ledger == "ap":
            posted = jde.post_document_once(orch.CREATE_VOUCHER, _voucher_input(record, customer, company))
        else:
            posted = jde.post_document_once(
                orch.CREATE_CUSTOMER_INVOICE, _invoice_input(record, customer, company)
            )
    except JdeDuplicateError as error:
        # JDE's own duplicate check (an administrator may have it on): the document exists.
        found = _find_posted([record], settings, jde).get(record.key)
        if found is not None:
            return found
        return Rejection(str(error))
    except JdeBusinessError as error:
        statuses[record.key] = {
            "jde_sync_status": "rejected",
            "jde_sync_message": str(error.text or error)[:1000],
        }
        return Rejection(str(error))
    except OutcomeUnknownError as error:
        return Uncertain(str(error))
    except AuthenticationError:
        raise
    except TransientApiError as error:
        return Failed(str(error))
    return Loaded(posted.key, created=True, note=f"posted as {posted.key} (batch {posted.batch_number})")


def confirm_invoices(records: Sequence[LoadRecord]) -> Mapping[str, ConfirmOutcome]:
    """After a lost answer: is the document in JDE? (F03B11 or F0411 by the HubSpot invoice number.)"""
    settings = read_settings()
    with JdeAisHook(settings.jde_conn_id) as jde:
        found = _find_posted(records, settings, jde)
    return {record.key: found.get(record.key) or Absent() for record in records}


def _find_posted(
    records: Sequence[LoadRecord], settings: InvoiceSettings, jde: JdeAisHook
) -> dict[str, Loaded]:
    wanted = {record.payload["reference"]: record for record in records}
    customers = [_customer(record) for record in records]
    found: dict[str, Loaded] = {}
    documents: Mapping[str, Sequence[CustomerLedgerRow | VoucherRow]] = (
        jde.find_vouchers(list(wanted), suppliers=customers)
        if settings.ledger == "ap"
        else jde.find_documents(list(wanted), document_type="RI", customers=customers)
    )
    for reference, rows in documents.items():
        if rows:
            first = min(rows, key=lambda r: r.document_number)
            found[wanted[reference].key] = Loaded(
                f"{first.document_company}-{first.document_type}-{first.document_number}",
                created=True,
                note=_duplicates_note(len({r.document_number for r in rows})),
            )
    return found


def _duplicates_note(documents: int) -> str | None:
    return (
        None if documents <= 1 else f"JDE holds {documents} documents with this reference; the first is taken"
    )


def on_invoices_wait(records: Sequence[WaitingRecord]) -> None:
    """Tell HubSpot why an invoice is not posted yet (``jde_sync_status = waiting``), once."""
    write_sync_statuses(
        conn_id=read_settings().hubspot_conn_id,
        object_type=ObjectType.INVOICES,
        specs=INVOICE_PROPERTIES,
        noun="invoice",
        current={record.key: record.source["invoice"]["properties"] for record in records},
        statuses={
            record.key: {"jde_sync_status": "waiting", "jde_sync_message": record.reason}
            for record in records
        },
    )


def _report(
    settings: InvoiceSettings, records: Sequence[LoadRecord], statuses: Mapping[str, Mapping[str, str]]
) -> None:
    """Write refusal and conflict statuses to the HubSpot invoices (those that do not show them yet)."""
    write_sync_statuses(
        conn_id=settings.hubspot_conn_id,
        object_type=ObjectType.INVOICES,
        specs=INVOICE_PROPERTIES,
        noun="invoice",
        current={record.key: record.source["invoice"]["properties"] for record in records},
        statuses=statuses,
    )


def load_writebacks(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Write each posted invoice's JDE document onto the HubSpot invoice, as JDE holds it."""
    settings = read_settings()
    documents = {
        record.key: orch.DocumentResult.from_key(record.prerequisite_id("invoice", record.key))
        for record in records
    }
    rows: dict[tuple[str, str, int], CustomerLedgerRow | VoucherRow] = {}
    ledger: type[CustomerLedgerRow] | type[VoucherRow] = (
        CustomerLedgerRow if settings.ledger == "ar" else VoucherRow
    )
    with JdeAisHook(settings.jde_conn_id) as jde:
        zone = ZoneInfo(jde.settings.server_timezone)
        numbers = sorted({document.document_number for document in documents.values()})
        for row in jde.iter_records(ledger, query=q.in_list(f"{ledger.table}.DOC", numbers)):
            rows.setdefault((row.document_company, row.document_type, row.document_number), row)
    updates: dict[str, dict[str, Any]] = {}
    for key, document in documents.items():
        posted = rows.get((document.document_company, document.document_type, document.document_number))
        posted_at = posted.updated_at(zone) if posted is not None else None
        batch = posted.batch_number if posted is not None else None
        updates[key] = {
            "jde_document_number": str(document.document_number),
            "jde_document_type": document.document_type,
            "jde_document_company": document.document_company,
            "jde_batch_number": "" if batch is None else str(batch),
            "jde_posted_at": "" if posted_at is None else posted_at.astimezone(timezone.utc).isoformat(),
            "jde_sync_status": "posted",
            "jde_sync_message": f"posted to JDE as {document.document_type} {document.document_number} "
            f"(company {document.document_company}" + (f", batch {batch})" if batch else ")"),
        }
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        ensure_properties_once(hook, INVOICE_PROPERTIES)
        written = hook.update_records(ObjectType.INVOICES, updates)
    results: dict[str, LoadOutcome] = {}
    for key, outcome in written.items():
        if outcome.status is WriteStatus.FAILED:
            error = outcome.error
            results[key] = Failed(f"HubSpot: {error.message if error else 'no result'}")
        else:
            results[key] = Loaded(key, note=updates[key]["jde_sync_message"])
    return results


def load_credit_memos(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """A JDE credit memo for each invoice voided after it was posted: for its open amount, which must
    be the whole invoice (a partly paid one is for accounting to settle)."""
    settings = read_settings()
    results: dict[str, LoadOutcome] = {}
    if settings.ledger == "ap":
        for record in records:
            results[record.key] = Rejection(
                f"voided in HubSpot after it was posted as voucher {record.payload['original']}: "
                "a JDE voucher is voided in JDE (P0411, Void), by accounting; no document posted"
            )
        _report_unreversed(settings, records, results)
        return results
    memos: dict[str, str] = {}
    with JdeAisHook(settings.jde_conn_id) as jde:
        originals = {
            record.key: orch.DocumentResult.from_key(record.payload["original"]) for record in records
        }
        open_amounts: dict[tuple[str, str, int], Decimal] = {}
        customers: dict[tuple[str, str, int], int] = {}
        numbers = sorted({original.document_number for original in originals.values()})
        for row in jde.iter_records(CustomerLedgerRow, query=q.in_list("F03B11.DOC", numbers)):
            key = (row.document_company, row.document_type, row.document_number)
            open_amounts[key] = open_amounts.get(key, Decimal(0)) + row.open_amount
            customers[key] = row.address_number
        for record in records:
            original = originals[record.key]
            key = (original.document_company, original.document_type, original.document_number)
            if key not in open_amounts:
                results[record.key] = Rejection(
                    f"the posted invoice {record.payload['original']} is not in JDE (F03B11)"
                )
                continue
            gross = Decimal(record.payload["gross"])
            if open_amounts[key] != gross:
                results[record.key] = Rejection(
                    f"voided in HubSpot, but JDE's {record.payload['original']} is open for "
                    f"{open_amounts[key]} of {gross}: receipts were applied in JDE; accounting must settle "
                    "it (no credit memo posted)"
                )
                continue
            memo = orch.CreditMemoInput(
                customer_number=customers[key],
                company=original.document_company,
                external_reference=record.payload["reference"],
                memo_date=date.today(),
                currency=record.payload["currency"],
                remark=f"void of HubSpot {record.payload['reference']}"[:30],
                original=orch.OriginalDocument(
                    document_number=original.document_number,
                    document_type=original.document_type,
                    document_company=original.document_company,
                ),
                pay_items=[
                    orch.InvoicePayItem(gross_amount=gross, tax_amount=Decimal(record.payload["tax"]))
                ],
                gl_distribution=[
                    orch.GlDistributionLine(
                        account=line["account"], amount=Decimal(line["amount"]), remark=line["remark"]
                    )
                    for line in record.payload["distribution"]
                ],
            )
            try:
                posted = jde.post_document_once(orch.CREATE_CREDIT_MEMO, memo)
            except JdeDuplicateError as error:
                found = _find_memos([record], customers[key], jde).get(record.key)
                results[record.key] = found or Rejection(str(error))
                continue
            except JdeBusinessError as error:
                results[record.key] = Rejection(str(error))
                continue
            except OutcomeUnknownError as error:
                results[record.key] = Uncertain(str(error))
                continue
            except TransientApiError as error:
                results[record.key] = Failed(str(error))
                continue
            results[record.key] = Loaded(
                posted.key, created=True, note=f"voided in HubSpot: credit memo {posted.key}"
            )
            memos[record.key] = str(posted.document_number)
    _report_unreversed(settings, records, results)
    if memos:
        with HubSpotHook(settings.hubspot_conn_id) as hook:
            ensure_properties_once(hook, INVOICE_PROPERTIES)
            hook.update_records(
                ObjectType.INVOICES,
                {
                    key: {
                        "jde_credit_memo_number": number,
                        "jde_sync_message": f"voided: reversed in JDE by credit memo RM {number}",
                    }
                    for key, number in memos.items()
                },
            )
    return results


def _report_unreversed(
    settings: InvoiceSettings, records: Sequence[LoadRecord], results: Mapping[str, LoadOutcome]
) -> None:
    """A void JDE could not mirror is a ``conflict`` on the HubSpot invoice, with what accounting must do."""
    statuses = {
        record.key: {"jde_sync_status": "conflict", "jde_sync_message": outcome.reason[:1000]}
        for record in records
        if isinstance(outcome := results.get(record.key), Rejection)
    }
    _report(settings, records, statuses)


def confirm_credit_memos(records: Sequence[LoadRecord]) -> Mapping[str, ConfirmOutcome]:
    with JdeAisHook(read_settings().jde_conn_id) as jde:
        found: dict[str, Loaded] = {}
        for record in records:
            original = orch.DocumentResult.from_key(record.payload["original"])
            rows = list(
                jde.iter_records(
                    CustomerLedgerRow,
                    query=q.all_of(
                        q.eq("F03B11.DOC", original.document_number),
                        q.eq("F03B11.DCT", original.document_type),
                    ),
                )
            )
            if rows:
                found.update(_find_memos([record], rows[0].address_number, jde))
    return {record.key: found.get(record.key) or Absent() for record in records}


def _find_memos(records: Sequence[LoadRecord], customer: int, jde: JdeAisHook) -> dict[str, Loaded]:
    wanted = {record.payload["reference"]: record for record in records}
    found: dict[str, Loaded] = {}
    for reference, rows in jde.find_documents(list(wanted), document_type="RM", customers=[customer]).items():
        if rows:
            row = min(rows, key=lambda r: r.document_number)
            found[wanted[reference].key] = Loaded(
                f"{row.document_company}-RM-{row.document_number}", created=True
            )
    return found


INVOICE = Entity(
    "invoice",
    target="jde",
    key="the HubSpot invoice id; F03B11.VR01 = hs_number",
    write=WriteMode.CREATE_ONCE,
    map=map_invoice,
    prerequisites=invoice_prerequisites,
    load=load_invoices,
    confirm=confirm_invoices,
    refresh=refresh_invoices,
    on_wait=on_invoices_wait,
    asset_uri=JDE_LEDGER_ASSET,
    call_batch_size=20,
    task_batch_size=500,
)
INVOICE_WRITEBACK = Entity(
    "invoice_writeback",
    target="hubspot",
    key="the HubSpot invoice id",
    write=WriteMode.UPSERT,
    map=map_writeback,
    prerequisites=writeback_prerequisites,
    load=load_writebacks,
    refresh=refresh_invoices,
    depends_on=("invoice",),
    asset_uri=INVOICES_ASSET,
    call_batch_size=100,
    task_batch_size=2000,
)
CREDIT_MEMO = Entity(
    "credit_memo",
    target="jde",
    key="the HubSpot invoice id; F03B11.VR01 = hs_number, document type RM",
    write=WriteMode.CREATE_ONCE,
    map=map_credit_memo,
    load=load_credit_memos,
    confirm=confirm_credit_memos,
    refresh=refresh_invoices,
    asset_uri=JDE_LEDGER_ASSET,
    call_batch_size=20,
    task_batch_size=500,
)

INVOICES = Flow(
    name="invoices",
    description=(
        "HubSpot invoices to JD Edwards A/R invoices (F03B11 + F0911), each posted once, the JDE document "
        "written back; voided after posting: a credit memo. See docs/BEHAVIOR.md (F)."
    ),
    streams=(Stream("hubspot", extract=extract_invoices),),
    entities=(INVOICE, INVOICE_WRITEBACK, CREDIT_MEMO),
)
