"""Customers and their contacts, JD Edwards -> HubSpot.

One stream (``jde``): a customer is "changed" when any of its rows in F0101, F03012, F0111, F0116,
F0115 or F01151 carries an audit stamp (UPMJ/UPMT) inside the window; changed customers are read
whole, 100 address numbers per LIST query. The entities, each declared once at the end:

==============  ===============================================  ==========================
entity          write                                            when JDE no longer has it
==============  ===============================================  ==========================
company         upsert on ``jde_address_number`` (F0101.AN8)      ``jde_status = deleted``
contact         upsert on ``jde_contact_key`` (F0111 AN8-IDLN)    ``jde_status = deleted``
association     contact -> company labels, after both             association removed
==============  ===============================================  ==========================

Settings: Airflow Variable ``mlconn_customers`` (JSON, see ``CustomerSettings``); the JDE server
time zone comes from the ``jde_ais_default`` connection (extra ``server_timezone``). Rules:
docs/BEHAVIOR.md, section F.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mlconn.flows.hubspot_writes import ensure_properties_once, hubspot_load_outcome
from airflow_provider_mlconn.flows.settings import SettingsVariable
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook, Row, TableRead
from airflow_provider_mlconn.hubspot.models import AssociationLink, HubSpotRecord, WriteStatus
from airflow_provider_mlconn.hubspot.objects import CONTACT_TO_COMPANY, CONTACT_TO_COMPANY_PRIMARY, ObjectType
from airflow_provider_mlconn.hubspot.properties import (
    COMPANY_ADDRESS_NUMBER,
    CONTACT_KEY,
    PropertyOption,
    PropertySpec,
    jde_group,
)
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.dates import JDE_STAMP, JdeTimestamp, window_stamps
from airflow_provider_mlconn.jde.models import (
    AddressBookRow,
    AddressByDateRow,
    CustomerMasterRow,
    ElectronicAddressRow,
    PhoneRow,
    WhosWhoRow,
)
from airflow_provider_mlconn.mapping.customers import (
    COMPANY_KEY_PROPERTY,
    CONTACT_KEY_PROPERTY,
    ContactSnapshot,
    CustomerRules,
    CustomerSnapshot,
    company_key,
    contact_key,
    main_contact_line,
    map_company,
    map_contact,
)
from airflow_provider_mlconn.sync.flow import (
    Entity,
    Failed,
    Flow,
    Loaded,
    LoadOutcome,
    LoadRecord,
    MappedRecord,
    Prerequisite,
    Rejection,
    StagingWriter,
    Stream,
    WriteMode,
)
from airflow_provider_mlconn.sync.watermarks import Window

log = logging.getLogger(__name__)

SETTINGS_VARIABLE = "mlconn_customers"
#: Every table whose change makes a customer "changed" (each has its own UPMJ/UPMT).
WATCHED_TABLES = ("F0101", "F03012", "F0111", "F0116", "F0115", "F01151")
#: Tables read whole for a chunk of changed customers, beside F0101.
DETAIL_TABLES = ("F03012", "F0116", "F0111", "F0115", "F01151")

COMPANIES_ASSET = "hubspot://crm/objects/companies"
CONTACTS_ASSET = "hubspot://crm/objects/contacts"


class CustomerSettings(BaseModel):
    """The flow's settings: Variable ``mlconn_customers`` (JSON object; every field optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jde_conn_id: str = "jde_ais_default"
    hubspot_conn_id: str = "hubspot_default"
    #: F0101.AT1 search types that are customers.
    search_types: tuple[str, ...] = ("C",)
    #: Address numbers per LIST query when reading changed customers whole.
    chunk_size: int = Field(100, ge=1, le=500)
    #: Rows per data-service page (None: the connection's ``page_size``).
    page_size: int | None = Field(None, ge=1)
    inactive_category_code: tuple[str, str] = ("AC30", "INA")
    preferred_company: str = "00000"

    @property
    def rules(self) -> CustomerRules:
        return CustomerRules(
            inactive_category_code=self.inactive_category_code, preferred_company=self.preferred_company
        )


_SETTINGS = SettingsVariable(SETTINGS_VARIABLE, CustomerSettings)


def read_settings(*, fresh: bool = False) -> CustomerSettings:
    """The settings from the Variable (re-read after a minute; ``fresh`` re-reads now)."""
    return _SETTINGS.get(fresh=fresh)


def server_timezone() -> str:
    """The JDE enterprise server's zone, from the JDE connection (UPMJ/UPMT are local to it)."""
    return JdeAisHook(read_settings().jde_conn_id).settings.server_timezone


# -- extract ---------------------------------------------------------------------------------------


def _stamp(row: Mapping[str, Any]) -> JdeTimestamp | None:
    return JdeTimestamp.from_row(row.get("UPMJ"), row.get("UPMT"))


def _chunks(values: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _address_numbers(option: Any) -> list[int]:
    """The ``address_numbers`` run option: a list of numbers, or text with commas/blanks between."""
    if option in (None, "", []):
        return []
    items = option.replace(",", " ").split() if isinstance(option, str) else list(option)
    try:
        return sorted({int(item) for item in items})
    except (TypeError, ValueError) as error:
        raise ValueError(f"address_numbers must be JDE address numbers (integers), got {option!r}") from error


def extract_customers(window: Window, writer: StagingWriter) -> datetime | None:
    """Stage the customers changed in ``window`` (whole), or those the run names; see the module doc."""
    settings = read_settings(fresh=True)
    with JdeAisHook(settings.jde_conn_id) as hook:
        zone = hook.server_zone
        extraction = _Extraction(hook, settings, writer, as_of=datetime.now(zone).date())
        requested = _address_numbers(window.options.get("address_numbers"))
        if requested:
            # A hand-picked set is no window: it must not move the watermark.
            extraction.stage_numbers(_chunks(requested, settings.chunk_size))
            return None
        if window.start is None:
            # Everything from the beginning: every customer, whatever its stamps.
            extraction.stage_every_customer()
            # Every key the source has was staged: keys the target holds beyond them were deleted.
            for entity in ("company", "contact", "association"):
                writer.mark_complete(entity)
        else:
            changed = extraction.changed_address_numbers(window)
            log.info("%d address numbers changed in %s", len(changed), window.stream)
            extraction.stage_numbers(_chunks(changed, settings.chunk_size))
        stamp = extraction.high_water
        return None if stamp is None else stamp.to_datetime(zone)


class _Collector:
    """A staging writer that keeps what it is given (re-reading records for a replay or a wait)."""

    def __init__(self) -> None:
        self.staged: dict[tuple[str, str], Mapping[str, Any]] = {}

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None:
        self.staged[(entity, str(key))] = payload

    def mark_complete(self, entity: str) -> None:
        raise AssertionError("a re-read of some customers is never complete")


def read_every_customer(writer: StagingWriter) -> None:
    """Hand ``writer`` every customer's records, read whole as a full read of the flow reads them
    (the reconciliation compares what a run would send with what HubSpot holds)."""
    settings = read_settings(fresh=True)
    with JdeAisHook(settings.jde_conn_id) as hook:
        _Extraction(
            hook, settings, writer, as_of=datetime.now(hook.server_zone).date()
        ).stage_every_customer()


def refresh_customers(entity: str) -> Callable[[Sequence[str]], dict[str, Mapping[str, Any] | None]]:
    """The ``refresh`` of an entity: re-read the customers behind these keys from JDE, whole.

    A key whose customer (or Who's Who line) JDE no longer has maps to None.
    """

    def refresh(keys: Sequence[str]) -> dict[str, Mapping[str, Any] | None]:
        numbers = sorted({int(key.split("-")[0]) for key in keys})
        settings = read_settings(fresh=True)
        collector = _Collector()
        with JdeAisHook(settings.jde_conn_id) as hook:
            extraction = _Extraction(hook, settings, collector, as_of=datetime.now(hook.server_zone).date())
            extraction.stage_numbers(_chunks(numbers, settings.chunk_size))
        return {key: collector.staged.get((entity, key)) for key in keys}

    return refresh


def _chunked_rows(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Extraction:
    """One extract: reads changed customers whole and stages their records; tracks the latest stamp."""

    def __init__(
        self, hook: JdeAisHook, settings: CustomerSettings, writer: StagingWriter, *, as_of: date
    ) -> None:
        self.hook, self.settings, self.writer, self.as_of = hook, settings, writer, as_of
        self.high_water: JdeTimestamp | None = None

    def _see(self, row: Mapping[str, Any]) -> None:
        stamp = _stamp(row)
        if stamp is not None and (self.high_water is None or stamp > self.high_water):
            self.high_water = stamp

    def changed_address_numbers(self, window: Window) -> list[int]:
        """Address numbers with a row in any watched table stamped inside the window."""
        since, until = window_stamps(window.start, window.end, window.source_timezone)
        if since is None:
            raise ValueError("an incremental read needs a window start")
        changed: set[int] = set()
        for table_name in WATCHED_TABLES:
            for row in self.hook.iter_rows(
                table_name,
                query=q.changed_since(table_name, since, until),
                columns=["AN8", "UPMJ", "UPMT"],
                page_size=self.settings.page_size,
            ):
                changed.add(int(row["AN8"]))
                self._see(row)
        return sorted(changed)

    def stage_every_customer(self) -> None:
        """Every customer (F0101 with the search types, whatever its stamps; some are blank), listed
        whole, so each chunk only reads the five detail tables."""
        customers = self.hook.iter_rows(
            "F0101",
            query=q.in_list("F0101.AT1", self.settings.search_types),
            page_size=self.settings.page_size,
        )
        self.stage_books(_chunked_rows(customers, self.settings.chunk_size))

    def stage_numbers(self, chunks: Iterable[list[int]]) -> None:
        """Read these address numbers whole, chunk by chunk (customers only: F0101 with the search
        types), and stage their records."""
        self._stage((chunk, None) for chunk in chunks)

    def stage_books(self, chunks: Iterable[list[Row]]) -> None:
        """Stage customers whose F0101 rows are at hand, reading the rest of each chunk whole."""
        self._stage(([int(row["AN8"]) for row in books], books) for books in chunks)

    def _stage(self, chunks: Iterable[tuple[list[int], list[Row] | None]]) -> None:
        """The reads of every chunk go through ``hook.read_all``: several chunks' queries are in flight
        at once (the connection's ``max_parallel_reads``) while earlier chunks are staged here."""
        started: deque[list[Row] | None] = deque()

        def reads() -> Iterator[TableRead]:
            for numbers, books in chunks:
                started.append(books)
                if books is None:
                    yield TableRead(
                        "F0101",
                        query=q.all_of(
                            q.in_list("F0101.AN8", numbers),
                            q.in_list("F0101.AT1", self.settings.search_types),
                        ),
                        page_size=self.settings.page_size,
                    )
                for table_name in DETAIL_TABLES:
                    yield TableRead(
                        table_name,
                        query=q.in_list(f"{table_name}.AN8", numbers),
                        page_size=self.settings.page_size,
                    )

        results = self.hook.read_all(reads())
        for first in results:
            books = started.popleft()
            if books is None:
                books = first
                details = [next(results) for _ in DETAIL_TABLES]
            else:
                details = [first, *(next(results) for _ in DETAIL_TABLES[1:])]
            self._stage_chunk(books, dict(zip(DETAIL_TABLES, details, strict=True)))

    def _stage_chunk(self, book_rows: list[Row], details: Mapping[str, list[Row]]) -> None:
        books = {int(row["AN8"]): row for row in book_rows}
        if not books:
            return
        # Detail rows were read by the chunk's numbers: only customers' rows count.
        by_table: dict[str, dict[int, list[Row]]] = {}
        for table_name, rows in details.items():
            by_customer: dict[int, list[Row]] = defaultdict(list)
            for row in rows:
                address_number = int(row["AN8"])
                if address_number in books:
                    by_customer[address_number].append(row)
                    self._see(row)
            by_table[table_name] = by_customer
        for address_number in sorted(books):
            self._see(books[address_number])
            self._stage_customer(
                books[address_number], {t: rows[address_number] for t, rows in by_table.items()}
            )

    def _stage_customer(self, book: dict[str, Any], rows: dict[str, list[dict[str, Any]]]) -> None:
        address_number = int(book["AN8"])
        phones, electronic = rows["F0115"], rows["F01151"]
        main_line = main_contact_line([WhosWhoRow.model_validate(row) for row in rows["F0111"]])
        self.writer.stage(
            "company",
            company_key(address_number),
            {
                "as_of": self.as_of.isoformat(),
                "F0101": book,
                "F03012": rows["F03012"],
                "F0116": rows["F0116"],
                "F0115": [row for row in phones if int(row["IDLN"]) == 0],
                "F01151": [row for row in electronic if int(row["IDLN"]) == 0],
            },
        )
        customer = {"AN8": address_number, "ALPH": book.get("ALPH", "")}
        for who in rows["F0111"]:
            line = int(who["IDLN"])
            if line == 0:
                continue
            key = contact_key(address_number, line)
            self.writer.stage(
                "contact",
                key,
                {
                    "F0101": customer,
                    "F0111": who,
                    "F0115": [row for row in phones if int(row["IDLN"]) == line],
                    "F01151": [row for row in electronic if int(row["IDLN"]) == line],
                },
            )
            self.writer.stage(
                "association",
                key,
                {"company": company_key(address_number), "contact": key, "primary": line == main_line},
            )


# -- map -------------------------------------------------------------------------------------------


def map_company_record(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    """A staged customer -> HubSpot company properties (pure, apart from the cached settings)."""
    snapshot = CustomerSnapshot(
        address_book=AddressBookRow.model_validate(source["F0101"]),
        customer_masters=[CustomerMasterRow.model_validate(r) for r in source["F03012"]],
        addresses=[AddressByDateRow.model_validate(r) for r in source["F0116"]],
        phones=[PhoneRow.model_validate(r) for r in source["F0115"]],
        electronic_addresses=[ElectronicAddressRow.model_validate(r) for r in source["F01151"]],
    )
    return map_company(snapshot, as_of=date.fromisoformat(source["as_of"]), rules=read_settings().rules)


def map_contact_record(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    """A staged Who's Who line -> HubSpot contact properties."""
    contact = ContactSnapshot(
        customer=AddressBookRow.model_validate(source["F0101"]),
        who_is_who=WhosWhoRow.model_validate(source["F0111"]),
        phones=[PhoneRow.model_validate(r) for r in source["F0115"]],
        electronic_addresses=[ElectronicAddressRow.model_validate(r) for r in source["F01151"]],
    )
    return map_contact(contact, rules=read_settings().rules)


def map_association_record(source: Mapping[str, Any]) -> Mapping[str, Any]:
    return {
        "company": str(source["company"]),
        "contact": str(source["contact"]),
        "primary": bool(source["primary"]),
    }


def association_prerequisites(record: MappedRecord) -> list[Prerequisite]:
    """An association needs its company and its contact in HubSpot."""
    return [
        Prerequisite("company", str(record.payload["company"])),
        Prerequisite("contact", str(record.payload["contact"])),
    ]


# -- load ------------------------------------------------------------------------------------------

STATUS_OPTIONS = (
    PropertyOption(label="Active", value="active", display_order=0),
    PropertyOption(label="Inactive in JDE", value="inactive", display_order=1),
    PropertyOption(label="Deleted in JDE", value="deleted", display_order=2),
)


def _text_property(object_type: ObjectType, name: str, label: str, description: str) -> PropertySpec:
    return PropertySpec(
        object_type=object_type, name=name, label=label, group=jde_group(object_type), description=description
    )


def _status_property(object_type: ObjectType, description: str) -> PropertySpec:
    return PropertySpec(
        object_type=object_type,
        name="jde_status",
        label="JDE status",
        group=jde_group(object_type),
        type="enumeration",
        field_type="select",
        options=STATUS_OPTIONS,
        description=description,
    )


COMPANY_PROPERTIES = (
    COMPANY_ADDRESS_NUMBER,
    _text_property(ObjectType.COMPANIES, "jde_search_type", "JDE search type (AT1)", "F0101.AT1"),
    _text_property(ObjectType.COMPANIES, "jde_business_unit", "JDE business unit (MCU)", "F0101.MCU"),
    _text_property(ObjectType.COMPANIES, "jde_company", "JDE company (CO)", "F03012.CO of the terms below"),
    _text_property(ObjectType.COMPANIES, "jde_payment_terms", "JDE payment terms (TRAR)", "F03012.TRAR"),
    _text_property(ObjectType.COMPANIES, "jde_currency", "JDE currency (CRCD)", "F03012.CRCD"),
    PropertySpec(
        object_type=ObjectType.COMPANIES,
        name="jde_credit_limit",
        label="JDE credit limit (ACL)",
        group=jde_group(ObjectType.COMPANIES),
        type="number",
        field_type="number",
        description="F03012.ACL, in the customer's currency",
    ),
    _status_property(
        ObjectType.COMPANIES,
        "Inactive: F0101 carries the inactive category code; deleted: JDE no longer has the customer",
    ),
)

CONTACT_PROPERTIES = (
    CONTACT_KEY,
    _text_property(ObjectType.CONTACTS, "jde_address_number", "JDE customer (AN8)", "F0111.AN8"),
    _status_property(ObjectType.CONTACTS, "Inactive: F0111.ACTIN is N; deleted: JDE no longer has the line"),
)


def _ensure_properties(hook: HubSpotHook, object_type: ObjectType) -> None:
    """Create the flow's custom properties once per process and portal (reads only, once they exist)."""
    specs = COMPANY_PROPERTIES if object_type is ObjectType.COMPANIES else CONTACT_PROPERTIES
    created = ensure_properties_once(hook, specs)
    if created:
        log.info("created HubSpot properties %s", created)


def load_companies(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Upsert companies on ``jde_address_number`` (100 per call, several calls in flight)."""
    with HubSpotHook(read_settings().hubspot_conn_id) as hook:
        _ensure_properties(hook, ObjectType.COMPANIES)
        outcomes = hook.upsert_records(
            ObjectType.COMPANIES,
            {r.key: r.payload["properties"] for r in records},
            id_property=COMPANY_KEY_PROPERTY,
        )
        return {key: hubspot_load_outcome(outcome) for key, outcome in outcomes.items()}


def load_contact_records(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    with HubSpotHook(read_settings().hubspot_conn_id) as hook:
        _ensure_properties(hook, ObjectType.CONTACTS)
        return load_contacts(hook, records)


def load_association_records(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    with HubSpotHook(read_settings().hubspot_conn_id) as hook:
        return load_associations(hook, records)


def mark_deleted(object_type: ObjectType) -> Callable[[Sequence[LoadRecord]], Mapping[str, LoadOutcome]]:
    """The deletion rule of companies and contacts: HubSpot records are never deleted by us; the
    record gets ``jde_status = deleted``. A HubSpot record another JDE key still maps to (a contact
    linked to the owner of a shared e-mail) is left as it is."""

    def delete(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
        results: dict[str, LoadOutcome] = {}
        updates: dict[str, str] = {}
        for record in records:
            if record.remote_id is None:
                results[record.key] = Failed(f"{record.key}: no HubSpot id to mark deleted")
            elif record.remote_id_shared_by:
                results[record.key] = Loaded(
                    record.remote_id,
                    note=f"HubSpot record {record.remote_id} kept active: JDE "
                    f"{', '.join(record.remote_id_shared_by)} still maps to it",
                )
            else:
                updates[record.remote_id] = record.key
        if updates:
            with HubSpotHook(read_settings().hubspot_conn_id) as hook:
                _ensure_properties(hook, object_type)
                written = hook.update_records(
                    object_type, {rid: {"jde_status": "deleted"} for rid in updates}
                )
            for remote_id, key in updates.items():
                results[key] = hubspot_load_outcome(
                    written[remote_id], note="deleted in JDE: jde_status set to deleted"
                )
        return results

    return delete


def delete_associations(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """The deletion rule of associations: the contact -> company pair is removed, unless another
    JDE line's association is that same pair."""
    results: dict[str, LoadOutcome] = {}
    pairs: dict[tuple[str, str], str] = {}
    for record in records:
        pair = _association_pair(record.remote_id)
        if pair is None:
            results[record.key] = Failed(
                f"{record.key}: no association pair to remove ({record.remote_id!r})"
            )
        elif record.remote_id_shared_by:
            results[record.key] = Loaded(
                str(record.remote_id),
                note=f"pair kept: JDE {', '.join(record.remote_id_shared_by)} has it too",
            )
        else:
            pairs[pair] = record.key
    if pairs:
        with HubSpotHook(read_settings().hubspot_conn_id) as hook:
            hook.dissociate(ObjectType.CONTACTS, ObjectType.COMPANIES, list(pairs))
        for pair, key in pairs.items():
            results[key] = Loaded("->".join(pair), note="deleted in JDE: association removed")
    return results


def load_contacts(hook: HubSpotHook, records: Sequence[LoadRecord]) -> dict[str, LoadOutcome]:
    """Upsert contacts on ``jde_contact_key``; resolve e-mails HubSpot already knows (BEHAVIOR F4).

    HubSpot keeps one contact per e-mail and refuses a whole batch that would make a second one.
    So: contacts of this call that share an e-mail send it once (the first key carries it, the
    others link to that contact); the owners of new contacts' e-mails are looked up before the
    write: a contact with no JDE key is claimed (updated with ours), one with another JDE key is
    linked to (a person listed under two customers), and a contact we wrote before keeps its
    HubSpot record without the e-mail. A batch refused all the same (an owner appeared meanwhile,
    or a changed e-mail of a known contact) is settled the same way after a fresh lookup.
    """
    payloads = {r.key: dict(r.payload["properties"]) for r in records}
    known_ids = {r.key: r.remote_id for r in records if r.remote_id}
    carriers: dict[str, str] = {}
    linked_to_carrier: dict[str, str] = {}
    for key in sorted(payloads):
        email = payloads[key].get("email")
        if not email:
            continue
        if email in carriers:
            linked_to_carrier[key] = carriers[email]
        else:
            carriers[email] = key
    to_send = {key: props for key, props in payloads.items() if key not in linked_to_carrier}
    new_emails = {p["email"] for key, p in to_send.items() if p.get("email") and key not in known_ids}
    results, refused = _settle(hook, to_send, _email_owners(hook, new_emails), known_ids, isolate=False)
    if refused:
        retry = {key: to_send[key] for key in refused}
        owners = _email_owners(hook, {p["email"] for p in retry.values() if p.get("email")})
        settled, _ = _settle(hook, retry, owners, known_ids, isolate=True)
        results.update(settled)
    for key, carrier in linked_to_carrier.items():
        carried = results.get(carrier)
        email = payloads[key]["email"]
        if isinstance(carried, Loaded):
            note = (
                f"linked to HubSpot contact {carried.remote_id}: JDE contact {carrier} has e-mail {email} too"
            )
            results[key] = Loaded(carried.remote_id, note=note)
        else:
            results[key] = Failed(f"shares e-mail {email} with JDE contact {carrier}, which did not load")
    return results


def _email_owners(hook: HubSpotHook, emails: set[str]) -> dict[str, HubSpotRecord]:
    """The HubSpot contacts that hold these e-mails (one ``batch/read`` by e-mail per 100)."""
    if not emails:
        return {}
    return hook.read_records(
        ObjectType.CONTACTS, emails, properties=[CONTACT_KEY_PROPERTY], id_property="email"
    )


def _settle(
    hook: HubSpotHook,
    contacts: dict[str, dict[str, Any]],
    owners: Mapping[str, HubSpotRecord],
    known_ids: Mapping[str, str],
    *,
    isolate: bool,
) -> tuple[dict[str, LoadOutcome], list[str]]:
    """Write ``contacts`` knowing who owns their e-mails; returns the outcomes and, unless
    ``isolate``, the keys of a refused batch (400/409) to settle again."""
    results: dict[str, LoadOutcome] = {}
    plain: dict[str, dict[str, Any]] = {}
    claims: dict[str, tuple[str, dict[str, Any]]] = {}
    notes: dict[str, str] = {}
    for key, props in contacts.items():
        email = props.get("email")
        owner = owners.get(email) if email else None
        owner_key = (owner.properties.get(CONTACT_KEY_PROPERTY) or "") if owner else ""
        if owner is None or owner_key == key:
            plain[key] = props
        elif known_ids.get(key) == owner.id:
            # Linked before (F4): the contact is the e-mail owner's; this line's changes stay in JDE.
            note = f"still linked to HubSpot contact {owner.id} (JDE contact {owner_key}); not written"
            results[key] = Loaded(owner.id, note=note)
        elif key in known_ids:
            plain[key] = {name: value for name, value in props.items() if name != "email"}
            notes[key] = f"e-mail {email} belongs to HubSpot contact {owner.id}; not changed here"
        elif not owner_key and owner.id not in claims:
            claims[owner.id] = (key, props)
        else:
            holder = (
                f"JDE contact {owner_key}" if owner_key else f"claimed by JDE contact {claims[owner.id][0]}"
            )
            note = f"linked to HubSpot contact {owner.id} ({holder}), owner of e-mail {email}"
            results[key] = Loaded(owner.id, note=note)
    refused: list[str] = []
    if plain:
        written = hook.upsert_records(
            ObjectType.CONTACTS, plain, id_property=CONTACT_KEY_PROPERTY, isolate_failures=isolate
        )
        for key, outcome in written.items():
            error = outcome.error
            if not isolate and outcome.status is WriteStatus.FAILED and error and error.status in (400, 409):
                refused.append(key)
            else:
                results[key] = hubspot_load_outcome(outcome, note=notes.get(key))
    if claims:
        updated = hook.update_records(
            ObjectType.CONTACTS, {owner_id: props for owner_id, (_, props) in claims.items()}
        )
        for owner_id, (key, props) in claims.items():
            results[key] = hubspot_load_outcome(
                updated[owner_id],
                note=f"claimed HubSpot contact {owner_id}, which had e-mail {props['email']} and no JDE key",
            )
    return results, refused


def load_associations(hook: HubSpotHook, records: Sequence[LoadRecord]) -> dict[str, LoadOutcome]:
    """Contact -> company, unlabeled plus primary for the main contact; a labelled create replaces the
    pair's labels, so a contact that stops being the main one loses its primary label. A line whose
    pair changed (it was linked to another person's contact, F4) has its old pair removed once the
    new one exists, unless another line's association is, or is now being written as, that pair."""
    links: dict[str, AssociationLink] = {}
    for record in records:
        contact_id = record.prerequisite_id("contact", str(record.payload["contact"]))
        company_id = record.prerequisite_id("company", str(record.payload["company"]))
        types = (
            (CONTACT_TO_COMPANY, CONTACT_TO_COMPANY_PRIMARY)
            if record.payload["primary"]
            else (CONTACT_TO_COMPANY,)
        )
        links[record.key] = AssociationLink(from_id=contact_id, to_id=company_id, types=types)
    outcomes = {
        (o.from_id, o.to_id): o
        for o in hook.associate(ObjectType.CONTACTS, ObjectType.COMPANIES, links.values())
    }
    results: dict[str, LoadOutcome] = {}
    replaced: list[tuple[str, str]] = []
    for record in records:
        link = links[record.key]
        outcome = outcomes.get((link.from_id, link.to_id))
        if outcome is not None and outcome.ok:
            old = _association_pair(record.remote_id)
            note = None
            if old and old not in outcomes and not record.remote_id_shared_by:
                replaced.append(old)
                note = f"replaced association {'->'.join(old)}"
            results[record.key] = Loaded(
                f"{link.from_id}->{link.to_id}", created=record.remote_id is None, note=note
            )
        elif outcome is not None and outcome.error is not None and not outcome.error.retriable:
            results[record.key] = Rejection(
                f"HubSpot {outcome.error.category or ''}: {outcome.error.message}"
            )
        else:
            results[record.key] = Failed(
                outcome.error.message if outcome and outcome.error else "no association result"
            )
    if replaced:
        hook.dissociate(ObjectType.CONTACTS, ObjectType.COMPANIES, replaced)
    return results


def _association_pair(remote_id: str | None) -> tuple[str, str] | None:
    """The (contact id, company id) of an association record's remote id ``"contact->company"``."""
    if not remote_id or "->" not in remote_id:
        return None
    contact_id, company_id = remote_id.split("->", 1)
    return contact_id, company_id


COMPANY = Entity(
    "company",
    target="hubspot",
    key="jde_address_number = F0101.AN8",
    write=WriteMode.UPSERT,
    map=map_company_record,
    load=load_companies,
    delete=mark_deleted(ObjectType.COMPANIES),
    refresh=refresh_customers("company"),
    asset_uri=COMPANIES_ASSET,
    # 500 records per load call: the hook sends their five 100-record batches concurrently.
    call_batch_size=500,
    task_batch_size=2500,
)
CONTACT = Entity(
    "contact",
    target="hubspot",
    key="jde_contact_key = F0111 AN8-IDLN",
    write=WriteMode.UPSERT,
    map=map_contact_record,
    load=load_contact_records,
    delete=mark_deleted(ObjectType.CONTACTS),
    refresh=refresh_customers("contact"),
    # HubSpot keeps an e-mail once (F4): contacts sharing one load in the same batch, so batches
    # running side by side do not both create it and settle the refusal by extra calls.
    batch_key=lambda payload: payload["properties"].get("email") or None,
    depends_on=("company",),
    asset_uri=CONTACTS_ASSET,
    call_batch_size=500,
    task_batch_size=2500,
)
ASSOCIATION = Entity(
    "association",
    target="hubspot",
    key="the contact's key (one contact -> company pair, unlabeled + primary)",
    write=WriteMode.REPLACE_SET,
    map=map_association_record,
    prerequisites=association_prerequisites,
    load=load_association_records,
    delete=delete_associations,
    refresh=refresh_customers("association"),
    depends_on=("company", "contact"),
    call_batch_size=1000,
    task_batch_size=5000,
)

CUSTOMERS = Flow(
    name="customers",
    description=(
        "JD Edwards customers (F0101 search type C, F03012, F0116, F0111, F0115, F01151) to HubSpot "
        "companies, contacts and their associations. See docs/BEHAVIOR.md (F) for every mapping rule."
    ),
    streams=(Stream("jde", extract=extract_customers, codec=JDE_STAMP, timezone_from=server_timezone),),
    entities=(COMPANY, CONTACT, ASSOCIATION),
    # A weekly full read finds Who's Who lines and customers deleted in JDE (nothing to poll).
    full_resync_every=timedelta(days=7),
)
