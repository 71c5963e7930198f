"""Customers: every JDE customer, read whole and mapped by the flow's own mapping (what a run would
send), against every HubSpot company and contact with a JDE key and their associations.

- company / contact: missing on either side (a HubSpot record with a JDE key JDE no longer has and
  not marked ``jde_status = deleted``), two HubSpot records with one key, and each mapped property
  whose value differs;
- association: each contact -> company pair the flow writes, present, with the primary label when
  the line is the main contact; a pair between a JDE contact and a JDE company that JDE does not have.

The store only names records: a JDE contact linked to another contact because HubSpot keeps an
e-mail once (BEHAVIOR F4) has no HubSpot record of its own; the id map says which record it was
linked to, so it is neither missing nor drifted. Reads: JDE as a full read of the flow (100 customers
per LIST query), HubSpot by the list endpoints (100 per page) and association batch reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlconn.flows import customers as flow
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hubspot.objects import CONTACT_TO_COMPANY, CONTACT_TO_COMPANY_PRIMARY, ObjectType
from airflow_provider_mlconn.mapping.customers import COMPANY_KEY_PROPERTY, CONTACT_KEY_PROPERTY
from airflow_provider_mlconn.reconcile.report import Finding, Kind, Tally, normalized
from airflow_provider_mlconn.rejection import Rejection
from airflow_provider_mlconn.sync.store import Store

FLOW = "customers"
#: Properties compared case-insensitively (HubSpot keeps e-mails and domains in lower case).
_CASELESS = ("email", "domain")


@dataclass(frozen=True, slots=True)
class _Held:
    """What the comparison keeps of one HubSpot record; its properties are compared as it is read
    and not kept (at 100,000 customers, ~290,000 records)."""

    id: str
    #: False when HubSpot shows it deleted in JDE (``jde_status = deleted``).
    live: bool


@dataclass
class _Side:
    """One entity as each side has it."""

    #: JDE key -> the properties a run would send (mapped by the flow's mapping).
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    #: JDE key -> HubSpot records carrying it.
    held: dict[str, list[_Held]] = field(default_factory=lambda: defaultdict(list))
    #: Every HubSpot record id read, with a JDE key or not.
    ids: set[str] = field(default_factory=set)
    #: JDE key -> (property, JDE value, HubSpot value) where its first HubSpot record differs.
    differences: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    #: E-mail (lower case) -> the HubSpot record that holds it (contacts).
    emails: dict[str, str] = field(default_factory=dict)


class _Collector:
    """A staging writer that maps what the flow's extract hands it as it comes: a run would send
    the mapped properties, and the sources of a whole customer base are not kept (at 100,000
    customers they took most of the task's 1.8 GB)."""

    def __init__(self, companies: _Side, contacts: _Side) -> None:
        self.companies = companies
        self.contacts = contacts
        self.links: dict[str, Any] = {}

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None:
        if entity == "company":
            _expect(self.companies, str(key), flow.map_company_record(payload))
        elif entity == "contact":
            _expect(self.contacts, str(key), flow.map_contact_record(payload))
        elif entity == "association":
            self.links[str(key)] = flow.map_association_record(payload)

    def mark_complete(self, entity: str) -> None:
        return None


def compare_customers(store: Store) -> tuple[list[Tally], list[Finding]]:
    """Compare the customers flow's three entities; see the module docstring."""
    settings = flow.read_settings(fresh=True)
    companies, contacts = _Side(), _Side()
    collected = _Collector(companies, contacts)
    flow.read_every_customer(collected)
    links = collected.links

    with HubSpotHook(settings.hubspot_conn_id) as hook:
        company_names = _names(companies, COMPANY_KEY_PROPERTY, flow.COMPANY_PROPERTIES)
        contact_names = _names(contacts, CONTACT_KEY_PROPERTY, flow.CONTACT_PROPERTIES)
        _hold(
            companies, hook.iter_records(ObjectType.COMPANIES, properties=company_names), COMPANY_KEY_PROPERTY
        )
        _hold(
            contacts, hook.iter_records(ObjectType.CONTACTS, properties=contact_names), CONTACT_KEY_PROPERTY
        )
        # A contact linked to another person's contact (F4) is that contact: the id map names it.
        linked = _linked_contacts(store, contacts)
        contact_ids = {r.id for records in contacts.held.values() for r in records} | set(linked.values())
        pairs = hook.read_associations(ObjectType.CONTACTS, ObjectType.COMPANIES, sorted(contact_ids))

    findings: list[Finding] = []
    tallies = [
        _compare_records("company", companies, findings),
        _compare_records("contact", contacts, findings, linked=linked),
        _compare_associations(links, companies, contacts, linked, pairs, findings),
    ]
    return tallies, findings


def _expect(side: _Side, key: str, mapped: Mapping[str, Any] | Rejection) -> None:
    # A key read twice counts as last read, as in a run's staging.
    side.refused.discard(key)
    side.expected.pop(key, None)
    if isinstance(mapped, Rejection):
        side.refused.add(key)
    else:
        side.expected[key] = dict(mapped["properties"])


def _names(side: _Side, key_property: str, specs: Any) -> list[str]:
    names = {key_property, "jde_status", *(spec.name for spec in specs)}
    for properties in side.expected.values():
        names.update(properties)
    return sorted(names)


def _hold(side: _Side, records: Any, key_property: str) -> None:
    """Read HubSpot's records of one entity, comparing each with what JDE would send as it comes."""
    for record in records:
        side.ids.add(record.id)
        email = (record.properties.get("email") or "").strip().lower()
        if email:
            side.emails[email] = record.id
        key = (record.properties.get(key_property) or "").strip()
        if not key:
            continue
        held = side.held[key]
        held.append(_Held(record.id, (record.properties.get("jde_status") or "") != "deleted"))
        expected = side.expected.get(key)
        if expected is not None and len(held) == 1:
            differences = _differences(expected, record.properties)
            if differences:
                side.differences[key] = differences


def _differences(expected: Mapping[str, Any], properties: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for name, value in sorted(expected.items()):
        want, have = normalized(value), normalized(properties.get(name))
        if name in _CASELESS:
            want, have = want.lower(), have.lower()
        if want != have:
            found.append((name, want, have))
    return found


def _linked_contacts(store: Store, contacts: _Side) -> dict[str, str]:
    """JDE contact keys without a HubSpot record of their own, whose id map entry names a HubSpot
    contact that exists: key -> that contact's id."""
    unheld = [key for key in contacts.expected if key not in contacts.held]
    entries = store.id_map.entries(FLOW, "contact", unheld)
    return {
        key: entry.remote_id
        for key, entry in entries.items()
        if entry.deleted_at is None and entry.remote_id in contacts.ids
    }


def _compare_records(
    entity: str, side: _Side, findings: list[Finding], *, linked: Mapping[str, str] | None = None
) -> Tally:
    linked = linked or {}
    tally = Tally(
        flow=FLOW,
        entity=entity,
        jde=len(side.expected) + len(side.refused),
        hubspot=sum(len(records) for records in side.held.values()),
        not_sent=len(side.refused),
    )
    emails = side.emails if entity == "contact" else {}

    def found(kind: Kind, key: str, **details: Any) -> None:
        tally.add(kind)
        findings.append(Finding(flow=FLOW, entity=entity, key=key, kind=kind, **details))

    for key in sorted(side.expected, key=_key_order):
        records = side.held.get(key, [])
        if not records:
            if key in linked:
                tally.matched += 1  # linked to the owner of its e-mail (F4): the owner's record
            else:
                found(Kind.MISSING_IN_HUBSPOT, key)
            continue
        if len(records) > 1:
            found(Kind.DUPLICATE, key, hubspot_ids=tuple(sorted((r.id for r in records), key=int)))
            continue
        [record] = records
        drifted = False
        for name, want, have in side.differences.get(key, ()):
            if name == "email" and emails.get(want, record.id) != record.id:
                continue  # another contact holds the address: HubSpot keeps it once (F4), not written
            drifted = True
            found(Kind.DRIFT, key, field=name, jde=want, hubspot=have, hubspot_ids=(record.id,))
        if not drifted:
            tally.matched += 1
    for key, records in sorted(side.held.items(), key=lambda item: _key_order(item[0])):
        if key in side.expected or key in side.refused:
            continue
        live = [r for r in records if r.live]
        if live:
            found(
                Kind.MISSING_IN_JDE,
                key,
                hubspot_ids=tuple(r.id for r in live),
                note="JDE has no such record and HubSpot does not show it deleted",
            )
    return tally


def _compare_associations(  # noqa: PLR0917 (the two sides and what joins them)
    links: Mapping[str, Mapping[str, Any]],
    companies: _Side,
    contacts: _Side,
    linked: Mapping[str, str],
    pairs: Mapping[str, list[Any]],
    findings: list[Finding],
) -> Tally:
    tally = Tally(flow=FLOW, entity="association", jde=len(links))
    held_types: dict[tuple[str, str], set[int]] = {}
    for contact_id, targets in pairs.items():
        for target in targets:
            held_types.setdefault((contact_id, target.to_id), set()).update(target.type_ids)
    company_of_id = {r.id: key for key, records in companies.held.items() for r in records}
    # Which JDE lines each HubSpot contact stands for (more than one when linked, F4).
    lines_of: dict[str, list[str]] = defaultdict(list)
    contact_id_of: dict[str, str] = {}
    for key in links:
        records = contacts.held.get(key, [])
        held_id = records[0].id if len(records) == 1 else linked.get(key)
        if held_id:
            contact_id_of[key] = held_id
            lines_of[held_id].append(key)
    expected_pairs: set[tuple[str, str]] = set()
    tally.hubspot = sum(
        1 for (contact_id, company_id) in held_types if contact_id in lines_of and company_id in company_of_id
    )

    def found(kind: Kind, key: str, **details: Any) -> None:
        tally.add(kind)
        findings.append(Finding(flow=FLOW, entity="association", key=key, kind=kind, **details))

    for key in sorted(links, key=_key_order):
        link = links[key]
        company_records = companies.held.get(str(link["company"]), [])
        line_contact = contact_id_of.get(key)
        if line_contact is None or len(company_records) != 1:
            tally.not_sent += 1  # its contact or company is missing or doubled: reported there
            continue
        contact_id, company_id = line_contact, company_records[0].id
        expected_pairs.add((contact_id, company_id))
        types = held_types.get((contact_id, company_id))
        if types is None or CONTACT_TO_COMPANY.type_id not in types:
            found(Kind.MISSING_IN_HUBSPOT, key, hubspot_ids=(contact_id, company_id))
            continue
        # A contact that stands for several lines (F4) carries one set of labels: not compared.
        primary = CONTACT_TO_COMPANY_PRIMARY.type_id in types
        if len(lines_of[contact_id]) == 1 and primary != bool(link["primary"]):
            found(
                Kind.DRIFT,
                key,
                field="primary",
                jde=str(bool(link["primary"])).lower(),
                hubspot=str(primary).lower(),
                hubspot_ids=(contact_id, company_id),
            )
            continue
        tally.matched += 1
    for (contact_id, company_id), _types in sorted(held_types.items()):
        if contact_id not in lines_of or company_id not in company_of_id:
            continue  # a pair with a record the sync does not own
        if (contact_id, company_id) in expected_pairs:
            continue
        found(
            Kind.MISSING_IN_JDE,
            ",".join(sorted(lines_of[contact_id])),
            field="company",
            hubspot=company_of_id[company_id],
            hubspot_ids=(contact_id, company_id),
            note="HubSpot associates the contact with a JDE company JDE does not",
        )
    return tally


def _key_order(key: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in key.split("-"))
    except ValueError:
        return (0,)
