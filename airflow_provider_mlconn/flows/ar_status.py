"""A/R status, JD Edwards -> HubSpot: what accounting knows, sales sees.

One stream (``jde``): a customer's A/R is "changed" when one of its F03B11 pay items or F03B14
receipt lines carries an audit stamp (UPMJ/UPMT) in the window, when a document is G/L-dated into
the window (DGJ: entered with an older stamp), or when an open item fell due in it (DDJ: the overdue
balance moves without a JDE change). Changed customers are read whole, 100 address numbers per
query: their open items, receipts (F03B13), Customer Master lines (F03012) and the changed documents
with their receipt lines. The entities, each declared once at the end:

==============  =====================================================  ===========================
entity          write                                                  after
==============  =====================================================  ===========================
jde_invoice     a document raised in JDE as a non-billable HubSpot     the customer's company and
                invoice: line items, the invoice (upsert on            main contact (customers
                ``jde_document_key``), associations, then ``open``     flow)
invoice_status  ``jde_open_amount``, ``jde_pay_status``,                the HubSpot invoice: the
                ``jde_last_receipt_date`` on the document's invoice    invoices flow's, or ours
company_balance the company's A/R roll-ups, in the customer's           the company (customers
                currency, written only when a figure changed            flow)
==============  =====================================================  ===========================

Which documents came from HubSpot is the invoices flow's id map (HubSpot invoice id -> ``KCO-DCT-
DOC``); every other invoice-type document (setting ``invoice_types``) of a customer in HubSpot is
created there once, and never travels back (the invoices flow skips ``jde_document_key``).
HubSpot's own ``hs_invoice_status`` of an invoice from HubSpot is left to HubSpot. Settings:
Variable ``mlconn_ar_status`` (JSON, see ``ArSettings``). Rules: docs/BEHAVIOR.md, section F (A/R).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mlconn.flows.customers import read_settings as customer_settings
from airflow_provider_mlconn.flows.hubspot_writes import ensure_properties_once, hubspot_load_outcome
from airflow_provider_mlconn.flows.invoices import INVOICE_PROPERTIES
from airflow_provider_mlconn.flows.settings import SettingsVariable
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.hubspot.models import AssociationLink, HubSpotRecord, RecordOutcome, WriteStatus
from airflow_provider_mlconn.hubspot.objects import (
    INVOICE_TO_COMPANY,
    INVOICE_TO_CONTACT,
    INVOICE_TO_LINE_ITEM,
    ObjectType,
)
from airflow_provider_mlconn.hubspot.properties import PropertyOption, PropertySpec, jde_group
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.dates import JDE_STAMP, JdeTimestamp, window_stamps
from airflow_provider_mlconn.jde.models import (
    AccountLedgerRow,
    CustomerLedgerRow,
    CustomerMasterRow,
    ReceiptDetailRow,
    ReceiptHeaderRow,
    SalesOrderLineRow,
    WhosWhoRow,
)
from airflow_provider_mlconn.mapping.ar_status import (
    PAY_STATUSES,
    Document,
    RevenueRange,
    balance_properties,
    document_key,
    jde_invoice,
    money_text,
    parse_document_key,
    receipt_dates,
    status_properties,
)
from airflow_provider_mlconn.mapping.customers import (
    company_key,
    contact_key,
    customer_master,
    main_contact_line,
)
from airflow_provider_mlconn.sync.flow import (
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
    WriteMode,
)
from airflow_provider_mlconn.sync.watermarks import Window

log = logging.getLogger(__name__)

FLOW_NAME = "ar_status"
SETTINGS_VARIABLE = "mlconn_ar_status"
INVOICES_ASSET = "hubspot://crm/objects/invoices"
COMPANIES_ASSET = "hubspot://crm/objects/companies"
#: The invoices flow's entity whose id map says which JDE documents came from HubSpot.
POSTED_FROM_HUBSPOT = ("invoices", "invoice")
#: The tables whose audit stamps make a customer's A/R "changed".
WATCHED_TABLES = ("F03B11", "F03B14")
_DOCUMENT_COLUMNS = ["DOC", "DCT", "KCO", "AN8", "UPMJ", "UPMT"]

DocumentRef = tuple[str, str, int]  # (KCO, DCT, DOC)


class ArSettings(BaseModel):
    """The flow's settings: Variable ``mlconn_ar_status`` (JSON object; every field optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jde_conn_id: str = "jde_ais_default"
    hubspot_conn_id: str = "hubspot_default"
    #: Document types (F03B11.DCT) raised in JDE that become HubSpot invoices.
    invoice_types: tuple[str, ...] = ("RI",)
    #: Create documents raised in JDE in HubSpot (off: only statuses and balances are written).
    create_jde_invoices: bool = True
    #: Documents raised in JDE with an invoice date before this day are not created in HubSpot
    #: (they still count in the balances); None: every one.
    jde_invoices_since: date | None = None
    #: A document raised in JDE stamped this recently whose reference (VR01) is a HubSpot invoice's
    #: number is checked against HubSpot before it is created (it may be that invoice, posted by the
    #: invoices flow, whose answer is not saved yet); 0: never checked.
    reference_check_days: int = Field(7, ge=0)
    #: Object accounts whose credits on a document's journal entry (F0911) are its revenue lines.
    revenue_objects: tuple[tuple[str, str], ...] = (("4000", "4999"),)
    #: Address numbers per query when reading changed customers whole.
    chunk_size: int = Field(100, ge=1, le=500)
    #: Rows per data-service page (None: the connection's ``page_size``).
    page_size: int | None = Field(None, ge=1)

    @property
    def revenue(self) -> tuple[RevenueRange, ...]:
        return tuple(RevenueRange(low, high) for low, high in self.revenue_objects)


_SETTINGS = SettingsVariable(SETTINGS_VARIABLE, ArSettings)


def read_settings(*, fresh: bool = False) -> ArSettings:
    return _SETTINGS.get(fresh=fresh)


def server_timezone() -> str:
    return JdeAisHook(read_settings().jde_conn_id).settings.server_timezone


# -- HubSpot properties the flow writes (contract names) ----------------------------------------------

PAY_STATUS_OPTIONS = tuple(
    PropertyOption(label=label, value=value, display_order=order)
    for order, (value, label) in enumerate(
        zip(PAY_STATUSES, ("Open", "Partially paid", "Paid", "Written off", "Voided in JDE"), strict=True)
    )
)


def _property(object_type: ObjectType, name: str, label: str, description: str, **kind: Any) -> PropertySpec:
    return PropertySpec(
        object_type=object_type,
        name=name,
        label=label,
        group=jde_group(object_type),
        description=description,
        **kind,
    )


_NUMBER: dict[str, Any] = {"type": "number", "field_type": "number"}
_DATE: dict[str, Any] = {"type": "date", "field_type": "date"}
#: The invoices flow's document properties a JDE-raised invoice carries too.
_DOCUMENT_PROPERTIES = tuple(
    spec
    for spec in INVOICE_PROPERTIES
    if spec.name in ("jde_document_number", "jde_document_type", "jde_document_company", "jde_batch_number")
)
INVOICE_STATUS_PROPERTIES = (
    _property(
        ObjectType.INVOICES,
        "jde_open_amount",
        "JDE open amount",
        "What JDE has open on the document (F03B11.AAP, FAP for a foreign one), in the invoice's currency",
        **_NUMBER,
    ),
    _property(
        ObjectType.INVOICES,
        "jde_pay_status",
        "JDE pay status",
        "open, partially paid, paid, written off, or voided in JDE",
        type="enumeration",
        field_type="select",
        options=PAY_STATUS_OPTIONS,
    ),
    _property(
        ObjectType.INVOICES,
        "jde_last_receipt_date",
        "JDE last receipt date",
        "The date of the latest receipt applied to the document in JDE (F03B13.DMTJ)",
        **_DATE,
    ),
    _property(
        ObjectType.INVOICES,
        "jde_document_key",
        "JDE document key (KCO-DCT-DOC)",
        "Set on invoices raised in JDE only; the sync upserts on it. Such invoices never travel back to JDE.",
        has_unique_value=True,
    ),
    *_DOCUMENT_PROPERTIES,
)
LINE_ITEM_PROPERTIES = (
    _property(
        ObjectType.LINE_ITEMS,
        "jde_line_key",
        "JDE line key (KCO-DCT-DOC-NNN)",
        "A line of an invoice raised in JDE; the sync upserts on it",
        has_unique_value=True,
    ),
)
COMPANY_BALANCE_PROPERTIES = (
    _property(
        ObjectType.COMPANIES,
        "jde_open_ar_balance",
        "JDE open A/R balance",
        "Everything the customer has open in JDE (invoices less credits and unapplied cash), in its currency",
        **_NUMBER,
    ),
    _property(
        ObjectType.COMPANIES,
        "jde_overdue_ar_balance",
        "JDE overdue A/R balance",
        "What the customer's invoices have open past their due date in JDE, in its currency",
        **_NUMBER,
    ),
    _property(
        ObjectType.COMPANIES,
        "jde_oldest_open_due_date",
        "JDE oldest open due date",
        "The earliest due date of the customer's open invoices in JDE",
        **_DATE,
    ),
    _property(
        ObjectType.COMPANIES,
        "jde_last_payment_date",
        "JDE last payment date",
        "The date of the customer's latest receipt in JDE that was not voided",
        **_DATE,
    ),
)
_SPECS = {
    ObjectType.INVOICES: INVOICE_STATUS_PROPERTIES,
    ObjectType.LINE_ITEMS: LINE_ITEM_PROPERTIES,
    ObjectType.COMPANIES: COMPANY_BALANCE_PROPERTIES,
}


def _ensure_properties(hook: HubSpotHook, *object_types: ObjectType) -> None:
    """Create the flow's properties of these object types once per process and portal."""
    for object_type in object_types:
        ensure_properties_once(hook, _SPECS[object_type])


# -- what other runs put in HubSpot ---------------------------------------------------------------------


class DocumentOrigins(Protocol):
    """Which documents HubSpot already shows: posted from a HubSpot invoice, or created by this flow."""

    def from_hubspot(self, keys: Iterable[str]) -> dict[str, str]:
        """Document key -> the HubSpot invoice it was posted from."""
        ...

    def created(self, keys: Iterable[str]) -> set[str]:
        """Documents raised in JDE that HubSpot shows as an invoice of their own."""
        ...


class IdMaps:
    """The store's id maps, read: the JDE documents the invoices flow posted from HubSpot invoices, and
    the invoices this flow created for documents raised in JDE (a run's ``DocumentOrigins``)."""

    def __init__(self) -> None:
        from airflow_provider_mlconn.hooks.mlconn_store import MlconnStoreHook

        self.store = MlconnStoreHook().get_store()

    def from_hubspot(self, keys: Iterable[str]) -> dict[str, str]:
        """Document key -> the HubSpot invoice it was posted from."""
        owners = self.store.id_map.keys_by_remote_id(*POSTED_FROM_HUBSPOT, keys)
        return {key: sorted(ids, key=int)[0] for key, ids in owners.items() if ids}

    def created(self, keys: Iterable[str]) -> set[str]:
        """Documents raised in JDE that this flow made HubSpot invoices of."""
        entries = self.store.id_map.entries(FLOW_NAME, "jde_invoice", keys)
        return {key for key, entry in entries.items() if entry.deleted_at is None and entry.remote_id}


# -- extract ---------------------------------------------------------------------------------------


def _ref(row: Mapping[str, Any]) -> DocumentRef:
    return (str(row["KCO"]).strip(), str(row["DCT"]).strip(), int(row["DOC"]))


def _key(ref: DocumentRef) -> str:
    return document_key(*ref)


def _chunks(values: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def extract_ar_status(window: Window, writer: StagingWriter) -> datetime | None:
    """Stage the A/R of the customers whose ledger changed in ``window`` (everything on a full read)."""
    settings = read_settings(fresh=True)
    with JdeAisHook(settings.jde_conn_id) as jde:
        zone = jde.server_zone
        reading = _Reading(jde, settings, as_of=datetime.now(zone).date())
        wanted = reading.everything() if window.start is None else reading.changed(window)
        log.info("A/R of %d customers to read", len(wanted))
        _stage(reading, writer, wanted)
        stamp = reading.high_water
    return None if stamp is None else stamp.to_datetime(zone)


def _stage(reading: _Reading, writer: StagingWriter, wanted: Mapping[int, set[DocumentRef]]) -> None:
    stager = _Stager(writer, reading.settings, IdMaps(), as_of=reading.as_of)
    for chunk in _chunks(sorted(wanted), reading.settings.chunk_size):
        ledger = reading.read(chunk, {an8: wanted[an8] for an8 in chunk})
        stager.stage(ledger, reading)


@dataclass
class _Ledger:
    """What one chunk of customers has in JDE: every pay item read (open items and the changed
    documents), the changed documents' receipt lines, receipts, Customer Master lines."""

    customers: list[int]
    changed: dict[int, set[DocumentRef]]
    items: dict[DocumentRef, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    applications: dict[DocumentRef, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    receipts: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    masters: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


class _Reading:
    """One extract's reads from JDE; tracks the latest audit stamp seen."""

    def __init__(self, jde: JdeAisHook, settings: ArSettings, *, as_of: date) -> None:
        self.jde, self.settings, self.as_of = jde, settings, as_of
        self.high_water: JdeTimestamp | None = None

    def _rows(self, table: str, query: q.Query | q.Condition, columns: list[str] | None = None) -> Any:
        return self.jde.iter_rows(table, query=query, columns=columns, page_size=self.settings.page_size)

    def _see(self, row: Mapping[str, Any]) -> None:
        stamp = JdeTimestamp.from_row(row.get("UPMJ"), row.get("UPMT"))
        if stamp is not None and (self.high_water is None or stamp > self.high_water):
            self.high_water = stamp

    def everything(self) -> dict[int, set[DocumentRef]]:
        """A full read: every customer with a document, every document."""
        wanted: dict[int, set[DocumentRef]] = defaultdict(set)
        for row in self.jde.iter_rows("F03B11", columns=_DOCUMENT_COLUMNS, page_size=self.settings.page_size):
            wanted[int(row["AN8"])].add(_ref(row))
            self._see(row)
        return wanted

    def changed(self, window: Window) -> dict[int, set[DocumentRef]]:
        """Customers (with the documents that changed) whose ledger changed in the window."""
        since, until = window_stamps(window.start, window.end, window.source_timezone)
        if since is None:
            raise ValueError("an incremental read needs a window start")
        wanted: dict[int, set[DocumentRef]] = defaultdict(set)
        for table in WATCHED_TABLES:
            for row in self._rows(table, q.changed_since(table, since, until), _DOCUMENT_COLUMNS):
                wanted[int(row["AN8"])].add(_ref(row))
                self._see(row)
        # Documents G/L-dated into the window: entered with an earlier stamp (a batch upload).
        for row in self._rows("F03B11", q.between("F03B11.DGJ", since.day, until.day), _DOCUMENT_COLUMNS):
            wanted[int(row["AN8"])].add(_ref(row))
        # Open items that fell due in the window: the overdue balance moves without a JDE change.
        fell_due = q.all_of(
            q.between("F03B11.DDJ", since.day - timedelta(days=1), until.day - timedelta(days=1)),
            q.ne("F03B11.AAP", 0),
        )
        for row in self._rows("F03B11", fell_due, ["AN8"]):
            wanted[int(row["AN8"])]
        return wanted

    def read(self, customers: list[int], changed: Mapping[int, set[DocumentRef]]) -> _Ledger:
        """The chunk's customers whole: open items, the changed documents (every pay item, their
        receipt lines), receipts and Customer Master lines."""
        ledger = _Ledger(customers=customers, changed=dict(changed))
        numbers = sorted({ref[2] for refs in changed.values() for ref in refs})
        open_or_changed: q.Query | q.Condition = q.ne("F03B11.AAP", 0)
        if numbers:
            open_or_changed = q.any_of(open_or_changed, q.in_list("F03B11.DOC", numbers))
        for row in self._rows("F03B11", q.all_of(q.in_list("F03B11.AN8", customers), open_or_changed)):
            ledger.items[_ref(row)].append(row)
        if numbers:
            paid = q.all_of(q.in_list("F03B14.AN8", customers), q.in_list("F03B14.DOC", numbers))
            for row in self._rows("F03B14", paid):
                ledger.applications[_ref(row)].append(row)
        for row in self._rows("F03B13", q.in_list("F03B13.AN8", customers)):
            ledger.receipts[int(row["AN8"])].append(row)
        for row in self._rows("F03012", q.in_list("F03012.AN8", customers)):
            ledger.masters[int(row["AN8"])].append(row)
        return ledger

    def invoice_parts(
        self, documents: Sequence[CustomerLedgerRow]
    ) -> tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]]]:
        """For documents to create in HubSpot: the customers' Who's Who lines, the billed sales order
        lines (F42119, by order) and the journal lines (F0911) of those without an order."""
        customers = sorted({d.address_number for d in documents})
        whos_who: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in self._rows("F0111", q.in_list("F0111.AN8", customers)):
            whos_who[int(row["AN8"])].append(row)
        orders = sorted({d.sales_order_number for d in documents if d.sales_order_number})
        sales = list(self._rows("F42119", q.in_list("F42119.DOCO", orders))) if orders else []
        plain = [d for d in documents if not d.sales_order_number]
        journal: list[dict[str, Any]] = []
        if plain:
            entry = q.all_of(
                q.in_list("F0911.DOC", sorted({d.document_number for d in plain})),
                q.in_list("F0911.DCT", sorted({d.document_type for d in plain})),
                q.in_list("F0911.KCO", sorted({d.document_company for d in plain})),
            )
            journal = list(self._rows("F0911", entry))
        return whos_who, sales, journal


class _Stager:
    """Stages one chunk's records: a balance per customer, a status per changed document of an
    invoice in HubSpot, and a HubSpot invoice for each document raised in JDE not created yet (with
    ``whole_invoices``, for each one created too: a run never rewrites it, a comparison wants it)."""

    def __init__(
        self,
        writer: StagingWriter,
        settings: ArSettings,
        origins: DocumentOrigins,
        *,
        as_of: date,
        whole_invoices: bool = False,
    ) -> None:
        self.writer, self.settings, self.origins, self.as_of = writer, settings, origins, as_of
        self.whole_invoices = whole_invoices

    def stage(self, ledger: _Ledger, reading: _Reading) -> None:
        rules = customer_settings().rules
        open_items: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for rows in ledger.items.values():
            for row in rows:
                if row["AAP"]:
                    open_items[int(row["AN8"])].append(row)
        for an8 in ledger.customers:
            masters = [CustomerMasterRow.model_validate(row) for row in ledger.masters[an8]]
            master = customer_master(masters, rules)
            self.writer.stage(
                "company_balance",
                company_key(an8),
                {
                    "AN8": an8,
                    "as_of": self.as_of.isoformat(),
                    "currency": master.currency if master is not None else None,
                    "F03B11": open_items[an8],
                    "F03B13": ledger.receipts[an8],
                },
            )
        refs = sorted({ref for refs in ledger.changed.values() for ref in refs if ref in ledger.items})
        keys = [_key(ref) for ref in refs]
        from_hubspot = self.origins.from_hubspot(keys)
        created = self.origins.created(keys)
        to_create: list[tuple[DocumentRef, dict[str, Any]]] = []
        for ref in refs:
            source = self._document(ledger, ref)
            key = _key(ref)
            if key in from_hubspot:
                self.writer.stage("invoice_status", key, {**source, "origin": "hubspot"})
            elif key in created:
                self.writer.stage("invoice_status", key, {**source, "origin": "jde"})
                if self.whole_invoices and self._to_create(ledger.items[ref]):
                    to_create.append((ref, source))
            elif self._to_create(ledger.items[ref]):
                to_create.append((ref, source))
        if to_create:
            documents = [CustomerLedgerRow.model_validate(ledger.items[ref][0]) for ref, _ in to_create]
            whos_who, sales, journal = reading.invoice_parts(documents)
            for (ref, source), document in zip(to_create, documents, strict=True):
                lines = [WhosWhoRow.model_validate(row) for row in whos_who[document.address_number]]
                self.writer.stage(
                    "jde_invoice",
                    _key(ref),
                    {
                        **source,
                        "main_contact_line": main_contact_line(lines),
                        "F42119": [row for row in sales if _billed(row, ref)],
                        "F0911": [row for row in journal if _ref(row) == ref],
                    },
                )
                self.writer.stage("invoice_status", _key(ref), {**source, "origin": "jde"})

    def _document(self, ledger: _Ledger, ref: DocumentRef) -> dict[str, Any]:
        items = ledger.items[ref]
        applications = ledger.applications.get(ref, [])
        paid_by = {int(row["PYID"]) for row in applications}
        customer = int(items[0]["AN8"])
        return {
            "document": _key(ref),
            "F03B11": items,
            "F03B14": applications,
            "F03B13": [row for row in ledger.receipts[customer] if int(row["PYID"]) in paid_by],
        }

    def _to_create(self, rows: list[dict[str, Any]]) -> bool:
        """A document raised in JDE that HubSpot should show: an invoice type, not voided, not older
        than ``jde_invoices_since``."""
        if not self.settings.create_jde_invoices:
            return False
        first = CustomerLedgerRow.model_validate(rows[0])
        if first.document_type not in self.settings.invoice_types or first.void_flag.upper() == "V":
            return False
        since = self.settings.jde_invoices_since
        day = first.invoice_date or first.gl_date
        return since is None or day is None or day >= since


def _billed(row: Mapping[str, Any], ref: DocumentRef) -> bool:
    return (str(row["KCO"]).strip(), str(row["DCT"]).strip(), int(row["DOC"])) == ref


class WholeLedger:
    """JDE's whole A/R as a full read of this flow stages it, for comparing (``mlconn_reconcile``):
    ``documents`` names every document in F03B11; ``chunks`` yields what a run would stage for the
    customers asked, ``chunk_size`` customers at a time, including the whole HubSpot invoice of each
    document raised in JDE that ``origins`` says HubSpot shows (a run creates it once)."""

    def __init__(self, jde: JdeAisHook, settings: ArSettings, origins: DocumentOrigins) -> None:
        self.reading = _Reading(jde, settings, as_of=datetime.now(jde.server_zone).date())
        self.origins = origins
        self._wanted = self.reading.everything()
        self.documents = {_key(ref) for refs in self._wanted.values() for ref in refs}

    @property
    def as_of(self) -> date:
        """The JDE server's day the balances are figured on (what is overdue)."""
        return self.reading.as_of

    def chunks(self, customers: Iterable[int]) -> Iterator[dict[tuple[str, str], Mapping[str, Any]]]:
        """(entity, key) -> staged payload, per chunk of the customers that have a document."""
        collector = _Collector()
        stager = _Stager(
            collector, self.reading.settings, self.origins, as_of=self.reading.as_of, whole_invoices=True
        )
        asked = sorted(set(customers) & set(self._wanted))
        for chunk in _chunks(asked, self.reading.settings.chunk_size):
            collector.staged = {}
            stager.stage(self.reading.read(chunk, {an8: self._wanted[an8] for an8 in chunk}), self.reading)
            yield collector.staged


class _Collector:
    """A staging writer that keeps what it is given (re-reading records that wait, a replay, or a
    comparison)."""

    def __init__(self) -> None:
        self.staged: dict[tuple[str, str], Mapping[str, Any]] = {}

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None:
        self.staged[(entity, str(key))] = payload

    def mark_complete(self, entity: str) -> None:
        raise AssertionError("a re-read of some records is never complete")


def refresh(entity: str) -> Callable[[Sequence[str]], dict[str, Mapping[str, Any] | None]]:
    """The ``refresh`` of an entity: re-read the customers (and documents) behind these keys."""

    def reread(keys: Sequence[str]) -> dict[str, Mapping[str, Any] | None]:
        settings = read_settings(fresh=True)
        collector = _Collector()
        with JdeAisHook(settings.jde_conn_id) as jde:
            reading = _Reading(jde, settings, as_of=datetime.now(jde.server_zone).date())
            wanted: dict[int, set[DocumentRef]] = defaultdict(set)
            if entity == "company_balance":
                for key in keys:
                    wanted[int(key)]
            else:
                refs = {parse_document_key(key) for key in keys}
                numbers = sorted({number for _, _, number in refs})
                for row in reading._rows("F03B11", q.in_list("F03B11.DOC", numbers), _DOCUMENT_COLUMNS):
                    if _ref(row) in refs:
                        wanted[int(row["AN8"])].add(_ref(row))
            _stage(reading, collector, wanted)
        return {key: collector.staged.get((entity, key)) for key in keys}

    return reread


# -- map -------------------------------------------------------------------------------------------


def _document_of(source: Mapping[str, Any]) -> Document:
    return Document(
        items=tuple(CustomerLedgerRow.model_validate(row) for row in source["F03B11"]),
        applications=tuple(ReceiptDetailRow.model_validate(row) for row in source["F03B14"]),
        receipt_dates=receipt_dates(ReceiptHeaderRow.model_validate(row) for row in source["F03B13"]),
    )


def document_gross(source: Mapping[str, Any]) -> str:
    """A staged document's gross in its own currency, as HubSpot shows an amount billed."""
    document = _document_of(source)
    return money_text(document.gross, document.currency)


def map_invoice_status(source: Mapping[str, Any]) -> Mapping[str, Any]:
    document = _document_of(source)
    return {"origin": source["origin"], "document": document.key, "properties": status_properties(document)}


def invoice_status_prerequisites(record: MappedRecord) -> list[Prerequisite]:
    """The HubSpot invoice: the one the document was posted from (the invoices flow's id map read
    backwards), or the one this flow made of a document raised in JDE."""
    if record.payload["origin"] == "hubspot":
        flow, entity = POSTED_FROM_HUBSPOT
        return [
            Prerequisite(
                entity,
                record.key,
                flow=flow,
                by_remote_id=True,
                when_missing=f"the invoices flow no longer maps a HubSpot invoice to {record.key}",
            )
        ]
    return [Prerequisite("jde_invoice", record.key)]


def map_jde_invoice(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    document = _document_of(source)
    mapped = jde_invoice(
        document,
        sales_lines=[SalesOrderLineRow.model_validate(row) for row in source["F42119"]],
        journal_lines=[AccountLedgerRow.model_validate(row) for row in source["F0911"]],
        revenue=read_settings().revenue,
    )
    if isinstance(mapped, Rejection):
        return mapped
    stamps = [item.updated_date for item in document.items if item.updated_date is not None]
    mapped["stamped"] = max(stamps).isoformat() if stamps else None
    customer = int(mapped["customer"])
    line = source.get("main_contact_line")
    if line is None:
        return Rejection(
            f"{document.key}: customer {customer} has no active contact in JDE (F0111): HubSpot issues an "
            "invoice to exactly one contact; add one in JDE, then replay this record (mlconn_replay)"
        )
    return {**mapped, "contact": contact_key(customer, int(line))}


def jde_invoice_prerequisites(record: MappedRecord) -> list[Prerequisite]:
    """The customer's company and main contact, as the customers flow wrote them."""
    customer = int(record.payload["customer"])
    return [
        Prerequisite(
            "company",
            company_key(customer),
            flow="customers",
            when_missing=f"customer {customer} is not in HubSpot: the customers flow has not written it",
        ),
        Prerequisite(
            "contact",
            str(record.payload["contact"]),
            flow="customers",
            when_missing=f"the main contact {record.payload['contact']} of customer {customer} is not in "
            "HubSpot: the customers flow has not written it",
        ),
    ]


def map_company_balance(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    currency = source.get("currency")
    if not currency:
        return Rejection(
            f"customer {source['AN8']} has no Customer Master line (F03012): no currency for its balance"
        )
    return balance_properties(
        (CustomerLedgerRow.model_validate(row) for row in source["F03B11"]),
        (ReceiptHeaderRow.model_validate(row) for row in source["F03B13"]),
        currency=str(currency),
        as_of=date.fromisoformat(source["as_of"]),
    )


def company_balance_prerequisites(record: MappedRecord) -> list[Prerequisite]:
    return [
        Prerequisite(
            "company",
            record.key,
            flow="customers",
            when_missing=f"customer {record.key} is not in HubSpot: the customers flow has not written it",
        )
    ]


# -- load ------------------------------------------------------------------------------------------


def _failure(outcome: RecordOutcome | None, what: str) -> LoadOutcome:
    if outcome is None:
        return Failed(f"HubSpot gave no result for {what}")
    result = hubspot_load_outcome(outcome)
    if isinstance(result, Failed):
        return Failed(f"{what}: {result.error}", retriable=result.retriable)
    if isinstance(result, Rejection):
        return Rejection(f"{what}: {result.reason}")
    return result


def _invoice_id(record: LoadRecord) -> str:
    if record.payload["origin"] == "hubspot":
        return record.prerequisite_id(POSTED_FROM_HUBSPOT[1], record.key, POSTED_FROM_HUBSPOT[0])
    return record.prerequisite_id("jde_invoice", record.key)


def load_invoice_statuses(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Write each document's JDE state onto its HubSpot invoice (by id); an invoice raised in JDE
    that JDE voided is voided in HubSpot too (one from HubSpot keeps HubSpot's own status)."""
    ids = {record.key: _invoice_id(record) for record in records}
    updates = {ids[r.key]: dict(r.payload["properties"]) for r in records}
    voids = {
        ids[r.key]: {"hs_invoice_status": "voided"}
        for r in records
        if r.payload["origin"] == "jde" and r.payload["properties"]["jde_pay_status"] == "voided"
    }
    results: dict[str, LoadOutcome] = {}
    with HubSpotHook(read_settings().hubspot_conn_id) as hook:
        _ensure_properties(hook, ObjectType.INVOICES)
        written = hook.update_records(ObjectType.INVOICES, updates)
        voided = hook.update_records(ObjectType.INVOICES, voids) if voids else {}
    for record in records:
        invoice_id = ids[record.key]
        outcome = written.get(invoice_id)
        if outcome is None or not outcome.ok:
            results[record.key] = _failure(outcome, f"HubSpot invoice {invoice_id}")
            continue
        properties = record.payload["properties"]
        note = f"{properties['jde_pay_status']}, {properties['jde_open_amount']} open"
        void = voided.get(invoice_id)
        if void is not None:
            note += (
                "; voided in HubSpot"
                if void.ok
                else f"; HubSpot kept its status: {void.error.message if void.error else 'no result'}"
            )
        results[record.key] = Loaded(invoice_id, note=note)
    return results


def load_company_balances(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Write the roll-ups onto each company (by id); only records whose figures changed get here."""
    ids = {r.key: r.prerequisite_id("company", r.key, "customers") for r in records}
    with HubSpotHook(read_settings().hubspot_conn_id) as hook:
        _ensure_properties(hook, ObjectType.COMPANIES)
        written = hook.update_records(
            ObjectType.COMPANIES, {ids[r.key]: dict(r.payload["properties"]) for r in records}
        )
    results: dict[str, LoadOutcome] = {}
    for record in records:
        outcome = written.get(ids[record.key])
        if outcome is None or not outcome.ok:
            results[record.key] = _failure(outcome, f"HubSpot company {ids[record.key]}")
        else:
            notes = "; ".join(record.payload.get("notes") or ()) or None
            results[record.key] = Loaded(ids[record.key], note=notes)
    return results


def load_jde_invoices(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Create the HubSpot invoice of each document raised in JDE, once: line items first (upsert on
    ``jde_line_key``), the invoice as a non-billable draft (upsert on ``jde_document_key``), its
    associations to the line items, the company and the main contact, then ``open``. Every step is
    idempotent, so a retry after a partial failure finishes the job without twins. A document that
    turns out to have come from HubSpot after all is not created (see ``_posted_from_hubspot``)."""
    results: dict[str, LoadOutcome] = {}
    with HubSpotHook(read_settings().hubspot_conn_id) as hook:
        _ensure_properties(hook, ObjectType.INVOICES, ObjectType.LINE_ITEMS)
        for record in records:
            if record.remote_id:
                # Made by an earlier run (its content read differently now): a posted document's
                # HubSpot invoice is not rewritten; its status follows through invoice_status.
                results[record.key] = Loaded(record.remote_id, note="already in HubSpot; not rewritten")
        fresh = [record for record in records if not record.remote_id]
        if fresh:
            results.update(_posted_from_hubspot(hook, fresh))
            results.update(_create_invoices(hook, [r for r in fresh if r.key not in results]))
    return results


def _posted_from_hubspot(hook: HubSpotHook, records: Sequence[LoadRecord]) -> dict[str, LoadOutcome]:
    """Documents the invoices flow posted from a HubSpot invoice while this run was on its way (its
    id map, read again now), or whose answer it has not saved yet (a HubSpot invoice whose number is
    the document's reference, F03B11.VR01 = ``hs_number``; searched for documents stamped in the
    last ``reference_check_days``, 100 references a search): not created a second time."""
    found: dict[str, LoadOutcome] = {}
    for key, invoice_id in IdMaps().from_hubspot([r.key for r in records]).items():
        found[key] = Loaded(invoice_id, note=f"posted from HubSpot invoice {invoice_id}: not created again")
    days = read_settings().reference_check_days
    recent = (date.today() - timedelta(days=days)).isoformat()
    by_reference: dict[str, list[LoadRecord]] = defaultdict(list)
    for record in records:
        reference = str(record.payload.get("reference") or "").strip()
        stamped = record.payload.get("stamped")
        if days and reference and record.key not in found and (stamped is None or stamped >= recent):
            by_reference[reference.lower()].append(record)
    references = sorted(by_reference)
    start = datetime(1970, 1, 1, tzinfo=timezone.utc)
    for offset in range(0, len(references), 100):
        chunk = references[offset : offset + 100]
        for invoice in hook.iter_changed_records(
            ObjectType.INVOICES,
            start=start,
            end=hook.search_horizon(),
            properties=[
                "hs_number",
                "jde_document_key",
                *(f"jde_document_{p}" for p in ("number", "type", "company")),
            ],
            extra_filters=[{"propertyName": "hs_number", "operator": "IN", "values": chunk}],
        ):
            for record in by_reference.get(str(invoice.properties.get("hs_number") or "").lower(), []):
                outcome = _same_document(invoice, record)
                if outcome is not None:
                    found[record.key] = outcome
    return found


def _same_document(invoice: HubSpotRecord, record: LoadRecord) -> LoadOutcome | None:
    properties = invoice.properties
    if properties.get("jde_document_key"):
        return None  # ours (or another JDE document's): not a HubSpot invoice
    company, document_type, number = parse_document_key(record.key)
    posted = (
        properties.get("jde_document_company"),
        properties.get("jde_document_type"),
        properties.get("jde_document_number"),
    )
    if posted == (company, document_type, str(number)):
        return Loaded(invoice.id, note=f"posted from HubSpot invoice {invoice.id}: not created again")
    if not posted[2]:
        return Rejection(
            f"HubSpot invoice {invoice.id} has this document's reference {properties.get('hs_number')} "
            "(F03B11.VR01) but no JDE document yet: if the invoices flow is posting it, its next run links "
            "them; otherwise correct the reference in JDE. Not created, so HubSpot does not show it twice"
        )
    return None


def _create_invoices(hook: HubSpotHook, records: Sequence[LoadRecord]) -> dict[str, LoadOutcome]:
    results: dict[str, LoadOutcome] = {}
    lines = {line["jde_line_key"]: line for r in records for line in r.payload["lines"]}
    line_outcomes = hook.upsert_records(ObjectType.LINE_ITEMS, lines, id_property="jde_line_key")
    ready: list[LoadRecord] = []
    for record in records:
        written = [line_outcomes.get(line["jde_line_key"]) for line in record.payload["lines"]]
        refused = next((outcome for outcome in written if outcome is None or not outcome.ok), None)
        if refused is not None or None in written:
            results[record.key] = _failure(refused, f"a line item of {record.key}")
        else:
            ready.append(record)
    invoice_outcomes = hook.upsert_records(
        ObjectType.INVOICES, {r.key: r.payload["invoice"] for r in ready}, id_property="jde_document_key"
    )
    made: dict[str, str] = {}
    for record in ready:
        outcome = invoice_outcomes.get(record.key)
        if outcome is not None and outcome.ok and outcome.record_id:
            made[record.key] = outcome.record_id
        else:
            results[record.key] = _failure(outcome, f"invoice {record.key}")
    by_record = {r.key: r for r in ready}
    links: dict[ObjectType, list[tuple[str, AssociationLink]]] = defaultdict(list)
    for key, invoice_id in made.items():
        record = by_record[key]
        customer = int(record.payload["customer"])
        for line in record.payload["lines"]:
            line_id = str(line_outcomes[line["jde_line_key"]].record_id)
            links[ObjectType.LINE_ITEMS].append(
                (key, AssociationLink(from_id=invoice_id, to_id=line_id, types=(INVOICE_TO_LINE_ITEM,)))
            )
        company_id = record.prerequisite_id("company", company_key(customer), "customers")
        contact_id = record.prerequisite_id("contact", str(record.payload["contact"]), "customers")
        links[ObjectType.COMPANIES].append(
            (key, AssociationLink(from_id=invoice_id, to_id=company_id, types=(INVOICE_TO_COMPANY,)))
        )
        links[ObjectType.CONTACTS].append(
            (key, AssociationLink(from_id=invoice_id, to_id=contact_id, types=(INVOICE_TO_CONTACT,)))
        )
    for object_type, pairs in links.items():
        outcomes = {
            (o.from_id, o.to_id): o
            for o in hook.associate(ObjectType.INVOICES, object_type, [link for _, link in pairs])
        }
        for key, link in pairs:
            association = outcomes.get((link.from_id, link.to_id))
            if key in made and (association is None or not association.ok):
                error = association.error if association is not None else None
                reason = f"associating invoice {made[key]} to {object_type.value} {link.to_id}: " + (
                    error.message if error else "no result"
                )
                results[key] = Rejection(reason) if error and not error.retriable else Failed(reason)
                del made[key]
    opened = hook.update_records(
        ObjectType.INVOICES, {invoice_id: {"hs_invoice_status": "open"} for invoice_id in made.values()}
    )
    for key, invoice_id in made.items():
        outcome = opened.get(invoice_id)
        record = by_record[key]
        if outcome is None or not outcome.ok:
            results[key] = _failure(outcome, f"opening invoice {invoice_id}")
            continue
        count = len(record.payload["lines"])
        notes = "; ".join(record.payload.get("notes") or ())
        created = invoice_outcomes[key].status is WriteStatus.CREATED
        results[key] = Loaded(
            invoice_id,
            created=created,
            note=f"HubSpot invoice {invoice_id}: {count} line item(s), open, non-billable"
            + (f"; {notes}" if notes else ""),
        )
    return results


JDE_INVOICE = Entity(
    "jde_invoice",
    target="hubspot",
    key="jde_document_key = KCO-DCT-DOC of a document raised in JDE (F03B11)",
    write=WriteMode.UPSERT,
    map=map_jde_invoice,
    prerequisites=jde_invoice_prerequisites,
    load=load_jde_invoices,
    refresh=refresh("jde_invoice"),
    asset_uri=INVOICES_ASSET,
    call_batch_size=100,
    task_batch_size=5000,
)
INVOICE_STATUS = Entity(
    "invoice_status",
    target="hubspot",
    key="the document KCO-DCT-DOC; its HubSpot invoice from the invoices flow's id map or jde_invoice",
    write=WriteMode.UPSERT,
    map=map_invoice_status,
    prerequisites=invoice_status_prerequisites,
    load=load_invoice_statuses,
    refresh=refresh("invoice_status"),
    depends_on=("jde_invoice",),
    asset_uri=INVOICES_ASSET,
    call_batch_size=500,
    task_batch_size=5000,
)
COMPANY_BALANCE = Entity(
    "company_balance",
    target="hubspot",
    key="the customer F0101.AN8 (its company, jde_address_number)",
    write=WriteMode.AGGREGATE,
    map=map_company_balance,
    prerequisites=company_balance_prerequisites,
    load=load_company_balances,
    refresh=refresh("company_balance"),
    asset_uri=COMPANIES_ASSET,
    call_batch_size=500,
    task_batch_size=5000,
)

AR_STATUS = Flow(
    name=FLOW_NAME,
    description=(
        "JD Edwards A/R (F03B11, F03B14) to HubSpot: invoice status, JDE invoices, company balances. "
        "Statuses go onto the invoices (jde_pay_status, jde_open_amount), documents raised in JDE become "
        "non-billable invoices with their line items (F42119 or F0911), and open and overdue balances go "
        "onto the companies. See docs/BEHAVIOR.md (F)."
    ),
    streams=(Stream("jde", extract=extract_ar_status, codec=JDE_STAMP, timezone_from=server_timezone),),
    entities=(JDE_INVOICE, INVOICE_STATUS, COMPANY_BALANCE),
)
