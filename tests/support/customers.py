"""Fixtures for the customers flow tests: both sandboxes behind the default connections, and a
snapshot of what HubSpot holds, read through HubSpot's own API (not through our store or hooks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from airflow_provider_mlconn.sandbox.connections import connection_environment, sandbox_connections
from airflow_provider_mlconn.sandbox.hubspot import create_app as create_hubspot
from airflow_provider_mlconn.sandbox.jde import create_app as create_jde
from airflow_provider_mlconn.sandbox.runner import ThreadedServer

JDE_USER, JDE_PASSWORD = "INTEGR8", "flow-tests"
HUBSPOT_TOKEN = "pat-na1-flow-tests"
JDE_TIMEZONE = "America/Chicago"
READ_PATHS = ("/search", "/batch/read")


@dataclass
class Sandboxes:
    jde: ThreadedServer
    hubspot: ThreadedServer
    http: requests.Session = field(default_factory=requests.Session)

    def jde_control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.jde.url}/_sandbox/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def hubspot_stats(self) -> dict[str, Any]:
        response = self.http.get(f"{self.hubspot.url}/_sandbox/stats", timeout=60)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def hubspot_write_calls(self) -> int:
        """Requests that can change a HubSpot record: everything but GETs, searches and batch reads."""
        requests_by_path: dict[str, dict[str, int]] = self.hubspot_stats()["requests"]
        return sum(
            sum(by_status.values())
            for call, by_status in requests_by_path.items()
            if not call.startswith("GET ") and not call.endswith(READ_PATHS)
        )

    def hubspot_api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(
            method,
            f"{self.hubspot.url}{path}",
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def hubspot_objects(
        self, object_type: str, properties: list[str], associations: str = ""
    ) -> list[dict[str, Any]]:
        """Every record of a type, through the list endpoint's paging."""
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, "properties": ",".join(properties)}
            if associations:
                params["associations"] = associations
            if after:
                params["after"] = after
            page = self.hubspot_api("GET", f"/crm/v3/objects/{object_type}", **params)
            found.extend(page["results"])
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return found

    def contact_company_types(self, contact_ids: list[str]) -> dict[tuple[str, str], set[int]]:
        """(contact id, company id) -> association type ids, through the v4 batch read."""
        types: dict[tuple[str, str], set[int]] = {}
        for start in range(0, len(contact_ids), 100):
            chunk = contact_ids[start : start + 100]
            body = self.hubspot_api(
                "POST",
                "/crm/v4/associations/contacts/companies/batch/read",
                {"inputs": [{"id": i} for i in chunk]},
            )
            for result in body["results"]:
                for target in result["to"]:
                    types[(str(result["from"]["id"]), str(target["toObjectId"]))] = {
                        int(t["typeId"]) for t in target["associationTypes"]
                    }
        return types


def connections(jde_url: str, hubspot_url: str) -> dict[str, str]:
    """The default connections pointed at the sandboxes, as AIRFLOW_CONN_* variables."""
    return connection_environment(
        sandbox_connections(
            jde_url=jde_url,
            hubspot_url=hubspot_url,
            jde_user=JDE_USER,
            jde_password=JDE_PASSWORD,
            jde_timezone=JDE_TIMEZONE,
            hubspot_token=HUBSPOT_TOKEN,
            device_name="mlconn-flow-tests",
            page_size=200,
            hubspot_search_lag_seconds=0,
        )
    )


def forget_customers_watermark() -> None:
    """Each test starts the customers flow from scratch (the metadata DB is shared by the session)."""
    from airflow.models import Variable

    Variable.delete("mlconn_watermark__customers__jde")


@pytest.fixture
def customer_sandboxes(
    monkeypatch: pytest.MonkeyPatch, airflow_db: None
) -> Iterator[Callable[..., Sandboxes]]:
    """Factory ``customer_sandboxes(jde={...}, hubspot={...})``: both sandboxes started in-process and
    the default connections pointed at them; everything stops after the test."""
    started: list[Sandboxes] = []
    forget_customers_watermark()

    def start(*, jde: dict[str, Any] | None = None, hubspot: dict[str, Any] | None = None) -> Sandboxes:
        jde_options = {
            "customers": 40,
            "seed": 7,
            "username": JDE_USER,
            "password": JDE_PASSWORD,
            **(jde or {}),
        }
        hubspot_options = {"token": HUBSPOT_TOKEN, "search_lag_ms": 0, **(hubspot or {})}
        sandboxes = Sandboxes(
            jde=ThreadedServer(create_jde(timezone=JDE_TIMEZONE, **jde_options)).start(),
            hubspot=ThreadedServer(create_hubspot(**hubspot_options)).start(),
        )
        started.append(sandboxes)
        for name, value in connections(sandboxes.jde.url, sandboxes.hubspot.url).items():
            monkeypatch.setenv(name, value)
        return sandboxes

    yield start
    forget_customers_watermark()
    for sandboxes in started:
        sandboxes.http.close()
        sandboxes.jde.stop()
        sandboxes.hubspot.stop()
