"""The customers mapping: JDE rows in, HubSpot properties (or a rejection a person can act on) out."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from airflow_provider_mlconn.jde.models import (
    AddressBookRow,
    AddressByDateRow,
    CustomerMasterRow,
    ElectronicAddressRow,
    PhoneRow,
    WhosWhoRow,
)
from airflow_provider_mlconn.mapping.countries import iso_country
from airflow_provider_mlconn.mapping.customers import (
    ContactSnapshot,
    CustomerRules,
    CustomerSnapshot,
    clean_email,
    current_address,
    main_contact_line,
    map_company,
    map_contact,
)
from airflow_provider_mlconn.sync.flow import Rejection

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 26)


def book(**columns: Any) -> AddressBookRow:
    return AddressBookRow.model_validate(
        {"AN8": 4242, "ALPH": "Acme Supply    ", "AT1": "C ", "MCU": "        M30", **columns}
    )


def address(eftb: str, **columns: Any) -> AddressByDateRow:
    return AddressByDateRow.model_validate(
        {
            "AN8": 4242,
            "EFTB": eftb,
            "ADD1": "1 Main St",
            "CTY1": "Denver",
            "ADDS": "CO ",
            "ADDZ": "80202",
            "CTR": "US ",
            **columns,
        }
    )


def email(idln: int, value: str, rck7: int = 1, etp: str = "E   ", ehier: int = 1) -> ElectronicAddressRow:
    return ElectronicAddressRow.model_validate(
        {"AN8": 4242, "IDLN": idln, "RCK7": rck7, "ETP": etp, "EMAL": value, "EHIER": ehier}
    )


def phone(idln: int, number: str, phtp: str = "BUS ", rck7: int = 1, ar1: str = "303   ") -> PhoneRow:
    return PhoneRow.model_validate(
        {"AN8": 4242, "IDLN": idln, "RCK7": rck7, "CNLN": 0, "PHTP": phtp, "AR1": ar1, "PH1": number}
    )


def who(idln: int, **columns: Any) -> WhosWhoRow:
    return WhosWhoRow.model_validate(
        {
            "AN8": 4242,
            "IDLN": idln,
            "DSS7": idln,
            "GNNM": "Ana",
            "SRNM": "Núñez",
            "ATTL": "Buyer",
            "ACTIN": "Y",
            **columns,
        }
    )


def master(co: str, **columns: Any) -> CustomerMasterRow:
    return CustomerMasterRow.model_validate(
        {"AN8": 4242, "CO": co, "TRAR": "N30", "CRCD": "USD", "ACL": "25000.00", **columns}
    )


def test_company_carries_the_jde_key_name_address_and_customer_master_terms() -> None:
    snapshot = CustomerSnapshot(
        address_book=book(),
        customer_masters=[master("00200", TRAR="N60"), master("00000")],
        addresses=[
            address("20200101", ADD1="Old Rd 1"),
            address("20260101"),
            address("20270101", ADD1="Future Ave"),
        ],
        phones=[phone(0, "555-0100"), phone(0, "555-0199", phtp="FAX ", rck7=2)],
        electronic_addresses=[email(0, "www.acme.test", etp="I   ", ehier=0)],
    )
    mapped = map_company(snapshot, as_of=TODAY)
    assert not isinstance(mapped, Rejection)
    assert mapped["properties"] == {
        "jde_address_number": "4242",
        "name": "Acme Supply",
        "jde_search_type": "C",
        "jde_business_unit": "M30",
        "jde_status": "active",
        "address": "1 Main St",
        "address2": "",
        "city": "Denver",
        "state": "CO",
        "zip": "80202",
        "country": "US",
        "phone": "303 555-0100",
        "domain": "acme.test",
        "jde_company": "00000",
        "jde_payment_terms": "N30",
        "jde_currency": "USD",
        "jde_credit_limit": "25000",
    }
    assert mapped["notes"] == []


def test_company_with_a_blank_alpha_name_is_rejected_with_the_column_to_fix() -> None:
    result = map_company(CustomerSnapshot(address_book=book(ALPH="    ")), as_of=TODAY)
    assert isinstance(result, Rejection)
    assert "F0101.ALPH" in result.reason and "4242" in result.reason


def test_unknown_country_is_left_empty_and_noted_not_sent() -> None:
    snapshot = CustomerSnapshot(address_book=book(), addresses=[address("20200101", CTR="XX ")])
    mapped = map_company(snapshot, as_of=TODAY)
    assert not isinstance(mapped, Rejection)
    assert mapped["properties"]["country"] == ""
    assert any("'XX'" in note for note in mapped["notes"])


@pytest.mark.parametrize(("jde", "iso"), [("US ", "US"), ("uk", "GB"), ("", ""), ("ZZ", None), ("DE", "DE")])
def test_jde_country_codes_map_to_iso_alpha_2(jde: str, iso: str | None) -> None:
    assert iso_country(jde) == iso


def test_inactive_customer_is_synced_with_status_inactive_not_dropped() -> None:
    mapped = map_company(CustomerSnapshot(address_book=book(AC30="INA")), as_of=TODAY)
    assert not isinstance(mapped, Rejection)
    assert mapped["properties"]["jde_status"] == "inactive"


def test_inactive_rule_names_an_unknown_column_clearly() -> None:
    with pytest.raises(ValueError, match="AC99"):
        map_company(
            CustomerSnapshot(address_book=book()),
            as_of=TODAY,
            rules=CustomerRules(inactive_category_code=("AC99", "X")),
        )


def test_current_address_is_the_latest_effective_on_the_day() -> None:
    rows = [address("20200101", ADD1="A"), address("20260101", ADD1="B"), address("20270101", ADD1="C")]
    chosen = current_address(rows, TODAY)
    assert chosen is not None and chosen.line_1 == "B"
    assert current_address(rows, date(2019, 1, 1)) is None


def test_contact_maps_names_primary_email_phone_mobile_and_key() -> None:
    snapshot = ContactSnapshot(
        customer=book(),
        who_is_who=who(3),
        phones=[phone(3, "555-0101"), phone(3, "555-0177", phtp="CAR ", rck7=2)],
        electronic_addresses=[
            email(3, "second@acme.test", rck7=1, ehier=0),
            email(3, "Ana.Nunez@Acme.test  ", rck7=2, ehier=1),
        ],
    )
    mapped = map_contact(snapshot)
    assert not isinstance(mapped, Rejection)
    assert mapped["properties"] == {
        "jde_contact_key": "4242-3",
        "firstname": "Ana",
        "lastname": "Núñez",
        "jobtitle": "Buyer",
        "company": "Acme Supply",
        "jde_address_number": "4242",
        "jde_status": "active",
        "email": "ana.nunez@acme.test",
        "phone": "303 555-0101",
        "mobilephone": "303 555-0177",
    }


@pytest.mark.parametrize(
    "bad",
    ["not-an-email", "ana@", "ana nunez@acme.test", "x" * 65 + "@acme.test", "ana@acme", "ana@@acme.test"],
)
def test_invalid_email_is_not_sent_and_the_contact_still_syncs(bad: str) -> None:
    mapped = map_contact(
        ContactSnapshot(customer=book(), who_is_who=who(2), electronic_addresses=[email(2, bad)])
    )
    assert not isinstance(mapped, Rejection)
    assert "email" not in mapped["properties"]
    assert mapped["properties"]["jde_contact_key"] == "4242-2"
    assert any("not a valid address" in note for note in mapped["notes"])


def test_contact_without_email_syncs_keyed_by_contact_key_and_clears_hubspot_email_phones() -> None:
    mapped = map_contact(ContactSnapshot(customer=book(), who_is_who=who(1)))
    assert not isinstance(mapped, Rejection)
    assert mapped["properties"]["jde_contact_key"] == "4242-1"
    assert (
        mapped["properties"]["email"],
        mapped["properties"]["phone"],
        mapped["properties"]["mobilephone"],
    ) == (
        "",
        "",
        "",
    )


def test_company_without_phone_or_website_clears_them_in_hubspot() -> None:
    mapped = map_company(CustomerSnapshot(address_book=book()), as_of=TODAY)
    assert not isinstance(mapped, Rejection)
    assert (mapped["properties"]["phone"], mapped["properties"]["domain"]) == ("", "")


def test_contact_names_fall_back_to_the_alpha_name_surname_first() -> None:
    mapped = map_contact(
        ContactSnapshot(customer=book(), who_is_who=who(1, GNNM="", SRNM="", ALPH="Ivanova, Мария"))
    )
    assert not isinstance(mapped, Rejection)
    assert (mapped["properties"]["firstname"], mapped["properties"]["lastname"]) == ("Мария", "Ivanova")


def test_contact_with_no_name_and_no_email_is_rejected() -> None:
    result = map_contact(
        ContactSnapshot(customer=book(), who_is_who=who(4, GNNM="", SRNM="", ALPH="", MLNM=""))
    )
    assert isinstance(result, Rejection)
    assert "4242-4" in result.reason


def test_inactive_contact_line_is_marked_inactive() -> None:
    mapped = map_contact(ContactSnapshot(customer=book(), who_is_who=who(2, ACTIN="N")))
    assert not isinstance(mapped, Rejection)
    assert mapped["properties"]["jde_status"] == "inactive"


def test_main_contact_is_the_first_active_line_by_display_sequence() -> None:
    lines = [who(0), who(1, ACTIN="N"), who(2, DSS7=9), who(3, DSS7=2)]
    assert main_contact_line(lines) == 3
    assert main_contact_line([who(0), who(1, ACTIN="N")]) is None


def test_clean_email_lowercases_and_trims() -> None:
    assert clean_email("  Buyer@Example.COM ") == "buyer@example.com"
