"""The ``/_sandbox/`` control API: edits a person makes in JDE get today's UPMJ/UPMT."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.jde import JdeSandbox, condition

pytestmark = pytest.mark.integration
Start = Callable[..., JdeSandbox]


def rows(sandbox: JdeSandbox, token: str, table: str, *conditions: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"targetName": table, "maxPageSize": "No Max", "query": {"condition": list(conditions)}}
    response = sandbox.browse(token, body)
    assert response.status_code == 200, response.text
    prefix = len(table) + 1
    return [
        {k[prefix:]: v for k, v in r.items()}
        for r in response.json()[f"fs_DATABROWSE_{table}"]["data"]["gridData"]["rowset"]
    ]


def stamped_now(row: dict[str, Any], zone: str) -> bool:
    now = datetime.now(ZoneInfo(zone))
    stamp = datetime.strptime(f"{row['UPMJ']}{row['UPMT']:06d}", "%Y%m%d%H%M%S").replace(
        tzinfo=ZoneInfo(zone)
    )
    return abs((now - stamp).total_seconds()) < 120


def test_renaming_a_customer_stamps_f0101_and_who_is_who_line_zero(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox(timezone="Asia/Tokyo")
    result = sandbox.control("PATCH", "customers/10001", {"name": "Renamed Supply Ltd."})
    assert {(t["table"], tuple(t["key"].values())) for t in result["touched"]} == {
        ("F0101", (10001,)),
        ("F0111", (10001, 0)),
    }
    token = sandbox.login()
    (book,) = rows(sandbox, token, "F0101", condition("F0101.AN8", "EQUAL", "10001"))
    assert book["ALPH"] == "Renamed Supply Ltd." and stamped_now(book, "Asia/Tokyo")
    line_zero = rows(
        sandbox,
        token,
        "F0111",
        condition("F0111.AN8", "EQUAL", "10001"),
        condition("F0111.IDLN", "EQUAL", "0"),
    )
    assert line_zero[0]["MLNM"] == "Renamed Supply Ltd."


def test_a_new_effective_date_adds_an_address_row_and_no_date_updates_in_place(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    before = rows(sandbox, token, "F0116", condition("F0116.AN8", "EQUAL", "10002"))
    added = sandbox.control(
        "POST",
        "customers/10002/addresses",
        {
            "lines": ["1 New Road"],
            "city": "Boulder",
            "state": "CO",
            "postal_code": "80301",
            "effective_date": "2026-01-01",
        },
    )
    assert added["effective_date"] == "20260101"
    after = rows(sandbox, token, "F0116", condition("F0116.AN8", "EQUAL", "10002"))
    assert len(after) == len(before) + 1
    sandbox.control("POST", "customers/10002/addresses", {"lines": ["2 Fixed Typo St"], "city": "Boulder"})
    assert len(rows(sandbox, token, "F0116", condition("F0116.AN8", "EQUAL", "10002"))) == len(after)


def test_a_new_customer_arrives_with_master_contacts_and_emails(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    created = sandbox.control(
        "POST",
        "customers",
        {
            "name": "Nouvelle Société SARL",
            "company": "00200",
            "address": {"lines": ["3 Rue Neuve"], "city": "Lyon", "country": "FR"},
            "contacts": [{"given_name": "Zoë", "surname": "Lefèvre", "email": "zoe@nouvelle.example"}],
        },
    )
    an8 = created["address_number"]
    assert {t["table"] for t in created["touched"]} == {"F0101", "F03012", "F0111", "F0116", "F01151"}
    token = sandbox.login()
    assert rows(sandbox, token, "F03012", condition("F03012.AN8", "EQUAL", str(an8)))[0]["CO"] == "00200"
    assert [r["IDLN"] for r in rows(sandbox, token, "F0111", condition("F0111.AN8", "EQUAL", str(an8)))] == [
        0,
        1,
    ]


def test_adding_a_contact_and_setting_an_invalid_email_are_both_recorded(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    contact = sandbox.control("POST", "customers/10003/contacts", {"given_name": "Ana", "surname": "Núñez"})
    line = contact["line"]
    sandbox.control("PUT", f"customers/10003/contacts/{line}/email", {"email": "ana at example"})
    token = sandbox.login()
    emails = rows(
        sandbox,
        token,
        "F01151",
        condition("F01151.AN8", "EQUAL", "10003"),
        condition("F01151.IDLN", "EQUAL", str(line)),
    )
    assert [e["EMAL"] for e in emails] == ["ana at example"]


def test_changing_an_item_stamps_it_and_unknown_keys_are_404(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    result = sandbox.control("PATCH", "items/60003", {"description": "Hex bolt M8 zinc"})
    assert result["touched"][0]["key"] == {"ITM": 60003}
    response = sandbox.http.patch(f"{sandbox.url}/_sandbox/items/1", json={"description": "x"}, timeout=10)
    assert response.status_code == 404
    assert (
        sandbox.http.patch(
            f"{sandbox.url}/_sandbox/customers/10017", json={"name": "x"}, timeout=10
        ).status_code
        == 404
    )


def test_reset_restores_the_seeded_data_and_zeroes_the_counters(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    sandbox.control("PATCH", "customers/10001", {"name": "Temporary"})
    token = sandbox.login()
    assert sandbox.stats()["logins"] == 1
    sandbox.control("POST", "reset")
    assert sandbox.stats()["logins"] == 0
    token = sandbox.login()
    (book,) = rows(sandbox, token, "F0101", condition("F0101.AN8", "EQUAL", "10001"))
    assert book["ALPH"] != "Temporary"
