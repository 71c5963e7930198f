"""Money: the invoices and payments HubSpot shows as posted to JDE, against what JDE's ledgers hold.

- invoice: each HubSpot invoice the invoices flow posted (``jde_sync_status`` posted or conflict,
  ``jde_document_number`` set; not one raised in JDE) against the F03B11 RI documents whose
  reference (VR01) is its ``hs_number``: none is missing in JDE, two or more are a duplicate (a
  document keyed twice), one is compared: document number, company, customer and gross amount, and
  what the invoices flow maps from the invoice now: invoice and due dates, currency, tax, purchase
  order;
- receipt: each HubSpot payment posted (``jde_sync_status = posted``) against the F03B13 receipts
  (not voided) numbered (CKNU) with its id: missing, duplicate, or receipt id, customer, amount and
  date (DMTJ against ``hs_initiated_date``), and the documents its F03B14 lines apply money to
  against the JDE documents of the invoices the payment pays in HubSpot (an application to another
  document is drift; how much goes to each depends on what JDE had open when it was posted);
- gl_lines: each posted invoice found once in JDE, mapped again by the invoices flow's own mapping
  (its line items, discounts, fees and taxes, the posting rules of Variable ``mlconn_invoices``)
  against the document's journal entry (F0911, ledger AA): the amount per account, in the invoice's
  currency; an account on one side only, or an amount that differs, is drift (an invoice edited in
  HubSpot after posting, ``conflict``, says so);
- per customer: the total of its posted invoices and of its receipts on each side (documents and
  receipts counted as JDE holds them, duplicates included, so a double posting shows in the total).

Reads: HubSpot invoices and payments by the list endpoint (100 per page), payments' companies and
the posted invoices' line items, discounts, fees, taxes and products by association and batch reads
(as the invoices flow reads them); JDE by LIST queries of 100 references or documents (several in
flight).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from airflow_provider_mlconn.flows.invoices import INVOICE_READ as FLOW_INVOICE_READ
from airflow_provider_mlconn.flows.invoices import read_invoice_sources
from airflow_provider_mlconn.flows.invoices import read_settings as invoice_settings
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook, TableRead
from airflow_provider_mlconn.hubspot.models import HubSpotRecord
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.models import (
    AccountLedgerRow,
    CustomerLedgerRow,
    ReceiptDetailRow,
    ReceiptHeaderRow,
)
from airflow_provider_mlconn.mapping.ar_status import Document, document_key, money_text
from airflow_provider_mlconn.mapping.invoices import Rejected, invoice_document
from airflow_provider_mlconn.reconcile.report import Finding, Kind, Tally, day_text, normalized

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
    "hs_initiated_date",
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
    read = tuple(dict.fromkeys((*INVOICE_READ, *FLOW_INVOICE_READ)))
    with HubSpotHook(settings.hubspot_conn_id) as hook, JdeAisHook(settings.jde_conn_id) as jde:
        invoices: list[HubSpotRecord] = []
        #: HubSpot invoice id -> the JDE document it shows (posted from it, or raised in JDE)
        document_of_invoice: dict[str, str] = {}
        for record in hook.iter_records(
            ObjectType.INVOICES, properties=read, associations=[ObjectType.COMPANIES]
        ):
            properties = record.properties
            keyed = (properties.get("jde_document_key") or "").strip()
            number = str(properties.get("jde_document_number") or "").strip()
            if keyed:
                document_of_invoice[record.id] = keyed
            elif (properties.get("jde_sync_status") or "") in POSTED and number:
                invoices.append(record)
                if number.isdigit():
                    document_of_invoice[record.id] = document_key(
                        str(properties.get("jde_document_company") or ""),
                        str(properties.get("jde_document_type") or ""),
                        int(number),
                    )
        payments = [
            record
            for record in hook.iter_records(ObjectType.COMMERCE_PAYMENTS, properties=PAYMENT_READ)
            if record.properties.get("jde_sync_status") == "posted"
        ]
        customer_of_payment, invoices_of_payment = _payment_customers(hook, payments, invoices)
        company_ids = {link.id for r in invoices for link in r.associations.get(ObjectType.COMPANIES, ())}
        companies = hook.read_records(ObjectType.COMPANIES, company_ids, properties=["jde_address_number"])
        customer_of_company = {
            i: (r.properties.get("jde_address_number") or "").strip() for i, r in companies.items()
        }
        references = [str(r.properties["hs_number"]) for r in invoices if r.properties.get("hs_number")]
        documents = _documents(jde, references)
        receipts = _receipts(jde, [r.id for r in payments])
        applied = _applications(jde, [r.payment_id for held in receipts.values() for r in held])
        findings: list[Finding] = []
        mapped = _mapped_documents(hook, invoices, documents)
        gl_lines = _compare_gl_lines(jde, invoices, documents, mapped, findings)

    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    tallies = [
        _compare_invoices(invoices, documents, customer_of_company, totals, findings, mapped=mapped),
        gl_lines,
        _compare_receipts(
            payments,
            receipts,
            customer_of_payment,
            totals,
            findings,
            applied=applied,
            paid_documents={
                payment_id: sorted({document_of_invoice[i] for i in ids if i in document_of_invoice})
                for payment_id, ids in invoices_of_payment.items()
            },
        ),
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


def _account(text: str) -> str:
    """``BU.Object[.Subsidiary]`` with each part trimmed (JDE right-justifies business units)."""
    parts = [part.strip() for part in text.split(".")]
    return ".".join(parts[:2] + [part for part in parts[2:] if part])


def _mapped_documents(
    hook: HubSpotHook,
    invoices: Sequence[HubSpotRecord],
    documents: dict[str, dict[tuple[str, int], list[CustomerLedgerRow]]],
) -> dict[str, dict[str, Any] | Rejected]:
    """HubSpot invoice id -> the JDE document the invoices flow would post of it now (read and mapped
    as the flow does), for each invoice JDE holds once."""
    once = [
        record
        for record in invoices
        if len(documents.get(str(record.properties.get("hs_number") or ""), {})) == 1
    ]
    sources = read_invoice_sources(hook, once)
    rules = invoice_settings().posting
    return {record.id: invoice_document(sources[record.id], rules) for record in once if record.id in sources}


def _compare_gl_lines(
    jde: JdeAisHook,
    invoices: Sequence[HubSpotRecord],
    documents: dict[str, dict[tuple[str, int], list[CustomerLedgerRow]]],
    mapped: Mapping[str, dict[str, Any] | Rejected],
    findings: list[Finding],
) -> Tally:
    """Each invoice posted once: what the invoices flow would post now, per account, against the
    document's journal entry (F0911 ledger AA credits, in the document's currency)."""
    tally = Tally(flow=FLOW, entity="gl_lines")
    once = {
        record.id: (record, next(iter(documents[str(record.properties["hs_number"])].items())))
        for record in invoices
        if record.id in mapped
    }
    journal: dict[tuple[str, int], list[AccountLedgerRow]] = defaultdict(list)
    posted = sorted({key for _, (key, _) in once.values()})
    reads = (
        TableRead(
            "F0911",
            query=q.all_of(
                q.in_list("F0911.DOC", [doc for _, doc in chunk]),
                q.in_list("F0911.KCO", sorted({kco for kco, _ in chunk})),
                q.eq("F0911.DCT", "RI"),
                q.eq("F0911.LT", "AA"),
            ),
        )
        for chunk in (posted[i : i + _CHUNK] for i in range(0, len(posted), _CHUNK))
    )
    for rows in jde.read_all(reads):
        for row in rows:
            line = AccountLedgerRow.model_validate(row)
            journal[(line.document_company, line.document_number)].append(line)
    for invoice_id, (record, (key, items)) in sorted(once.items(), key=lambda item: int(item[0])):
        number = str(record.properties["hs_number"])
        tally.jde += 1 if journal.get(key) else 0
        document_now = mapped[invoice_id]
        if isinstance(document_now, Rejected):
            tally.not_sent += 1  # edited in HubSpot since it was posted, so that it could not be now
            continue
        tally.hubspot += 1
        document = Document(items=tuple(items))
        currency = document.currency
        sent: dict[str, Decimal] = defaultdict(Decimal)
        for line in document_now["distribution"]:
            sent[_account(str(line["account"]))] += Decimal(str(line["amount"]))
        held: dict[str, Decimal] = defaultdict(Decimal)
        for line in journal.get(key, []):
            held[_account(line.account_number)] += -line.amount * document.rate
        conflict = (record.properties.get("jde_sync_status") or "") == "conflict"
        same = True
        for account in sorted(set(sent) | set(held)):
            want = money_text(held[account], currency) if account in held else ""
            have = money_text(sent[account], currency) if account in sent else ""
            if normalized(want) != normalized(have):
                same = False
                tally.add(Kind.DRIFT)
                findings.append(
                    Finding(
                        flow=FLOW,
                        entity="gl_lines",
                        key=number,
                        kind=Kind.DRIFT,
                        field=f"account {account}",
                        jde=want,
                        hubspot=have,
                        hubspot_ids=(record.id,),
                        note=f"{key[0]}-RI-{key[1]} journal entry (F0911) against the invoice's lines as the "
                        "invoices flow maps them"
                        + ("; the invoice changed in HubSpot after posting (conflict)" if conflict else ""),
                    )
                )
        if same:
            tally.matched += 1
    return tally


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


def _applications(jde: JdeAisHook, payment_ids: Sequence[int]) -> dict[int, list[ReceiptDetailRow]]:
    """JDE payment id (PYID) -> its F03B14 lines that apply money: not voided, not a void's reversal."""
    found: dict[int, list[ReceiptDetailRow]] = defaultdict(list)
    numbers = sorted(set(payment_ids))
    reads = (
        TableRead("F03B14", query=q.in_list("F03B14.PYID", numbers[i : i + _CHUNK]))
        for i in range(0, len(numbers), _CHUNK)
    )
    for rows in jde.read_all(reads):
        for row in rows:
            line = ReceiptDetailRow.model_validate(row)
            if line.void_gl_date is None and line.matching_document_type != "RO" and line.amount_applied:
                found[line.payment_id].append(line)
    return found


def _payment_customers(
    hook: HubSpotHook, payments: Sequence[HubSpotRecord], invoices: Sequence[HubSpotRecord]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """payment id -> the JDE customer of its company (else of its invoice's company), and payment id
    -> the HubSpot invoices it pays."""
    if not payments:
        return {}, {}
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
    customers = {
        payment_id: (found[company].properties.get("jde_address_number") or "").strip()
        for payment_id, company in wanted.items()
        if company in found
    }
    return customers, {
        payment_id: [link.to_id for link in invoice_links.get(payment_id, [])] for payment_id in ids
    }


def _compare_invoices(
    invoices: Sequence[HubSpotRecord],
    documents: dict[str, dict[tuple[str, int], list[CustomerLedgerRow]]],
    customer_of_company: dict[str, str],
    totals: dict[str, dict[str, Decimal]],
    findings: list[Finding],
    *,
    mapped: Mapping[str, dict[str, Any] | Rejected],
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
            totals[str(items[0].address_number)]["jde_invoices"] += Document(items=tuple(items)).gross
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
            "hs_amount_billed": normalized(Document(items=tuple(items)).gross),
        }
        shown = {
            "jde_document_number": normalized(properties.get("jde_document_number")),
            "jde_document_company": normalized(properties.get("jde_document_company")),
            "jde_address_number": customer,
            "hs_amount_billed": normalized(billed),
        }
        document_now = mapped.get(record.id)
        if isinstance(document_now, dict):
            held.update(_header(items))
            shown.update(_header_sent(document_now, held))
        differs = [name for name in held if held[name] != shown[name]]
        conflict = (properties.get("jde_sync_status") or "") == "conflict"
        for name in differs:
            found(
                Kind.DRIFT,
                number,
                record,
                field=name,
                jde=held[name],
                hubspot=shown[name],
                note="the invoice changed in HubSpot after posting (conflict)" if conflict else "",
            )
        if not differs:
            tally.matched += 1
    return tally


def _header(items: Sequence[CustomerLedgerRow]) -> dict[str, str]:
    """What the RI document holds of the fields the invoices flow maps from the HubSpot invoice."""
    document = Document(items=tuple(items))
    first = document.first
    due_dates = [item.due_date for item in items if item.due_date is not None]
    return {
        "hs_invoice_date": first.invoice_date.isoformat() if first.invoice_date else "",
        "hs_due_date": min(due_dates).isoformat() if due_dates else "",
        "hs_currency": first.currency.strip(),
        "tax": normalized(document.tax),
        "hs_purchase_order_number": first.purchase_order.strip(),
    }


def _header_sent(document: Mapping[str, Any], held: Mapping[str, str]) -> dict[str, str]:
    """The same fields as the invoices flow maps them now; a date it leaves to JDE (none in HubSpot:
    JDE defaults it) is taken as JDE has it."""
    return {
        "hs_invoice_date": str(document.get("invoice_date") or held["hs_invoice_date"]),
        "hs_due_date": str(document.get("due_date") or held["hs_due_date"]),
        "hs_currency": str(document["currency"]),
        "tax": normalized(document["tax"]),
        "hs_purchase_order_number": str(document.get("purchase_order") or ""),
    }


def _compare_receipts(
    payments: Sequence[HubSpotRecord],
    receipts: dict[str, list[ReceiptHeaderRow]],
    customer_of_payment: dict[str, str],
    totals: dict[str, dict[str, Decimal]],
    findings: list[Finding],
    *,
    applied: Mapping[int, Sequence[ReceiptDetailRow]],
    paid_documents: Mapping[str, Sequence[str]],
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
        received = receipt.receipt_date or receipt.gl_date
        jde_side = {
            "jde_payment_id": str(receipt.payment_id),
            "jde_address_number": str(receipt.address_number),
            "hs_initial_amount": normalized(_receipt_amount(receipt)),
            "hs_initiated_date": received.isoformat() if received else "",
        }
        hubspot_side = {
            "jde_payment_id": normalized(record.properties.get("jde_payment_id")),
            "jde_address_number": customer,
            "hs_initial_amount": normalized(amount),
            "hs_initiated_date": day_text(record.properties.get("hs_initiated_date")),
        }
        differs = [name for name in jde_side if jde_side[name] != hubspot_side[name]]
        for name in differs:
            found(Kind.DRIFT, record, field=name, jde=jde_side[name], hubspot=hubspot_side[name])
        # Every document the receipt applies money to is one the payment pays in HubSpot.
        lines = applied.get(receipt.payment_id, ())
        documents = sorted(
            {document_key(ln.document_company, ln.document_type, ln.document_number) for ln in lines}
        )
        expected = paid_documents.get(record.id, [])
        if any(document not in expected for document in documents):
            differs.append("applied to")
            found(
                Kind.DRIFT,
                record,
                field="applied to",
                jde=", ".join(documents),
                hubspot=", ".join(expected) or "no invoice",
                note="the receipt's F03B14 lines pay a document the payment does not pay in HubSpot",
            )
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
