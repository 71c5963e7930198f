"""The sandbox against HubSpot's official specs (the shared conformance tool) and the official SDK."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
import requests

from airflow_provider_mlconn.sandbox.runner import SandboxProcess
from tests.support.hubspot import CONFORMANCE_TOOL, SandboxControl

pytestmark = pytest.mark.integration

Sandbox = Callable[..., SandboxControl]


@pytest.mark.skipif(not CONFORMANCE_TOOL.exists(), reason=f"{CONFORMANCE_TOOL} is not here (CI clone)")
def test_the_conformance_tool_finds_no_failure(hubspot_sandbox: Sandbox) -> None:
    sandbox = hubspot_sandbox(seed=1, search_lag_ms=500)
    result = subprocess.run(
        [sys.executable, str(CONFORMANCE_TOOL), "--base-url", sandbox.url, "--token", sandbox.token],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    failures = [line for line in result.stdout.splitlines() if line.startswith(("FAIL", "SKIP"))]
    assert result.returncode == 0, "\n".join(failures) or result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith(" 0 failed")


def test_the_official_sdk_reads_and_writes_the_sandbox_with_client_side_validation(
    hubspot_sandbox: Sandbox,
) -> None:
    hubspot = pytest.importorskip("hubspot")
    from hubspot.crm.companies import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        PublicObjectSearchRequest,
        SimplePublicObjectBatchInputUpsert,
        SimplePublicObjectInputForCreate,
    )
    from hubspot.crm.contacts import ApiException

    sandbox = hubspot_sandbox()
    sandbox.api(
        "POST",
        "/crm/v3/properties/companies",
        {
            "name": "jde_address_number",
            "label": "AN8",
            "type": "string",
            "fieldType": "text",
            "groupName": "companyinformation",
            "hasUniqueValue": True,
        },
    )
    client = hubspot.Client.create(access_token=sandbox.token, host=sandbox.url, client_side_validation=True)
    created = client.crm.companies.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={"name": "Acme"})
    )
    assert created.id and created.properties["name"] == "Acme"
    batch = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id_property="jde_address_number", id="4242", properties={"name": "B"}
            )
        ]
    )
    upserted = client.crm.companies.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=batch
    )
    assert upserted.results[0].new is True
    found = client.crm.companies.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(
            filter_groups=[], sorts=[], limit=10, after="0", properties=["name"]
        )
    )
    assert found.total == 2
    page = client.crm.companies.basic_api.get_page(limit=1)
    assert len(page.results) == 1 and page.paging.next.after
    with pytest.raises(ApiException) as refused:
        hubspot.Client.create(access_token="pat-wrong", host=sandbox.url).crm.contacts.basic_api.get_page()
    assert refused.value.status == 401


def test_the_cli_serves_the_sandbox_with_its_options(tmp_path: object) -> None:
    args = [
        "--token",
        "pat-na1-cli",
        "--rate-limit",
        "50",
        "--search-rate-limit",
        "3",
        "--seed",
        "2",
        "--latency-ms",
        "1",
        "--search-lag-ms",
        "0",
    ]
    with SandboxProcess("hubspot", args) as process:
        response = requests.get(
            f"{process.url}/crm/v3/objects/invoices",
            timeout=10,
            headers={"Authorization": "Bearer pat-na1-cli"},
        )
        assert response.status_code == 200 and response.headers["X-HubSpot-RateLimit-Max"] == "50"
        stats = requests.get(f"{process.url}/_sandbox/stats", timeout=10).json()
        assert stats["records"]["invoices"] == 12
        assert stats["settings"]["search_rate_limit"] == 3 and "token" not in stats["settings"]
    assert process.process is not None and process.process.poll() is not None
