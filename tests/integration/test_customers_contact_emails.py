"""Contacts whose e-mail HubSpot already has (docs/BEHAVIOR.md F4): claimed, linked, never duplicated,
against the HubSpot sandbox, and without a refused batch where the owners were looked up first."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mlconn.flows.customers import (
    COMPANY_PROPERTIES,
    CONTACT_PROPERTIES,
    load_associations,
    load_contacts,
)
from airflow_provider_mlconn.hubspot.models import AssociationLink
from airflow_provider_mlconn.hubspot.objects import CONTACT_TO_COMPANY, ObjectType
from airflow_provider_mlconn.sync.flow import Loaded, LoadRecord, Prerequisite

pytestmark = pytest.mark.integration


def contact(key: str, email: str, *, remote_id: str | None = None, **properties: str) -> LoadRecord:
    props = {"jde_contact_key": key, "email": email, "firstname": key, "lastname": "Test", **properties}
    return LoadRecord("contact", key, {"properties": props, "notes": []}, {}, remote_id, {}, 1)


@pytest.fixture
def portal(hubspot_sandbox, hubspot_hook) -> Any:
    sandbox = hubspot_sandbox()
    hook = hubspot_hook(sandbox)
    hook.ensure_properties(CONTACT_PROPERTIES)
    return sandbox, hook


def contacts_by_email(sandbox) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in sandbox.records("contacts"):
        found.setdefault(record["properties"].get("email") or "", []).append(record)
    return found


def refused_upserts(sandbox) -> int:
    calls = sandbox.stats()["requests"].get("POST /crm/v3/objects/contacts/batch/upsert", {})
    return sum(n for status, n in calls.items() if status in ("400", "409"))


def test_a_salespersons_contact_with_the_email_is_claimed_not_duplicated(portal):
    sandbox, hook = portal
    created = sandbox.control(
        "POST", "objects/contacts", {"properties": {"email": "ana@acme.test", "firstname": "Ana"}}
    )
    outcomes = load_contacts(hook, [contact("4242-1", "ana@acme.test")])
    loaded = outcomes["4242-1"]
    assert isinstance(loaded, Loaded) and loaded.remote_id == str(created["id"])
    assert "claimed" in (loaded.note or "")
    (only,) = contacts_by_email(sandbox)["ana@acme.test"]
    assert only["properties"]["jde_contact_key"] == "4242-1"
    assert refused_upserts(sandbox) == 0


def test_a_second_jde_contact_with_anothers_email_is_linked_and_stays_linked(portal):
    sandbox, hook = portal
    first = load_contacts(hook, [contact("100-1", "purchasing@shared.test")])["100-1"]
    assert isinstance(first, Loaded) and first.created
    second = load_contacts(hook, [contact("200-1", "purchasing@shared.test")])["200-1"]
    assert isinstance(second, Loaded) and second.remote_id == first.remote_id
    assert "linked to HubSpot contact" in (second.note or "") and "100-1" in (second.note or "")
    assert len(contacts_by_email(sandbox)["purchasing@shared.test"]) == 1

    again = load_contacts(
        hook, [contact("200-1", "purchasing@shared.test", remote_id=first.remote_id, firstname="X")]
    )
    assert isinstance(again["200-1"], Loaded) and "still linked" in (again["200-1"].note or "")
    (owner,) = contacts_by_email(sandbox)["purchasing@shared.test"]
    assert owner["properties"]["firstname"] == "100-1", "a linked line does not overwrite the owner's contact"
    assert refused_upserts(sandbox) <= 1


def test_two_contacts_of_one_call_share_an_email_the_first_carries_it(portal):
    sandbox, hook = portal
    outcomes = load_contacts(hook, [contact("300-2", "team@acme.test"), contact("300-1", "team@acme.test")])
    carrier, linked = outcomes["300-1"], outcomes["300-2"]
    assert isinstance(carrier, Loaded) and isinstance(linked, Loaded)
    assert linked.remote_id == carrier.remote_id and "300-1" in (linked.note or "")
    assert len(contacts_by_email(sandbox)["team@acme.test"]) == 1
    assert refused_upserts(sandbox) == 0


def test_a_known_contact_moving_to_anothers_email_keeps_its_record_without_that_email(portal):
    sandbox, hook = portal
    owner = load_contacts(hook, [contact("400-1", "boss@acme.test")])["400-1"]
    mine = load_contacts(hook, [contact("400-2", "me@acme.test")])["400-2"]
    assert isinstance(owner, Loaded) and isinstance(mine, Loaded)
    moved = load_contacts(
        hook, [contact("400-2", "boss@acme.test", remote_id=mine.remote_id, lastname="Neu")]
    )["400-2"]
    assert isinstance(moved, Loaded) and moved.remote_id == mine.remote_id
    assert "belongs to HubSpot contact" in (moved.note or "")
    by_email = contacts_by_email(sandbox)
    assert len(by_email["boss@acme.test"]) == 1
    assert by_email["me@acme.test"][0]["properties"]["lastname"] == "Neu"


@pytest.mark.parametrize("other_line", ["none", "in the id map", "written in the same call"])
def test_an_association_moved_to_another_contact_removes_the_old_pair_unless_another_line_has_it(
    portal, other_line
):
    _, hook = portal
    hook.ensure_properties(COMPANY_PROPERTIES)
    company = hook.upsert_records(
        ObjectType.COMPANIES, {"500": {"name": "Linked GmbH"}}, id_property="jde_address_number"
    )["500"].record_id
    shared = load_contacts(hook, [contact("100-1", "orders@shared.test")])["100-1"]
    own = load_contacts(hook, [contact("500-2", "ida@own.test")])["500-2"]
    assert company and isinstance(shared, Loaded) and isinstance(own, Loaded)
    hook.associate(
        ObjectType.CONTACTS,
        ObjectType.COMPANIES,
        [AssociationLink(from_id=shared.remote_id, to_id=company, types=(CONTACT_TO_COMPANY,))],
    )

    def association(
        key: str, contact_id: str, remote_id: str | None, shared_by: tuple[str, ...]
    ) -> LoadRecord:
        return LoadRecord(
            "association",
            key,
            {"contact": key, "company": "500", "primary": False},
            {},
            remote_id,
            {Prerequisite("contact", key): contact_id, Prerequisite("company", "500"): company},
            1,
            remote_id_shared_by=shared_by,
        )

    moved = association(
        "500-2",
        own.remote_id,
        f"{shared.remote_id}->{company}",
        ("500-3",) if other_line == "in the id map" else (),
    )
    records = [moved]
    if other_line == "written in the same call":  # a new line of 500 linked to the shared contact
        records.append(association("500-3", shared.remote_id, None, ()))

    outcome = load_associations(hook, records)["500-2"]

    assert isinstance(outcome, Loaded) and outcome.remote_id == f"{own.remote_id}->{company}"
    pairs = hook.read_associations(
        ObjectType.CONTACTS, ObjectType.COMPANIES, [shared.remote_id, own.remote_id]
    )
    assert [a.to_id for a in pairs[own.remote_id]] == [company]
    if other_line == "none":
        assert pairs[shared.remote_id] == []
        assert outcome.note == f"replaced association {shared.remote_id}->{company}"
    else:
        assert [a.to_id for a in pairs[shared.remote_id]] == [company], "another line still links there"
        assert outcome.note is None
