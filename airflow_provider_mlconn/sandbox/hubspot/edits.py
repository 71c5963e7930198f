"""Changes made inside HubSpot rather than through the API: a salesperson in the UI, HubSpot's own
processing (payments, invoice totals). Generic edits (``write``) may set values the API treats as
read-only, skip the API's business rules, and can be dated in the past, so tests can build the portal
they need. The named actions (issue or void an invoice, record or refund a payment, edit a product) obey
what HubSpot's UI allows. Every edit moves the record's last-modified date, as in HubSpot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow_provider_mlconn.sandbox.hubspot import commerce, invoice_states
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
    """An invoice with line items (each from a product, by id or SKU, with optional ``discount``,
    ``hs_discount_percentage``, ``tax`` and ``hs_tax_rate_group_id``), linked to its contact and company:
    what a salesperson creates in the invoices tool. HubSpot computes its totals."""
    with portal.lock:
        items = []
        for line in lines:
            product = _product(portal, line)
            props: dict[str, Any] = {
                "hs_product_id": product.id,
                "quantity": line.get("quantity", 1),
                "hs_line_item_currency_code": currency,
            }
            for name in ("price", "discount", "hs_discount_percentage", "tax", "hs_tax_rate_group_id"):
                if line.get(name) is not None:
                    props[name] = line[name]
            items.append(write(portal, LINE_ITEMS, props, at_ms=at_ms))
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


def _status_of(invoice: Record) -> str:
    return invoice.properties.get("hs_invoice_status", invoice_states.DRAFT)


def _move_invoice(portal: Portal, invoice: Record, becomes: str, at_ms: int | None) -> Record:
    with portal.lock:
        current = portal.get(INVOICES, invoice.id) or invoice
        was = _status_of(current)
        paid = commerce.number(current.properties, "hs_amount_paid")
        problem = invoice_states.transition_problem(was, becomes, paid)
        if problem is None and was == becomes:
            problem = f"The invoice is already {was}."
        if problem is None and becomes == invoice_states.OPEN:
            problem = invoice_states.open_problem(
                len(portal.linked(current, CONTACTS)), len(portal.linked(current, LINE_ITEMS))
            )
        if problem is not None:
            raise bad_request(problem, context={"hs_invoice_status": [was]})
        return write(portal, INVOICES, {"hs_invoice_status": becomes}, target=current, at_ms=at_ms)


def issue_invoice(portal: Portal, invoice: Record, *, at_ms: int | None = None) -> Record:
    """A salesperson finalises a draft (draft -> open): one contact and a line item at least [doc]."""
    return _move_invoice(portal, invoice, invoice_states.OPEN, at_ms)


def void_invoice(portal: Portal, invoice: Record, *, at_ms: int | None = None) -> Record:
    """A salesperson voids a draft or an unpaid open invoice; paid and voided ones refuse (invoice_states)."""
    return _move_invoice(portal, invoice, invoice_states.VOIDED, at_ms)


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
    """ "Record payment" on an open invoice: a payment (542 to the invoice, 387/389 to its contact and
    company) that HubSpot applies to the invoice: a part payment lowers the balance and leaves it open,
    one that covers it (or more) marks it paid ([obs] hubspot-commerce.md §1.1)."""
    with portal.lock:
        current = portal.get(INVOICES, invoice.id) or invoice
        if _status_of(current) != invoice_states.OPEN:
            raise bad_request(
                f"Payments are recorded on open invoices; invoice {current.id} is {_status_of(current)}."
            )
        value = parse_number(amount)
        if value is None or value <= 0:
            raise bad_request(f"amount must be a positive number, got {amount!r}.")
        links = [_assoc(542, current)]
        contacts = portal.linked(current, CONTACTS)
        companies = portal.linked(current, COMPANIES)
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
            "hs_initial_amount": format_number(value),
            "hs_initiated_date": stamp,
            "hs_currency_code": current.properties.get("hs_currency"),
            "hs_payment_method_type": method,
            "hs_processor_type": "none",
            "hs_latest_status": status,
            "hs_reference_number": reference or f"PAY-{portal.next_id}",
            "hs_payment_source_app": commerce.INVOICE_SOURCE_APP,
            "hs_payment_source_id": current.id,
        }
        if email:
            props["hs_customer_email"] = email
        return write(portal, COMMERCE_PAYMENTS, props, at_ms=at_ms, associations=links)


def refund_payment(
    portal: Portal, payment: Record, *, amount: Any = None, at_ms: int | None = None
) -> Record:
    """A refund of ``amount`` (all that is left by default): ``hs_refunds_amount`` grows and the status
    becomes ``partially_refunded`` or ``refunded`` (hubspot-commerce.md §2); the invoice's amount paid
    drops by as much, its status stays [I]."""
    with portal.lock:
        current = portal.get(COMMERCE_PAYMENTS, payment.id) or payment
        status = current.properties.get("hs_latest_status")
        if status not in commerce.REFUNDABLE_STATUSES:
            raise bad_request(f"Only succeeded payments can be refunded; payment {current.id} is {status}.")
        gross = commerce.number(current.properties, "hs_initial_amount")
        refunded = commerce.number(current.properties, "hs_refunds_amount")
        left = gross - refunded
        value = left if amount is None else parse_number(amount)
        if value is None or value <= 0 or value > left:
            raise bad_request(
                f"amount must be more than 0 and at most {format_number(left)}, got {amount!r}."
            )
        total = refunded + value
        changes = {
            "hs_refunds_amount": format_number(total),
            "hs_latest_status": "refunded" if total >= gross else "partially_refunded",
        }
        return write(portal, COMMERCE_PAYMENTS, changes, target=current, at_ms=at_ms)


PRODUCT_FIELDS = {"name": "name", "price": "price", "description": "description", "sku": "hs_sku"}


def product_properties(body: dict[str, Any]) -> dict[str, Any]:
    """A product edit's properties: ``name``, ``price``, ``description``, ``sku``, plus ``properties``."""
    properties = dict(body.get("properties") or {})
    for field, name in PRODUCT_FIELDS.items():
        if field in body:
            properties[name] = body[field]
    price = parse_number(properties.get("price")) if properties.get("price") not in (None, "") else None
    if price is not None and price < 0:
        raise bad_request("price must not be negative.")
    return properties


def tax_rate(portal: Portal, body: dict[str, Any]) -> commerce.TaxRate:
    """An account tax rate (Settings > Tax rates in HubSpot): ``{name, percentage_rate, label, active}``."""
    rate = parse_number(body.get("percentage_rate"))
    if not body.get("name") or rate is None or rate < 0:
        raise bad_request("A tax rate needs a name and a percentage_rate of at least 0.")
    return portal.add_tax_rate(
        str(body["name"]), rate, str(body.get("label") or body["name"]), bool(body.get("active", True))
    )
