"""Shared pytest fixtures for the jde tests (registered in tests/conftest.py).

``jde_sandbox(**options)`` starts an in-process AIS sandbox (127.0.0.1, port 0, stopped after the
test) and returns a ``JdeSandbox`` with raw-request and control helpers; ``jde_hook(sandbox, **extra)``
returns a ``JdeAisHook`` pointed at it, with a fast retry policy, closed after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.http import RetryPolicy
from airflow_provider_mlconn.jde.connection import JdeAisSettings
from airflow_provider_mlconn.sandbox.jde import create_app
from airflow_provider_mlconn.sandbox.runner import ThreadedServer

USERNAME = "INTEGR8"
PASSWORD = "s3cret-Passw0rd"
DEVICE = "pytest-device"
FAST_RETRIES = RetryPolicy(max_attempts=8, initial_wait=0.01, max_wait=0.1)


class JdeSandbox:
    """A running AIS sandbox: ``url``, raw AIS calls, the control API and the in-process state."""

    def __init__(self, server: ThreadedServer) -> None:
        self.server = server
        self.url = server.url
        self.http = requests.Session()

    @property
    def state(self) -> Any:
        return self.server.app.state.sandbox

    def ais(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """A raw call to ``/jderest{path}`` (or a full URL), to assert on what AIS answers."""
        url = path if path.startswith("http") else f"{self.url}/jderest{path}"
        return self.http.request(method, url, json=body, headers=headers, auth=auth, timeout=60, **kwargs)

    def login(self, *, device: str = DEVICE, **body: Any) -> str:
        response = self.ais(
            "POST",
            "/v2/tokenrequest",
            {"username": USERNAME, "password": PASSWORD, "deviceName": device, **body},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["userInfo"]["token"]
        return token

    def browse(self, token: str, body: dict[str, Any], *, device: str = DEVICE) -> requests.Response:
        return self.ais(
            "POST",
            "/v2/dataservice",
            {"targetType": "table", "dataServiceType": "BROWSE", **body},
            headers={"jde-AIS-Auth": token, "jde-AIS-Auth-Device": device},
        )

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "stats")
        return result

    def settings(self, **extra: Any) -> JdeAisSettings:
        values: dict[str, Any] = {
            "base_url": self.url,
            "username": USERNAME,
            "password": PASSWORD,
            "environment": "JDV920",
            "role": "*ALL",
            "device_name": DEVICE,
            "server_timezone": self.state.options.timezone,
        }
        values.update(extra)
        return JdeAisSettings(**values)


def condition(control_id: str, operator: str, *contents: str) -> dict[str, Any]:
    """A raw AIS condition, for sandbox tests that check the wire format itself."""
    return {
        "controlId": control_id,
        "operator": operator,
        "value": [{"specialValueId": "LITERAL", "content": c} for c in contents],
    }


@pytest.fixture
def jde_sandbox() -> Iterator[Callable[..., JdeSandbox]]:
    servers: list[ThreadedServer] = []

    def start(**options: Any) -> JdeSandbox:
        options = {"customers": 300, "username": USERNAME, "password": PASSWORD, **options}
        server = ThreadedServer(create_app(**options)).start()
        servers.append(server)
        return JdeSandbox(server)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def jde_hook() -> Iterator[Callable[..., JdeAisHook]]:
    hooks: list[JdeAisHook] = []

    def make(sandbox: JdeSandbox, *, retry_policy: RetryPolicy = FAST_RETRIES, **extra: Any) -> JdeAisHook:
        hook = JdeAisHook(settings=sandbox.settings(**extra), retry_policy=retry_policy)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()
