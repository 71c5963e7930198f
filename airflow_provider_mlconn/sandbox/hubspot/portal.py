"""The in-memory HubSpot portal: records, unique values, associations, property definitions, search index.

Every public method takes the portal lock, so the event loop and a test thread can both use it.
Records are immutable versions (a write publishes a new one), which lets the search index lag
behind the store by holding older versions.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from airflow_provider_mlconn.sandbox.hubspot import commerce, invoice_states
from airflow_provider_mlconn.sandbox.hubspot.catalog import (
    ASSOCIATION_BY_ID,
    COMMERCE_PAYMENTS,
    COMPANIES,
    CONTACTS,
    DEALS,
    INVOICES,
    LINE_ITEMS,
    OBJECT_TYPES,
    PRODUCTS,
    AssociationTypeDef,
    ObjectTypeDef,
    PropertyDef,
    default_association,
)
from airflow_provider_mlconn.sandbox.hubspot.changes import (
    CHANGE_SOURCE,
    DELETION,
    Change,
    Observer,
    link_change,
    write_changes,
)
from airflow_provider_mlconn.sandbox.hubspot.errors import (
    HubSpotError,
    InputError,
    bad_request,
    validation_detail,
)
from airflow_provider_mlconn.sandbox.hubspot.recalculation import ADJUSTMENTS, Key, Recalculation
from airflow_provider_mlconn.sandbox.hubspot.values import (
    ValueProblem,
    iso,
    normalize,
    now_ms,
    parse_number,
    sort_key,
)

FIRST_RECORD_ID = 1_000_001
SYSTEM_PROPERTIES = ("hs_object_id", "createdate")


class Record:
    """One published version of a record; never mutated once stored."""

    __slots__ = ("_keys", "archived_ms", "created_ms", "id", "kind", "properties", "updated_ms")

    def __init__(
        self,
        kind: ObjectTypeDef,
        record_id: str,
        properties: dict[str, str],
        created_ms: int,
        updated_ms: int,
        *,
        archived_ms: int | None = None,
    ) -> None:
        self.kind = kind
        self.id = record_id
        self.properties = properties
        self.created_ms = created_ms
        self.updated_ms = updated_ms
        self.archived_ms = archived_ms
        self._keys: dict[str, tuple[int, Any]] = {}

    def key(self, prop: PropertyDef | None, name: str) -> tuple[int, Any]:
        """Sort/compare key of one property, cached (the version never changes)."""
        cached = self._keys.get(name)
        if cached is None:
            cached = self._keys[name] = sort_key(prop, self.properties.get(name))
        return cached


@dataclass
class PropertyGroup:
    name: str
    label: str
    display_order: int = -1
    archived: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": self.archived,
        }


@dataclass
class WriteInput:
    """One input of a create/update/upsert, resolved to its target record (None = create)."""

    properties: Any
    target: Record | None = None
    set_unique: Key | None = None  # upsert-create: (idProperty, value) to store
    trace_id: str | None = None
    associations: list[tuple[AssociationTypeDef, Record]] = field(default_factory=list)
    id_context: str | None = None  # the id the client named, for error contexts
    id_property: str | None = None  # upsert: echoed in the result's properties


@dataclass
class PreparedWrite:
    input: WriteInput
    values: dict[str, str | None]


@dataclass
class WriteResult:
    record: Record
    created: bool
    written: list[str]
    trace_id: str | None


class Portal:
    """A HubSpot account's CRM data, as the API sees it.

    HubSpot keeps some values current itself: line item amounts and payment nets from the record's own
    values (``_derive``), invoice totals and the ``paid`` status from related records (recalculation.py,
    run at the end of every public write).
    ``api_payments_update_invoices``: whether payments recorded through the API count towards their
    invoice (hubspot-commerce.md §1.1 leaves it open; payments recorded in HubSpot always count).
    """

    def __init__(
        self,
        *,
        search_lag_ms: int = 0,
        clock: Callable[[], int] = now_ms,
        api_payments_update_invoices: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.search_lag_ms = search_lag_ms
        self.api_payments_update_invoices = api_payments_update_invoices
        self.observer: Observer | None = None  # set by the webhook sender while it has subscriptions
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        with self.lock:
            self.records: dict[str, dict[str, Record]] = {k.name: {} for k in OBJECT_TYPES}
            self.archived: dict[str, dict[str, Record]] = {k.name: {} for k in OBJECT_TYPES}
            self.order: dict[str, list[int]] = {k.name: [] for k in OBJECT_TYPES}
            self.properties: dict[str, dict[str, PropertyDef]] = {
                k.name: {p.name: p for p in k.properties} for k in OBJECT_TYPES
            }
            self.groups: dict[str, dict[str, PropertyGroup]] = {
                k.name: {
                    k.default_group: PropertyGroup(k.default_group, f"{k.singular.title()} information", 0)
                }
                for k in OBJECT_TYPES
            }
            self.unique: dict[Key, dict[str, str]] = {}
            for kind in OBJECT_TYPES:
                for prop in kind.properties:
                    if prop.unique:
                        self.unique[(kind.name, prop.name)] = {}
            # (type, id) -> {(other type, other id): type ids seen from this side}
            self.links: dict[Key, dict[Key, set[int]]] = {}
            self.index: dict[str, dict[str, Record]] = {k.name: {} for k in OBJECT_TYPES}
            self.pending: deque[tuple[int, str, str, Record | None]] = deque()
            self.index_version = 0  # bumped on every index change; search caches results per version
            self.search_cache: dict[str, tuple[int, list[Record]]] = {}
            self.next_id = FIRST_RECORD_ID
            self.invoice_number = 1000
            self.tax_rates: dict[str, commerce.TaxRate] = {}
            self.next_tax_rate_id = 1
            self.recalculation = Recalculation(self)

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {name: len(records) for name, records in self.records.items()}

    def association_count(self) -> int:
        with self.lock:
            return sum(len(types) for others in self.links.values() for types in others.values()) // 2

    # ----------------------------------------------------------- properties
    def property(self, kind: ObjectTypeDef, name: str) -> PropertyDef | None:
        prop = self.properties[kind.name].get(name)
        return prop if prop is not None and not prop.archived else None

    def property_defs(self, kind: ObjectTypeDef, *, archived: bool = False) -> list[PropertyDef]:
        with self.lock:
            return [p for p in self.properties[kind.name].values() if p.archived == archived]

    def add_property(self, kind: ObjectTypeDef, prop: PropertyDef) -> None:
        with self.lock:
            self.properties[kind.name][prop.name] = prop
            if prop.unique:
                self.unique.setdefault((kind.name, prop.name), {})

    def unique_count(self, kind: ObjectTypeDef) -> int:
        return sum(
            1
            for p in self.properties[kind.name].values()
            if p.unique and not p.hubspot_defined and not p.archived
        )

    # -------------------------------------------------------------- lookups
    def get(self, kind: ObjectTypeDef, record_id: str, *, archived: bool = False) -> Record | None:
        with self.lock:
            return (self.archived if archived else self.records)[kind.name].get(record_id)

    def find_by(self, kind: ObjectTypeDef, prop_name: str, value: str) -> Record | None:
        """The live record whose ``prop_name`` holds ``value`` (an idProperty lookup)."""
        with self.lock:
            if prop_name == "hs_object_id":
                return self.records[kind.name].get(value)
            prop = self.property(kind, prop_name)
            if prop is None:
                return None
            try:
                wanted = normalize(prop, value)
            except ValueProblem:
                return None
            index = self.unique.get((kind.name, prop_name))
            if index is not None:
                found = index.get(wanted or "")
                return self.records[kind.name].get(found) if found else None
            # A non-unique identifier (companies' domain): the oldest record holding it.
            return next(
                (r for r in self.records[kind.name].values() if r.properties.get(prop_name) == wanted), None
            )

    def iter_after(self, kind: ObjectTypeDef, after_id: int, *, archived: bool = False) -> Iterator[Record]:
        """Records in id order with an id greater than ``after_id`` (list paging)."""
        with self.lock:
            source = (self.archived if archived else self.records)[kind.name]
            ids = self.order[kind.name]
            start = bisect_right(ids, after_id)
            snapshot = ids[start:]
        for record_id in snapshot:
            record = source.get(str(record_id))
            if record is not None:
                yield record

    def linked(self, record: Record, to_kind: ObjectTypeDef) -> list[tuple[str, set[int]]]:
        with self.lock:
            others = self.links.get((record.kind.name, record.id), {})
            return [(oid, set(types)) for (otype, oid), types in others.items() if otype == to_kind.name]

    def link_types(self, a: Record, b: Record) -> set[int]:
        with self.lock:
            return set(self.links.get((a.kind.name, a.id), {}).get((b.kind.name, b.id), set()))

    # --------------------------------------------------------------- writes
    def prepare(self, kind: ObjectTypeDef, item: WriteInput) -> PreparedWrite | InputError:
        """Validate one input against the property definitions and business rules (no side effects)."""
        if not isinstance(item.properties, dict):
            return InputError(
                "VALIDATION_ERROR",
                "Invalid input: properties must be an object of property names to values.",
                context=self._context(item),
            )
        current = item.target.properties if item.target else {}
        problems: list[tuple[str, str, str]] = []  # (code, message, property)
        values: dict[str, str | None] = {}
        for name, raw in item.properties.items():
            prop = self.property(kind, name)
            if prop is None:
                problems.append(("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', name))
                continue
            if prop.read_only:
                problems.append(
                    ("READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.', name)
                )
                continue
            try:
                values[name] = normalize(prop, raw, current=current.get(name))
            except ValueProblem as problem:
                problems.append((problem.code, problem.message, name))
        if item.set_unique is not None:
            name, value = item.set_unique
            prop = self.property(kind, name)
            try:
                values[name] = normalize(prop, value) if prop is not None else value
            except ValueProblem as problem:
                problems.append((problem.code, problem.message, name))
        if not problems:
            problems.extend(self._business_rules(kind, item, values))
        if problems:
            return self._validation_error(item, problems)
        return PreparedWrite(item, values)

    def _validation_error(self, item: WriteInput, problems: list[tuple[str, str, str]]) -> InputError:
        portal_view = [
            {
                "isValid": False,
                "message": message,
                "error": code,
                "name": name,
                "localizedErrorMessage": message,
            }
            for code, message, name in problems
        ]
        return InputError(
            "VALIDATION_ERROR",
            "Property values were not valid: " + json.dumps(portal_view, separators=(",", ":")),
            context=self._context(item),
            errors=[validation_detail(code, message, name) for code, message, name in problems],
        )

    @staticmethod
    def _context(item: WriteInput) -> dict[str, list[str]]:
        context: dict[str, list[str]] = {}
        if item.trace_id is not None:
            context["objectWriteTraceId"] = [item.trace_id]
        if item.id_context is not None:
            context["ids"] = [item.id_context]
        return context

    def _business_rules(
        self, kind: ObjectTypeDef, item: WriteInput, values: dict[str, str | None]
    ) -> list[tuple[str, str, str]]:
        creating = item.target is None
        merged = {**(item.target.properties if item.target else {}), **values}
        merged = {k: v for k, v in merged.items() if v is not None}
        problems: list[tuple[str, str, str]] = []

        def require(*names: str) -> None:
            for name in names:
                if not merged.get(name):
                    problems.append(("REQUIRED_PROPERTY", f'Property "{name}" is required.', name))

        if kind is COMPANIES and creating and not (merged.get("name") or merged.get("domain")):
            problems.append(("REQUIRED_PROPERTY", "A company needs a name or a domain.", "name"))
        if kind is DEALS and creating:
            require("dealname", "dealstage", "pipeline")
        if kind is COMMERCE_PAYMENTS and creating:
            require("hs_initial_amount", "hs_initiated_date")
        if kind is INVOICES:
            if creating:
                require("hs_currency")
            problems.extend(self._invoice_rules(kind, item, values, merged))
        if kind is LINE_ITEMS:
            price = parse_number(merged.get("price", "0"))
            if price is not None and price < 0:
                problems.append(("INVALID_INTEGER", "price must not be negative.", "price"))
            product_id = values.get("hs_product_id")
            if product_id and self.records[PRODUCTS.name].get(product_id) is None:
                problems.append(
                    ("INVALID_PROPERTY_VALUE", f"Product {product_id} does not exist.", "hs_product_id")
                )
            rate_id = values.get("hs_tax_rate_group_id")
            if rate_id and rate_id not in self.tax_rates:
                problems.append(
                    (
                        "INVALID_OPTION",
                        f"{rate_id} is not a tax rate of this account (GET /tax-rates/v1/tax-rates).",
                        "hs_tax_rate_group_id",
                    )
                )
        if kind in ADJUSTMENTS:
            if creating:
                require("hs_label", "hs_type", "hs_value")
            value = parse_number(merged.get("hs_value", "0"))
            if value is not None and value < 0:
                problems.append(("INVALID_INTEGER", "hs_value must not be negative.", "hs_value"))
        return problems

    def _invoice_rules(
        self,
        kind: ObjectTypeDef,
        item: WriteInput,
        values: dict[str, str | None],
        merged: dict[str, str | None],
    ) -> list[tuple[str, str, str]]:
        """Status transitions and what each status lets the API change (invoice_states)."""
        target = item.target
        was = target.properties.get("hs_invoice_status", "draft") if target else "draft"
        becomes = merged.get("hs_invoice_status") or "draft"
        paid = commerce.number(target.properties, "hs_amount_paid") if target else Decimal(0)
        code = invoice_states.CODE
        problem = invoice_states.transition_problem(was, becomes, paid)
        if problem is not None:
            return [(code, problem, "hs_invoice_status")]
        if becomes != was and becomes == invoice_states.OPEN:
            contacts, line_items = self._open_parts(item)
            problem = invoice_states.open_problem(contacts, line_items)
            if problem is not None:
                return [(code, problem, "hs_invoice_status")]
        if target is None or not invoice_states.is_locked(was, paid):
            return []
        frozen = []
        for name in values:
            prop = self.property(kind, name)
            if name != "hs_invoice_status" and prop is not None and prop.hubspot_defined:
                frozen.append((code, invoice_states.locked_message(name, was), name))
        return frozen

    def _open_parts(self, item: WriteInput) -> tuple[int, int]:
        """How many contacts and line items an invoice has, counting those this write associates."""
        contacts: set[str] = set()
        line_items: set[str] = set()
        if item.target is not None:
            contacts = {oid for oid, _ in self.linked(item.target, CONTACTS)}
            line_items = {oid for oid, _ in self.linked(item.target, LINE_ITEMS)}
        for _, other in item.associations:
            if other.kind is CONTACTS:
                contacts.add(other.id)
            elif other.kind is LINE_ITEMS:
                line_items.add(other.id)
        return len(contacts), len(line_items)

    def conflicts(self, kind: ObjectTypeDef, writes: list[PreparedWrite]) -> HubSpotError | None:
        """Unique-value clashes, which fail a whole request: contact e-mail 409, other unique values 400."""
        claimed: dict[Key, int] = {}
        for position, write in enumerate(writes):
            own_id = write.input.target.id if write.input.target else None
            for name, value in write.values.items():
                index = self.unique.get((kind.name, name))
                if index is None or not value:
                    continue
                holder = index.get(value)
                if holder is not None and holder != own_id:
                    return self._conflict(kind, name, value, holder)
                earlier = claimed.setdefault((name, value), position)
                if earlier != position:
                    return self._conflict(kind, name, value, None)
        return None

    @staticmethod
    def _conflict(kind: ObjectTypeDef, name: str, value: str, holder: str | None) -> HubSpotError:
        if kind is CONTACTS and name == "email":
            if holder is not None:
                return HubSpotError(
                    409, f"Contact already exists. Existing ID: {holder}", category="CONFLICT"
                )
            return HubSpotError(
                409, f"Duplicate email addresses in batch input: [{value}]", category="CONFLICT"
            )
        where = f" on {kind.label} {holder}" if holder else " twice in this request"
        return bad_request(
            f'Property "{name}" requires unique values; "{value}" is already used{where}.',
            errors=[validation_detail("DUPLICATE_UNIQUE_VALUE", f"{value} is not unique", name)],
            context={"propertyName": [name], **({"ids": [holder]} if holder else {})},
        )

    def commit(
        self, kind: ObjectTypeDef, writes: list[PreparedWrite], *, at_ms: int | None = None
    ) -> list[WriteResult]:
        """Apply validated writes (all of them: conflicts were checked first), then settle what they touched.
        Each result holds the record as it is after settling (with HubSpot's computed values)."""
        with self.lock:
            stamp = self.clock() if at_ms is None else at_ms
            results = [self._apply(kind, write, stamp) for write in writes]
            self.recalculation.run(stamp)
            return [replace(r, record=self.records[kind.name].get(r.record.id, r.record)) for r in results]

    def _apply(self, kind: ObjectTypeDef, write: PreparedWrite, stamp: int) -> WriteResult:
        before = write.input.target
        created = before is None
        props = dict(before.properties) if before else {}
        for name, value in write.values.items():
            if value is None:
                props.pop(name, None)
            else:
                props[name] = value
        if created:
            record_id = str(self.next_id)
            self.next_id += 1
            created_ms = stamp
            props["hs_object_id"] = record_id
            props["createdate"] = iso(stamp)
            self._defaults_on_create(kind, props, stamp)
        else:
            assert before is not None
            record_id, created_ms = before.id, before.created_ms
        props[kind.last_modified] = iso(stamp)
        self._derive(kind, props)
        record = Record(kind, record_id, props, created_ms, stamp)
        self._store(record, before)
        self._report_write(record, before, stamp)
        for assoc, other in write.input.associations:
            self._link(record, other, assoc, stamp)
        self.recalculation.mark(record)
        echoed = [write.input.id_property] if write.input.id_property else []
        written = [*write.values, *echoed, *SYSTEM_PROPERTIES, kind.last_modified]
        return WriteResult(record, created, list(dict.fromkeys(written)), write.input.trace_id)

    def _defaults_on_create(self, kind: ObjectTypeDef, props: dict[str, str], stamp: int) -> None:
        if kind is INVOICES:
            props.setdefault("hs_invoice_status", "draft")
            props.setdefault("hs_invoice_date", iso(stamp))
            props.setdefault("hs_due_date", iso(stamp))
            self.invoice_number += 1
            props["hs_number"] = f"INV-{self.invoice_number}"
        elif kind is COMMERCE_PAYMENTS:
            props.setdefault("hs_latest_status", "processing")
            props.setdefault("hs_payment_creation_method", "OTHER")
            # Set "even for API records" [doc]; its format is not documented: the record id [I].
            props["hs_payment_id"] = props["hs_object_id"]
            props.setdefault("hs_has_associated_invoice", "false")
            props.setdefault("hs_number_of_associated_invoices", "0")
        elif kind is LINE_ITEMS and props.get("hs_product_id"):
            product = self.records[PRODUCTS.name].get(props["hs_product_id"])
            if product is not None:  # a line item made from a product inherits its values, once
                for name in (
                    "name",
                    "price",
                    "hs_sku",
                    "description",
                    "hs_cost_of_goods_sold",
                    "hs_recurring_billing_period",
                ):
                    if name in product.properties:
                        props.setdefault(name, product.properties[name])

    def _derive(self, kind: ObjectTypeDef, props: dict[str, str]) -> None:
        """Values HubSpot computes from the record's own properties."""
        if kind is LINE_ITEMS:
            rate = self.tax_rates.get(props.get("hs_tax_rate_group_id", ""))
            for name in ("hs_tax_rate", "hs_tax_label"):
                props.pop(name, None)
            props.update(commerce.line_item_values(props, rate))
        elif kind is COMMERCE_PAYMENTS:
            props.update(commerce.payment_values(props))

    def republish(self, record: Record, values: dict[str, str], stamp: int) -> None:
        """A new version with HubSpot's recomputed ``values``, if one changed; it moves the last-modified
        date [I: so a watermark read sees a total that moved]."""
        if all(record.properties.get(name) == value for name, value in values.items()):
            return
        stamp = max(stamp, record.updated_ms)
        props = {**record.properties, **values, record.kind.last_modified: iso(stamp)}
        updated = Record(record.kind, record.id, props, record.created_ms, stamp)
        self._store(updated, record)
        self._report_write(updated, record, stamp)

    # ------------------------------------------------------------ reporting
    def _report_write(self, record: Record, before: Record | None, stamp: int) -> None:
        if self.observer is not None:
            old = before.properties if before is not None else None
            for change in write_changes(record.kind, record.id, old, record.properties, stamp):
                self.observer(change)

    def _report_link(self, a: Key, b: Key, type_id: int, *, removed: bool, stamp: int | None = None) -> None:
        if self.observer is not None:
            when = self.clock() if stamp is None else stamp
            self.observer(link_change(a, b, type_id, removed=removed, stamp=when))

    # ------------------------------------------------------------ storing
    def _store(self, record: Record, before: Record | None) -> None:
        name = record.kind.name
        for (kind_name, prop_name), index in self.unique.items():
            if kind_name != name:
                continue
            old = before.properties.get(prop_name) if before else None
            new = record.properties.get(prop_name)
            if old and old != new and index.get(old) == record.id:
                del index[old]
            if new:
                index[new] = record.id
        if before is None:
            self.order[name].append(int(record.id))
        self.records[name][record.id] = record
        self._publish(name, record.id, record)

    def _publish(self, kind_name: str, record_id: str, record: Record | None) -> None:
        if self.search_lag_ms <= 0 and not self.pending:
            self._index(kind_name, record_id, record)
        else:
            self.pending.append((self.clock() + self.search_lag_ms, kind_name, record_id, record))

    def _index(self, kind_name: str, record_id: str, record: Record | None) -> None:
        # Insertion order of an index is id order: ids only grow and an update keeps its slot.
        self.index_version += 1
        if record is None:
            self.index[kind_name].pop(record_id, None)
        else:
            self.index[kind_name][record_id] = record

    def searchable(self, kind: ObjectTypeDef) -> tuple[int, list[Record]]:
        """What search sees now, in id order: the index with every write older than the lag applied,
        and the index version it was read at."""
        with self.lock:
            now = self.clock()
            while self.pending and self.pending[0][0] <= now:
                _, kind_name, record_id, record = self.pending.popleft()
                self._index(kind_name, record_id, record)
            return self.index_version, list(self.index[kind.name].values())

    def archive(self, kind: ObjectTypeDef, record_id: str) -> bool:
        with self.lock:
            record = self.records[kind.name].pop(record_id, None)
            if record is None:
                return False
            stamp = self.clock()
            for (kind_name, prop_name), index in self.unique.items():
                value = record.properties.get(prop_name)
                if kind_name == kind.name and value and index.get(value) == record_id:
                    del index[value]  # an archived record frees its unique values [inf]
            self.archived[kind.name][record_id] = Record(
                kind, record_id, record.properties, record.created_ms, stamp, archived_ms=stamp
            )
            self._publish(kind.name, record_id, None)
            if self.observer is not None:
                self.observer(Change(DELETION, kind.name, record_id, stamp, CHANGE_SOURCE.get()))
            for other in list(self.links.get((kind.name, record_id), {})):
                self._unlink_all((kind.name, record_id), other, stamp)
            self.recalculation.run(stamp)
            return True

    # ------------------------------------------------------------ tax rates
    def add_tax_rate(self, name: str, percentage_rate: Decimal, label: str, active: bool) -> commerce.TaxRate:
        with self.lock:
            rate = commerce.TaxRate(
                str(self.next_tax_rate_id), name, percentage_rate, label, active, self.clock()
            )
            self.next_tax_rate_id += 1
            self.tax_rates[rate.id] = rate
            return rate

    # --------------------------------------------------------- associations
    def _add_type(self, a: Record, b: Record, assoc: AssociationTypeDef, stamp: int | None) -> None:
        a_key, b_key = (a.kind.name, a.id), (b.kind.name, b.id)
        forward = self.links.setdefault(a_key, {}).setdefault(b_key, set())
        backward = self.links.setdefault(b_key, {}).setdefault(a_key, set())
        if assoc.type_id in forward:
            return
        forward.add(assoc.type_id)
        backward.add(assoc.reverse_type_id)
        self.recalculation.mark_pair(a_key, b_key)
        self._report_link(a_key, b_key, assoc.type_id, removed=False, stamp=stamp)
        self._report_link(b_key, a_key, assoc.reverse_type_id, removed=False, stamp=stamp)

    def _link(self, a: Record, b: Record, assoc: AssociationTypeDef, stamp: int | None = None) -> None:
        default = default_association(a.kind.name, b.kind.name)
        if default is not None:  # every labelled association carries the unlabeled one too
            self._add_type(a, b, default, stamp)
        self._add_type(a, b, assoc, stamp)
        if assoc.label == "Primary":
            self._keep_single_primary(a, b, assoc)

    def _keep_single_primary(self, a: Record, b: Record, assoc: AssociationTypeDef) -> None:
        # A contact (or deal) has one primary company: a new primary moves the label [doc].
        for (other_type, other_id), types in list(self.links.get((a.kind.name, a.id), {}).items()):
            if other_type == b.kind.name and other_id != b.id and assoc.type_id in types:
                self._remove_type((a.kind.name, a.id), (other_type, other_id), assoc)

    def associate(
        self, a: Record, b: Record, types: Iterable[AssociationTypeDef], *, replace_labels: bool
    ) -> None:
        """Add ``types`` between a and b; ``replace_labels`` drops labels not named (labelled PUT)."""
        with self.lock:
            wanted = list(types)
            if replace_labels:
                current = self.links.get((a.kind.name, a.id), {}).get((b.kind.name, b.id), set())
                for type_id in list(current):
                    existing = ASSOCIATION_BY_ID.get(type_id)
                    if existing and not existing.is_default and existing not in wanted:
                        self._remove_type((a.kind.name, a.id), (b.kind.name, b.id), existing)
            for assoc in wanted:
                self._link(a, b, assoc)
            self.recalculation.run(self.clock())

    def _remove_type(self, a: Key, b: Key, assoc: AssociationTypeDef) -> None:
        forward = self.links.get(a, {}).get(b, set())
        if assoc.type_id not in forward:
            return
        forward.discard(assoc.type_id)
        self.links.get(b, {}).get(a, set()).discard(assoc.reverse_type_id)
        self.recalculation.mark_pair(a, b)
        self._report_link(a, b, assoc.type_id, removed=True)
        self._report_link(b, a, assoc.reverse_type_id, removed=True)

    def remove_types(self, a: Record, b: Record, types: Iterable[AssociationTypeDef]) -> None:
        """Remove labels; removing the unlabeled default removes every association of the pair [doc]."""
        with self.lock:
            for assoc in types:
                if assoc.is_default:
                    self._unlink_all((a.kind.name, a.id), (b.kind.name, b.id))
                    break
                self._remove_type((a.kind.name, a.id), (b.kind.name, b.id), assoc)
            self.recalculation.run(self.clock())

    def unlink(self, a: Record, b: Record) -> None:
        with self.lock:
            self._unlink_all((a.kind.name, a.id), (b.kind.name, b.id))
            self.recalculation.run(self.clock())

    def _unlink_all(self, a: Key, b: Key, stamp: int | None = None) -> None:
        forward = self.links.get(a, {}).pop(b, set())
        backward = self.links.get(b, {}).pop(a, set())
        if forward or backward:
            self.recalculation.mark_pair(a, b)
        for type_id in sorted(forward):
            self._report_link(a, b, type_id, removed=True, stamp=stamp)
        for type_id in sorted(backward):
            self._report_link(b, a, type_id, removed=True, stamp=stamp)
