"""The ``/_sandbox/`` control API: edits a person makes in JDE get today's UPMJ/UPMT."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.jde import PASSWORD, USERNAME, JdeSandbox, condition

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


def account_row(sandbox: JdeSandbox, token: str, number: str) -> dict[str, Any]:
    unit, obj, *sub = number.split(".")
    found = [
        r
        for r in rows(sandbox, token, "F0901", condition("F0901.OBJ", "EQUAL", obj))
        if r["MCU"].strip() == unit and r["SUB"].strip() == (sub[0] if sub else "")
    ]
    assert len(found) == 1, number
    return found[0]


def post_invoice(sandbox: JdeSandbox, reference: str, account: str) -> Any:
    inputs = {
        "CustomerNumber": 10000,
        "Company": "00001",
        "ExternalReference": reference,
        "InvoiceDate": "01/15/2026",
        "PayItems": [{"GrossAmount": "10.00"}],
        "GLDistribution": [{"Account": account, "Amount": "10.00"}],
    }
    return sandbox.ais(
        "POST", "/v3/orchestrator/ORCH_55_CreateCustomerInvoice", inputs, auth=(USERNAME, PASSWORD)
    )


def test_an_account_locked_through_the_control_api_reads_back_with_pec_and_a_new_stamp(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox(timezone="Europe/Berlin")
    token = sandbox.login()
    aid = account_row(sandbox, token, "M30.4130.INST")["AID"]
    result = sandbox.control("PATCH", f"accounts/{aid}", {"posting_edit": "N", "user": "GLADMIN"})
    assert result["touched"][0]["table"] == "F0901" and result["touched"][0]["key"] == {"AID": aid}
    locked = account_row(sandbox, token, "M30.4130.INST")
    assert (locked["PEC"], locked["USER"], locked["PID"]) == ("N", "GLADMIN", "P0901")
    assert stamped_now(locked, "Europe/Berlin")
    refused = post_invoice(sandbox, "HS-LOCKED", "M30.4130.INST").json()
    assert refused["errorText"] == "0026 Account Not Postable"
    sandbox.control("PATCH", f"accounts/{aid}", {"posting_edit": " "})
    assert post_invoice(sandbox, "HS-LOCKED", "M30.4130.INST").status_code == 200


def test_a_new_account_takes_the_next_aid_and_its_key_must_be_new(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    before = rows(sandbox, token, "F0901")
    new = {
        "business_unit": "M30",
        "object_account": "4150",
        "subsidiary": "B2B",
        "description": "Sales - Portal",
    }
    created = sandbox.control("POST", "accounts", new)
    assert int(created["account_id"]) > max(int(r["AID"]) for r in before)
    row = account_row(sandbox, token, "M30.4150.B2B")
    assert (row["AID"], row["CO"], row["DL01"], row["PEC"], row["LDA"]) == (
        created["account_id"], "00001", "Sales - Portal", " ", "7",
    )  # fmt: skip
    assert rows(sandbox, token, "F0901")[-1]["AID"] == created["account_id"], "AIDs stay in key order"
    assert post_invoice(sandbox, "HS-NEW-ACCOUNT", "M30.4150.B2B").status_code == 200
    post = sandbox.http.post
    assert post(f"{sandbox.url}/_sandbox/accounts", json=new, timeout=10).status_code == 409
    elsewhere = {**new, "business_unit": "M99"}
    assert post(f"{sandbox.url}/_sandbox/accounts", json=elsewhere, timeout=10).status_code == 404
    other_company = {**new, "business_unit": "200"}
    assert post(f"{sandbox.url}/_sandbox/accounts", json=other_company, timeout=10).status_code == 422


def test_business_units_are_added_and_renamed_and_accounts_renamed(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    added = sandbox.control(
        "POST", "business-units", {"business_unit": "M60", "description": "Phoenix Branch", "type": "WH"}
    )
    assert added["touched"][0]["key"] == {"MCU": "         M60"}
    sandbox.control("PATCH", "business-units/M60", {"description": "Phoenix Distribution Center"})
    (unit,) = rows(sandbox, token, "F0006", condition("F0006.MCU", "EQUAL", "         M60"))
    assert (unit["DL01"], unit["CO"], unit["STYL"], unit["PID"]) == (
        "Phoenix Distribution Center",
        "00001",
        "WH",
        "P0006",
    )
    assert stamped_now(unit, sandbox.state.options.timezone)
    sandbox.control(
        "POST", "accounts", {"business_unit": "M60", "object_account": "4110", "description": "Sales"}
    )
    aid = account_row(sandbox, token, "M60.4110")["AID"]
    sandbox.control("PATCH", f"accounts/{aid}", {"description": "Sales - Products"})
    assert account_row(sandbox, token, "M60.4110")["DL01"] == "Sales - Products"
    duplicate = sandbox.http.post(
        f"{sandbox.url}/_sandbox/business-units",
        json={"business_unit": "M60", "description": "x"},
        timeout=10,
    )
    assert duplicate.status_code == 409


def price_in_effect(prices: list[dict[str, Any]], day: str, currency: str = "USD") -> list[dict[str, Any]]:
    return [
        r for r in prices if r["CRCD"] == currency and not r["MCU"].strip() and r["EFTJ"] <= day <= r["EXDJ"]
    ]


def test_setting_a_price_ends_the_old_row_the_day_before_and_the_new_one_is_in_effect_today(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    zone = ZoneInfo(sandbox.state.options.timezone)
    today = datetime.now(zone).date()
    (item,) = rows(sandbox, token, "F4101", condition("F4101.ITM", "EQUAL", "60006"))
    before = rows(sandbox, token, "F4106", condition("F4106.ITM", "EQUAL", "60006"))
    (old,) = [r for r in price_in_effect(before, f"{today:%Y%m%d}") if r["UOM"] == item["UOM1"]]
    result = sandbox.control("POST", "items/60006/prices", {"price": "17.4950", "user": "PRICER"})
    assert result["effective_date"] == f"{today:%Y%m%d}"
    assert {t["table"] for t in result["touched"]} == {"F4106"} and len(result["touched"]) == 2
    after = rows(sandbox, token, "F4106", condition("F4106.ITM", "EQUAL", "60006"))
    (current,) = [r for r in price_in_effect(after, f"{today:%Y%m%d}") if r["UOM"] == item["UOM1"]]
    assert (current["UPRC"], current["EFTJ"], current["EXDJ"]) == (17.495, f"{today:%Y%m%d}", old["EXDJ"])
    assert (current["USER"], current["PID"]) == ("PRICER", "P4106")
    assert datetime.strptime(f"{current['UPMJ']}{current['TDAY']:06d}", "%Y%m%d%H%M%S").replace(
        tzinfo=zone
    ) > (datetime.now(zone) - timedelta(minutes=2)), "F4106 keeps the time of day in TDAY"
    (ended,) = [
        r
        for r in after
        if r["EFTJ"] == old["EFTJ"]
        and r["CRCD"] == "USD"
        and r["UOM"] == item["UOM1"]
        and not r["MCU"].strip()
    ]
    assert ended["EXDJ"] == f"{today - timedelta(days=1):%Y%m%d}" and ended["UPRC"] == old["UPRC"]
    eur = sandbox.control(
        "POST", "items/60006/prices", {"price": "15", "currency": "EUR", "effective_date": "2026-01-01"}
    )
    assert eur["effective_date"] == "20260101"
    bad = sandbox.http.post(
        f"{sandbox.url}/_sandbox/items/60006/prices", json={"price": "1.23456"}, timeout=10
    )
    assert bad.status_code == 422


def test_an_item_added_with_a_price_is_in_f4101_and_f4106_and_known_to_the_item_orchestration(
    jde_sandbox: Start,
) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    created = sandbox.control(
        "POST",
        "items",
        {"item_number": "WIDGET-X1", "description": "Widget X1", "unit_of_measure": "bx", "price": "12.3456"},
    )
    itm = created["short_item_number"]
    assert {t["table"] for t in created["touched"]} == {"F4101", "F4106"}
    (item,) = rows(sandbox, token, "F4101", condition("F4101.ITM", "EQUAL", str(itm)))
    assert (item["LITM"], item["UOM1"], item["PID"]) == ("WIDGET-X1", "BX", "P4101")
    (price,) = rows(sandbox, token, "F4106", condition("F4106.ITM", "EQUAL", str(itm)))
    assert (price["UPRC"], price["UOM"], price["CRCD"], price["EXDJ"], price["AN8"]) == (
        12.3456,
        "BX",
        "USD",
        "20401231",
        0,
    )
    inputs = {"ItemNumber": "WIDGET-X1", "Description": "Widget X1"}
    upsert = sandbox.ais("POST", "/v3/orchestrator/ORCH_55_UpsertItem", inputs, auth=(USERNAME, PASSWORD))
    assert upsert.json()["Action"] == "UNCHANGED" and upsert.json()["ShortItemNumber"] == str(itm)
    again = sandbox.http.post(
        f"{sandbox.url}/_sandbox/items", json={"item_number": "WIDGET-X1", "description": "x"}, timeout=10
    )
    assert again.status_code == 409
