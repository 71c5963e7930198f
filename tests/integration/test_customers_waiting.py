"""Ordinary bad JDE rows never turn a customers run red (issue: a rejected record froze the watermark).

A customer whose name is blanks is rejected; the association of its contact waits for it. A Who's
Who line with neither a name nor a valid e-mail is rejected; its association waits for it. Runs
succeed, the watermark moves, the reasons are in the audit; once the name is fixed in JDE, the next
run writes the company and the association with nobody acting. The same through the replay DAG
for a record fixed by a mapping change.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from airflow_provider_mlconn.sync.flow import RecordStatus
from airflow_provider_mlconn.sync.store import close_stores
from tests.conftest import REPO_ROOT
from tests.integration.test_customers_flow import run_dag
from tests.support.customers import Sandboxes

pytestmark = pytest.mark.integration

WATERMARK = "mlconn_watermark__customers__jde"


def _store() -> Any:
    from airflow_provider_mlconn.operators.common import store_from_airflow

    return store_from_airflow()


def _latest(flow_records: list[Any]) -> dict[tuple[str, str], Any]:
    return {(r.entity, r.key): r for r in flow_records}


def _run_records(dag_run: Any) -> dict[tuple[str, str], Any]:
    store = _store()
    return _latest(store.records.of_run(f"{dag_run.dag_id}/{dag_run.run_id}"))


def _watermark() -> str | None:
    from airflow.models import Variable

    return Variable.get(WATERMARK, default_var=None)


def _add_blank_customer(sandboxes: Sandboxes) -> int:
    return int(
        sandboxes.jde_control(
            "POST",
            "customers",
            {
                "name": "     ",
                "address": {"lines": ["Kaiserkai 3"], "city": "Hamburg", "country": "DE"},
                "contacts": [{"given_name": "Mara", "surname": "Quist", "email": "mara@quist.example"}],
            },
        )["address_number"]
    )


def _company_by_number(sandboxes: Sandboxes, an8: int) -> dict[str, Any] | None:
    companies = sandboxes.hubspot_objects("companies", ["jde_address_number", "name"])
    return next((c for c in companies if c["properties"]["jde_address_number"] == str(an8)), None)


def _contact_by_key(sandboxes: Sandboxes, key: str) -> dict[str, Any] | None:
    contacts = sandboxes.hubspot_objects("contacts", ["jde_contact_key"], associations="companies")
    return next((c for c in contacts if c["properties"]["jde_contact_key"] == key), None)


def _associated_company_ids(contact: dict[str, Any]) -> set[str]:
    return {str(a["id"]) for a in contact.get("associations", {}).get("companies", {}).get("results", [])}


def test_blank_names_wait_without_failing_runs_and_load_once_fixed_in_jde(
    customer_sandboxes, airflow_store, airflow_db
):
    sandboxes = customer_sandboxes(jde={"customers": 20})
    blank = _add_blank_customer(sandboxes)
    first = run_dag()
    records = _run_records(first)
    company = records[("company", str(blank))]
    assert company.status is RecordStatus.REJECTED
    assert "F0101.ALPH (alpha name) is blank" in company.error
    contact_key = f"{blank}-1"
    assert records[("contact", contact_key)].status is RecordStatus.LOADED
    association = records[("association", contact_key)]
    assert association.status is RecordStatus.WAITING
    assert association.error.startswith(f"waits for company {blank}, which is rejected: ")
    assert "F0101.ALPH (alpha name) is blank" in association.error
    mark_after_first = _watermark()
    assert mark_after_first is not None, "the first run moved the watermark despite the rejection"

    # A nameless Who's Who line without an e-mail on a customer that loaded.
    loaded_customer = next(
        int(key) for (entity, key), r in records.items() if entity == "company" and r.status.value == "loaded"
    )
    line = sandboxes.jde_control(
        "POST", f"customers/{loaded_customer}/contacts", {"given_name": "", "surname": "", "email": ""}
    )["line"]
    nameless = f"{loaded_customer}-{line}"
    time.sleep(1.1)  # past the edit's second (UPMT)
    second = run_dag()
    records = _run_records(second)
    assert records[("contact", nameless)].status is RecordStatus.REJECTED
    waits = records[("association", nameless)]
    assert waits.status is RecordStatus.WAITING
    assert waits.error.startswith(f"waits for contact {nameless}, which is rejected: ")
    # The blank customer is re-read by the overlap and is still rejected: the run is green all the same.
    assert records[("company", str(blank))].status is RecordStatus.REJECTED
    mark_after_second = _watermark()
    assert json.loads(mark_after_second)["at"] > json.loads(mark_after_first)["at"]
    assert _company_by_number(sandboxes, blank) is None

    from airflow_provider_mlconn.cli import main

    assert main(["audit", "failures", "--run", f"{second.dag_id}/{second.run_id}", "--json"]) == 0

    # A person fixes the name in JDE; the next run writes the company and links the contact to it.
    sandboxes.jde_control("PATCH", f"customers/{blank}", {"name": "Quist Schiffsbedarf"})
    time.sleep(1.1)
    third = run_dag()
    records = _run_records(third)
    assert records[("company", str(blank))].status is RecordStatus.LOADED
    assert records[("association", contact_key)].status is RecordStatus.LOADED
    company_record = _company_by_number(sandboxes, blank)
    assert company_record is not None and company_record["properties"]["name"] == "Quist Schiffsbedarf"
    contact = _contact_by_key(sandboxes, contact_key)
    assert contact is not None
    assert company_record["id"] in _associated_company_ids(contact)


def _replay_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "mlconn_replay.py"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags["mlconn_replay"]


def test_a_record_fixed_by_a_mapping_change_and_its_waiting_dependents_load_through_the_replay_dag(
    customer_sandboxes, airflow_store, airflow_db, monkeypatch
):
    sandboxes = customer_sandboxes(jde={"customers": 20})
    blank = _add_blank_customer(sandboxes)
    first = run_dag()
    records = _run_records(first)
    assert records[("company", str(blank))].status is RecordStatus.REJECTED
    assert records[("association", f"{blank}-1")].status is RecordStatus.WAITING

    # The mapping change: a blank alpha name falls back to the customer's number (a site rule).
    from airflow_provider_mlconn.flows import customers as customers_flow

    original = customers_flow.map_company

    def map_company_with_fallback(snapshot: Any, **kwargs: Any) -> Any:
        if not snapshot.address_book.alpha_name.strip():
            snapshot = snapshot.model_copy(
                update={
                    "address_book": snapshot.address_book.model_copy(
                        update={"alpha_name": f"JDE customer {snapshot.address_book.address_number}"}
                    )
                }
            )
        return original(snapshot, **kwargs)

    monkeypatch.setattr(customers_flow, "map_company", map_company_with_fallback)
    replay = _replay_dag().test(
        run_conf={"flow": "customers", "statuses": ["rejected", "waiting"], "dry_run": False}
    )
    assert str(replay.state) == "success"
    history = _store().audit.history(flow="customers", entity="association", key=f"{blank}-1")
    assert history[-1][0].status is RecordStatus.LOADED
    assert [e.action for e in history[-1][1]][-1] == "replay-load"
    company = _company_by_number(sandboxes, blank)
    assert company is not None and company["properties"]["name"] == f"JDE customer {blank}"
    contact = _contact_by_key(sandboxes, f"{blank}-1")
    assert contact is not None and company["id"] in _associated_company_ids(contact)
    close_stores()
