"""Customers flow mapping: a JDE customer -> a HubSpot company, its Who's Who lines -> contacts.

Pure: values in, values out; no I/O, no Airflow. The extract step assembles one ``CustomerSnapshot``
per changed address number (F0101 + F03012 + F0116 + F0111 + F0115 + F01151 rows) and one
``ContactSnapshot`` per Who's Who contact line; these functions turn them into HubSpot property
dicts, or into a ``Rejection`` whose reason a person can act on. Every cleaning rule here is
written up in docs/BEHAVIOR.md (section F).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from airflow_provider_mlconn.jde.models import (
    AddressBookRow,
    AddressByDateRow,
    CustomerMasterRow,
    ElectronicAddressRow,
    PhoneRow,
    WhosWhoRow,
)
from airflow_provider_mlconn.mapping.countries import iso_country
from airflow_provider_mlconn.rejection import Rejection

#: HubSpot custom properties the flow writes (created in the "JD Edwards" group if missing).
COMPANY_KEY_PROPERTY = "jde_address_number"
CONTACT_KEY_PROPERTY = "jde_contact_key"

# HubSpot stores single-line text up to 65,536 characters; e-mail addresses follow RFC 5321
# (254 characters in all, 64 before the @).
MAX_TEXT = 65_536
MAX_EMAIL = 254
MAX_EMAIL_LOCAL_PART = 64

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}$")


class _Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class CustomerSnapshot(_Snapshot):
    """One JDE customer as extract assembles it: every row of every table that describes it."""

    address_book: AddressBookRow
    customer_masters: list[CustomerMasterRow] = []
    addresses: list[AddressByDateRow] = []
    phones: list[PhoneRow] = []
    electronic_addresses: list[ElectronicAddressRow] = []
    main_contact_line: int | None = None


class ContactSnapshot(_Snapshot):
    """One Who's Who contact line (F0111, IDLN > 0) with its phones and electronic addresses."""

    customer: AddressBookRow
    who_is_who: WhosWhoRow
    phones: list[PhoneRow] = []
    electronic_addresses: list[ElectronicAddressRow] = []


@dataclass(frozen=True)
class CustomerRules:
    """The configurable part of the mapping (the flow passes the DAG's settings)."""

    #: Inactive customers carry this F0101 category code (column alias, value); the seeded JDE data
    #: and most installations mark them with a dedicated category code plus an A/R hold.
    inactive_category_code: tuple[str, str] = ("AC30", "INA")
    #: The company (CO) whose Customer Master line supplies terms, currency and credit limit.
    preferred_company: str = "00000"
    #: Phone types (F0115.PHTP, UDC 01/PH) in order of preference for the main phone.
    phone_types: tuple[str, ...] = ("", "BUS", "TEL", "MAIN")
    #: Phone types that are mobile numbers (HubSpot contact ``mobilephone``).
    mobile_types: tuple[str, ...] = ("CAR", "MOB", "CEL")


def company_key(address_number: int) -> str:
    """The HubSpot unique value of a customer: its JDE address number (F0101.AN8) as text."""
    return str(address_number)


def contact_key(address_number: int, line_number: int) -> str:
    """``jde_contact_key``: "AN8-IDLN", the Who's Who line of the customer."""
    return f"{address_number}-{line_number}"


def current_address(addresses: list[AddressByDateRow], as_of: date) -> AddressByDateRow | None:
    """The F0116 row in effect on ``as_of``: the latest effective date (EFTB) not after it."""
    effective = [a for a in addresses if a.effective_date <= as_of]
    return max(effective, key=lambda a: a.effective_date) if effective else None


def clean_email(value: str) -> str | None:
    """The address lower-cased if it is a deliverable-looking e-mail, else None."""
    email = value.strip().lower()
    if not email or len(email) > MAX_EMAIL or not _EMAIL.match(email):
        return None
    if len(email.partition("@")[0]) > MAX_EMAIL_LOCAL_PART:
        return None
    return email


def format_phone(phone: PhoneRow) -> str:
    """``AR1`` (area code) and ``PH1`` (number) as one string, as JDE shows them."""
    return " ".join(part for part in (phone.area_code.strip(), phone.phone_number.strip()) if part)


#: C0 and C1 control characters (NUL, BEL, TAB, CR, LF, DEL, ...): JDE keeps what a green-screen
#: import or a paste put into a field; HubSpot shows them as garbage and search does not match them.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text(value: str) -> str:
    """A JDE text value as HubSpot gets it: control characters become blanks, the padding goes."""
    return _CONTROL_CHARACTERS.sub(" ", value).strip()[:MAX_TEXT]


def _first_phone(phones: list[PhoneRow], types: tuple[str, ...]) -> str:
    ranked = sorted(
        (p for p in phones if p.phone_type.strip().upper() in types and format_phone(p)),
        key=lambda p: (types.index(p.phone_type.strip().upper()), p.phone_line),
    )
    return format_phone(ranked[0]) if ranked else ""


def _emails(rows: list[ElectronicAddressRow], line_number: int) -> list[tuple[str, str]]:
    """(raw, cleaned-or-'') e-mail addresses of one Who's Who line, primary (EHIER=1) first."""
    mails = [r for r in rows if r.line_number == line_number and r.address_type.strip().upper() == "E"]
    mails.sort(key=lambda r: (r.messaging_indicator != 1, r.email_line))
    return [(r.electronic_address.strip(), clean_email(r.electronic_address) or "") for r in mails]


def _website_domain(rows: list[ElectronicAddressRow]) -> str:
    for row in sorted(rows, key=lambda r: r.email_line):
        if row.line_number == 0 and row.address_type.strip().upper() == "I":
            host = row.electronic_address.strip().lower()
            host = re.sub(r"^[a-z]+://", "", host).split("/", 1)[0]
            host = host.removeprefix("www.")
            if _HOST.match(host):
                return host
    return ""


def is_inactive(customer: AddressBookRow, rules: CustomerRules) -> bool:
    alias, value = rules.inactive_category_code
    field_name = next(
        (name for name, info in AddressBookRow.model_fields.items() if info.alias == alias),
        None,
    )
    if field_name is None:
        raise ValueError(
            f"inactive_category_code names {alias!r}, which is not an F0101 column of AddressBookRow"
        )
    return str(getattr(customer, field_name)).strip().upper() == value.strip().upper()


def customer_master(masters: list[CustomerMasterRow], rules: CustomerRules) -> CustomerMasterRow | None:
    """The Customer Master line (F03012) whose terms, currency and credit limit the company shows:
    the ``preferred_company``'s, else the lowest company's."""
    if not masters:
        return None
    preferred = [m for m in masters if m.company.strip() == rules.preferred_company]
    return preferred[0] if preferred else min(masters, key=lambda m: m.company)


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def map_company(
    snapshot: CustomerSnapshot, *, as_of: date, rules: CustomerRules | None = None
) -> dict[str, Any] | Rejection:
    """HubSpot company properties for one customer, or why it cannot be written.

    The payload holds ``properties`` (what is sent) and ``notes`` (what was cleaned, for the audit
    trail; never sent).
    """
    rules = rules or CustomerRules()
    book = snapshot.address_book
    name = _text(book.alpha_name)
    if not name:
        return Rejection(
            f"customer {book.address_number}: F0101.ALPH (alpha name) is blank; HubSpot needs a company "
            "name. Enter the name in JDE (P01012) and the next run picks it up."
        )
    notes: list[str] = []
    properties: dict[str, str] = {
        COMPANY_KEY_PROPERTY: company_key(book.address_number),
        "name": name,
        "jde_search_type": book.search_type.strip(),
        "jde_business_unit": book.business_unit.strip(),
        "jde_status": "inactive" if is_inactive(book, rules) else "active",
    }
    address = current_address(snapshot.addresses, as_of)
    if address is not None:
        lines = [_text(line) for line in (address.line_1, address.line_2, address.line_3, address.line_4)]
        lines = [line for line in lines if line]
        country = iso_country(address.country)
        if country is None:
            notes.append(
                f"F0116.CTR {address.country.strip()!r} is not an ISO 3166 country code; country left empty"
            )
            country = ""
        properties.update(
            {
                "address": lines[0] if lines else "",
                "address2": ", ".join(lines[1:]),
                "city": _text(address.city),
                "state": _text(address.state),
                "zip": _text(address.postal_code),
                "country": country,
            }
        )
    else:
        notes.append(f"no F0116 address effective on {as_of.isoformat()}")
    # JDE is the master of what we map: a value removed in JDE is cleared in HubSpot ("" clears).
    properties["phone"] = _first_phone([p for p in snapshot.phones if p.line_number == 0], rules.phone_types)
    properties["domain"] = _website_domain(snapshot.electronic_addresses)
    master = customer_master(snapshot.customer_masters, rules)
    if master is not None:
        properties.update(
            {
                "jde_company": master.company.strip(),
                "jde_payment_terms": master.payment_terms.strip(),
                "jde_currency": master.currency.strip(),
                "jde_credit_limit": _decimal_text(master.credit_limit),
            }
        )
    else:
        notes.append("no F03012 Customer Master line; terms, currency and credit limit not sent")
    return {"properties": properties, "notes": notes}


def _split_name(who: WhosWhoRow) -> tuple[str, str]:
    given, surname = _text(who.given_name), _text(who.surname)
    if given or surname:
        return given, surname
    # JDE alpha names of people read "Surname, Given"; mailing names read "Given Surname".
    if "," in who.alpha_name:
        last, _, first = who.alpha_name.partition(",")
        return _text(first), _text(last)
    full = _text(who.mailing_name) or _text(who.alpha_name)
    first, _, last = full.rpartition(" ")
    return (first, last) if first else ("", last)


def map_contact(
    snapshot: ContactSnapshot, *, rules: CustomerRules | None = None
) -> dict[str, Any] | Rejection:
    """HubSpot contact properties for one Who's Who line, or why it cannot be written.

    A contact without a usable e-mail still syncs, keyed by ``jde_contact_key``; an invalid e-mail is
    left out and noted, never sent (HubSpot would refuse the record).
    """
    rules = rules or CustomerRules()
    who = snapshot.who_is_who
    key = contact_key(who.address_number, who.line_number)
    firstname, lastname = _split_name(who)
    emails = _emails(snapshot.electronic_addresses, who.line_number)
    email = next((cleaned for _, cleaned in emails if cleaned), "")
    if not (firstname or lastname or email):
        return Rejection(
            f"contact {key}: Who's Who line has no name (GNNM, SRNM, MLNM, ALPH blank) and no valid e-mail; "
            "enter a name in JDE (P0111) so the contact can be recognised in HubSpot."
        )
    notes = [
        f"e-mail {raw!r} is not a valid address; not sent" for raw, cleaned in emails if raw and not cleaned
    ]
    phones = [p for p in snapshot.phones if p.line_number == who.line_number]
    properties: dict[str, str] = {
        CONTACT_KEY_PROPERTY: key,
        "firstname": firstname,
        "lastname": lastname,
        "jobtitle": _text(who.title),
        "company": _text(snapshot.customer.alpha_name),
        "jde_address_number": company_key(who.address_number),
        "jde_status": "active" if who.active.strip().upper() != "N" else "inactive",
    }
    # An e-mail JDE no longer has is cleared; an invalid one is not sent, so HubSpot keeps the last
    # good address rather than losing the contact's identity to a typo.
    if email or not emails:
        properties["email"] = email
    properties["phone"] = _first_phone(phones, rules.phone_types)
    properties["mobilephone"] = _first_phone(phones, rules.mobile_types)
    return {"properties": properties, "notes": notes}


def main_contact_line(who_is_who: list[WhosWhoRow]) -> int | None:
    """The customer's main contact: the active contact line shown first (DSS7, then IDLN)."""
    active = [w for w in who_is_who if w.line_number > 0 and w.active.strip().upper() != "N"]
    if not active:
        return None
    return min(active, key=lambda w: (w.display_sequence, w.line_number)).line_number
