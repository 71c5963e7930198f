"""A/R status, pure: what JDE's customer ledger knows, as HubSpot shows it.

- A document (F03B11 pay items, with the F03B14 receipt lines applied to it and the receipts' dates
  from F03B13) -> the status properties of its HubSpot invoice: ``jde_open_amount``,
  ``jde_pay_status`` and ``jde_last_receipt_date``.
- A document raised in JDE (not from HubSpot) -> the HubSpot invoice that shows it: its properties
  (non-billable, keyed by ``jde_document_key``) and its line items, from the billed sales order lines
  (F42119) when Sales Update raised it, else from its revenue lines (F0911).
- A customer's open items and receipts -> the company's roll-ups: ``jde_open_ar_balance``,
  ``jde_overdue_ar_balance``, ``jde_oldest_open_due_date``, ``jde_last_payment_date``.

Amounts are in the document's own currency: a foreign-mode document (CRRM ``F``) keeps it in
ACR/FAP, a domestic one in AG/AAP; each currency with its own decimals (JPY none). A company's
roll-ups are in the customer's currency; open items in another currency are left out and named.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from airflow_provider_mlconn.jde.models import (
    AccountLedgerRow,
    CustomerLedgerRow,
    ReceiptDetailRow,
    ReceiptHeaderRow,
    SalesOrderLineRow,
)
from airflow_provider_mlconn.mapping.invoices import currency_decimals
from airflow_provider_mlconn.rejection import Rejection

#: ``jde_pay_status`` values, in the order the property lists them.
PAY_STATUSES = ("open", "partially_paid", "paid", "written_off", "voided")
#: F03B14 matching document types that are not money received: a zero receipt netting a credit
#: memo (RS) and a void's reversal lines (RO).
NOT_RECEIPTS = ("RS", "RO")
ZERO = Decimal(0)


def document_key(company: str, document_type: str, number: int) -> str:
    """``KCO-DCT-DOC``: the key of a JDE document, as ``jde_document_key`` and the invoices flow's
    id map hold it (``00001-RI-90000001``)."""
    return f"{company}-{document_type}-{number}"


def parse_document_key(key: str) -> tuple[str, str, int]:
    company, document_type, number = key.split("-")
    return company, document_type, int(number)


def money_text(value: Decimal, currency: str) -> str:
    """An amount with its currency's decimals, as HubSpot is sent it (``1270.00``, JPY ``12345``)."""
    places = currency_decimals(currency)
    return format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), "f")


def _in_document_currency(item: CustomerLedgerRow, domestic: Decimal, foreign: Decimal) -> Decimal:
    return foreign if item.currency_mode == "F" else domestic


@dataclass(frozen=True)
class Document:
    """One JDE document, whole: its pay items, the receipt lines applied to it, and the date of each
    receipt that was not voided (F03B13.DMTJ by payment id)."""

    items: tuple[CustomerLedgerRow, ...]
    applications: tuple[ReceiptDetailRow, ...] = ()
    receipt_dates: Mapping[int, date] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("a document has at least one pay item")
        keys = {(i.document_company, i.document_type, i.document_number) for i in self.items}
        if len(keys) != 1:
            raise ValueError(f"pay items of several documents given as one: {sorted(keys)}")

    @property
    def first(self) -> CustomerLedgerRow:
        return min(self.items, key=lambda item: item.pay_item)

    @property
    def key(self) -> str:
        return document_key(self.first.document_company, self.first.document_type, self.first.document_number)

    @property
    def currency(self) -> str:
        return self.first.currency

    @property
    def gross(self) -> Decimal:
        return sum(
            (_in_document_currency(i, i.gross_amount, i.foreign_gross_amount) for i in self.items), ZERO
        )

    @property
    def open_amount(self) -> Decimal:
        return sum((_in_document_currency(i, i.open_amount, i.foreign_open_amount) for i in self.items), ZERO)

    @property
    def tax(self) -> Decimal:
        """The tax in the document's currency (JDE keeps STAM in the company's: a foreign document's
        is converted at the document's own rate, ACR / AG)."""
        total = ZERO
        for item in self.items:
            if item.currency_mode == "F" and item.gross_amount:
                total += item.tax_amount * item.foreign_gross_amount / item.gross_amount
            else:
                total += item.tax_amount
        return total.quantize(Decimal(1).scaleb(-currency_decimals(self.currency)), rounding=ROUND_HALF_UP)

    @property
    def rate(self) -> Decimal:
        """Document currency per company currency (1 for a domestic document)."""
        domestic = sum((i.gross_amount for i in self.items), ZERO)
        if self.first.currency_mode != "F" or not domestic:
            return Decimal(1)
        return self.gross / domestic

    @property
    def voided(self) -> bool:
        return any(item.void_flag.upper() == "V" for item in self.items)

    def live_applications(self) -> list[ReceiptDetailRow]:
        """Receipt lines that still apply to the document: not voided, not a void's reversal."""
        first = self.first
        return [
            line
            for line in self.applications
            if (line.document_company, line.document_type, line.document_number)
            == (first.document_company, first.document_type, first.document_number)
            and line.void_gl_date is None
            and line.matching_document_type != "RO"
        ]


def pay_status(document: Document) -> str:
    """``voided`` (VOD), ``paid`` (nothing open: paid, netted with a credit memo, or a document of no
    amount), ``written_off`` (closed with a write-off, F03B14.AWAT), ``partially_paid`` (less open
    than billed) or ``open``."""
    if document.voided:
        return "voided"
    open_amount = document.open_amount
    if open_amount == 0:
        written_off = any(line.write_off_amount for line in document.live_applications())
        return "written_off" if written_off else "paid"
    if open_amount == document.gross:
        return "open"
    return "partially_paid"


def last_receipt_date(document: Document) -> date | None:
    """The latest receipt date of the money applied to the document (credit memo netting and voided
    receipts do not count)."""
    dates = [
        document.receipt_dates[line.payment_id]
        for line in document.live_applications()
        if line.matching_document_type not in NOT_RECEIPTS and line.payment_id in document.receipt_dates
    ]
    return max(dates) if dates else None


def status_properties(document: Document) -> dict[str, str]:
    """What the HubSpot invoice of a document shows of its state in JDE."""
    paid_on = last_receipt_date(document)
    return {
        "jde_open_amount": money_text(document.open_amount, document.currency),
        "jde_pay_status": pay_status(document),
        "jde_last_receipt_date": paid_on.isoformat() if paid_on else "",
    }


def receipt_dates(receipts: Iterable[ReceiptHeaderRow]) -> dict[int, date]:
    """Payment id -> receipt date of the receipts that brought money and were not voided."""
    dates: dict[int, date] = {}
    for receipt in receipts:
        day = receipt.receipt_date or receipt.gl_date
        if receipt.void_gl_date is None and receipt.receipt_amount > 0 and day is not None:
            dates[receipt.payment_id] = day
    return dates


# -- a document raised in JDE -> a HubSpot invoice -----------------------------------------------------


@dataclass(frozen=True)
class RevenueRange:
    """Object accounts whose credits on an invoice's journal entry are its revenue lines."""

    low: str
    high: str

    def __contains__(self, object_account: str) -> bool:
        return self.low <= object_account.strip() <= self.high


def _line(name: str, amount: Decimal, quantity: Decimal, currency: str) -> dict[str, str]:
    """A line item whose amount HubSpot computes (quantity x price) equals JDE's exactly."""
    places = currency_decimals(currency)
    amount = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    price = amount / quantity if quantity > 0 else amount
    if quantity <= 0 or price.quantize(Decimal("0.000001")) * quantity != amount:
        shown = format(quantity.normalize(), "f")
        name, quantity, price = f"{name} ({shown} units)", Decimal(1), amount
    return {
        "name": name[:255],
        "quantity": format(quantity.normalize(), "f"),
        "price": format(price.normalize(), "f") if price else "0",
        "hs_line_item_currency_code": currency,
    }


def _sales_lines(
    document: Document, lines: Sequence[SalesOrderLineRow]
) -> list[tuple[dict[str, str], Decimal]]:
    first = document.first
    billed = sorted(
        (
            line
            for line in lines
            if (line.document_company, line.document_type, line.document_number)
            == (first.document_company, first.document_type, first.document_number)
        ),
        key=lambda line: (line.order_number, line.line_number),
    )
    result = []
    for line in billed:
        amount = (line.extended_price * document.rate).quantize(
            Decimal(1).scaleb(-currency_decimals(document.currency)), rounding=ROUND_HALF_UP
        )
        name = line.description or line.item_number or f"item {line.short_item_number}"
        properties = _line(name, amount, line.quantity, document.currency)
        if line.item_number:
            properties["hs_sku"] = line.item_number
        result.append((properties, amount))
    return result


def _journal_lines(
    document: Document, lines: Sequence[AccountLedgerRow], revenue: Sequence[RevenueRange]
) -> list[tuple[dict[str, str], Decimal]]:
    first = document.first
    credits = sorted(
        (
            line
            for line in lines
            if (line.document_company, line.document_type, line.document_number)
            == (first.document_company, first.document_type, first.document_number)
            and line.ledger_type == "AA"
            and line.amount < 0
            and any(line.object_account in r for r in revenue)
        ),
        key=lambda line: (line.gl_date, line.line_number),
    )
    result = []
    for line in credits:
        amount = (-line.amount * document.rate).quantize(
            Decimal(1).scaleb(-currency_decimals(document.currency)), rounding=ROUND_HALF_UP
        )
        result.append(
            (_line(line.remark or line.account_number, amount, Decimal(1), document.currency), amount)
        )
    return result


def jde_invoice(
    document: Document,
    *,
    sales_lines: Sequence[SalesOrderLineRow] = (),
    journal_lines: Sequence[AccountLedgerRow] = (),
    revenue: Sequence[RevenueRange] = (RevenueRange("4000", "4999"),),
) -> dict[str, Any] | Rejection:
    """The HubSpot invoice of a document raised in JDE: ``invoice`` (its properties) and ``lines``
    (line items, each keyed by ``jde_line_key``), so that HubSpot's total is JDE's gross.

    Lines come from the billed sales order lines when the document has a sales order, else from
    the revenue credits of its journal entry; when they do not add up to the document's gross less
    tax, one line carries the document's amount (noted). The tax goes on the largest line.
    """
    first, currency = document.first, document.currency
    gross, tax = document.gross, document.tax
    net = gross - tax
    if gross < 0 or net < 0:
        return Rejection(
            f"{document.key} is a credit of {money_text(gross, currency)} {currency}: HubSpot invoices "
            "cannot be negative (line amounts are never below 0); it counts in the company's balance"
        )
    notes: list[str] = []
    source = "F42119" if first.sales_order_number else "F0911"
    parts = (
        _sales_lines(document, sales_lines)
        if first.sales_order_number
        else _journal_lines(document, journal_lines, revenue)
    )
    if not parts or sum((amount for _, amount in parts), ZERO) != net:
        found = money_text(sum((amount for _, amount in parts), ZERO), currency)
        if parts:
            notes.append(
                f"its {source} lines add up to {found} {currency}, the document to "
                f"{money_text(net, currency)} {currency} before tax: one line for the document"
            )
        else:
            notes.append(f"no {source} lines found: one line for the document")
        name = f"JD Edwards {first.document_type} {first.document_number}"
        parts = [(_line(name, net, Decimal(1), currency), net)]
    lines = [properties for properties, _ in parts]
    if tax:
        largest = max(range(len(parts)), key=lambda index: parts[index][1])
        lines[largest]["tax"] = money_text(tax, currency)
    for number, line in enumerate(lines, start=1):
        line["jde_line_key"] = f"{document.key}-{number:03d}"
    due_dates = [item.due_date for item in document.items if item.due_date is not None]
    invoice = {
        "hs_currency": currency,
        "hs_invoice_date": (first.invoice_date or first.gl_date or date.today()).isoformat(),
        "hs_due_date": min(due_dates).isoformat() if due_dates else "",
        "hs_invoice_billable": "false",
        "hs_title": f"JD Edwards invoice {first.document_type} {first.document_number}",
        "jde_document_key": document.key,
        "jde_document_number": str(first.document_number),
        "jde_document_type": first.document_type,
        "jde_document_company": first.document_company,
        "jde_batch_number": str(first.batch_number) if first.batch_number else "",
    }
    if first.purchase_order:
        invoice["hs_purchase_order_number"] = first.purchase_order
    return {
        "document": document.key,
        "customer": first.address_number,
        "reference": first.reference,
        "invoice": invoice,
        "lines": lines,
        "notes": notes,
    }


# -- a customer's roll-ups ------------------------------------------------------------------------------


def balance_properties(
    open_items: Iterable[CustomerLedgerRow],
    receipts: Iterable[ReceiptHeaderRow],
    *,
    currency: str,
    as_of: date,
) -> dict[str, Any]:
    """The company's roll-ups from the customer's open items (any document type: invoices, credit
    memos and unapplied cash) in ``currency``, on ``as_of`` (the JDE server's day).

    Open balance: everything open. Overdue: what invoices have open past their due date (credits
    are never overdue). Oldest open due date: of the invoices with something open. Last payment:
    the latest receipt that brought money and was not voided. Items in another currency are left
    out (a note names them).
    """
    counted: list[tuple[Decimal, date | None]] = []
    elsewhere: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for item in open_items:
        if item.void_flag.upper() == "V":
            continue
        amount = _in_document_currency(item, item.open_amount, item.foreign_open_amount)
        if not amount:
            continue
        if item.currency != currency:
            elsewhere[item.currency] += amount
            continue
        counted.append((amount, item.due_date))
    owed = [(amount, due) for amount, due in counted if amount > 0]
    overdue = sum((amount for amount, due in owed if due is not None and due < as_of), ZERO)
    due_dates = [due for _, due in owed if due is not None]
    paid = list(receipt_dates(receipts).values())
    notes = [
        f"open items in {other} ({money_text(amount, other)} {other}) are not in the {currency} balance"
        for other, amount in sorted(elsewhere.items())
    ]
    return {
        "properties": {
            "jde_open_ar_balance": money_text(sum((amount for amount, _ in counted), ZERO), currency),
            "jde_overdue_ar_balance": money_text(overdue, currency),
            "jde_oldest_open_due_date": min(due_dates).isoformat() if due_dates else "",
            "jde_last_payment_date": max(paid).isoformat() if paid else "",
        },
        "currency": currency,
        "notes": notes,
    }
