"""Secrets stay secret and the store holds no personal data or money in clear, across the flows.

The customers, invoices, payments and A/R status flows run through dag.test() with faults on both sandboxes
(errors, answers lost after JDE committed, HubSpot 5xx) and JDE tokens that expire every 3 s, so
retries, re-logins, rejections and exception texts all happen. Then everything a person or another
system can read is scanned:

- for the JDE password, every AIS token the sandbox issued (whole, and any 24 characters of it) and
  the HubSpot token: task output and log records, XCom, rendered templates, DAG run notes and conf,
  asset events, the store's raw bytes (database file and its journal), and what ``mlconn report``
  and ``mlconn audit`` print;
- for the customers' names and e-mail addresses and the invoices' amounts: the store's raw bytes
  (payloads are sealed with AES-GCM; keys, statuses and hashes are all that is in clear).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlconn.sandbox.connections import connection_environment, sandbox_connections
from airflow_provider_mlconn.sandbox.jde.sessions import Session, Sessions
from tests.support.customers import HUBSPOT_TOKEN, JDE_TIMEZONE, JDE_USER, Sandboxes
from tests.support.faults import faults_off, faults_on, run_until_success
from tests.support.invoices import (
    INVOICES_DAG,
    PAYMENTS_DAG,
    create_invoice,
    customers_in_hubspot,
    forget_flow_variables,
    receipts,
    record_payment,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

JDE_PASSWORD = "Jde-Pw-7f3a9c2e-secret"
#: Amounts no other number in the run resembles, so a hit in the store's bytes is a leak.
INVOICE_PRICES = ("7391.53", "6817.29", "5923.71")
PAYMENT_AMOUNT = "4183.67"
AR_DAG = "mlconn_ar_jde_to_hubspot"


@pytest.fixture
def issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AIS token the (in-process) JDE sandbox hands out."""
    tokens: list[str] = []
    original = Sessions.open

    def open_and_note(self: Sessions, **kwargs: Any) -> Session:
        session = original(self, **kwargs)
        tokens.append(session.token)
        return session

    monkeypatch.setattr(Sessions, "open", open_and_note)
    return tokens


@pytest.fixture
def secret_flows(customer_sandboxes, airflow_store, quick_retries, monkeypatch, issued_tokens):
    from airflow.models import Variable

    forget_flow_variables()
    sandboxes: Sandboxes = customer_sandboxes(
        jde={"customers": 12, "password": JDE_PASSWORD, "token_ttl": 3.0}
    )
    environment = connection_environment(
        sandbox_connections(
            jde_url=sandboxes.jde.url,
            hubspot_url=sandboxes.hubspot.url,
            jde_user=JDE_USER,
            jde_password=JDE_PASSWORD,
            jde_timezone=JDE_TIMEZONE,
            hubspot_token=HUBSPOT_TOKEN,
            device_name="mlconn-secrets-test",
            page_size=200,
            hubspot_search_lag_seconds=0,
        )
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    yield sandboxes, airflow_store
    forget_flow_variables()


def _airflow_texts() -> dict[str, str]:
    """What Airflow keeps of the runs that a UI user or an API client can read."""
    from airflow.models.asset import AssetEvent
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return {
            "xcom": "\n".join(repr(row.value) for row in session.scalars(select(XComModel))),
            "rendered templates": "\n".join(
                repr(row.rendered_fields) for row in session.scalars(select(RenderedTaskInstanceFields))
            ),
            "run notes and conf": "\n".join(
                f"{run.note!r} {run.conf!r}" for run in session.scalars(select(DagRun))
            ),
            "task instance notes": "\n".join(
                repr(ti.note) for ti in session.scalars(select(TaskInstance)) if ti.note
            ),
            "asset events": "\n".join(repr(event.extra) for event in session.scalars(select(AssetEvent))),
        }


def _cli(store_url: str, *args: str) -> str:
    from airflow_provider_mlconn.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["--store-url", store_url, *args])
    return printed.getvalue()


def _audit_texts(store_url: str) -> str:
    """``mlconn audit runs``, and for every run its report, failures and changes (decrypted)."""
    runs = json.loads(_cli(store_url, "audit", "runs", "--limit", "100", "--json"))
    assert runs, "the store has the runs"
    texts = [json.dumps(runs)]
    for run in runs:
        key = run["run_key"]
        texts.append(_cli(store_url, "report", "--run", key))
        texts.append(_cli(store_url, "audit", "failures", "--run", key))
        texts.append(_cli(store_url, "audit", "changes", "--run", key))
    return "\n".join(texts)


def _store_bytes(store_url: str) -> bytes:
    database = Path(store_url.removeprefix("sqlite:///"))
    files = [database, *database.parent.glob(database.name + "-*")]  # -wal, -journal, -shm
    return b"".join(path.read_bytes() for path in files if path.exists())


def _secret_forms(secret: str) -> list[str]:
    """The secret, and for a long one every 24-character slice (a truncated token is still a leak)."""
    if len(secret) <= 32:
        return [secret]
    return [secret] + [secret[start : start + 24] for start in range(0, len(secret) - 24, 8)]


def _leaks(places: dict[str, str], secrets: Iterable[tuple[str, str]]) -> list[str]:
    found = []
    for what, secret in secrets:
        for place, text in places.items():
            if any(form in text for form in _secret_forms(secret)):
                found.append(f"{what} in {place}")
    return found


def test_no_secret_in_anything_a_person_can_read_and_no_personal_data_or_amount_in_the_store_in_clear(
    secret_flows, issued_tokens, capfd, caplog
):
    sandboxes, store_url = secret_flows
    caplog.set_level(logging.DEBUG)
    customers = customers_in_hubspot(sandboxes, 3)
    invoices = [
        create_invoice(
            sandboxes,
            company_id=customer.company_id,
            contact_id=customer.contact_id,
            lines=[{"name": "Consulting", "quantity": "1", "price": price}],
        )
        for customer, price in zip(customers, INVOICE_PRICES, strict=True)
    ]
    # An invoice without a company: rejected, with its reason in the audit trail.
    create_invoice(
        sandboxes,
        company_id=None,
        contact_id=customers[0].contact_id,
        lines=[{"name": "Consulting", "quantity": "2", "price": "1250.00"}],
    )
    time.sleep(1.1)
    faults_on(sandboxes)
    run_until_success(INVOICES_DAG)
    payment = record_payment(sandboxes, invoices[0]["id"], PAYMENT_AMOUNT)
    time.sleep(1.1)
    run_until_success(PAYMENTS_DAG)
    run_until_success(AR_DAG)  # JDE's view of the invoices back to HubSpot
    faults_off(sandboxes)
    assert len(receipts(payment["id"])) == 1, "the payment posted (the scan looks at a real run)"
    assert len(issued_tokens) >= 2, "tokens expired and were renewed during the runs"

    captured = capfd.readouterr()
    places = {
        "task output": captured.out + captured.err,
        "log records": "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
        **_airflow_texts(),
        "mlconn report / audit output": _audit_texts(store_url),
        "the store's raw bytes": _store_bytes(store_url).decode("latin-1"),
    }
    # The scan sees the task logs: the JDE logins, where a password or token would most likely show.
    assert "Logged in to JDE AIS" in places["log records"] + places["task output"]
    assert invoices[0]["id"] in places["mlconn report / audit output"]
    secrets = [("the JDE password", JDE_PASSWORD), ("the HubSpot token", HUBSPOT_TOKEN)]
    secrets += [(f"AIS token #{n}", token) for n, token in enumerate(issued_tokens, 1)]
    assert _leaks(places, secrets) == []

    # Personal data and amounts: the store seals payloads; its bytes hold none of them in clear.
    raw = places["the store's raw bytes"]
    assert str(customers[0].address_number) in raw and invoices[0]["id"] in raw, (
        "keys are in clear: the scan reads the store's real bytes"
    )
    contacts = sandboxes.hubspot_objects("contacts", ["email", "firstname", "lastname"])
    companies = sandboxes.hubspot_objects("companies", ["name"])
    personal = {
        value
        for record in contacts + companies
        for name, value in record["properties"].items()
        if name in ("email", "firstname", "lastname", "name") and value and len(value) >= 6
    }
    assert len(personal) >= 10, "the scan has real names and e-mail addresses to look for"
    in_clear = sorted(value for value in personal if value in raw)
    in_clear += [amount for amount in (*INVOICE_PRICES, PAYMENT_AMOUNT) if amount in raw]
    assert in_clear == [], "in clear in the store"
