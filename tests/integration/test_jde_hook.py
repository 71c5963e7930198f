"""JdeAisHook against the AIS sandbox: sessions, paging, faults, incremental windows, connections."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook, shared_sessions
from airflow_provider_mlconn.http import AuthenticationError
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.connection import JdeAisSettings
from airflow_provider_mlconn.jde.dates import JdeTimestamp
from airflow_provider_mlconn.jde.models import AddressBookRow, WhosWhoRow
from airflow_provider_mlconn.sandbox.runner import SandboxProcess
from tests.support.jde import PASSWORD, USERNAME, JdeSandbox

pytestmark = pytest.mark.integration
Start = Callable[..., JdeSandbox]
MakeHook = Callable[..., JdeAisHook]
TEN_THOUSAND_ROWS = 8500  # customers -> 10,002 address book records (with suppliers, employees, companies)


def assert_complete(rows: list[dict[str, object]], expected: int) -> None:
    keys = [row["AN8"] for row in rows]
    assert len(keys) == expected
    assert len(set(keys)) == expected, "a row came twice"
    assert keys == sorted(keys)  # type: ignore[type-var]


def test_paging_10000_rows_by_100_returns_each_row_once(jde_sandbox: Start, jde_hook: MakeHook) -> None:
    sandbox = jde_sandbox(customers=TEN_THOUSAND_ROWS)
    hook = jde_hook(sandbox)
    rows = list(hook.iter_rows("F0101", columns=["ALPH", "UPMJ"], page_size=100))
    assert_complete(rows, 10_002)
    assert set(rows[0]) == {"AN8", "ALPH", "UPMJ"}
    requests = sandbox.stats()["requests"]
    assert requests["POST /jderest/v2/dataservice 200"] == 1
    assert requests["POST /jderest/v2/dataservice/next 200"] == 100
    assert hook.cursor_resumes == 0


def test_token_expiry_mid_paging_costs_exactly_one_login_per_expiry(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    sandbox = jde_sandbox(customers=TEN_THOUSAND_ROWS, token_ttl=2, latency_ms=25)
    hook = jde_hook(sandbox)
    rows = list(hook.iter_rows("F0101", columns=["AN8"], page_size=100))
    assert_complete(rows, 10_002)
    stats = sandbox.stats()
    expiries = stats["invalid_token_rejections"]
    assert expiries >= 1, "paging should outlive a 2 s token"
    assert stats["logins"] == hook.logins == 1 + expiries


def test_basic_mode_sends_credentials_per_call_and_pages_by_key(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    sandbox = jde_sandbox(customers=850)
    hook = jde_hook(sandbox, auth_mode="basic")
    rows = list(hook.iter_rows("F0101", page_size=100))
    assert_complete(rows, 1002)
    stats = sandbox.stats()
    assert stats["logins"] == 0
    assert stats["stateless_calls"] == stats["requests"]["POST /jderest/v2/dataservice 200"] == 11
    assert hook.count("F0101", q.eq("F0101.AT1", "C")) == 850


def test_5xx_and_dropped_connections_at_10_percent_still_give_every_row_once(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    sandbox = jde_sandbox(customers=TEN_THOUSAND_ROWS, fault_rate=0.1)
    hook = jde_hook(sandbox)
    rows = list(hook.iter_rows("F0101", columns=["AN8"], page_size=100))
    assert_complete(rows, 10_002)
    faults = sandbox.stats()["faults"]
    assert faults["errors"] + faults["dropped_connections"] >= 3
    assert hook.cursor_resumes >= 1


def test_composite_keys_resume_without_gaps_under_faults(jde_sandbox: Start, jde_hook: MakeHook) -> None:
    clean = jde_sandbox(customers=400)
    faulty = jde_sandbox(customers=400, fault_rate=0.25)
    expected = list(jde_hook(clean).iter_rows("F0911", page_size=37))
    got = list(jde_hook(faulty).iter_rows("F0911", page_size=37))
    assert got == expected


def test_a_bad_password_fails_fast_with_a_readable_error(jde_sandbox: Start, jde_hook: MakeHook) -> None:
    sandbox = jde_sandbox()
    hook = jde_hook(sandbox, password="wrong-password")
    with pytest.raises(AuthenticationError) as caught:
        list(hook.iter_rows("F0006"))
    message = str(caught.value)
    assert "refused" in message and USERNAME in message and "wrong-password" not in message
    assert sandbox.stats()["login_failures"] == 1, "a refused login is not retried"


def test_a_second_444_is_an_authentication_error(jde_sandbox: Start, jde_hook: MakeHook) -> None:
    sandbox = jde_sandbox(token_ttl=0)  # every token is dead on arrival
    hook = jde_hook(sandbox)
    with pytest.raises(AuthenticationError, match="fresh token was refused too"):
        hook.count("F0006")
    assert sandbox.stats()["logins"] == 2


def test_closing_the_hook_logs_out(jde_sandbox: Start, jde_hook: MakeHook) -> None:
    sandbox = jde_sandbox()
    with jde_hook(sandbox) as hook:
        assert hook.count("F0006") == 6
    stats = sandbox.stats()
    assert stats["logouts"] == 1 and stats["sessions_active"] == 0


def test_hooks_within_shared_sessions_log_in_once_and_out_once_when_the_scope_ends(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    """A load task opens a hook per call of 20 documents: within ``shared_sessions()`` they share one
    AIS session, re-login together after a 444, and the scope logs it out; outside, each logs in."""
    sandbox = jde_sandbox()
    with shared_sessions():
        for _ in range(5):
            with jde_hook(sandbox) as hook:
                assert hook.count("F0006") == 6
        assert sandbox.stats()["logins"] == 1
        assert sandbox.stats()["logouts"] == 0, "closing a hook leaves the shared session open"
        sandbox.control("POST", "sessions/expire")
        for _ in range(3):
            with jde_hook(sandbox) as hook:
                assert hook.count("F0006") == 6
        assert sandbox.stats()["logins"] == 2, "one login after the 444, shared by the hooks after it"
    stats = sandbox.stats()
    assert stats["logouts"] == 1 and stats["sessions_active"] == 0
    with jde_hook(sandbox) as hook:
        hook.count("F0006")
    with jde_hook(sandbox) as hook:
        hook.count("F0006")
    assert sandbox.stats()["logins"] == 4, "outside the scope each hook has its own session"


def test_changed_since_finds_exactly_what_a_person_edited_in_the_window(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    sandbox = jde_sandbox(timezone="America/Chicago", date_format="DME")
    hook = jde_hook(sandbox, server_timezone="America/Chicago")
    start = JdeTimestamp.from_datetime(datetime.now(timezone.utc) - timedelta(seconds=1), hook.server_zone)
    sandbox.control("PATCH", "customers/10004", {"name": "Edited Once"})
    sandbox.control("POST", "customers/10006/contacts", {"given_name": "Björn", "surname": "Åberg"})
    end = JdeTimestamp.from_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), hook.server_zone)
    window = q.changed_since("F0101", start, end)
    changed = list(hook.iter_records(AddressBookRow, query=q.all_of(q.in_list("F0101.AT1", ["C"]), window)))
    assert [(r.address_number, r.alpha_name) for r in changed] == [(10004, "Edited Once")]
    contacts = list(hook.iter_records(WhosWhoRow, query=q.changed_since("F0111", start, end)))
    assert {(c.address_number, c.given_name) for c in contacts} == {(10004, ""), (10006, "Björn")}
    updated = changed[0].updated_at(hook.server_zone)
    assert updated is not None and abs((updated - datetime.now(timezone.utc)).total_seconds()) < 60
    before_window = q.changed_since("F0101", JdeTimestamp(start.day, 0), start)
    assert all(r.address_number != 10004 for r in hook.iter_records(AddressBookRow, query=before_window))


def test_list_lookups_in_chunks_read_only_the_asked_customers(jde_sandbox: Start, jde_hook: MakeHook) -> None:
    sandbox = jde_sandbox(customers=2000)
    hook = jde_hook(sandbox)
    wanted = list(range(10000, 10400, 3))
    found = [
        row["AN8"]
        for chunk in q.in_chunks("F0111.AN8", wanted, size=50)
        for row in hook.iter_rows("F0111", query=chunk, columns=["IDLN"])
    ]
    assert set(found) <= set(wanted) and 10000 in found


def test_secrets_never_reach_the_logs(
    jde_sandbox: Start, jde_hook: MakeHook, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = jde_sandbox(customers=300, fault_rate=0.3, token_ttl=1, latency_ms=20)
    hook = jde_hook(sandbox)
    caplog.set_level(logging.DEBUG)
    tokens: list[str] = []
    original = hook._login

    def remembering_login() -> str:
        tokens.append(original())
        return tokens[-1]

    hook._login = remembering_login  # type: ignore[method-assign]
    list(hook.iter_rows("F0101", page_size=20))
    assert tokens and caplog.records
    for secret in [PASSWORD, *tokens]:
        assert secret not in caplog.text


def test_tls_verification_is_on_unless_the_connection_turns_it_off(
    jde_sandbox: Start, jde_hook: MakeHook
) -> None:
    sandbox = jde_sandbox()
    assert jde_hook(sandbox).http.verify is True
    assert jde_hook(sandbox, verify_ssl=False).http.verify is False


def test_threads_share_one_session(jde_sandbox: Start, jde_hook: MakeHook) -> None:
    sandbox = jde_sandbox(customers=500)
    hook = jde_hook(sandbox)
    results: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(sum(1 for _ in hook.iter_rows("F0116", page_size=50)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(set(results)) == 1 and len(results) == 4
    assert sandbox.stats()["logins"] == 1


def test_the_airflow_connection_drives_the_hook(jde_sandbox: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = jde_sandbox()
    connection = {
        "conn_type": "jde_ais",
        "host": f"{sandbox.url}/jderest",
        "login": USERNAME,
        "password": PASSWORD,
        "extra": {
            "environment": "JDV920",
            "device_name": "from-conn",
            "page_size": 7,
            "server_timezone": "America/Chicago",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_JDE_AIS_TEST", json.dumps(connection))
    hook = JdeAisHook("jde_ais_test")
    try:
        ok, message = hook.test_connection()
        assert ok, message
        assert "EnterpriseOne" in message
        assert hook.settings.page_size == 7 and hook.settings.base_url == sandbox.url
        assert str(hook.server_zone) == "America/Chicago"
    finally:
        hook.close()
    bad = JdeAisHook(settings=sandbox.settings(password="nope"))
    ok, message = bad.test_connection()
    assert not ok and "refused" in message


def test_the_cli_sandbox_serves_the_hook_from_a_subprocess() -> None:
    with SandboxProcess(
        "jde", ["--customers", "50", "--username", USERNAME, "--password", PASSWORD]
    ) as process:
        assert process.url.startswith("http://127.0.0.1:")
        settings = JdeAisSettings(base_url=process.url, username=USERNAME, password=PASSWORD)
        with JdeAisHook(settings=settings) as hook:
            assert hook.count("F0101", q.eq("F0101.AT1", "C")) == 50
    assert process.process is not None and process.process.poll() is not None
