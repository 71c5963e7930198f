"""The seeded distributor's chart of accounts (F0901) and business units (F0006), as plain data.

JDE keys an account by (MCU, OBJ, SUB) and gives each one a short account id (AID) from next numbers;
the triple is unique, so every business unit below lists each object/subsidiary once. Postable
accounts have a blank posting edit code (PEC); headers are ``N`` (non-posting, level of detail 3-5),
retired accounts ``I`` (inactive), budget-only accounts ``B`` (UDC H00/PE).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    obj: str
    sub: str
    description: str
    posting_edit: str = " "
    level: str = "7"


@dataclass(frozen=True)
class BusinessUnit:
    mcu: str
    style: str  # F0006.STYL: blank = company-level unit, WH = warehouse/branch
    company: str
    address_number: int
    description: str
    plans: tuple[str, ...]  # which of the PLANS below its accounts come from
    posting_edits: tuple[tuple[str, str], ...] = ()  # (OBJ.SUB, PEC) that differ in this unit


PLANS: dict[str, tuple[Account, ...]] = {
    "balance": (
        Account("1110", "", "Cash in Bank - Operating"),
        Account("1120", "", "Cash in Bank - Lockbox"),
        Account("1200", "", "Accounts Receivable", "N", "5"),
        Account("1210", "", "A/R - Trade"),
        Account("1290", "", "A/R - Unapplied Cash"),
        Account("1410", "", "Inventory"),
        Account("2100", "", "Accounts Payable", "N", "5"),
        Account("2110", "", "A/P - Trade"),
        Account("2210", "", "Sales Tax Payable"),
    ),
    "revenue": (
        Account("4000", "", "Revenue - Total", "N", "3"),
        Account("4100", "", "Revenue", "N", "5"),
        Account("4110", "", "Sales - Products"),
        Account("4110", "WEB", "Sales - Web Store", " ", "8"),
        Account("4110", "EDI", "Sales - EDI Orders", " ", "8"),
        Account("4120", "", "Sales - Freight Billed"),
        Account("4130", "", "Sales - Services"),
        Account("4130", "INST", "Services - Installation", " ", "8"),
        Account("4130", "MAINT", "Services - Maintenance Contracts", " ", "8"),
        Account("4140", "", "Sales - Equipment Rental"),
        Account("4190", "", "Sales - Discontinued (locked)", "I"),
        Account("4500", "", "Other Revenue", "N", "5"),
        Account("4510", "", "Miscellaneous Income"),
        Account("4520", "", "Restocking Fees"),
        Account("4900", "", "Sales Returns and Allowances"),
        Account("4910", "", "Sales Discounts"),
        Account("4990", "", "Revenue - Legacy Conversion", "I"),
    ),
    "branch revenue": (
        Account("4100", "", "Revenue", "N", "5"),
        Account("4110", "", "Sales - Products"),
        Account("4120", "", "Sales - Freight Billed"),
        Account("4190", "", "Sales - Discontinued (locked)", "I"),
        Account("4900", "", "Sales Returns and Allowances"),
    ),
    "expense": (
        Account("5110", "", "Cost of Goods Sold"),
        Account("6000", "", "Operating Expenses", "N", "3"),
        Account("6110", "", "Office Supplies"),
        Account("6120", "", "Postage and Shipping"),
        Account("6210", "", "Utilities"),
        Account("6310", "", "Rent"),
        Account("6410", "", "Professional Fees"),
        Account("6510", "", "Travel"),
        Account("6610", "", "Software Subscriptions"),
        Account("6990", "", "Contingency (budget only)", "B"),
    ),
    "legacy": (
        Account("4100", "", "Revenue", "N", "5"),
        Account("4110", "", "Sales - Products (pre-2019)", "I"),
        Account("4130", "", "Sales - Services (pre-2019)", "I"),
    ),
}

# In creation order: AIDs ascend through this list, so F0901 comes out sorted by its key.
BUSINESS_UNITS: tuple[BusinessUnit, ...] = (
    BusinessUnit("1", "", "00001", 1, "Mile High Distribution - Corporate", ("balance",)),
    BusinessUnit("M30", "WH", "00001", 1, "Denver Distribution Center", ("balance", "revenue", "expense")),
    BusinessUnit(
        "M40",
        "WH",
        "00001",
        1,
        "Chicago Distribution Center",
        ("revenue", "expense"),
        (("4140", "I"), ("4130.MAINT", "I")),  # no rentals or service contracts in Chicago
    ),
    BusinessUnit("M50", "WH", "00001", 1, "Dallas Cross-Dock", ("branch revenue",)),
    BusinessUnit("200", "", "00200", 200, "Mile High Distribution Europe", ("balance", "revenue", "expense")),
    BusinessUnit("00200", "", "00200", 200, "Europe Holding (legacy BU)", ("legacy",)),
)


def accounts_of(unit: BusinessUnit) -> list[Account]:
    """The unit's accounts in (OBJ, SUB) order, with the unit's own posting edit codes applied."""
    overrides = dict(unit.posting_edits)
    accounts: dict[tuple[str, str], Account] = {}
    for plan in unit.plans:
        for account in PLANS[plan]:
            number = f"{account.obj}.{account.sub}" if account.sub else account.obj
            pec = overrides.get(number, account.posting_edit)
            accounts[(account.obj, account.sub)] = Account(
                account.obj, account.sub, account.description, pec, account.level
            )
    return [accounts[key] for key in sorted(accounts)]
