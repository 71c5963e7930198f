"""A/R status: JDE's customer ledger, read whole as a full run of the A/R status flow reads it and
mapped by that flow's own mapping (what a run would send), against what HubSpot shows, for every
customer whose company is in HubSpot (one company per ``jde_address_number``; the customers
comparison reports the rest).

- jde_invoice: each document raised in JDE that the flow shows in HubSpot (``invoice_types``, not
  voided, not before ``jde_invoices_since``) against the HubSpot invoices keyed by its
  ``jde_document_key``: none is missing in HubSpot, two or more a duplicate, one is compared field
  by field (amounts, dates, currency, title, document numbers), with its amount billed (JDE's gross)
  and the company it is associated with; a keyed HubSpot invoice whose document JDE does not have
  is missing in JDE;
- line_item: each line of such an invoice, by ``jde_line_key``: missing on the invoice, drifted
  (name, quantity, price, tax, currency, SKU), or a line on the invoice JDE does not have;
- invoice_status: ``jde_open_amount``, ``jde_pay_status`` and ``jde_last_receipt_date`` of every
  document HubSpot shows, raised in JDE or posted from a HubSpot invoice (found by its
  ``jde_document_company`` / ``_type`` / ``_number``, not through the store);
- company_balance: the company's four A/R roll-ups (figured on the JDE server's today, so an item
  that fell due since the flow's last run shows as drift until its next run).

Reads: JDE as the flow's full read (100 customers per round of LIST queries, and for the documents
raised in JDE their Who's Who, sales order and journal lines); HubSpot the company and invoice lists
(100 per page), the invoices' line items by v4 association batch reads and 100-per-call batch reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_mlconn.flows import ar_status as flow
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.hubspot.models import HubSpotRecord
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.mapping.ar_status import document_key
from airflow_provider_mlconn.reconcile.money import POSTED
from airflow_provider_mlconn.reconcile.report import Finding, Kind, Tally, day_text, normalized
from airflow_provider_mlconn.rejection import Rejection

FLOW = flow.FLOW_NAME
STATUS = ("jde_open_amount", "jde_pay_status", "jde_last_receipt_date")
BALANCE = (
    "jde_open_ar_balance",
    "jde_overdue_ar_balance",
    "jde_oldest_open_due_date",
    "jde_last_payment_date",
)
INVOICE_READ = (
    "hs_currency",
    "hs_invoice_date",
    "hs_due_date",
    "hs_invoice_billable",
    "hs_title",
    "hs_purchase_order_number",
    "hs_amount_billed",
    "hs_invoice_status",
    "jde_document_key",
    "jde_document_number",
    "jde_document_type",
    "jde_document_company",
    "jde_batch_number",
    "jde_sync_status",
    *STATUS,
)
LINE_READ = ("name", "quantity", "price", "tax", "hs_line_item_currency_code", "hs_sku", "jde_line_key")
_ORDER = {"jde_invoice": 0, "invoice_status": 1, "company_balance": 2}
#: Properties whose values are days: HubSpot may give a date back as midnight UTC or epoch ms.
_DAYS = frozenset(
    (
        "hs_invoice_date",
        "hs_due_date",
        "jde_last_receipt_date",
        "jde_oldest_open_due_date",
        "jde_last_payment_date",
    )
)


def compared(name: str, value: Any) -> str:
    """A value as compared: a day as ``YYYY-MM-DD``, anything else as ``normalized`` makes it."""
    return day_text(value) if name in _DAYS else normalized(value)


@dataclass(frozen=True, slots=True)
class _Held:
    """What the comparison keeps of a HubSpot record: the properties it compares, and an invoice's
    companies (not the whole record: at 100,000 customers, every company and invoice is held)."""

    id: str
    properties: dict[str, str | None]
    companies: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: HubSpotRecord, names: Sequence[str]) -> _Held:
        return cls(
            record.id,
            {name: record.properties.get(name) for name in names},
            tuple(link.id for link in record.associations.get(ObjectType.COMPANIES, ())),
        )


class _HubSpotSide:
    """What HubSpot shows, indexed by JDE keys; doubles as the flow's ``DocumentOrigins``."""

    def __init__(self, hook: HubSpotHook) -> None:
        self.companies: dict[int, list[_Held]] = defaultdict(list)
        self.company_customer: dict[str, int] = {}
        for record in hook.iter_records(ObjectType.COMPANIES, properties=("jde_address_number", *BALANCE)):
            number = (record.properties.get("jde_address_number") or "").strip()
            if number.isdigit():
                self.companies[int(number)].append(_Held.of(record, BALANCE))
                self.company_customer[record.id] = int(number)
        #: document key -> the HubSpot invoices raised in JDE that carry it (jde_document_key)
        self.keyed: dict[str, list[_Held]] = defaultdict(list)
        #: document key -> the HubSpot invoice the invoices flow posted it from
        self.posted: dict[str, _Held] = {}
        for record in hook.iter_records(
            ObjectType.INVOICES, properties=INVOICE_READ, associations=[ObjectType.COMPANIES]
        ):
            properties = record.properties
            key = (properties.get("jde_document_key") or "").strip()
            if key:
                self.keyed[key].append(_Held.of(record, INVOICE_READ))
            elif (properties.get("jde_sync_status") or "") in POSTED and (
                number := str(properties.get("jde_document_number") or "").strip()
            ).isdigit():
                posted = document_key(
                    str(properties.get("jde_document_company") or ""),
                    str(properties.get("jde_document_type") or ""),
                    int(number),
                )
                self.posted[posted] = _Held.of(record, STATUS)

    def from_hubspot(self, keys: Iterable[str]) -> dict[str, str]:
        return {key: self.posted[key].id for key in keys if key in self.posted}

    def created(self, keys: Iterable[str]) -> set[str]:
        return {key for key in keys if key in self.keyed}


class _Comparison:
    def __init__(self, hubspot: _HubSpotSide) -> None:
        self.hubspot = hubspot
        self.tallies = {
            entity: Tally(flow=FLOW, entity=entity)
            for entity in ("jde_invoice", "line_item", "invoice_status", "company_balance")
        }
        self.tallies["jde_invoice"].hubspot = sum(len(records) for records in hubspot.keyed.values())
        self.findings: list[Finding] = []
        #: Documents raised in JDE whose HubSpot invoice the flow's mapping refuses (not sent).
        self.refused: set[str] = set()

    def found(self, entity: str, kind: Kind, key: str, **details: Any) -> None:
        self.tallies[entity].add(kind)
        self.findings.append(Finding(flow=FLOW, entity=entity, key=key, kind=kind, **details))

    def fields(
        self,
        entity: str,
        key: str,
        expected: Mapping[str, Any],
        record: _Held | HubSpotRecord,
        *,
        note: str = "",
    ) -> bool:
        """Drift per field; True when every field agrees."""
        same = True
        for name, value in sorted(expected.items()):
            want, have = compared(name, value), compared(name, record.properties.get(name))
            if want != have:
                same = False
                self.found(
                    entity,
                    Kind.DRIFT,
                    key,
                    field=name,
                    jde=want,
                    hubspot=have,
                    hubspot_ids=(record.id,),
                    note=note,
                )
        return same

    def balance(self, key: str, source: Mapping[str, Any]) -> None:
        tally = self.tallies["company_balance"]
        companies = self.hubspot.companies.get(int(key), [])
        if len(companies) != 1:
            return  # not in HubSpot, or doubled: the customers comparison says so
        tally.jde += 1
        mapped = flow.map_company_balance(source)
        if isinstance(mapped, Rejection):
            tally.not_sent += 1
            return
        tally.hubspot += 1
        if self.fields("company_balance", key, mapped["properties"], companies[0]):
            tally.matched += 1

    def status(self, key: str, source: Mapping[str, Any]) -> None:
        tally = self.tallies["invoice_status"]
        if source["origin"] == "hubspot":
            invoices = [self.hubspot.posted[key]]
        else:
            invoices = self.hubspot.keyed.get(key, [])
        tally.jde += 1
        if not invoices:
            if key in self.refused:
                tally.not_sent += 1  # no invoice to show it on: the flow does not create one
            return  # else a document to create: the jde_invoice comparison reports it missing
        tally.hubspot += len(invoices)
        expected = flow.map_invoice_status(source)["properties"]
        same = all([self.fields("invoice_status", key, expected, invoice) for invoice in invoices])
        if source["origin"] == "jde" and expected["jde_pay_status"] == "voided":
            # The flow voids the HubSpot invoice of a document raised in JDE that JDE voided.
            for invoice in invoices:
                status = invoice.properties.get("hs_invoice_status") or ""
                if status != "voided":
                    same = False
                    self.found(
                        "invoice_status",
                        Kind.DRIFT,
                        key,
                        field="hs_invoice_status",
                        jde="voided",
                        hubspot=status,
                        hubspot_ids=(invoice.id,),
                        note="voided in JDE",
                    )
        if same:
            tally.matched += 1

    def invoice(self, key: str, source: Mapping[str, Any], lines: Mapping[str, list[HubSpotRecord]]) -> None:
        tally = self.tallies["jde_invoice"]
        tally.jde += 1
        mapped = flow.map_jde_invoice(source)
        invoices = self.hubspot.keyed.get(key, [])
        if isinstance(mapped, Rejection):
            tally.not_sent += 1
            self.refused.add(key)
            return
        if not invoices:
            self.found(
                "jde_invoice",
                Kind.MISSING_IN_HUBSPOT,
                key,
                note="raised in JDE; HubSpot has no invoice for it",
            )
            return
        if len(invoices) > 1:
            ids = tuple(sorted((r.id for r in invoices), key=int))
            self.found("jde_invoice", Kind.DUPLICATE, key, hubspot_ids=ids)
            return
        [record] = invoices
        gross = flow.document_gross(source)
        same = self.fields("jde_invoice", key, {**mapped["invoice"], "hs_amount_billed": gross}, record)
        if record.properties.get("hs_invoice_status") == "voided":
            same = False
            self.found(
                "jde_invoice",
                Kind.DRIFT,
                key,
                field="hs_invoice_status",
                jde="not voided",
                hubspot="voided",
                hubspot_ids=(record.id,),
                note="voided in HubSpot; JDE has the document (a void in JDE is a credit memo or VOD there)",
            )
        customer = int(mapped["customer"])
        linked = sorted({str(self.hubspot.company_customer.get(link, "")) for link in record.companies})
        if linked != [str(customer)]:
            same = False
            self.found(
                "jde_invoice",
                Kind.DRIFT,
                key,
                field="company",
                jde=str(customer),
                hubspot=", ".join(number or "a company without jde_address_number" for number in linked),
                hubspot_ids=(record.id,),
                note="the invoice's company association",
            )
        if self.lines(key, mapped["lines"], lines.get(record.id, [])) and same:
            tally.matched += 1

    def lines(self, key: str, expected: Sequence[Mapping[str, Any]], held: Sequence[HubSpotRecord]) -> bool:
        tally = self.tallies["line_item"]
        by_key: dict[str, list[HubSpotRecord]] = defaultdict(list)
        for record in held:
            by_key[(record.properties.get("jde_line_key") or "").strip()].append(record)
        tally.jde += len(expected)
        tally.hubspot += len(held)
        same = True
        for line in expected:
            line_key = str(line["jde_line_key"])
            records = by_key.pop(line_key, [])
            if not records:
                same = False
                self.found(
                    "line_item", Kind.MISSING_IN_HUBSPOT, line_key, note=f"not on the invoice of {key}"
                )
            elif len(records) > 1:
                same = False
                self.found("line_item", Kind.DUPLICATE, line_key, hubspot_ids=tuple(r.id for r in records))
            elif self.fields("line_item", line_key, {**dict.fromkeys(LINE_READ[:6]), **line}, records[0]):
                tally.matched += 1
            else:
                same = False
        for line_key, records in sorted(by_key.items()):
            same = False
            for record in records:
                self.found(
                    "line_item",
                    Kind.MISSING_IN_JDE,
                    line_key or f"{key} (HubSpot line item {record.id})",
                    hubspot_ids=(record.id,),
                    note=f"on the invoice of {key}; JDE has no such line",
                )
        return same

    def gone(self, documents: set[str]) -> None:
        for key, records in sorted(self.hubspot.keyed.items()):
            if key not in documents:
                self.found(
                    "jde_invoice",
                    Kind.MISSING_IN_JDE,
                    key,
                    hubspot_ids=tuple(r.id for r in records),
                    note="HubSpot shows an invoice raised in JDE; JDE has no such document (F03B11)",
                )


def compare_ar_status() -> tuple[list[Tally], list[Finding]]:
    """Compare the A/R status flow's three entities and the invoices' line items; see the module
    docstring."""
    settings = flow.read_settings(fresh=True)
    with HubSpotHook(settings.hubspot_conn_id) as hook, JdeAisHook(settings.jde_conn_id) as jde:
        hubspot = _HubSpotSide(hook)
        comparison = _Comparison(hubspot)
        ledger = flow.WholeLedger(jde, settings, hubspot)
        for staged in ledger.chunks(hubspot.companies):
            invoice_ids = [
                hubspot.keyed[key][0].id
                for entity, key in staged
                if entity == "jde_invoice" and len(hubspot.keyed.get(key, [])) == 1
            ]
            lines = _line_items(hook, invoice_ids)
            # Invoices first: a status whose invoice the mapping refuses is not sent either.
            for (entity, key), source in sorted(
                staged.items(), key=lambda item: (_ORDER[item[0][0]], item[0][1])
            ):
                if entity == "company_balance":
                    comparison.balance(key, source)
                elif entity == "invoice_status":
                    comparison.status(key, source)
                else:
                    comparison.invoice(key, source, lines)
        comparison.gone(ledger.documents)
    return list(comparison.tallies.values()), comparison.findings


def _line_items(hook: HubSpotHook, invoice_ids: Sequence[str]) -> dict[str, list[HubSpotRecord]]:
    """invoice id -> its line items."""
    if not invoice_ids:
        return {}
    links = hook.read_associations(ObjectType.INVOICES, ObjectType.LINE_ITEMS, invoice_ids)
    found = hook.read_records(
        ObjectType.LINE_ITEMS,
        {link.to_id for linked in links.values() for link in linked},
        properties=LINE_READ,
    )
    return {
        invoice_id: [found[link.to_id] for link in linked if link.to_id in found]
        for invoice_id, linked in links.items()
    }
