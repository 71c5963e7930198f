"""The AIS sandbox answers as jde-ais.md documents ([D] facts), over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.support.jde import DEVICE, PASSWORD, USERNAME, JdeSandbox, condition

pytestmark = pytest.mark.integration
Start = Callable[..., JdeSandbox]


def test_token_request_answers_the_documented_shape(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    response = sandbox.ais(
        "POST", "/v2/tokenrequest", {"username": USERNAME, "password": PASSWORD, "deviceName": DEVICE}
    )
    assert response.status_code == 200
    body = response.json()
    assert "token" not in body and body["userInfo"]["token"]
    assert body["userInfo"]["dateSeperator"] == "/"  # misspelled key, as AIS has it
    assert body["userInfo"]["simpleDateFormat"] == "MM/dd/yyyy"
    assert {"username", "environment", "role", "jasserver", "aisSessionCookie", "adminAuthorized"} <= set(
        body
    )
    assert not any("expir" in key.lower() for key in body) and "expires_in" not in body["userInfo"]


def test_basic_login_with_auth_headers_works_and_bad_credentials_get_403(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    headers = {"jde-AIS-Auth-Environment": "JDV920", "jde-AIS-Auth-Role": "*ALL", "jde-AIS-Auth-Device": "d"}
    ok = sandbox.ais("POST", "/v2/tokenrequest", {}, auth=(USERNAME, PASSWORD), headers=headers)
    assert ok.status_code == 200 and ok.json()["environment"] == "JDV920"
    bad = sandbox.ais("POST", "/v2/tokenrequest", {"username": USERNAME, "password": "wrong"})
    assert bad.status_code == 403
    assert {"message", "exception", "timeStamp", "status"} <= set(bad.json())


def test_a_post_that_is_not_json_gets_415_and_malformed_json_400(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    not_json = sandbox.http.post(f"{sandbox.url}/jderest/v2/tokenrequest", data="username=x", timeout=10)
    assert not_json.status_code == 415
    broken = sandbox.http.post(
        f"{sandbox.url}/jderest/v2/tokenrequest",
        data="{",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert broken.status_code == 400


def test_an_invalid_token_gets_444_and_the_token_is_bound_to_its_device(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    body = {"targetName": "F0006"}
    assert sandbox.browse(token, body).status_code == 200
    assert sandbox.browse(token, body, device="another-device").status_code == 444
    assert sandbox.browse("044bogus", body).status_code == 444
    body_token = sandbox.ais("POST", "/v2/dataservice", {**body, "token": token, "deviceName": DEVICE})
    assert body_token.status_code == 200


def test_validate_and_logout_follow_the_token_lifecycle(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    headers = {"jde-AIS-Auth": token, "jde-AIS-Auth-Device": DEVICE}
    validate = sandbox.ais("POST", "/v2/tokenrequest/validate", {"touch": True}, headers=headers)
    assert validate.status_code == 200 and validate.json() == {"isValidSession": True}
    logout = sandbox.ais(
        "POST", "/v2/tokenrequest/logout", {"token": token}, headers={"jde-AIS-Auth-Device": DEVICE}
    )
    assert logout.status_code == 200 and logout.json() == {"status": "Success"}
    assert sandbox.ais("POST", "/v2/tokenrequest/validate", {}, headers=headers).status_code == 444
    assert (
        sandbox.ais("POST", "/v2/tokenrequest/logout", {"token": token}, headers=headers).status_code == 444
    )
    assert sandbox.browse(token, {"targetName": "F0006"}).status_code == 444


def test_a_token_expires_after_its_time_to_live(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox(token_ttl=0.5)
    token = sandbox.login()
    assert sandbox.browse(token, {"targetName": "F0006"}).status_code == 200
    time.sleep(0.7)
    assert sandbox.browse(token, {"targetName": "F0006"}).status_code == 444


def test_orchestrator_login_family_mirrors_tokenrequest(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    login = sandbox.ais(
        "GET", "/v3/orchestrator/jde-login", auth=(USERNAME, PASSWORD), headers={"jde-AIS-Auth-Device": "o"}
    )
    assert login.status_code == 200
    headers = {"jde-AIS-Auth": login.json()["userInfo"]["token"], "jde-AIS-Auth-Device": "o"}
    assert (
        sandbox.ais("POST", "/v3/orchestrator/jde-validate-session", {}, headers=headers).status_code == 200
    )
    assert sandbox.ais("POST", "/v3/orchestrator/jde-logout", {}, headers=headers).status_code == 200


def test_browse_defaults_to_100_rows_with_more_records_and_no_links(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    body = sandbox.browse(sandbox.login(), {"targetName": "F0101"}).json()
    form = body["fs_DATABROWSE_F0101"]
    grid = form["data"]["gridData"]
    assert grid["summary"] == {"records": 100, "moreRecords": True}
    assert len(grid["rowset"]) == 100
    assert "links" not in body
    row = grid["rowset"][0]
    assert set(row) == set(grid["columns"]) and all(k.startswith("F0101_") for k in row)
    assert isinstance(row["F0101_AN8"], int) and isinstance(row["F0101_UPMT"], int)
    assert len(row["F0101_UPMJ"]) == 8 and row["F0101_UPMJ"].isdigit()  # yyyyMMdd
    assert form["title"].startswith("Data Browser - F0101")


def test_next_page_processing_links_pages_until_no_more(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    headers = {"jde-AIS-Auth": token, "jde-AIS-Auth-Device": DEVICE}
    page = sandbox.browse(
        token,
        {
            "targetName": "F0006",
            "maxPageSize": "4",
            "enableNextPageProcessing": True,
            "returnControlIDs": "F0006.MCU",
        },
    ).json()
    seen = [r["F0006_MCU"] for r in page["fs_DATABROWSE_F0006"]["data"]["gridData"]["rowset"]]
    (link,) = page["links"]
    assert link["rel"] == "next" and "stackId=" in link["href"] and "token=" in link["href"]
    page = sandbox.ais("GET", link["href"], headers=headers).json()
    grid = page["fs_DATABROWSE_F0006"]["data"]["gridData"]
    seen += [r["F0006_MCU"] for r in grid["rowset"]]
    assert grid["summary"] == {"records": 2, "moreRecords": False} and "links" not in page
    assert len(seen) == len(set(seen)) == 6
    stale = sandbox.ais("POST", link["href"], {}, headers=headers)
    assert stale.status_code == 500 and stale.json()["status"] == "ERROR"


def test_no_max_returns_everything_and_count_counts(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox(customers=200)
    token = sandbox.login()
    rows = sandbox.browse(token, {"targetName": "F0101", "maxPageSize": "No Max"}).json()
    grid = rows["fs_DATABROWSE_F0101"]["data"]["gridData"]
    assert grid["summary"]["moreRecords"] is False and grid["summary"]["records"] > 200
    count = sandbox.browse(
        token,
        {
            "targetName": "F0101",
            "dataServiceType": "COUNT",
            "query": {"condition": [condition("F0101.AT1", "EQUAL", "C")]},
        },
    )
    assert count.json()["count"] == 200


def test_conditions_operators_and_order_by_are_applied(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()

    def an8s(query: dict[str, object], **extra: object) -> list[int]:
        body = {
            "targetName": "F0101",
            "maxPageSize": "No Max",
            "returnControlIDs": "F0101.AN8",
            "query": query,
            **extra,
        }
        response = sandbox.browse(token, body)
        assert response.status_code == 200, response.text
        return [r["F0101_AN8"] for r in response.json()["fs_DATABROWSE_F0101"]["data"]["gridData"]["rowset"]]

    assert an8s(
        {
            "condition": [
                condition("F0101.AN8", "GREATER", "10005"),
                condition("F0101.AN8", "LESS_EQUAL", "10007"),
            ]
        }
    ) == [10006, 10007]
    assert an8s(
        {"condition": [condition("F0101.AN8", "NOT_EQUAL", "1"), condition("F0101.AN8", "LESS", "10001")]}
    ) == [200, 10000]
    assert (
        an8s(
            {
                "matchType": "MATCH_ANY",
                "condition": [
                    condition("F0101.AN8", "EQUAL", "1"),
                    condition("F0101.AN8", "GREATER_EQUAL", "10300"),
                ],
            }
        )[0]
        == 1
    )
    assert an8s({"condition": [condition("F0101.AN8", "LIST", "10003", "10001")]}) == [10001, 10003]
    assert an8s({"condition": [condition("F0101.AN8", "BETWEEN", "10001", "10003")]}) == [10001, 10002, 10003]
    mile_high = an8s({"condition": [condition("F0101.ALPH", "STR_START_WITH", "Mile High")]})
    assert mile_high == [1, 200]
    descending = an8s(
        {"condition": [condition("F0101.AN8", "BETWEEN", "10001", "10003")]},
        aggregation={"orderBy": [{"column": "F0101.AN8", "direction": "DESC"}]},
    )
    assert descending == [10003, 10002, 10001]


def test_a_request_naming_an_unknown_column_is_a_400_that_says_which(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    token = sandbox.login()
    bad = sandbox.browse(token, {"targetName": "F0101", "returnControlIDs": "F0101.AN8|F0101.NOPE"})
    assert bad.status_code == 400 and "F0101.NOPE" in bad.json()["message"]
    assert sandbox.browse(token, {"targetName": "F9999"}).status_code == 400


def test_every_service_accepts_http_basic_per_request(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox()
    response = sandbox.ais(
        "POST",
        "/v2/dataservice",
        {"targetName": "F0006", "maxPageSize": "2", "enableNextPageProcessing": True},
        auth=(USERNAME, PASSWORD),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["fs_DATABROWSE_F0006"]["data"]["gridData"]["summary"]["moreRecords"] is True
    assert "links" not in body  # the temporary session and its cursor are gone after the call
    assert (
        sandbox.ais("POST", "/v2/dataservice", {"targetName": "F0006"}, auth=(USERNAME, "nope")).status_code
        == 403
    )
    assert sandbox.ais("POST", "/v2/dataservice", {"targetName": "F0006"}).status_code == 403
    assert sandbox.stats()["stateless_calls"] == 1
    simple = sandbox.ais(
        "GET",
        "/v2/dataservice/table/F0101?$field=F0101.AN8&$filter=F0101.AT1 EQ O&$limit=5",
        auth=(USERNAME, PASSWORD),
    )
    assert [r["F0101_AN8"] for r in simple.json()["fs_DATABROWSE_F0101"]["data"]["gridData"]["rowset"]] == [
        1,
        200,
    ]


def test_defaultconfig_needs_no_login_and_lists_the_capabilities(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox(token_ttl=7200)
    config = sandbox.ais("GET", "/defaultconfig").json()
    names = {c["name"] for c in config["capabilityList"]}
    assert {
        "dataservice",
        "dataServiceAggregation",
        "version2services",
        "nextPage",
        "simpleGetServices",
    } <= names
    assert config["timeToLive"] == "120" and config["sessionTimeout"] == "30"
    assert sandbox.ais("GET", "/v2/defaultconfig").status_code == 200


def test_faults_answer_500_or_drop_the_connection_and_are_counted(jde_sandbox: Start) -> None:
    sandbox = jde_sandbox(fault_rate=1.0)
    token = sandbox.login()
    outcomes: set[int | str] = set()
    for _ in range(12):
        try:
            outcomes.add(sandbox.browse(token, {"targetName": "F0006"}).status_code)
        except Exception as error:  # requests' ChunkedEncodingError/ConnectionError: the drop
            outcomes.add(type(error).__name__)
    assert 500 in outcomes and len(outcomes) > 1
    faults = sandbox.stats()["faults"]
    assert faults["errors"] + faults["dropped_connections"] == 12
    assert sandbox.ais("GET", "/defaultconfig").status_code == 200  # login and config are never faulted
