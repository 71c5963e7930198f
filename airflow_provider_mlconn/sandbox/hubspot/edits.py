"""Changes made inside HubSpot rather than through the API: a salesperson in the UI, HubSpot's own
processing (payments, invoice totals). They may set values the API treats as read-only, skip the
API's business rules, and can be dated in the past, so tests can build the portal they need.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from airflow_provider_mlconn.sandbox.hubspot.catalog import (
    ASSOCIATION_BY_ID,
    COMMERCE_PAYMENTS,
    COMPANIES,
    CONTACTS,
    INVOICES,
    LINE_ITEMS,
    PRODUCTS,
    AssociationTypeDef,
    ObjectTypeDef,
    resolve_object_type,
)
from airflow_provider_mlconn.sandbox.hubspot.errors import bad_request
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal, PreparedWrite, Record, WriteInput
from airflow_provider_mlconn.sandbox.hubspot.values import (
    ValueProblem,
    format_number,
    normalize,
    parse_instant_ms,
    parse_number,
)

DAY_MS = 86_400_000


def write(
    portal: Portal,
    kind: ObjectTypeDef,
    properties: dict[str, Any],
    *,
    target: Record | None = None,
    at_ms: int | None = None,
    associations: Iterable[tuple[AssociationTypeDef, Record]] = (),
) -> Record:
    """Create (``target`` None) or change a record as HubSpot itself would; unknown properties are a 400."""
    if not isinstance(properties, dict):
        raise bad_request("properties must be an object.")
    with portal.lock:
        values: dict[str, str | None] = {}
        for name, raw in properties.items():
            prop = portal.property(kind, name)
            if prop is None:
                raise bad_request(f'Property "{name}" does not exist on {kind.name}.')
            current = target.properties.get(name) if target else None
            try:
                values[name] = normalize(prop, raw, current=current)
            except ValueProblem as problem:
                raise bad_request(f"{name}: {problem.message}") from None
        prepared = PreparedWrite(
            WriteInput(properties, target=target, associations=list(associations)), values
        )
        conflict = portal.conflicts(kind, [prepared])
        if conflict is not None:
            raise conflict
        return portal.commit(kind, [prepared], at_ms=at_ms)[0].record


def when(value: Any) -> int | None:
    """An optional ``at`` (ISO-8601 or epoch ms) for dated edits; None means now."""
    if value is None:
        return None
    ms = parse_instant_ms(value)
    if ms is None:
        raise bad_request(f"at must be ISO-8601 or epoch ms, got {value!r}.")
    return ms


def associations_of(
    portal: Portal, kind: ObjectTypeDef, specs: Any
) -> list[tuple[AssociationTypeDef, Record]]:
    """``[{"to_id": "...", "type_id": 279}]``: the target's type follows from the (directional) type id."""
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise bad_request("associations must be a list of {to_id, type_id}.")
    resolved = []
    for spec in specs:
        assoc = ASSOCIATION_BY_ID.get(int(spec.get("type_id", -1))) if isinstance(spec, dict) else None
        if assoc is None or assoc.from_type != kind.name:
            raise bad_request(f"{spec!r}: not an association type from {kind.name}.")
        other_kind = resolve_object_type(assoc.to_type)
        assert other_kind is not None
        other = portal.get(other_kind, str(spec.get("to_id")))
        if other is None:
            raise bad_request(f"{other_kind.label} {spec.get('to_id')} does not exist.")
        resolved.append((assoc, other))
    return resolved


def _assoc(type_id: int, record: Record) -> tuple[AssociationTypeDef, Record]:
    return ASSOCIATION_BY_ID[type_id], record


def create_invoice(
    portal: Portal,
    *,
    currency: str,
    lines: list[dict[str, Any]],
    status: str = "open",
    contact: Record | None = None,
    company: Record | None = None,
    at_ms: int | None = None,
    due_days: int = 30,
    extra: dict[str, Any] | None = None,
) -> tuple[Record, list[Record]]:
    """An invoice with line items (each from a product, by id or SKU), linked to its contact and company,
    with HubSpot's totals filled in: what a salesperson creates in the invoices tool."""
    with portal.lock:
        items = []
        for line in lines:
            product = _product(portal, line)
            props: dict[str, Any] = {
                "hs_product_id": product.id,
                "quantity": line.get("quantity", 1),
                "hs_line_item_currency_code": currency,
            }
            if line.get("price") is not None:
                props["price"] = line["price"]
            items.append(write(portal, LINE_ITEMS, props, at_ms=at_ms))
        subtotal = sum(
            (parse_number(i.properties.get("amount", "0")) or Decimal(0) for i in items), Decimal(0)
        )
        invoice_ms = at_ms if at_ms is not None else portal.clock()
        links = [_assoc(409, item) for item in items]
        if contact is not None:
            links.append(_assoc(177, contact))
        if company is not None:
            links.append(_assoc(179, company))
        props = {
            "hs_currency": currency,
            "hs_invoice_status": status,
            "hs_invoice_date": invoice_ms,
            "hs_due_date": invoice_ms + due_days * DAY_MS,
            "hs_subtotal": format_number(subtotal),
            "hs_amount_billed": format_number(subtotal),
            "hs_amount_paid": "0",
            "hs_balance_due": format_number(subtotal),
            **(extra or {}),
        }
        invoice = write(portal, INVOICES, props, at_ms=at_ms, associations=links)
        return invoice, items


def _product(portal: Portal, line: dict[str, Any]) -> Record:
    if line.get("product_id"):
        product = portal.get(PRODUCTS, str(line["product_id"]))
    elif line.get("sku"):
        product = next(
            (p for p in portal.records[PRODUCTS.name].values() if p.properties.get("hs_sku") == line["sku"]),
            None,
        )
    else:
        raise bad_request("Each line needs a product_id or a sku.")
    if product is None:
        raise bad_request(f"No product {line.get('product_id') or line.get('sku')}.")
    return product


def record_payment(
    portal: Portal,
    invoice: Record,
    *,
    amount: Any,
    status: str = "succeeded",
    method: str = "wire_transfer",
    reference: str | None = None,
    at_ms: int | None = None,
) -> Record:
    """A payment received against ``invoice`` (542), linked to the invoice's contact and company; a
    succeeded one lowers the balance due and, once it reaches zero, marks the invoice paid [inf]."""
    with portal.lock:
        links = [_assoc(542, invoice)]
        contacts = portal.linked(invoice, CONTACTS)
        companies = portal.linked(invoice, COMPANIES)
        email = None
        if contacts:
            contact = portal.get(CONTACTS, contacts[0][0])
            if contact is not None:
                links.append(_assoc(387, contact))
                email = contact.properties.get("email")
        if companies:
            company = portal.get(COMPANIES, companies[0][0])
            if company is not None:
                links.append(_assoc(389, company))
        stamp = at_ms if at_ms is not None else portal.clock()
        props: dict[str, Any] = {
            "hs_initial_amount": amount,
            "hs_initiated_date": stamp,
            "hs_currency_code": invoice.properties.get("hs_currency"),
            "hs_payment_method_type": method,
            "hs_processor_type": "none",
            "hs_latest_status": status,
            "hs_reference_number": reference or f"PAY-{portal.next_id}",
        }
        if email:
            props["hs_customer_email"] = email
        payment = write(portal, COMMERCE_PAYMENTS, props, at_ms=at_ms, associations=links)
        if status == "succeeded":
            _apply_payment(portal, invoice, parse_number(str(amount)) or Decimal(0), stamp)
        return payment


def _apply_payment(portal: Portal, invoice: Record, amount: Decimal, stamp: int) -> None:
    current = portal.get(INVOICES, invoice.id) or invoice
    billed = parse_number(current.properties.get("hs_amount_billed", "0")) or Decimal(0)
    paid = (parse_number(current.properties.get("hs_amount_paid", "0")) or Decimal(0)) + amount
    changes: dict[str, Any] = {
        "hs_amount_paid": format_number(paid),
        "hs_balance_due": format_number(max(billed - paid, Decimal(0))),
    }
    if paid >= billed and current.properties.get("hs_invoice_status") == "open":
        changes["hs_invoice_status"] = "paid"
    write(portal, INVOICES, changes, target=current, at_ms=stamp)
