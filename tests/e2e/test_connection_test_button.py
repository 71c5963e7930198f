"""The UI's Test button: a real `airflow api-server` tests `jde_ais` and `hubspot` connections
(POST /api/v2/connections/test, what the button calls) against the sandboxes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import free_port
from tests.support.customers import HUBSPOT_TOKEN, JDE_PASSWORD, JDE_USER

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture
def api_server(airflow_db) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    process = subprocess.Popen(
        [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/api/v2/version", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            pytest.fail("airflow api-server did not answer within 120 s")
        yield url
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)


def _test(api: str, **connection: object) -> dict[str, object]:
    response = requests.post(
        f"{api}/api/v2/connections/test", json={"connection_id": "ui_test", **connection}, timeout=120
    )
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def test_the_test_button_reports_success_and_readable_failures(api_server, jde_sandbox, hubspot_sandbox):
    jde = jde_sandbox(customers=20, username=JDE_USER, password=JDE_PASSWORD)
    hubspot = hubspot_sandbox(token=HUBSPOT_TOKEN)
    extra = '{"environment": "JDV920", "role": "*ALL", "device_name": "ui-test"}'

    ok = _test(
        api_server, conn_type="jde_ais", host=jde.url, login=JDE_USER, password=JDE_PASSWORD, extra=extra
    )
    assert ok["status"] is True, ok
    assert JDE_USER in str(ok["message"])

    refused = _test(
        api_server, conn_type="jde_ais", host=jde.url, login=JDE_USER, password="wrong", extra=extra
    )
    assert refused["status"] is False
    assert "wrong" not in str(refused["message"]) and "403" in str(refused["message"])

    ok = _test(api_server, conn_type="hubspot", host=hubspot.url, password=HUBSPOT_TOKEN)
    assert ok["status"] is True, ok

    refused = _test(api_server, conn_type="hubspot", host=hubspot.url, password="pat-na1-not-the-token")
    assert refused["status"] is False
    assert "401" in str(refused["message"]) and "pat-na1-not-the-token" not in str(refused["message"])
