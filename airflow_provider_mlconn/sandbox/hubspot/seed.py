"""``--seed N``: a portal that already holds HubSpot-origin data, the same for the same N.

Products with SKUs, companies and contacts (with primary companies), invoices in draft/open/paid in
EUR and USD with line items made from the products, and commerce payments against the invoices. All
dated over the last 30 days, so incremental reads by ``hs_lastmodifieddate`` find them.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from airflow_provider_mlconn.sandbox.hubspot.catalog import ASSOCIATION_BY_ID, COMPANIES, CONTACTS, PRODUCTS
from airflow_provider_mlconn.sandbox.hubspot.edits import create_invoice, record_payment, write
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal
from airflow_provider_mlconn.sandbox.hubspot.values import format_number, parse_number

DAY_MS = 86_400_000
PRODUCT_NAMES = (
    "Hydraulic pump",
    "Pressure valve",
    "Steel flange",
    "Control unit",
    "Sensor kit",
    "Drive belt",
    "Gear motor",
    "Filter cartridge",
    "Service hour",
    "Installation package",
    "Cable harness",
    "Bearing set",
)
COMPANY_NAMES = (
    ("Northwind Traders", "northwind.example.com", "Rotterdam", "Netherlands"),
    ("Contoso Manufacturing", "contoso.example.com", "Chicago", "United States"),
    ("Fabrikam Industrie", "fabrikam.example.com", "Stuttgart", "Germany"),
    ("Tailspin Supplies", "tailspin.example.com", "Denver", "United States"),
    ("Wingtip Machinery", "wingtip.example.com", "Lyon", "France"),
    ("Adventure Works", "adventure-works.example.com", "Seattle", "United States"),
)
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Daan", "Eva", "Finn", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars")
LAST_NAMES = ("Jansen", "Miller", "Schmidt", "Dubois", "Rossi", "Novak")
EUROPE = {"Netherlands", "Germany", "France"}
PRODUCTS_COUNT = len(PRODUCT_NAMES)
INVOICES_COUNT = 12


def seed_portal(portal: Portal, seed: int) -> dict[str, Any]:
    """Fill ``portal`` deterministically from ``seed``; returns what was created (ids by kind)."""
    rng = random.Random(seed)
    now = portal.clock()
    clock = iter(range(now - 30 * DAY_MS, now - DAY_MS, (29 * DAY_MS) // 80))

    products = []
    for i, name in enumerate(PRODUCT_NAMES):
        price = Decimal(rng.randrange(500, 50_000)) / 100
        products.append(
            write(
                portal,
                PRODUCTS,
                {
                    "name": name,
                    "hs_sku": f"SKU-{1001 + i}",
                    "price": format_number(price),
                    "description": f"{name} (seeded)",
                    "hs_product_type": "service" if "hour" in name or "package" in name else "inventory",
                },
                at_ms=next(clock),
            )
        )

    companies, contacts, primary = [], [], {}
    for i, (name, domain, city, country) in enumerate(COMPANY_NAMES):
        company = write(
            portal,
            COMPANIES,
            {"name": name, "domain": domain, "city": city, "country": country, "lifecyclestage": "customer"},
            at_ms=next(clock),
        )
        companies.append(company)
        for j in range(2):
            first, last = FIRST_NAMES[(2 * i + j) % len(FIRST_NAMES)], LAST_NAMES[i % len(LAST_NAMES)]
            types = [ASSOCIATION_BY_ID[279]] + ([ASSOCIATION_BY_ID[1]] if j == 0 else [])
            contact = write(
                portal,
                CONTACTS,
                {
                    "firstname": first,
                    "lastname": last,
                    "email": f"{first}.{last}@{domain}".lower(),
                    "company": name,
                    "city": city,
                    "country": country,
                },
                at_ms=next(clock),
                associations=[(t, company) for t in types],
            )
            contacts.append(contact)
            if j == 0:
                primary[company.id] = contact

    invoices, line_items, payments = [], [], []
    statuses = ("draft", "open", "paid")
    for i in range(INVOICES_COUNT):
        company = companies[i % len(companies)]
        contact = primary[company.id]
        currency = "EUR" if company.properties.get("country") in EUROPE else "USD"
        picks = rng.sample(products, rng.randint(1, 3))
        lines = [{"product_id": p.id, "quantity": rng.randint(1, 10)} for p in picks]
        status = statuses[i % 3]
        invoice, items = create_invoice(
            portal,
            currency=currency,
            lines=lines,
            status="open" if status == "paid" else status,
            contact=contact,
            company=company,
            at_ms=next(clock),
            extra={"hs_title": f"Order {5000 + i}", "hs_purchase_order_number": f"PO-{seed}-{i:03d}"},
        )
        invoices.append(invoice)
        line_items.extend(items)
        total = parse_number(invoice.properties["hs_amount_billed"]) or Decimal(0)
        if status == "paid":
            payments.append(
                record_payment(
                    portal,
                    invoice,
                    amount=format_number(total),
                    method="wire_transfer",
                    reference=f"PAY-{seed}-{i:03d}",
                    at_ms=next(clock),
                )
            )
        elif status == "open" and i % 2 == 1:
            half = (total / 2).quantize(Decimal("0.01"))
            payments.append(
                record_payment(
                    portal,
                    invoice,
                    amount=format_number(half),
                    method="card",
                    reference=f"PAY-{seed}-{i:03d}",
                    at_ms=next(clock),
                )
            )
    if invoices:
        payments.append(
            record_payment(
                portal,
                invoices[1],
                amount="10",
                status="processing",
                method="check",
                reference=f"PAY-{seed}-pending",
                at_ms=next(clock),
            )
        )
    return {
        "seed": seed,
        "products": [p.id for p in products],
        "companies": [c.id for c in companies],
        "contacts": [c.id for c in contacts],
        "invoices": [i.id for i in invoices],
        "line_items": [li.id for li in line_items],
        "commerce_payments": [p.id for p in payments],
    }
