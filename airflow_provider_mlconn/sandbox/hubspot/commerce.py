"""HubSpot's commerce arithmetic: line item amounts, invoice totals and payment nets. Pure: the portal
gathers the records, these functions return the values HubSpot would set (all as strings).

Sources: hubspot.md §5, hubspot-commerce.md §1.2, §2, §3.2. Order of invoice-level adjustments is
documented (discounts, then fees, then taxes); how each applies is [I]: a PERCENT one is a share of the
running total at its turn, adjustments of one kind go by ``hs_sort_order`` then id, and every amount is
rounded to cents, half up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from airflow_provider_mlconn.sandbox.hubspot.values import format_number, iso, parse_number

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal(0)

# Payment statuses under which money reached the seller (refunds are subtracted separately) [I].
RECEIVED_STATUSES = frozenset(
    {"succeeded", "partially_refunded", "refunded", "processing_refund", "disputed_won"}
)
REFUNDABLE_STATUSES = frozenset({"succeeded", "partially_refunded"})
# Payments recorded "inside HubSpot" (the invoice's Record payment) carry this source app.
INVOICE_SOURCE_APP = "INVOICE"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def text(value: Decimal) -> str:
    return format_number(money(value))


def number(properties: Mapping[str, str], name: str, default: str = "0") -> Decimal:
    parsed = parse_number(properties.get(name, default))
    return parsed if parsed is not None else Decimal(default)


@dataclass(frozen=True)
class TaxRate:
    """One of the account's tax rates (``GET /tax-rates/v1/tax-rates``, hubspot-commerce.md §3.2); its id
    is what a line item's ``hs_tax_rate_group_id`` holds."""

    id: str
    name: str
    percentage_rate: Decimal
    label: str
    active: bool
    created_ms: int

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "percentageRate": float(self.percentage_rate),
            "label": self.label,
            "active": self.active,
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.created_ms),
        }


def line_item_values(properties: Mapping[str, str], tax_rate: TaxRate | None) -> dict[str, str]:
    """``amount`` = quantity x (price - unit discount) x (1 - discount %) [doc: "quantity times the unit
    price" net of discounts], never below 0 [I]; the tax comes from the tax rate, else from ``tax`` [I]."""
    quantity = number(properties, "quantity", "1")
    price = number(properties, "price")
    unit_discount = number(properties, "discount")
    percentage = number(properties, "hs_discount_percentage")
    before = money(quantity * price)
    amount = max(money(quantity * (price - unit_discount) * (1 - percentage / HUNDRED)), ZERO)
    values = {
        "amount": text(amount),
        "hs_pre_discount_amount": text(before),
        "hs_total_discount": text(before - amount),
    }
    if tax_rate is not None:
        tax = money(amount * tax_rate.percentage_rate / HUNDRED)
        values["hs_tax_rate"] = format_number(tax_rate.percentage_rate)
        values["hs_tax_label"] = tax_rate.label
    else:
        tax = money(number(properties, "tax"))
    values["hs_tax_amount"] = text(tax)
    values["hs_post_tax_amount"] = text(amount + tax)
    return values


@dataclass(frozen=True)
class Adjustment:
    """An invoice-level discount, fee or tax record."""

    record_id: str
    type: str  # FIXED or PERCENT
    value: Decimal
    sort_order: Decimal

    @classmethod
    def of(cls, record_id: str, properties: Mapping[str, str]) -> Adjustment:
        return cls(
            record_id,
            properties.get("hs_type", "FIXED"),
            number(properties, "hs_value"),
            number(properties, "hs_sort_order"),
        )

    def amount_on(self, base: Decimal) -> Decimal:
        return money(base * self.value / HUNDRED) if self.type == "PERCENT" else money(self.value)


def _in_order(adjustments: Iterable[Adjustment]) -> list[Adjustment]:
    return sorted(adjustments, key=lambda a: (a.sort_order, int(a.record_id)))


@dataclass(frozen=True)
class InvoiceTotals:
    subtotal: Decimal  # Σ line item amounts (after line discounts, before tax)
    billed: Decimal  # after invoice discounts, plus fees, plus line and invoice taxes


def invoice_totals(
    line_items: Iterable[Mapping[str, str]],
    discounts: Iterable[Adjustment] = (),
    fees: Iterable[Adjustment] = (),
    taxes: Iterable[Adjustment] = (),
) -> InvoiceTotals:
    lines = list(line_items)
    subtotal = money(sum((number(line, "amount") for line in lines), ZERO))
    line_tax = money(sum((number(line, "hs_tax_amount") for line in lines), ZERO))
    running = subtotal
    for discount in _in_order(discounts):
        running = max(running - discount.amount_on(running), ZERO)
    with_fees = running
    for fee in _in_order(fees):
        with_fees += fee.amount_on(running)
    taxed = with_fees
    for tax in _in_order(taxes):
        taxed += tax.amount_on(with_fees)
    return InvoiceTotals(subtotal=subtotal, billed=money(taxed + line_tax))


def payment_received(properties: Mapping[str, str]) -> Decimal:
    """What a payment brought in, net of refunds; 0 unless its status says money arrived."""
    if properties.get("hs_latest_status") not in RECEIVED_STATUSES:
        return ZERO
    return money(number(properties, "hs_initial_amount") - number(properties, "hs_refunds_amount"))


def payment_values(properties: Mapping[str, str]) -> dict[str, str]:
    """Nets of a payment (hubspot-commerce.md §2): ``hs_net_amount`` = gross - processor fees,
    ``..._after_refunds`` also minus refunds; portal currency = payment currency [I]."""
    if "hs_initial_amount" not in properties:
        return {}
    gross = number(properties, "hs_initial_amount")
    fees = number(properties, "hs_fees_amount")
    refunds = number(properties, "hs_refunds_amount")
    refundable = gross - refunds if properties.get("hs_latest_status") in REFUNDABLE_STATUSES else ZERO
    return {
        "hs_net_amount": text(gross - fees),
        "hs_net_amount_after_refunds": text(gross - fees - refunds),
        "hs_refunds_amount_in_portal_currency": text(refunds),
        "hs_max_refundable_amount_in_portal_currency": text(max(refundable, ZERO)),
    }


def invoice_values(
    current: Mapping[str, str],
    totals: InvoiceTotals | None,
    paid: Decimal,
) -> dict[str, str]:
    """An invoice's computed properties. ``totals`` is None once it is final (paid or voided), whose
    billed amount stays as it was [I]. An open invoice whose payments cover it becomes ``paid``
    (hubspot-commerce.md §1.1 [obs]); a voided one owes nothing [I]."""
    status = current.get("hs_invoice_status", "draft")
    if totals is None:
        subtotal, billed = number(current, "hs_subtotal"), number(current, "hs_amount_billed")
    else:
        subtotal, billed = totals.subtotal, totals.billed
    balance = ZERO if status == "voided" else max(billed - paid, ZERO)
    values = {
        "hs_subtotal": text(subtotal),
        "hs_amount_billed": text(billed),
        "hs_amount_paid": text(paid),
        "hs_balance_due": text(balance),
    }
    if status == "open" and paid > 0 and paid >= billed:
        values["hs_invoice_status"] = "paid"
    return values
