"""The customers DAG through dag.test() against both sandboxes. What HubSpot holds afterwards is
read through HubSpot's own API, and compared with what JDE holds (read through the AIS API)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.hubspot.objects import CONTACT_TO_COMPANY, CONTACT_TO_COMPANY_PRIMARY
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.mapping.customers import clean_email
from airflow_provider_mlconn.sync.store import close_stores
from tests.conftest import REPO_ROOT
from tests.support.customers import Sandboxes

pytestmark = pytest.mark.integration

DAG_ID = "mlconn_customers_jde_to_hubspot"
NO_LAG = {"safety_lag_minutes": 0}
UNLABELED, PRIMARY = CONTACT_TO_COMPANY.type_id, CONTACT_TO_COMPANY_PRIMARY.type_id


def customers_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{DAG_ID}.py"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def run_dag(conf: dict[str, Any] | None = None) -> Any:
    dag_run = customers_dag().test(run_conf={**NO_LAG, **(conf or {})})
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert str(dag_run.state) == "success", sorted(states.items())
    return dag_run


@dataclass(frozen=True)
class JdeTruth:
    """What JDE holds, read through AIS: customers, their contact lines, e-mails and main contacts."""

    customers: set[str]
    contacts: dict[str, str]  # "AN8-IDLN" -> primary e-mail as HubSpot would store it ("" if none valid)
    main_contacts: set[str]


def jde_truth() -> JdeTruth:
    with JdeAisHook() as hook:
        customers = {str(r["AN8"]) for r in hook.iter_rows("F0101", query=q.eq("F0101.AT1", "C"))}
        who = [r for r in hook.iter_rows("F0111") if str(r["AN8"]) in customers and int(r["IDLN"]) > 0]
        mails: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for row in hook.iter_rows("F01151", query=q.eq("F01151.ETP", "E")):
            key = f"{row['AN8']}-{row['IDLN']}"
            mails[key].append((int(row["EHIER"]) != 1, int(row["RCK7"]), str(row["EMAL"])))
    contacts = {}
    for row in who:
        key = f"{row['AN8']}-{row['IDLN']}"
        valid = [clean_email(address) for _, _, address in sorted(mails[key])]
        contacts[key] = next((address for address in valid if address), "")
    main: dict[str, tuple[int, int]] = {}
    for row in who:
        if str(row["ACTIN"]).strip() != "N":
            rank = (int(row["DSS7"]), int(row["IDLN"]))
            main[str(row["AN8"])] = min(main.get(str(row["AN8"]), rank), rank)
    main_contacts = {f"{an8}-{line}" for an8, (_, line) in main.items()}
    return JdeTruth(customers, contacts, main_contacts)


@dataclass(frozen=True)
class HubSpotState:
    companies: dict[str, dict[str, Any]]  # jde_address_number -> properties
    contacts: dict[str, dict[str, Any]]  # HubSpot id -> properties
    associations: dict[tuple[str, str], set[int]]  # (contact id, company id) -> type ids
    company_ids: dict[str, str]  # jde_address_number -> HubSpot id

    def contact_by_key(self) -> dict[str, str]:
        return {p["jde_contact_key"]: i for i, p in self.contacts.items() if p.get("jde_contact_key")}

    def contact_by_email(self) -> dict[str, str]:
        return {p["email"]: i for i, p in self.contacts.items() if p.get("email")}

    def canonical(self) -> dict[str, Any]:
        """The state without HubSpot ids and timestamps, to compare two portals."""
        keys = {i: p.get("jde_contact_key") or p.get("email") for i, p in self.contacts.items()}
        numbers = {i: n for n, i in self.company_ids.items()}
        return {
            "companies": self.companies,
            "contacts": sorted(json.dumps(p, sort_keys=True) for p in self.contacts.values()),
            "associations": sorted(
                (keys[c], numbers[co], sorted(t)) for (c, co), t in self.associations.items()
            ),
        }


COMPANY_PROPERTIES = [
    "jde_address_number",
    "name",
    "city",
    "country",
    "phone",
    "jde_status",
    "jde_payment_terms",
]
CONTACT_PROPERTIES = ["jde_contact_key", "email", "firstname", "lastname", "phone", "jde_status"]


def hubspot_state(sandboxes: Sandboxes) -> HubSpotState:
    companies = sandboxes.hubspot_objects("companies", COMPANY_PROPERTIES)
    contacts = sandboxes.hubspot_objects("contacts", CONTACT_PROPERTIES)

    def props(record: dict[str, Any], names: list[str]) -> dict[str, Any]:
        return {name: record["properties"].get(name) for name in names}

    return HubSpotState(
        companies={c["properties"]["jde_address_number"]: props(c, COMPANY_PROPERTIES) for c in companies},
        contacts={c["id"]: props(c, CONTACT_PROPERTIES) for c in contacts},
        associations=sandboxes.contact_company_types([c["id"] for c in contacts]),
        company_ids={c["properties"]["jde_address_number"]: c["id"] for c in companies},
    )


def assert_hubspot_matches_jde(state: HubSpotState, truth: JdeTruth) -> None:
    """Every customer once as a company; every contact line once as a contact, or linked to the contact
    that owns its e-mail; each associated to its customer's company, primary for the main contact."""
    assert set(state.companies) == truth.customers
    assert len(state.company_ids) == len(truth.customers)
    by_key, by_email = state.contact_by_key(), state.contact_by_email()
    assert len(by_key) == len(state.contacts), "every HubSpot contact carries a JDE key, each key once"
    assert set(by_key) <= set(truth.contacts)
    for key, email in truth.contacts.items():
        contact_id = by_key.get(key) or by_email.get(email)
        assert contact_id, f"JDE contact {key} ({email or 'no e-mail'}) is not in HubSpot"
        company_id = state.company_ids[key.split("-")[0]]
        types = state.associations.get((contact_id, company_id), set())
        assert UNLABELED in types, f"{key}: contact {contact_id} not associated to company {company_id}"
        if key in truth.main_contacts and key in by_key:
            assert PRIMARY in types, f"{key} is the main contact of its customer"


def test_initial_load_then_no_change_then_edits_write_exactly_what_changed(
    customer_sandboxes, airflow_store, airflow_db
):
    sandboxes = customer_sandboxes()
    truth = jde_truth()
    assert len(truth.customers) >= 30 and len(truth.contacts) >= 60

    run_dag()
    first = hubspot_state(sandboxes)
    assert_hubspot_matches_jde(first, truth)
    linked = set(truth.contacts) - set(first.contact_by_key())
    assert linked, "the seeded data has contacts sharing an e-mail; they must be linked, not duplicated"

    writes_before = sandboxes.hubspot_write_calls()
    run_dag()
    assert sandboxes.hubspot_write_calls() == writes_before, "a run with no JDE change writes nothing"
    assert hubspot_state(sandboxes) == first

    customers = sorted(truth.customers, key=int)
    moved, gets_contact, gets_bad_email = customers[0], customers[1], customers[2]
    bad_email_line = next(
        k
        for k in sorted(truth.contacts)
        if k.startswith(f"{gets_bad_email}-") and k in first.contact_by_key()
    )
    sandboxes.jde_control(
        "POST",
        f"customers/{moved}/addresses",
        {"lines": ["Neue Strasse 5"], "city": "Bremen", "country": "DE"},
    )
    new_customer = sandboxes.jde_control(
        "POST",
        "customers",
        {
            "name": "Nordwind Handel GmbH",
            "address": {"lines": ["Hafenweg 1"], "city": "Hamburg", "country": "DE"},
            "contacts": [{"given_name": "Jana", "surname": "Lindqvist", "email": "jana@nordwind.example"}],
        },
    )["address_number"]
    sandboxes.jde_control(
        "POST",
        f"customers/{gets_contact}/contacts",
        {"given_name": "Otto", "surname": "Berg", "email": "otto@berg.example"},
    )
    sandboxes.jde_control(
        "PUT",
        f"customers/{gets_bad_email}/contacts/{bad_email_line.split('-')[1]}/email",
        {"email": "not an e-mail"},
    )
    edited_at = datetime.now(timezone.utc)
    # UPMT counts whole seconds and a window ends before its last second: step past the edits' second.
    time.sleep(1.1)

    run_dag()
    after = hubspot_state(sandboxes)
    truth = jde_truth()
    assert_hubspot_matches_jde(after, truth)
    changed_companies = {n for n, p in after.companies.items() if first.companies.get(n) != p}
    assert changed_companies == {moved, str(new_customer)}
    assert after.companies[moved]["city"] == "Bremen" and after.companies[moved]["country"] == "DE"
    written = [
        c["properties"]["jde_contact_key"]
        for c in sandboxes.hubspot_objects("contacts", ["jde_contact_key", "lastmodifieddate"])
        if datetime.fromisoformat(c["updatedAt"].replace("Z", "+00:00")) >= edited_at
    ]
    new_line = max(int(k.split("-")[1]) for k in truth.contacts if k.startswith(f"{gets_contact}-"))
    assert sorted(written) == sorted([f"{new_customer}-1", f"{gets_contact}-{new_line}", bad_email_line])
    bad = after.contacts[after.contact_by_key()[bad_email_line]]
    assert bad["email"] == first.contacts[first.contact_by_key()[bad_email_line]]["email"], (
        "an invalid e-mail in JDE is not sent: HubSpot keeps the last good one"
    )

    writes_before = sandboxes.hubspot_write_calls()
    run_dag()
    assert sandboxes.hubspot_write_calls() == writes_before


def _fresh_store(monkeypatch, tmp_path: Path, fernet_key: str, name: str) -> None:
    """A new, empty store and no watermark: a second portal synced from scratch."""
    from airflow.models import Variable

    close_stores()
    url = f"sqlite:///{tmp_path / name}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLCONN_STORE",
        json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url, "fernet_key": fernet_key}}),
    )
    Variable.delete("mlconn_watermark__customers__jde")


def test_faults_and_expiring_jde_tokens_converge_to_the_same_hubspot_state_without_duplicates(
    customer_sandboxes, airflow_db, monkeypatch, tmp_path, fernet_key
):
    _fresh_store(monkeypatch, tmp_path, fernet_key, "clean.db")
    clean = customer_sandboxes()
    run_dag()
    expected = hubspot_state(clean).canonical()

    _fresh_store(monkeypatch, tmp_path, fernet_key, "faulty.db")
    # 25 %: a run makes some 25 HubSpot calls, so a run without any fault is ~1 in 1,000.
    faulty = customer_sandboxes(jde={"token_ttl": 2.0}, hubspot={"fault_rate": 0.25})
    for _ in range(4):  # bounded: each run loads what the one before could not
        dag_run = customers_dag().test(run_conf=NO_LAG)
        if str(dag_run.state) == "success":
            break
    assert str(dag_run.state) == "success"
    assert faulty.hubspot_stats()["faults"] > 0, "the portal injected faults during the run"
    # The checks below read through the API themselves: faults off, so they see what is stored.
    faulty.http.post(
        f"{faulty.hubspot.url}/_sandbox/settings", json={"fault_rate": 0}, timeout=30
    ).raise_for_status()
    state = hubspot_state(faulty)
    assert state.canonical() == expected
    assert_hubspot_matches_jde(state, jde_truth())
    jde_stats = faulty.jde_control("GET", "stats")
    assert jde_stats["tokens_issued"] > 1, "the JDE token expired during the run and was renewed"
    close_stores()


def test_a_linked_contact_given_its_own_email_gets_its_own_contact_and_association(
    customer_sandboxes, airflow_store, airflow_db
):
    sandboxes = customer_sandboxes()
    run_dag()
    truth = jde_truth()
    first = hubspot_state(sandboxes)
    customers = sorted(truth.customers, key=int)
    owner_key = next(k for k in sorted(first.contact_by_key()) if truth.contacts[k])
    shared_email = truth.contacts[owner_key]
    shared_owner = first.contact_by_key()[owner_key]
    an8 = next(c for c in customers if c != owner_key.split("-")[0])
    company = first.company_ids[an8]

    # A new Who's Who line of another customer with that person's e-mail: linked to their contact.
    sandboxes.jde_control(
        "POST", f"customers/{an8}/contacts", {"given_name": "Ida", "surname": "Link", "email": shared_email}
    )
    time.sleep(1.1)  # past the edit's second (UPMT)
    run_dag()
    linked = hubspot_state(sandboxes)
    line = max(int(k.split("-")[1]) for k in jde_truth().contacts if k.startswith(f"{an8}-"))
    key = f"{an8}-{line}"
    assert key not in linked.contact_by_key(), "linked, not duplicated"
    assert UNLABELED in linked.associations[(shared_owner, company)]

    # The line gets a mailbox of its own.
    sandboxes.jde_control("PUT", f"customers/{an8}/contacts/{line}/email", {"email": "ida@own.example"})
    time.sleep(1.1)
    run_dag()

    after = hubspot_state(sandboxes)
    assert_hubspot_matches_jde(after, jde_truth())
    own = after.contact_by_key()[key]
    assert own != shared_owner and after.contacts[own]["email"] == "ida@own.example"
    assert UNLABELED in after.associations[(own, company)]
    assert (shared_owner, company) not in after.associations, "the pair made for the link is removed"
    owners_company = after.company_ids[owner_key.split("-")[0]]
    assert UNLABELED in after.associations[(shared_owner, owners_company)], "the owner keeps their own"
