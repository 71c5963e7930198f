"""What HubSpot keeps current by itself once a write is done: each payment's invoice count, and each
invoice's totals, amount paid, balance due and ``paid`` status (commerce.py has the arithmetic).

Writes and association changes mark what they may have made stale; the portal then runs the
recalculation before it answers, so every read sees current values (no lag, unlike real HubSpot
sometimes, hubspot-commerce.md §1.4).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from airflow_provider_mlconn.sandbox.hubspot import commerce, invoice_states
from airflow_provider_mlconn.sandbox.hubspot.catalog import (
    COMMERCE_PAYMENTS,
    DISCOUNTS,
    FEES,
    INVOICES,
    LINE_ITEMS,
    TAXES,
    ObjectTypeDef,
)

if TYPE_CHECKING:
    from airflow_provider_mlconn.sandbox.hubspot.portal import Portal, Record

# What an invoice's totals are made of: a change to one of these, or to its association, recomputes them.
INVOICE_PARTS = frozenset({LINE_ITEMS.name, DISCOUNTS.name, FEES.name, TAXES.name, COMMERCE_PAYMENTS.name})
ADJUSTMENTS = (DISCOUNTS, FEES, TAXES)

Key = tuple[str, str]  # (object type name, record id)


class Recalculation:
    """The records of one portal whose computed values may be stale, and how to bring them up to date."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.stale: set[Key] = set()

    def mark(self, record: Record) -> None:
        """A write of ``record`` may change it (invoices, payments) or the invoices it belongs to."""
        name = record.kind.name
        if name in (INVOICES.name, COMMERCE_PAYMENTS.name):
            self.stale.add((name, record.id))
        if name in INVOICE_PARTS:
            for invoice_id, _ in self.portal.linked(record, INVOICES):
                self.stale.add((INVOICES.name, invoice_id))

    def mark_pair(self, a: Key, b: Key) -> None:
        """An association between ``a`` and ``b`` came or went."""
        for one, other in ((a, b), (b, a)):
            if one[0] == INVOICES.name and other[0] in INVOICE_PARTS:
                self.stale.add(one)
            if one[0] == COMMERCE_PAYMENTS.name and other[0] == INVOICES.name:
                self.stale.add(one)

    def run(self, stamp: int) -> None:
        """Payments first (their invoice counts), then invoices; ``stamp`` dates the new versions."""
        while self.stale:
            stale, self.stale = sorted(self.stale), set()
            for kind_name, record_id in stale:
                if kind_name == COMMERCE_PAYMENTS.name:
                    self._payment(record_id, stamp)
            for kind_name, record_id in stale:
                if kind_name == INVOICES.name:
                    self._invoice(record_id, stamp)

    def _payment(self, record_id: str, stamp: int) -> None:
        payment = self.portal.records[COMMERCE_PAYMENTS.name].get(record_id)
        if payment is None:
            return
        invoices = len(self.portal.linked(payment, INVOICES))
        values = {
            "hs_has_associated_invoice": "true" if invoices else "false",
            "hs_number_of_associated_invoices": str(invoices),
        }
        self.portal.republish(payment, values, stamp)

    def _invoice(self, record_id: str, stamp: int) -> None:
        invoice = self.portal.records[INVOICES.name].get(record_id)
        if invoice is None:
            return
        status = invoice.properties.get("hs_invoice_status", invoice_states.DRAFT)
        totals = None
        final = status not in (invoice_states.DRAFT, invoice_states.OPEN)
        if not final or "hs_amount_billed" not in invoice.properties:
            lines = self._linked(invoice, LINE_ITEMS)
            adjustments = [
                [commerce.Adjustment.of(r.id, r.properties) for r in self._linked(invoice, kind)]
                for kind in ADJUSTMENTS
            ]
            totals = commerce.invoice_totals([r.properties for r in lines], *adjustments)
        paid = sum(
            (
                commerce.payment_received(p.properties)
                for p in self._linked(invoice, COMMERCE_PAYMENTS)
                if self._counts_towards_invoice(p)
            ),
            Decimal(0),
        )
        self.portal.republish(invoice, commerce.invoice_values(invoice.properties, totals, paid), stamp)

    def _counts_towards_invoice(self, payment: Record) -> bool:
        recorded_in_hubspot = payment.properties.get("hs_payment_source_app") == commerce.INVOICE_SOURCE_APP
        return recorded_in_hubspot or self.portal.api_payments_update_invoices

    def _linked(self, record: Record, kind: ObjectTypeDef) -> list[Record]:
        records = self.portal.records[kind.name]
        found = (records.get(other_id) for other_id, _ in self.portal.linked(record, kind))
        return sorted((r for r in found if r is not None), key=lambda r: int(r.id))
