"""What each invoice status allows (hubspot-commerce.md §1.1): draft, open, paid, voided.

- draft: "can be edited, voided, or deleted" [doc]; moves to open with exactly one contact and at least one
  line item [doc], or to voided.
- open: "finalized, but not yet paid" [doc]; becomes paid (by payments, or written by an integration
  [obs]) or voided; it cannot go back to draft [I]. Once a payment is on it, it "cannot be edited" [doc,
  KB] and cannot be voided [I: the money would be left on a voided invoice].
- paid: final for HubSpot's own properties; ``paid -> voided`` is refused [inf, reference §1.1].
- voided: terminal [inf, reference §1.1].

Custom properties (``jde_*``) stay writable in every status [I], so a sync can write its status back.
"""

from __future__ import annotations

from decimal import Decimal

DRAFT, OPEN, PAID, VOIDED = "draft", "open", "paid", "voided"
NEXT: dict[str, frozenset[str]] = {
    DRAFT: frozenset({OPEN, VOIDED}),
    OPEN: frozenset({PAID, VOIDED}),
    PAID: frozenset(),
    VOIDED: frozenset(),
}
CODE = "INVALID_INVOICE_STATE"


def transition_problem(was: str, becomes: str, amount_paid: Decimal) -> str | None:
    """Why an invoice cannot move from ``was`` to ``becomes`` (None if it can, or if nothing moves)."""
    if was == becomes:
        return None
    if was == VOIDED:
        return f"A voided invoice is final; it cannot become {becomes}."
    if was == PAID and becomes == VOIDED:
        return "A paid invoice cannot be voided; refund its payments instead."
    if becomes not in NEXT.get(was, frozenset()):
        allowed = ", ".join(sorted(NEXT.get(was, frozenset()))) or "nothing"
        return f"An invoice cannot move from {was} to {becomes} (from {was} it can become: {allowed})."
    if becomes == VOIDED and amount_paid > 0:
        return f"An invoice with payments ({amount_paid}) cannot be voided; refund its payments first."
    return None


def open_problem(contacts: int, line_items: int) -> str | None:
    """The documented condition for draft -> open."""
    if contacts == 1 and line_items > 0:
        return None
    return (
        "An invoice can only move to open with exactly one associated contact and at least one "
        f"associated line item (it has {contacts} contacts and {line_items} line items)."
    )


def is_locked(status: str, amount_paid: Decimal) -> bool:
    """Whether HubSpot's own properties of an invoice in ``status`` are frozen."""
    return status in (PAID, VOIDED) or (status == OPEN and amount_paid > 0)


def locked_message(name: str, status: str) -> str:
    where = f"a {status} invoice" if status != OPEN else "an open invoice with payments"
    return f'"{name}" cannot change on {where}; only custom properties can.'
