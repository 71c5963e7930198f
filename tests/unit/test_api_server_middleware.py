"""The provider's api-server middleware, around a small FastAPI app shaped like Airflow's routes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from airflow_provider_mlconn.http import connection_name, tested_connection_id
from airflow_provider_mlconn.plugins import MlconnPlugin
from airflow_provider_mlconn.plugins.api_server import (
    DRY_RUN_NOTE,
    ApiServerMiddleware,
    connection_test_body,
    connection_with_defaults,
    trigger_body,
)
from airflow_provider_mlconn.timetables import SyncTimetable

pytestmark = pytest.mark.unit

JDE_EXTRA = {"environment": "JDV920", "device_name": "ui", "page_size": 500}


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    seen: dict[str, Any] = {}

    @app.post("/api/v2/connections/test")
    def test_connection(body: dict[str, Any]) -> dict[str, Any]:  # sync: run in a thread, as Airflow's
        return {"body": body, "named": connection_name("Xa8rT2pQ")}

    @app.post("/api/v2/dags/{dag_id}/dagRuns")
    def trigger(dag_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/api/v2/connections/{conn_id}")
    def connection(conn_id: str, request: Request) -> dict[str, Any]:
        seen["accept-encoding"] = request.headers.get("accept-encoding")
        return {"connection_id": conn_id, "conn_type": "jde_ais", "extra": json.dumps(JDE_EXTRA)}

    app.add_middleware(ApiServerMiddleware)
    test_client = TestClient(app)
    test_client.seen = seen  # type: ignore[attr-defined]
    return test_client


def test_the_ui_test_request_loses_its_port_zero_and_the_hook_names_the_stored_connection(client) -> None:
    answer = client.post(
        "/api/v2/connections/test",
        json={"connection_id": "jde_ais_default", "conn_type": "jde_ais", "port": 0, "password": "***"},
    ).json()
    assert "port" not in answer["body"] and answer["body"]["password"] == "***"
    assert answer["named"] == "jde_ais_default"
    assert tested_connection_id.get() is None, "the id must not leak out of the request"


def test_other_connection_types_and_real_ports_are_left_alone() -> None:
    http = {"connection_id": "web", "conn_type": "http", "port": 0}
    assert connection_test_body(http) == http
    no_extra = {"connection_id": "hubspot_default", "conn_type": "hubspot", "port": 0, "extra": "{}"}
    assert connection_test_body(no_extra) == {"connection_id": "hubspot_default", "conn_type": "hubspot"}
    with_port = {"connection_id": "jde", "conn_type": "jde_ais", "port": 9300}
    assert connection_test_body(with_port) == with_port


def test_a_connection_read_shows_every_extra_field_with_its_default(client) -> None:
    answer = client.get("/api/v2/connections/jde_ais_default", headers={"Accept-Encoding": "gzip"})
    extra = json.loads(answer.json()["extra"])
    assert extra["environment"] == "JDV920" and extra["page_size"] == 500  # stored values kept
    assert extra["auth_mode"] == "token" and extra["timeout"] == 60 and extra["role"] is None
    assert client.seen["accept-encoding"] is None  # type: ignore[attr-defined]
    assert int(answer.headers["content-length"]) == len(answer.content)


def test_a_connection_without_extra_is_left_as_it_is() -> None:
    bare = {"connection_id": "hubspot_default", "conn_type": "hubspot", "extra": None}
    assert connection_with_defaults(bare) == bare


def test_a_dry_run_of_a_provider_dag_gets_a_run_id_and_a_note_saying_so(client) -> None:
    body = {"conf": {"dry_run": True}, "logical_date": None}
    answer = client.post("/api/v2/dags/mlconn_customers_jde_to_hubspot/dagRuns", json=body).json()
    assert answer["note"] == DRY_RUN_NOTE and answer["dag_run_id"].startswith("dry_run__")
    mine = {"conf": {"dry_run": True}, "note": "checking the mapping", "dag_run_id": "try-1"}
    assert trigger_body("mlconn_customers_jde_to_hubspot", mine) == mine
    assert trigger_body("other_dag", body) == body
    real = {"conf": {"dry_run": False}}
    assert trigger_body("mlconn_customers_jde_to_hubspot", real) == real
    when = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    assert trigger_body("mlconn_replay", body, now=when)["dag_run_id"] == "dry_run__2026-03-02T12:00:00+00:00"


def test_the_plugin_registers_the_timetable_and_the_middleware() -> None:
    assert SyncTimetable in MlconnPlugin.timetables
    assert MlconnPlugin.fastapi_root_middlewares[0]["middleware"] is ApiServerMiddleware
