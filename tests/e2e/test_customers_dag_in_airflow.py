"""The customers DAG run by a real Airflow process (`airflow dags test`) against sandbox processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from airflow_provider_mlconn.sandbox.runner import SandboxProcess
from tests.support.customers import (
    HUBSPOT_TOKEN,
    JDE_PASSWORD,
    JDE_TIMEZONE,
    JDE_USER,
    connections,
    forget_customers_watermark,
)

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture
def fresh_watermark(airflow_db):
    forget_customers_watermark()
    yield
    forget_customers_watermark()


def test_airflow_dags_test_syncs_jde_customers_into_hubspot(fresh_watermark, tmp_path, fernet_key):
    jde = SandboxProcess(
        "jde",
        [
            "--customers",
            "25",
            "--seed",
            "3",
            "--username",
            JDE_USER,
            "--password",
            JDE_PASSWORD,
            "--timezone",
            JDE_TIMEZONE,
        ],
    )
    hubspot = SandboxProcess("hubspot", ["--token", HUBSPOT_TOKEN, "--search-lag-ms", "0"])
    with jde, hubspot:
        store_url = f"sqlite:///{tmp_path / 'store.db'}"
        env = {
            **os.environ,
            **connections(jde.url, hubspot.url),
            "AIRFLOW_CONN_MLCONN_STORE": json.dumps(
                {"conn_type": "generic", "extra": {"sqlalchemy_url": store_url, "fernet_key": fernet_key}}
            ),
        }
        result = subprocess.run(
            [
                AIRFLOW,
                "dags",
                "test",
                "mlconn_customers_jde_to_hubspot",
                "-c",
                json.dumps({"safety_lag_minutes": 0}),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        assert "state=success" in result.stdout + result.stderr

        response = requests.get(
            f"{hubspot.url}/crm/v3/objects/companies",
            params={"limit": 100, "properties": "jde_address_number"},
            headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"},
            timeout=30,
        )
        response.raise_for_status()
        numbers = [c["properties"]["jde_address_number"] for c in response.json()["results"]]
        jde_stats = requests.get(f"{jde.url}/_sandbox/stats", timeout=30).json()
    assert numbers and len(numbers) == len(set(numbers))
    assert jde_stats["logins"] >= 1
