"""Invoices, pure: a HubSpot invoice (with its line items, discounts, fees, taxes, company and
products) -> the JDE document that posts it: one pay item for the gross, tax as its tax amount, one
G/L distribution line per line item, invoice-level discounts spread over the lines (or booked to a
discount account), fees to a fee account.

Totals are recomputed from the parts the way HubSpot computes them and must equal HubSpot's
``hs_amount_billed`` to the cent, and the distribution must equal gross minus tax to the cent: a
total that does not add up is refused with both figures, never "fixed".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: ISO 4217 minor units that differ from 2 (JDE's CRCD decimals follow them).
_CURRENCY_DECIMALS = {
    "JPY": 0, "KRW": 0, "CLP": 0, "VND": 0, "ISK": 0, "PYG": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "IQD": 3, "LYD": 3,
}  # fmt: skip
HUNDRED = Decimal(100)


def currency_decimals(currency: str) -> int:
    return _CURRENCY_DECIMALS.get(currency.upper(), 2)


class PostingRules(BaseModel):
    """Where an invoice's amounts go in JDE (part of the flow's settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The document company (KCO); None: the customer's Customer Master (F03012) line.
    company: str | None = None
    #: The account of a line item without ``jde_gl_account`` whose product has no mapped G/L class.
    default_revenue_account: str | None = None
    #: Product G/L class (F4101.GLPT, on the product as ``jde_gl_class``) -> revenue account.
    gl_class_accounts: dict[str, str] = Field(default_factory=dict)
    #: Invoice-level discounts: spread over the lines in proportion, or booked to ``discount_account``.
    discount_handling: Literal["spread", "account"] = "spread"
    discount_account: str | None = None
    #: Invoice-level fees are booked to this account (else the default revenue account).
    fee_account: str | None = None


class Rejected(BaseModel):
    """Why an invoice cannot be posted as it is (a person must fix it in HubSpot or in the settings)."""

    reason: str


def _number(properties: Mapping[str, Any], name: str, default: str = "0") -> Decimal:
    value = properties.get(name)
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(default)
    except InvalidOperation:
        raise ValueError(f"{name} is {value!r}, not a number") from None


def hubspot_day(value: Any) -> date | None:
    """A HubSpot date or datetime (ISO text or epoch milliseconds) as the UTC calendar day."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc).date()
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment.astimezone(timezone.utc) if moment.tzinfo else moment).date()


def _money(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _adjustment_total(adjustments: Sequence[Mapping[str, Any]], base: Decimal, places: int) -> list[Decimal]:
    """Each adjustment's amount on ``base`` (PERCENT of it, or FIXED), in HubSpot's order."""
    ordered = sorted(adjustments, key=lambda a: (_number(a["properties"], "hs_sort_order"), int(a["id"])))
    amounts = []
    for adjustment in ordered:
        properties = adjustment["properties"]
        value = _number(properties, "hs_value")
        kind = str(properties.get("hs_type") or "FIXED").upper()
        amounts.append(_money(base * value / HUNDRED, places) if kind == "PERCENT" else _money(value, places))
    return amounts


def resolve_account(
    line: Mapping[str, Any], product: Mapping[str, Any] | None, rules: PostingRules
) -> str | None:
    """The line's account: its ``jde_gl_account``, else its product's G/L class account, else the
    default; ``jde_business_unit`` on the line replaces the account's business unit."""
    properties = line["properties"]
    account = str(properties.get("jde_gl_account") or "").strip()
    if not account and product is not None:
        account = rules.gl_class_accounts.get(str(product.get("jde_gl_class") or "").strip(), "")
    if not account:
        account = rules.default_revenue_account or ""
    if not account:
        return None
    unit = str(properties.get("jde_business_unit") or "").strip()
    if unit:
        _, _, rest = account.partition(".")
        account = f"{unit}.{rest}"
    return account


def _spread(total: Decimal, weights: Sequence[Decimal], places: int) -> list[Decimal]:
    """``total`` split in proportion to ``weights``, to the cent; the rounding rest goes to the largest."""
    whole = sum(weights, Decimal(0))
    if not weights or whole == 0:
        return [Decimal(0) for _ in weights]
    shares = [_money(total * weight / whole, places) for weight in weights]
    rest = total - sum(shares, Decimal(0))
    largest = max(range(len(weights)), key=lambda index: weights[index])
    shares[largest] += rest
    return shares


def invoice_document(source: Mapping[str, Any], rules: PostingRules) -> dict[str, Any] | Rejected:
    """The JDE document of a HubSpot invoice (see the module doc), or why it cannot be posted."""
    invoice = source["invoice"]
    properties = invoice["properties"]
    number = str(properties.get("hs_number") or "").strip()
    if not number:
        return Rejected(reason=f"invoice {invoice['id']} has no invoice number (hs_number) yet")
    if len(number) > 25:
        return Rejected(
            reason=f"invoice number {number!r} is longer than JDE's reference (VR01, 25 characters)"
        )
    currency = str(properties.get("hs_currency") or "").strip().upper()
    if len(currency) != 3:
        return Rejected(reason=f"invoice {number} has no currency (hs_currency)")
    company = source.get("company")
    if company is None:
        count = source.get("company_count", 0)
        what = "no company" if not count else f"{count} companies"
        return Rejected(
            reason=f"invoice {number} has {what}: associate exactly one company (the JDE customer) in HubSpot"
        )
    lines = source.get("line_items") or []
    if not lines:
        return Rejected(reason=f"invoice {number} has no line items")
    places = currency_decimals(currency)
    products = source.get("products") or {}
    distribution: list[dict[str, Any]] = []
    amounts: list[Decimal] = []
    line_tax = Decimal(0)
    for line in lines:
        line_properties = line["properties"]
        name = str(line_properties.get("name") or f"line item {line['id']}").strip()
        amount = _number(line_properties, "amount")
        if _money(amount, places) != amount:
            return Rejected(
                reason=f"invoice {number}: line {name!r} amounts to {amount}, more decimals than "
                f"{currency} has ({places})"
            )
        product = products.get(str(line_properties.get("hs_product_id") or ""))
        account = resolve_account(line, product, rules)
        if account is None:
            return Rejected(
                reason=f"invoice {number}: line {name!r} has no JDE account: pick jde_gl_account on the line "
                "item, or set default_revenue_account (or gl_class_accounts) in the Variable mlconn_invoices"
            )
        amounts.append(_money(amount, places))
        distribution.append({"account": account, "amount": _money(amount, places), "remark": name[:30]})
        tax_value = line_properties.get("hs_tax_amount")
        line_tax += _money(
            _number(line_properties, "hs_tax_amount" if tax_value not in (None, "") else "tax"), places
        )
    subtotal = sum(amounts, Decimal(0))
    discounts = _adjustment_total(source.get("discounts") or [], subtotal, places)
    after_discounts = subtotal
    discount_total = Decimal(0)
    for discount in discounts:
        taken = min(discount, after_discounts)
        after_discounts -= taken
        discount_total += taken
    fees = _adjustment_total(source.get("fees") or [], after_discounts, places)
    fee_total = sum(fees, Decimal(0))
    with_fees = after_discounts + fee_total
    invoice_tax = sum(_adjustment_total(source.get("taxes") or [], with_fees, places), Decimal(0))
    tax = line_tax + invoice_tax
    gross = with_fees + tax
    billed_text = properties.get("hs_amount_billed")
    if billed_text not in (None, ""):
        billed = _money(_number(properties, "hs_amount_billed"), places)
        if billed != gross:
            return Rejected(
                reason=f"invoice {number}: HubSpot bills {billed} {currency}, but its line items, discounts, "
                f"fees and taxes add up to {gross} {currency}; not posted (correct the invoice in HubSpot)"
            )
    if discount_total:
        if rules.discount_handling == "account":
            if not rules.discount_account:
                return Rejected(reason="discounts are booked to an account, but discount_account is not set")
            distribution.append(
                {"account": rules.discount_account, "amount": -discount_total, "remark": "invoice discount"}
            )
        else:
            for line, share in zip(distribution, _spread(discount_total, amounts, places), strict=True):
                line["amount"] -= share
    if fee_total:
        fee_account = rules.fee_account or rules.default_revenue_account
        if not fee_account:
            return Rejected(
                reason=f"invoice {number} has fees, but neither fee_account nor default_revenue_account "
                "is set"
            )
        distribution.append({"account": fee_account, "amount": fee_total, "remark": "invoice fees"})
    distribution = [line for line in distribution if line["amount"] != 0]
    booked = sum((line["amount"] for line in distribution), Decimal(0))
    if booked != gross - tax:
        return Rejected(
            reason=f"invoice {number}: the G/L distribution is {booked} {currency}, but gross minus tax is "
            f"{gross - tax} {currency}; not posted"
        )
    if gross <= 0:
        return Rejected(
            reason=f"invoice {number} amounts to {gross} {currency}; JDE posts no invoice of zero or less"
        )
    company_properties = company["properties"]
    customer_text = str(company_properties.get("jde_address_number") or "").strip()
    purchase_order = str(properties.get("hs_purchase_order_number") or "").strip()
    invoice_day = hubspot_day(properties.get("hs_invoice_date")) or hubspot_day(
        properties.get("hs_createdate")
    )
    due_day = hubspot_day(properties.get("hs_due_date"))
    return {
        "reference": number,
        "customer": int(customer_text) if customer_text.isdigit() else None,
        "company_id": str(company["id"]),
        "company_name": str(company_properties.get("name") or "").strip(),
        "invoice_date": None if invoice_day is None else invoice_day.isoformat(),
        "due_date": None if due_day is None else due_day.isoformat(),
        "currency": currency,
        "gross": str(gross),
        "tax": str(tax),
        "purchase_order": purchase_order if 0 < len(purchase_order) <= 8 else None,
        "remark": (f"PO {purchase_order}" if len(purchase_order) > 8 else f"HubSpot {number}")[:30],
        "distribution": [
            {"account": line["account"], "amount": str(line["amount"]), "remark": line["remark"]}
            for line in distribution
        ],
    }
