"""Shared pytest fixtures for the hubspot tests (registered in tests/conftest.py).

``hubspot_sandbox(**options)`` starts an in-process sandbox (port 0, stopped after the test);
``hubspot_hook(sandbox, **hook_options)`` points a fresh connection id at it and returns a hook.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.sandbox.hubspot import create_app
from airflow_provider_mlconn.sandbox.runner import ThreadedServer

SANDBOX_TOKEN = "pat-na1-sandbox-tests"
REPO_ROOT = Path(__file__).resolve().parents[2]
# The shared tools live next to the repository on the development machine (../shared/tools); CI clones
# the repository elsewhere, where this path does not exist and the conformance test skips.
CONFORMANCE_TOOL = REPO_ROOT.parent / "shared" / "tools" / "hubspot-conformance"


class SandboxControl:
    """A running sandbox plus its ``/_sandbox/`` control API."""

    def __init__(self, server: ThreadedServer, token: str) -> None:
        self.server = server
        self.url = server.url
        self.token = token
        self.http = requests.Session()

    @property
    def state(self) -> Any:
        return self.server.app.state.sandbox

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json() if response.content else None

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "stats")
        return result

    def records(self, object_type: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", f"objects/{object_type}")["results"]
        return result

    def api(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        """A raw API call with the sandbox token, for asserting on what HubSpot would answer."""
        return self.http.request(
            method,
            f"{self.url}{path}",
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )


@pytest.fixture
def hubspot_sandbox() -> Iterator[Callable[..., SandboxControl]]:
    """Factory: ``hubspot_sandbox(rate_limit=..., search_lag_ms=0, seed=...)``; all stopped at teardown."""
    servers: list[SandboxControl] = []

    def start(**options: Any) -> SandboxControl:
        options.setdefault("token", SANDBOX_TOKEN)
        options.setdefault("search_lag_ms", 0)
        server = ThreadedServer(create_app(**options)).start()
        control = SandboxControl(server, options["token"])
        servers.append(control)
        return control

    yield start
    for control in servers:
        control.http.close()
        control.server.stop()


@pytest.fixture
def hubspot_hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., HubSpotHook]]:
    """Factory: ``hubspot_hook(sandbox, token=..., extra={...}, **hook_options)`` on a fresh connection id."""
    hooks: list[HubSpotHook] = []

    def make(
        sandbox: SandboxControl,
        *,
        token: str | None = None,
        extra: dict[str, Any] | None = None,
        **options: Any,
    ) -> HubSpotHook:
        conn_id = f"hubspot_test_{uuid.uuid4().hex[:8]}"
        connection = {
            "conn_type": "hubspot",
            "host": sandbox.url,
            "password": sandbox.token if token is None else token,
            "extra": extra or {},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
        hook = HubSpotHook(conn_id, **options)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()
