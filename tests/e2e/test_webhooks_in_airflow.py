"""HubSpot webhooks into a real Airflow (`make airflow`: `airflow standalone` on 127.0.0.1).

The HubSpot sandbox's webhook subscription targets the api-server's receiver
(``/mlconn/webhooks/hubspot``); the invoices DAG has no timed schedule here (Variable
``mlconn_invoices_schedule`` = none), so every run comes from a webhook:

- an invoice issued in HubSpot is posted to JDE (F03B11, through AIS) within 60 s, by one run;
- the connector's own write-back (``jde_*`` properties) fires webhooks too, and starts no run;
- a burst of 500 events (5 deliveries of 100) makes at most 2 runs: Airflow queues asset events
  while a run of the DAG is active (``max_active_runs`` 1) and starts one run for all of them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_mlconn.sandbox.connections import connection_environment, sandbox_connections
from tests.support.airflow import MakeAirflow, make_airflow, wait_for

pytestmark = pytest.mark.e2e

DEADLINE_S = 420
INVOICES_DAG = "mlconn_invoices_hubspot_to_jde"
SECRET = "e2e-webhook-client-secret"
TOKEN = "pat-na1-sandbox"
DELIVERY_BOUND_S = 60
BURST = 500
MAX_BURST_RUNS = 2


def _hubspot(airflow: MakeAirflow, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(
        method,
        f"{airflow.hubspot_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.ok, f"{method} {path}: {response.status_code} {response.text[:500]}"
    return response.json() if response.content else None


def _to(record_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": record_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def _draft_invoice(airflow: MakeAirflow) -> dict[str, Any]:
    """A JDE customer, its HubSpot company and contact, and a draft invoice with one line."""
    customer = requests.post(
        f"{airflow.jde_url}/_sandbox/customers",
        json={
            "name": "Webhook Works",
            "address": {"lines": ["1 Main Street"], "city": "Austin", "country": "US"},
        },
        timeout=30,
    )
    customer.raise_for_status()
    address_number = customer.json()["address_number"]
    _hubspot(
        airflow,
        "POST",
        "/crm/v3/properties/companies",
        {
            "name": "jde_address_number",
            "label": "JDE address number",
            "type": "string",
            "fieldType": "text",
            "groupName": "companyinformation",
            "hasUniqueValue": True,
        },
    )
    company = _hubspot(
        airflow,
        "POST",
        "/crm/v3/objects/companies",
        {"properties": {"name": "Webhook Works", "jde_address_number": str(address_number)}},
    )
    contact = _hubspot(
        airflow,
        "POST",
        "/crm/v3/objects/contacts",
        {"properties": {"email": "ap@webhook-works.example", "firstname": "Ada", "lastname": "Payable"}},
    )
    lines = _hubspot(
        airflow,
        "POST",
        "/crm/v3/objects/line_items/batch/create",
        {
            "inputs": [
                {
                    "properties": {
                        "name": "Workshop",
                        "quantity": "1",
                        "price": "800",
                        "hs_line_item_currency_code": "USD",
                    }
                }
            ]
        },
    )
    associations = [_to(lines["results"][0]["id"], 409), _to(contact["id"], 177), _to(company["id"], 179)]
    return _hubspot(
        airflow,
        "POST",
        "/crm/v3/objects/invoices",
        {"properties": {"hs_currency": "USD"}, "associations": associations},
    )


def _invoice(airflow: MakeAirflow, invoice_id: str) -> dict[str, Any]:
    names = "hs_number,hs_invoice_status,jde_document_number,jde_sync_status"
    return _hubspot(airflow, "GET", f"/crm/v3/objects/invoices/{invoice_id}?properties={names}")["properties"]


def _jde_invoice_posts(airflow: MakeAirflow) -> int:
    stats = requests.get(f"{airflow.jde_url}/_sandbox/stats", timeout=30).json()
    return int(stats["orchestrations"].get("ORCH_55_CreateCustomerInvoice success", 0))


def _runs(airflow: MakeAirflow) -> list[dict[str, Any]]:
    return airflow.api("GET", f"/dags/{INVOICES_DAG}/dagRuns", order_by="run_after", limit=100)["dag_runs"]


def _all_finished(airflow: MakeAirflow, count: int) -> list[dict[str, Any]] | None:
    """Every run, once at least ``count`` exist, all succeeded, and no asset event waits for one."""
    runs = _runs(airflow)
    failed = [run["dag_run_id"] for run in runs if run["state"] == "failed"]
    assert not failed, f"runs failed: {failed}; see {airflow.output} and {airflow.home / 'logs'}"
    if len(runs) < count or any(run["state"] != "success" for run in runs):
        return None
    queued = airflow.api("GET", f"/dags/{INVOICES_DAG}/assets/queuedEvents")["queued_events"]
    return None if queued else runs


def _plan(airflow: MakeAirflow, run_id: str) -> dict[str, Any]:
    entry = airflow.api(
        "GET", f"/dags/{INVOICES_DAG}/dagRuns/{run_id}/taskInstances/plan_window/xcomEntries/return_value"
    )
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def _variable(airflow: MakeAirflow, key: str) -> str | None:
    response = airflow.http.get(f"{airflow.url}/api/v2/variables/{key}", timeout=30)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return str(response.json()["value"])


def _parsed(airflow: MakeAirflow) -> bool:
    ids = {dag["dag_id"] for dag in airflow.api("GET", "/dags", limit=100)["dags"]}
    return INVOICES_DAG in ids


def _inbox(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "mlconn" / "store.db") as db:
        events = db.execute("SELECT COUNT(*), COUNT(signalled_at) FROM mlconn_webhook_events").fetchone()
        ignored = db.execute("SELECT COUNT(*) FROM mlconn_webhook_events WHERE asset_uri IS NULL").fetchone()
        refused = db.execute("SELECT COUNT(*) FROM mlconn_webhook_requests WHERE status <> 200").fetchone()
    return {"events": events[0], "signalled": events[1], "ignored": ignored[0], "refused": refused[0]}


def test_an_issued_invoice_reaches_jde_through_a_webhook_and_a_burst_makes_few_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deadline = time.monotonic() + DEADLINE_S
    env = {
        "AIRFLOW_VAR_MLCONN_INVOICES_SCHEDULE": "none",
        "AIRFLOW_VAR_MLCONN_INVOICES": json.dumps({"posting": {"default_revenue_account": "M30.4110"}}),
        "AIRFLOW_CONN_HUBSPOT_WEBHOOKS_DEFAULT": json.dumps(
            {"conn_type": "hubspot_webhooks", "password": SECRET}
        ),
    }
    with make_airflow(tmp_path, deadline=deadline, customers=5, env=env) as airflow:
        receiver = f"{airflow.url}/mlconn/webhooks/hubspot"
        unsigned = requests.post(receiver, json=[{"eventId": 1}], timeout=10)
        assert (unsigned.status_code, unsigned.json()["reason"]) == (401, "unsigned")

        draft = _draft_invoice(airflow)
        drafts = _hubspot(
            airflow,
            "POST",
            "/crm/v3/objects/invoices/batch/create",
            {"inputs": [{"properties": {"hs_currency": "USD"}} for _ in range(BURST // 5)]},
        )["results"]
        wait_for("the invoices DAG parsed", lambda: _parsed(airflow), deadline)
        airflow.api("PATCH", f"/dags/{INVOICES_DAG}", {"is_paused": False})
        requests.post(
            f"{airflow.hubspot_url}/_sandbox/webhooks",
            json={
                "target_url": receiver,
                "client_secret": SECRET,
                "event_types": ["object.creation", "object.propertyChange"],
                "object_types": ["invoices"],
            },
            timeout=30,
        ).raise_for_status()
        assert _runs(airflow) == [], "no run before a webhook: the DAG has no timed schedule here"

        # An invoice issued in HubSpot reaches JDE within a minute, without a schedule.
        issued_at = time.monotonic()
        _hubspot(
            airflow,
            "PATCH",
            f"/crm/v3/objects/invoices/{draft['id']}",
            {"properties": {"hs_invoice_status": "open"}},
        )
        wait_for(
            "the invoice posted in JDE",
            lambda: _jde_invoice_posts(airflow) == 1,
            issued_at + DELIVERY_BOUND_S,
            step=0.5,
        )
        to_jde = time.monotonic() - issued_at
        [run] = wait_for("the webhook run finished", lambda: _all_finished(airflow, 1), deadline, step=1.0)
        assert run["run_type"] == "asset_triggered"
        invoice = _invoice(airflow, draft["id"])
        assert invoice["jde_sync_status"] == "posted" and invoice["jde_document_number"]
        monkeypatch.setenv(
            "AIRFLOW_CONN_JDE_AIS_DEFAULT",
            connection_environment(
                sandbox_connections(
                    jde_url=airflow.jde_url,
                    hubspot_url=airflow.hubspot_url,
                    jde_password="jde-sandbox",
                    jde_role=None,
                )
            )["AIRFLOW_CONN_JDE_AIS_DEFAULT"],
        )
        from tests.support.invoices import ledger

        [posted] = ledger(invoice["hs_number"])
        assert str(posted.document_number) == invoice["jde_document_number"]
        # The run read the invoice the events named, by id, and moved no watermark.
        assert _plan(airflow, run["dag_run_id"])["options"] == {"hubspot_ids": [draft["id"]]}
        assert _variable(airflow, "mlconn_watermark__invoices__hubspot") is None
        # The write-back fired webhooks of its own (jde_* properties): recorded, no second run.
        time.sleep(4)
        assert len(_runs(airflow)) == 1
        before_burst = _inbox(airflow.home)
        assert before_burst["ignored"] >= 1 and before_burst["refused"] == 1

        # A burst of 500 events: 5 batch updates of 100 draft invoices.
        sent_before = requests.get(f"{airflow.hubspot_url}/_sandbox/webhooks", timeout=30).json()["stats"][
            "sent"
        ]
        for round_number in range(5):
            _hubspot(
                airflow,
                "POST",
                "/crm/v3/objects/invoices/batch/update",
                {
                    "inputs": [
                        {
                            "id": d["id"],
                            "properties": {"hs_purchase_order_number": f"PO-{round_number}-{d['id']}"},
                        }
                        for d in drafts
                    ]
                },
            )

        def delivered() -> dict[str, Any] | None:
            stats = requests.get(f"{airflow.hubspot_url}/_sandbox/webhooks", timeout=30).json()["stats"]
            # Every event queued has been answered (a POST in flight is neither pending nor delivered).
            done = stats["events"] == stats["events_delivered"] + stats["events_failed"]
            return stats if done and stats["pending_events"] == 0 and stats["pending_retries"] == 0 else None

        stats = wait_for("the burst delivered", delivered, deadline, step=0.5)
        assert stats["failed"] == 0
        after_burst = _inbox(airflow.home)
        assert after_burst["events"] - before_burst["events"] == BURST
        assert after_burst["signalled"] - before_burst["signalled"] == BURST
        runs = wait_for("the burst's runs finished", lambda: _all_finished(airflow, 2), deadline, step=1.0)
        burst_runs = runs[1:]
        assert 1 <= len(burst_runs) <= MAX_BURST_RUNS, [r["dag_run_id"] for r in burst_runs]
        assert all(r["run_type"] == "asset_triggered" for r in burst_runs)
        assert _jde_invoice_posts(airflow) == 1, "drafts are not posted; the issued invoice only once"
        read = sorted(
            set().union(*(_plan(airflow, r["dag_run_id"])["options"]["hubspot_ids"] for r in burst_runs))
        )
        assert read == sorted(d["id"] for d in drafts)
        print(
            f"\nwebhook e2e: invoice issued -> JDE document in {to_jde:.1f} s; "
            f"{BURST} events in {stats['sent'] - sent_before} deliveries -> {len(burst_runs)} run(s)"
        )
