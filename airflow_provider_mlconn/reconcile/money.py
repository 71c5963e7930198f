"""Money: the invoices and payments HubSpot shows as posted to JDE, against what JDE's ledgers hold.

- invoice: each HubSpot invoice the invoices flow posted (``jde_sync_status`` posted or conflict,
  ``jde_document_number`` set; not one raised in JDE) against the F03B11 RI documents whose
  reference (VR01) is its ``hs_number``: none is missing in JDE, two or more are a duplicate (a
  document keyed twice), one is compared: document number, company, customer and gross amount;
- receipt: each HubSpot payment posted (``jde_sync_status = posted``) against the F03B13 receipts
  (not voided) numbered (CKNU) with its id: missing, duplicate, or receipt id, customer and amount;
- per customer: the total of its posted invoices and of its receipts on each side (documents and
  receipts counted as JDE holds them, duplicates included, so a double posting shows in the total).

Reads: HubSpot invoices and payments by the list endpoint (100 per page), payments' companies by
association batch reads; JDE by LIST queries of 100 references (several in flight).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from airflow_provider_mlconn.flows.invoices import read_settings as invoice_settings
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook, TableRead
from airflow_provider_mlconn.hubspot.models import HubSpotRecord
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.models import CustomerLedgerRow, ReceiptHeaderRow
from airflow_provider_mlconn.reconcile.report import Finding, Kind, Tally, normalized

FLOW = "money"
INVOICE_READ = (
    "hs_number",
    "hs_currency",
    "hs_amount_billed",
    "jde_document_number",
    "jde_document_type",
    "jde_document_company",
    "jde_document_key",
    "jde_sync_status",
)
PAYMENT_READ = (
    "hs_initial_amount",
    "hs_latest_status",
    "jde_payment_id",
    "jde_receipt_number",
    "jde_sync_status",
)
#: Invoice statuses of an invoice whose JDE document exists (conflict: changed after posting).
POSTED = ("posted", "conflict")
_CHUNK = 100


def compare_money() -> tuple[list[Tally], list[Finding]]:
    """Compare posted invoices and receipts, and each customer's totals; see the module docstring."""
    settings = invoice_settings(fresh=True)
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        invoices = [
            record
            for record in hook.iter_records(
                ObjectType.INVOICES, properties=INVOICE_READ, associations=[ObjectType.COMPANIES]
            )
            if (record.properties.get("jde_sync_status") or "") in POSTED
            and record.properties.get("jde_document_number")
            and not record.properties.get("jde_document_key")
        ]
        payments = [
            record
            for record in hook.iter_records(ObjectType.COMMERCE_PAYMENTS, properties=PAYMENT_READ)
            if record.properties.get("jde_sync_status") == "posted"
        ]
        customer_of_payment = _payment_customers(hook, payments, invoices)
        company_ids = {link.id for r in invoices for link in r.associations.get(ObjectType.COMPANIES, ())}
        companies = hook.read_records(ObjectType.COMPANIES, company_ids, properties=["jde_address_number"])
    customer_of_company = {
        i: (r.properties.get("jde_address_number") or "").strip() for i, r in companies.items()
    }
    with JdeAisHook(settings.jde_conn_id) as jde:
        references = [str(r.properties["hs_number"]) for r in invoices if r.properties.get("hs_number")]
        documents = _documents(jde, references)
        receipts = _receipts(jde, [r.id for r in payments])

    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    findings: list[Finding] = []
    tallies = [
        _compare_invoices(invoices, documents, customer_of_company, totals, findings),
        _compare_receipts(payments, receipts, customer_of_payment, totals, findings),
    ]
    tallies.append(_compare_totals(totals, findings))
    return tallies, findings


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def _documents(
    jde: JdeAisHook, references: Sequence[str]
) -> dict[str, dict[tuple[str, int], list[CustomerLedgerRow]]]:
    """reference (VR01) -> (KCO, DOC) -> the RI document's pay items."""
    found: dict[str, dict[tuple[str, int], list[CustomerLedgerRow]]] = defaultdict(lambda: defaultdict(list))
    reads = (
        TableRead("F03B11", query=q.all_of(q.in_list("F03B11.VR01", chunk), q.eq("F03B11.DCT", "RI")))
        for chunk in _chunks(sorted(set(references)))
    )
    for rows in jde.read_all(reads):
        for row in rows:
            item = CustomerLedgerRow.model_validate(row)
            found[item.reference.strip()][(item.document_company, item.document_number)].append(item)
    return found


def _receipts(jde: JdeAisHook, payment_ids: Sequence[str]) -> dict[str, list[ReceiptHeaderRow]]:
    """receipt number (CKNU) -> the receipts not voided."""
    found: dict[str, list[ReceiptHeaderRow]] = defaultdict(list)
    reads = (
        TableRead("F03B13", query=q.in_list("F03B13.CKNU", chunk))
        for chunk in _chunks(sorted(set(payment_ids)))
    )
    for rows in jde.read_all(reads):
        for row in rows:
            receipt = ReceiptHeaderRow.model_validate(row)
            if receipt.void_gl_date is None:
                found[receipt.receipt_number.strip()].append(receipt)
    return found


def _payment_customers(
    hook: HubSpotHook, payments: Sequence[HubSpotRecord], invoices: Sequence[HubSpotRecord]
) -> dict[str, str]:
    """payment id -> the JDE customer of its company (else of its invoice's company)."""
    if not payments:
        return {}
    ids = [payment.id for payment in payments]
    company_links = hook.read_associations(ObjectType.COMMERCE_PAYMENTS, ObjectType.COMPANIES, ids)
    invoice_links = hook.read_associations(ObjectType.COMMERCE_PAYMENTS, ObjectType.INVOICES, ids)
    invoice_company = {
        r.id: links[0].id for r in invoices if (links := r.associations.get(ObjectType.COMPANIES))
    }
    wanted: dict[str, str] = {}
    for payment_id in ids:
        companies = sorted((link.to_id for link in company_links.get(payment_id, [])), key=int)
        if not companies:
            companies = [
                invoice_company[link.to_id]
                for link in invoice_links.get(payment_id, [])
                if link.to_id in invoice_company
            ]
        if companies:
            wanted[payment_id] = companies[0]
    found = hook.read_records(ObjectType.COMPANIES, set(wanted.values()), properties=["jde_address_number"])
    return {
        payment_id: (found[company].properties.get("jde_address_number") or "").strip()
        for payment_id, company in wanted.items()
        if company in found
    }


def _document_gross(items: Sequence[CustomerLedgerRow]) -> Decimal:
    return sum(
        (item.foreign_gross_amount if item.currency_mode == "F" else item.gross_amount for item in items),
        Decimal(0),
    )


def _compare_invoices(
    invoices: Sequence[HubSpotRecord],
    documents: dict[str, dict[tuple[str, int], list[CustomerLedgerRow]]],
    customer_of_company: dict[str, str],
    totals: dict[str, dict[str, Decimal]],
    findings: list[Finding],
) -> Tally:
    tally = Tally(flow=FLOW, entity="invoice", hubspot=len(invoices))
    tally.jde = sum(len(found) for found in documents.values())

    def found(kind: Kind, key: str, record: HubSpotRecord, **details: Any) -> None:
        tally.add(kind)
        findings.append(
            Finding(flow=FLOW, entity="invoice", key=key, kind=kind, hubspot_ids=(record.id,), **details)
        )

    for record in sorted(invoices, key=lambda r: int(r.id)):
        properties = record.properties
        number = str(properties.get("hs_number") or "")
        companies = record.associations.get(ObjectType.COMPANIES, ())
        customer = customer_of_company.get(companies[0].id, "") if companies else ""
        billed = Decimal(normalized(properties.get("hs_amount_billed")) or "0")
        if customer:
            totals[customer]["hubspot_invoices"] += billed
        posted = documents.get(number, {})
        for items in posted.values():
            totals[str(items[0].address_number)]["jde_invoices"] += _document_gross(items)
        if not posted:
            found(
                Kind.MISSING_IN_JDE,
                number,
                record,
                note="HubSpot shows it posted; JDE has no RI with this reference",
            )
            continue
        if len(posted) > 1:
            keyed = ", ".join(f"{kco}-RI-{doc}" for kco, doc in sorted(posted))
            found(
                Kind.DUPLICATE,
                number,
                record,
                note=f"JDE has {len(posted)} documents with this reference: {keyed}",
            )
            continue
        [((company, document), items)] = posted.items()
        held = {
            "jde_document_number": str(document),
            "jde_document_company": company,
            "jde_address_number": str(items[0].address_number),
            "hs_amount_billed": normalized(_document_gross(items)),
        }
        shown = {
            "jde_document_number": normalized(properties.get("jde_document_number")),
            "jde_document_company": normalized(properties.get("jde_document_company")),
            "jde_address_number": customer,
            "hs_amount_billed": normalized(billed),
        }
        differs = [name for name in held if held[name] != shown[name]]
        for name in differs:
            found(Kind.DRIFT, number, record, field=name, jde=held[name], hubspot=shown[name])
        if not differs:
            tally.matched += 1
    return tally


def _compare_receipts(
    payments: Sequence[HubSpotRecord],
    receipts: dict[str, list[ReceiptHeaderRow]],
    customer_of_payment: dict[str, str],
    totals: dict[str, dict[str, Decimal]],
    findings: list[Finding],
) -> Tally:
    tally = Tally(
        flow=FLOW, entity="receipt", hubspot=len(payments), jde=sum(len(r) for r in receipts.values())
    )

    def found(kind: Kind, record: HubSpotRecord, **details: Any) -> None:
        tally.add(kind)
        findings.append(
            Finding(
                flow=FLOW, entity="receipt", key=record.id, kind=kind, hubspot_ids=(record.id,), **details
            )
        )

    for record in sorted(payments, key=lambda r: int(r.id)):
        amount = Decimal(normalized(record.properties.get("hs_initial_amount")) or "0")
        customer = customer_of_payment.get(record.id, "")
        if customer:
            totals[customer]["hubspot_receipts"] += amount
        held = receipts.get(record.id, [])
        for receipt in held:
            totals[str(receipt.address_number)]["jde_receipts"] += _receipt_amount(receipt)
        if not held:
            found(
                Kind.MISSING_IN_JDE,
                record,
                note="HubSpot shows it posted; JDE has no receipt with this number",
            )
            continue
        if len(held) > 1:
            ids = ", ".join(str(r.payment_id) for r in held)
            found(Kind.DUPLICATE, record, note=f"JDE has {len(held)} receipts numbered {record.id}: {ids}")
            continue
        [receipt] = held
        jde_side = {
            "jde_payment_id": str(receipt.payment_id),
            "jde_address_number": str(receipt.address_number),
            "hs_initial_amount": normalized(_receipt_amount(receipt)),
        }
        hubspot_side = {
            "jde_payment_id": normalized(record.properties.get("jde_payment_id")),
            "jde_address_number": customer,
            "hs_initial_amount": normalized(amount),
        }
        differs = [name for name in jde_side if jde_side[name] != hubspot_side[name]]
        for name in differs:
            found(Kind.DRIFT, record, field=name, jde=jde_side[name], hubspot=hubspot_side[name])
        if not differs:
            tally.matched += 1
    return tally


def _receipt_amount(receipt: ReceiptHeaderRow) -> Decimal:
    return receipt.foreign_receipt_amount if receipt.currency_mode == "F" else receipt.receipt_amount


def _compare_totals(totals: dict[str, dict[str, Decimal]], findings: list[Finding]) -> Tally:
    tally = Tally(flow=FLOW, entity="customer_totals", jde=len(totals), hubspot=len(totals))
    for customer in sorted(totals, key=lambda c: int(c) if c.isdigit() else 0):
        sums = totals[customer]
        same = True
        for what in ("invoices", "receipts"):
            jde, hubspot = sums.get(f"jde_{what}", Decimal(0)), sums.get(f"hubspot_{what}", Decimal(0))
            if jde != hubspot:
                same = False
                tally.add(Kind.TOTAL)
                findings.append(
                    Finding(
                        flow=FLOW,
                        entity="customer_totals",
                        key=customer or "(no customer)",
                        kind=Kind.TOTAL,
                        field=what,
                        jde=normalized(jde),
                        hubspot=normalized(hubspot),
                    )
                )
        if same:
            tally.matched += 1
    return tally
