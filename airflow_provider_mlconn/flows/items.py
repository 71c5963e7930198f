"""Items, both ways: JD Edwards item master (F4101, base prices F4106) <-> HubSpot products.

Two streams: ``jde`` (an item is changed when its F4101 row or one of its F4106 prices carries an
audit stamp in the window; it is then read whole) and ``hubspot`` (products by last-modified
time). The entities, each declared once at the end:

=========  ================================================  =============================
entity     write                                             when the source lost it
=========  ================================================  =============================
product    upsert on ``jde_item_number`` (F4101.LITM)        ``jde_sync_status = deleted``
jde_item   ``ORCH_55_UpsertItem`` on LITM, after product      -
=========  ================================================  =============================

Field ownership (Variable ``mlconn_items``, ``hubspot_owns``): JDE owns every field it sends unless
HubSpot is given ``name`` or ``description``. A product created in HubSpot becomes a JDE item (its
SKU, or ``HS<id>``, as LITM; settings give stocking type, unit of measure and G/L class) and gets
its ``jde_item_number`` written back; a product whose SKU JDE already has is linked to that item.
A person's edit in HubSpot of a field JDE owns is not sent and not overwritten: it is a conflict
(``jde_sync_status = conflict`` with the field in ``jde_sync_message``) until the item next changes
in JDE, which wins. Writes one side makes because of the other never come back (BEHAVIOR S13):
each product carries a fingerprint of the JDE-owned values we wrote, and an item created from a
product tells the engine it is that product too (``Loaded.also``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mlconn.flows.hubspot_writes import ensure_properties_once, hubspot_load_outcome
from airflow_provider_mlconn.flows.settings import SettingsVariable
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook, JdeBusinessError
from airflow_provider_mlconn.hubspot.models import HubSpotRecord, WriteStatus
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.hubspot.properties import PropertyOption, PropertySpec, jde_group
from airflow_provider_mlconn.hubspot.webhooks import HUBSPOT_IDS_OPTION
from airflow_provider_mlconn.jde import orchestrations as orch
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.dates import JDE_STAMP, JdeTimestamp, window_stamps
from airflow_provider_mlconn.jde.models import BasePriceRow, ItemRow
from airflow_provider_mlconn.mapping.reference_data import (
    PRODUCT_FIELDS,
    FieldOwners,
    ItemDefaults,
    ItemSnapshot,
    hubspot_owned_inputs,
    item_row_after_write,
    new_item_inputs,
    new_item_number,
    product_edits,
    product_properties,
)
from airflow_provider_mlconn.sync.flow import (
    Entity,
    Failed,
    Flow,
    Loaded,
    LoadOutcome,
    LoadRecord,
    Rejection,
    StagingWriter,
    Stream,
    WriteMode,
)
from airflow_provider_mlconn.sync.watermarks import Window

log = logging.getLogger(__name__)

SETTINGS_VARIABLE = "mlconn_items"
PRODUCTS_ASSET = "hubspot://crm/objects/products"
JDE_ITEMS_ASSET = "jde://F4101"
#: Every product property the HubSpot stream reads.
READ_PROPERTIES = (
    *PRODUCT_FIELDS,
    "jde_item_number",
    "jde_short_item_number",
    "jde_sync_status",
    "jde_sync_message",
    "jde_sync_fingerprint",
)


class ItemSettings(BaseModel):
    """The flow's settings: Variable ``mlconn_items`` (JSON object; every field optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jde_conn_id: str = "jde_ais_default"
    hubspot_conn_id: str = "hubspot_default"
    #: Product fields HubSpot owns (``name``, ``description``); the rest are JDE's.
    hubspot_owns: tuple[str, ...] = ()
    #: The portal's currency: the F4106 base price in it becomes the product's price.
    currency: str = Field("USD", min_length=3, max_length=3)
    #: A product created in HubSpot becomes a JDE item (else it is left alone).
    create_items_in_jde: bool = True
    item_defaults: ItemDefaults = ItemDefaults()
    chunk_size: int = Field(100, ge=1, le=500)
    page_size: int | None = Field(None, ge=1)

    @property
    def owners(self) -> FieldOwners:
        return FieldOwners(hubspot=self.hubspot_owns)


_SETTINGS = SettingsVariable(SETTINGS_VARIABLE, ItemSettings)


def read_settings(*, fresh: bool = False) -> ItemSettings:
    return _SETTINGS.get(fresh=fresh)


def server_timezone() -> str:
    return JdeAisHook(read_settings().jde_conn_id).settings.server_timezone


# -- HubSpot properties ----------------------------------------------------------------------------

_GROUP = jde_group(ObjectType.PRODUCTS)
SYNC_STATUS_OPTIONS = (
    PropertyOption(label="In sync with JDE", value="synced", display_order=0),
    PropertyOption(label="Conflict: edited in HubSpot, JDE owns it", value="conflict", display_order=1),
    PropertyOption(label="Refused by JDE", value="rejected", display_order=2),
    PropertyOption(label="Deleted in JDE", value="deleted", display_order=3),
)


def _text(name: str, label: str, description: str, *, unique: bool = False) -> PropertySpec:
    return PropertySpec(
        object_type=ObjectType.PRODUCTS,
        name=name,
        label=label,
        group=_GROUP,
        has_unique_value=unique,
        description=description,
    )


PRODUCT_PROPERTIES = (
    _text("jde_item_number", "JDE item number (LITM)", "F4101.LITM; the sync upserts on it", unique=True),
    _text("jde_short_item_number", "JDE short item number (ITM)", "F4101.ITM"),
    _text("jde_stocking_type", "JDE stocking type (STKT)", "F4101.STKT (UDC 41/I)"),
    _text("jde_unit_of_measure", "JDE unit of measure (UOM1)", "F4101.UOM1"),
    _text("jde_gl_class", "JDE G/L class (GLPT)", "F4101.GLPT"),
    PropertySpec(
        object_type=ObjectType.PRODUCTS,
        name="jde_sync_status",
        label="JDE sync status",
        group=_GROUP,
        type="enumeration",
        field_type="select",
        options=SYNC_STATUS_OPTIONS,
        description="synced, conflict (a field JDE owns was edited here), rejected, deleted in JDE",
    ),
    _text("jde_sync_message", "JDE sync message", "What the last sync found, in words"),
    _text(
        "jde_sync_fingerprint",
        "JDE sync fingerprint",
        "Short hashes of the JDE-owned values the sync wrote: how it tells an edit here from its own write",
    ),
)

# -- extract ---------------------------------------------------------------------------------------


def extract_items(window: Window, writer: StagingWriter) -> datetime | None:
    """Stage the items changed in the window (whole: F4101 row and F4106 prices) as products. A
    webhook run (option ``hubspot_ids``: HubSpot products changed) reads nothing from JDE."""
    if window.options.get(HUBSPOT_IDS_OPTION):
        return None
    settings = read_settings(fresh=True)
    with JdeAisHook(settings.jde_conn_id) as hook:
        zone = hook.server_zone
        as_of = datetime.now(zone).date()
        latest: JdeTimestamp | None = None
        if window.start is None:
            numbers: list[int] = []
            for row in hook.iter_rows("F4101", columns=["ITM"], page_size=settings.page_size):
                numbers.append(int(row["ITM"]))
        else:
            since, until = window_stamps(window.start, window.end, window.source_timezone)
            assert since is not None
            changed: set[int] = set()
            for table_name in ("F4101", "F4106"):
                time_column = "TDAY" if table_name == "F4106" else "UPMT"
                for row in hook.iter_rows(
                    table_name,
                    query=q.changed_since(table_name, since, until),
                    columns=["ITM", "UPMJ", time_column],
                    page_size=settings.page_size,
                ):
                    changed.add(int(row["ITM"]))
                    latest = _later(latest, JdeTimestamp.from_row(row.get("UPMJ"), row.get(time_column)))
            numbers = sorted(changed)
        for chunk in _chunks(numbers, settings.chunk_size):
            for snapshot in _read_items(hook, chunk, settings):
                writer.stage(
                    "product", snapshot["F4101"]["LITM"].strip(), {**snapshot, "as_of": as_of.isoformat()}
                )
                if window.start is None:
                    latest = _later(
                        latest,
                        JdeTimestamp.from_row(snapshot["F4101"].get("UPMJ"), snapshot["F4101"].get("UPMT")),
                    )
        if window.start is None:
            writer.mark_complete("product")
    return None if latest is None else latest.to_datetime(zone)


def _read_items(hook: JdeAisHook, numbers: list[int], settings: ItemSettings) -> Iterator[dict[str, Any]]:
    """The items whole: their F4101 rows, each with its F4106 prices."""
    prices: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in hook.iter_rows("F4106", query=q.in_list("F4106.ITM", numbers), page_size=settings.page_size):
        prices[int(row["ITM"])].append(row)
    for row in hook.iter_rows("F4101", query=q.in_list("F4101.ITM", numbers), page_size=settings.page_size):
        if str(row.get("LITM") or "").strip():
            yield {"F4101": row, "F4106": prices[int(row["ITM"])]}
        else:
            log.warning("item %s has no 2nd item number (LITM); not synced", row["ITM"])


def refresh_products(keys: Sequence[str]) -> dict[str, Mapping[str, Any] | None]:
    """The ``refresh`` of ``product``: the items behind these 2nd item numbers (LITM) read again
    whole, as the extract stages them (a replay, a repair queued by the reconciliation); None for
    an item JDE no longer has."""
    settings = read_settings(fresh=True)
    staged: dict[str, Mapping[str, Any]] = {}
    with JdeAisHook(settings.jde_conn_id) as hook:
        as_of = datetime.now(hook.server_zone).date().isoformat()
        numbers = sorted(
            {
                int(row["ITM"])
                for chunk in _chunks_of(sorted(set(keys)), settings.chunk_size)
                for row in hook.iter_rows(
                    "F4101",
                    query=q.in_list("F4101.LITM", chunk),
                    columns=["ITM"],
                    page_size=settings.page_size,
                )
            }
        )
        for chunk_of_numbers in _chunks(numbers, settings.chunk_size):
            for snapshot in _read_items(hook, chunk_of_numbers, settings):
                staged[snapshot["F4101"]["LITM"].strip()] = {**snapshot, "as_of": as_of}
    return {key: staged.get(key) for key in keys}


def _chunks_of(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _later(current: JdeTimestamp | None, stamp: JdeTimestamp | None) -> JdeTimestamp | None:
    if stamp is None:
        return current
    return stamp if current is None or stamp > current else current


def _chunks(values: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def extract_products(window: Window, writer: StagingWriter) -> datetime | None:
    """Stage the HubSpot products changed in the window, keyed by their JDE item number (or the one
    they will get). A webhook run (option ``hubspot_ids``) stages the products it names, read by id,
    and moves no watermark."""
    settings = read_settings(fresh=True)
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        named = window.options.get(HUBSPOT_IDS_OPTION)
        if named:
            found = hook.read_records(
                ObjectType.PRODUCTS, [str(i) for i in named], properties=READ_PROPERTIES
            )
            for product in found.values():
                _stage_product(writer, product)
            return None
        end = min(window.end, hook.search_horizon())
        start = window.start or datetime(1970, 1, 1, tzinfo=timezone.utc)
        latest: datetime | None = None
        for product in hook.iter_changed_records(
            ObjectType.PRODUCTS, start=start, end=end, properties=READ_PROPERTIES
        ):
            _stage_product(writer, product)
            latest = product.updated_at if latest is None else max(latest, product.updated_at)
    return latest


def _stage_product(writer: StagingWriter, product: HubSpotRecord) -> None:
    properties = product.properties
    number = str(properties.get("jde_item_number") or "").strip() or new_item_number(properties, product.id)
    writer.stage("jde_item", number, {"id": product.id, "properties": dict(properties)})


# -- map -------------------------------------------------------------------------------------------


def map_product(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    settings = read_settings()
    snapshot = ItemSnapshot(
        item=ItemRow.model_validate(source["F4101"]),
        prices=[BasePriceRow.model_validate(row) for row in source["F4106"]],
    )
    return product_properties(
        snapshot,
        owners=settings.owners,
        currency=settings.currency,
        as_of=date.fromisoformat(source["as_of"]),
    )


def map_jde_item(source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    """A HubSpot product -> what it asks of JDE: create the item, report a conflict, or send the
    fields HubSpot owns (possibly none)."""
    settings = read_settings()
    properties = source["properties"]
    number = str(properties.get("jde_item_number") or "").strip()
    if not number:
        if not settings.create_items_in_jde:
            return Rejection("created in HubSpot; creating JDE items is off (Variable mlconn_items)")
        inputs = new_item_inputs(
            properties, item_number=new_item_number(properties, source["id"]), defaults=settings.item_defaults
        )
        return inputs if isinstance(inputs, Rejection) else {"action": "create", "inputs": inputs}
    edits = {
        name: value for name, value in product_edits(properties).items() if name not in settings.hubspot_owns
    }
    if edits:
        return {"action": "conflict", "fields": edits}
    return {"action": "update", "inputs": hubspot_owned_inputs(properties, settings.owners)}


# -- load ------------------------------------------------------------------------------------------


def load_products(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Write products: by HubSpot id when the id map knows the product (a product created in HubSpot
    and linked to its item), else upsert on ``jde_item_number``.

    When HubSpot owns no field, a written product is also, as ``jde_item`` would read it back,
    "nothing to send to JDE" (``Loaded.also``): the read-back is ``unchanged``, not a load.
    """
    settings = read_settings()
    by_key = {r.key: r for r in records}
    known = {r.remote_id: r.key for r in records if r.remote_id}
    fresh = {r.key: r.payload["properties"] for r in records if not r.remote_id}
    results: dict[str, LoadOutcome] = {}
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        ensure_properties_once(hook, PRODUCT_PROPERTIES)
        if fresh:
            upserted = hook.upsert_records(ObjectType.PRODUCTS, fresh, id_property="jde_item_number")
            results.update(
                {key: hubspot_load_outcome(outcome, what="this product") for key, outcome in upserted.items()}
            )
        if known:
            updated = hook.update_records(
                ObjectType.PRODUCTS,
                {remote_id: by_key[key].payload["properties"] for remote_id, key in known.items()},
            )
            lost = {}
            for remote_id, key in known.items():
                outcome = updated[remote_id]
                if outcome.error is not None and (
                    outcome.error.status == 404 or outcome.error.category == "OBJECT_NOT_FOUND"
                ):
                    lost[key] = by_key[key].payload["properties"]  # deleted in HubSpot: made again
                else:
                    results[key] = hubspot_load_outcome(outcome, what="this product")
            if lost:
                upserted = hook.upsert_records(ObjectType.PRODUCTS, lost, id_property="jde_item_number")
                results.update(
                    {
                        key: hubspot_load_outcome(outcome, what="this product")
                        for key, outcome in upserted.items()
                    }
                )
    if settings.owners.hubspot:
        return results
    read_back = {"action": "update", "inputs": {}}
    for key, result in results.items():
        if isinstance(result, Loaded):
            short_number = by_key[key].payload["properties"]["jde_short_item_number"]
            results[key] = replace(result, also={("jde_item", key): (short_number, read_back)})
    return results


def mark_products_deleted(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """The deletion rule of products: HubSpot keeps the product (line items and quotes point at
    it), marked ``jde_sync_status = deleted``."""
    targets = {r.remote_id: r.key for r in records if r.remote_id}
    results: dict[str, LoadOutcome] = {
        r.key: Failed(f"{r.key}: no HubSpot id to mark") for r in records if not r.remote_id
    }
    if targets:
        with HubSpotHook(read_settings().hubspot_conn_id) as hook:
            ensure_properties_once(hook, PRODUCT_PROPERTIES)
            written = hook.update_records(
                ObjectType.PRODUCTS,
                {
                    rid: {
                        "jde_sync_status": "deleted",
                        "jde_sync_message": "the item is no longer in JDE (F4101)",
                    }
                    for rid in targets
                },
            )
        for remote_id, key in targets.items():
            results[key] = hubspot_load_outcome(
                written[remote_id], what="this product", note="deleted in JDE: jde_sync_status set to deleted"
            )
    return results


def load_jde_items(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
    """Create, update or report: see ``map_jde_item``."""
    settings = read_settings()
    results: dict[str, LoadOutcome] = {}
    with JdeAisHook(settings.jde_conn_id) as jde, HubSpotHook(settings.hubspot_conn_id) as hubspot:
        ensure_properties_once(hubspot, PRODUCT_PROPERTIES)
        creates = [r for r in records if r.payload["action"] == "create"]
        conflicts = [r for r in records if r.payload["action"] == "conflict"]
        updates = [r for r in records if r.payload["action"] == "update"]
        if creates:
            results.update(_create_items(jde, hubspot, creates, settings))
        if conflicts:
            results.update(_report_conflicts(hubspot, conflicts, settings))
        for record in updates:
            results[record.key] = _update_item(jde, record)
    return results


def _update_item(jde: JdeAisHook, record: LoadRecord) -> LoadOutcome:
    inputs = {name: value for name, value in record.payload["inputs"].items() if value is not None}
    short = str(record.source["properties"].get("jde_short_item_number") or record.remote_id or record.key)
    if not inputs:
        return Loaded(short, note="nothing HubSpot owns to send")
    try:
        result = jde.upsert_item(orch.ItemInput(item_number=record.key, **inputs))
    except JdeBusinessError as error:
        return Rejection(str(error))
    return Loaded(str(result.short_item_number), note=f"sent to JDE: {', '.join(sorted(inputs))}")


def _create_items(
    jde: JdeAisHook, hubspot: HubSpotHook, records: Sequence[LoadRecord], settings: ItemSettings
) -> dict[str, LoadOutcome]:
    """New JDE items for products created in HubSpot, each written back to its product; a product
    whose item number JDE has already is linked to that item instead."""
    results: dict[str, LoadOutcome] = {}
    existing = {
        str(row["LITM"]).strip(): int(row["ITM"])
        for row in jde.iter_rows(
            "F4101", query=q.in_list("F4101.LITM", [r.key for r in records]), columns=["ITM", "LITM"]
        )
    }
    write_back: dict[str, dict[str, Any]] = {}
    loaded: dict[str, tuple[str, bool, str, dict[str, Any] | None]] = {}
    for record in records:
        product_id = str(record.source["id"])
        if record.key in existing:
            short = existing[record.key]
            write_back[product_id] = {
                "jde_item_number": record.key,
                "jde_short_item_number": str(short),
                "jde_sync_status": "synced",
                "jde_sync_message": f"linked to the JDE item {record.key} that has this SKU",
            }
            loaded[record.key] = (str(short), False, f"linked to existing JDE item {record.key}", None)
            continue
        inputs = dict(record.payload["inputs"])
        try:
            result = jde.upsert_item(orch.ItemInput(**inputs))
        except JdeBusinessError as error:
            results[record.key] = Rejection(str(error))
            write_back[product_id] = {"jde_sync_status": "rejected", "jde_sync_message": str(error)[:500]}
            continue
        snapshot = ItemSnapshot(
            item=ItemRow.model_validate(item_row_after_write(inputs, result.short_item_number))
        )
        as_jde_holds_it = product_properties(
            snapshot, owners=settings.owners, currency=settings.currency, as_of=date.today()
        )
        assert not isinstance(as_jde_holds_it, Rejection)  # the inputs had a name and a number
        write_back[product_id] = dict(as_jde_holds_it["properties"])
        loaded[record.key] = (
            str(result.short_item_number),
            True,
            f"created JDE item {result.item_number} (short {result.short_item_number})",
            dict(as_jde_holds_it),
        )
    written = hubspot.update_records(ObjectType.PRODUCTS, write_back) if write_back else {}
    for record in records:
        if record.key not in loaded:
            continue
        short_number, created, note, product_payload = loaded[record.key]
        product_id = str(record.source["id"])
        back = written[product_id]
        if back.status is WriteStatus.FAILED:
            # JDE has the item (a retry finds it by its number and links); the product lacks the number.
            note += f"; writing jde_item_number back to product {product_id} failed: {back.error}"
            results[record.key] = Failed(note)
            continue
        also = {("product", record.key): (product_id, product_payload)} if product_payload else {}
        results[record.key] = Loaded(short_number, created=created, note=note, also=also)
    return results


def _report_conflicts(
    hubspot: HubSpotHook, records: Sequence[LoadRecord], settings: ItemSettings
) -> dict[str, LoadOutcome]:
    """A person changed fields JDE owns: say so on the product, send nothing to JDE. Read again first:
    when the product flow of this same run already wrote JDE's values over the edit, JDE won."""
    ids = {str(r.source["id"]): r for r in records}
    current = hubspot.read_records(ObjectType.PRODUCTS, ids, properties=READ_PROPERTIES)
    results: dict[str, LoadOutcome] = {}
    marks: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    for product_id, record in ids.items():
        found = current.get(product_id)
        short = str(record.source["properties"].get("jde_short_item_number") or record.key)
        edits = (
            {}
            if found is None
            else {
                name: value
                for name, value in product_edits(found.properties).items()
                if name not in settings.hubspot_owns
            }
        )
        if not edits:
            results[record.key] = Loaded(
                short, note="the edit was overwritten by JDE's own change of the item"
            )
            continue
        described = "; ".join(
            f"{name} is {value!r} here ({PRODUCT_FIELDS[name]} in JDE)"
            for name, value in sorted(edits.items())
        )
        notes[product_id] = (
            f"conflict: changed in HubSpot, but JDE owns it: {described}. Not sent to JDE; the next change "
            f"of item {record.key} in JDE overwrites it (or give the field to HubSpot in {SETTINGS_VARIABLE})"
        )
        marks[product_id] = {"jde_sync_status": "conflict", "jde_sync_message": notes[product_id][:1000]}
    if marks:
        written = hubspot.update_records(ObjectType.PRODUCTS, marks)
        for product_id in marks:
            record = ids[product_id]
            short = str(record.source["properties"].get("jde_short_item_number") or record.key)
            outcome = written[product_id]
            results[record.key] = (
                Loaded(short, note=notes[product_id])
                if outcome.status is not WriteStatus.FAILED
                else hubspot_load_outcome(outcome, what="this product")
            )
    return results


PRODUCT = Entity(
    "product",
    target="hubspot",
    key="jde_item_number = F4101.LITM",
    write=WriteMode.UPSERT,
    map=map_product,
    load=load_products,
    delete=mark_products_deleted,
    refresh=refresh_products,
    asset_uri=PRODUCTS_ASSET,
    call_batch_size=500,
    task_batch_size=5000,
)
JDE_ITEM = Entity(
    "jde_item",
    target="jde",
    key="F4101.LITM = the product's jde_item_number (its SKU, or HS<id>, when new)",
    write=WriteMode.UPSERT,
    map=map_jde_item,
    load=load_jde_items,
    depends_on=("product",),
    asset_uri=JDE_ITEMS_ASSET,
    call_batch_size=50,
    task_batch_size=1000,
)

ITEMS = Flow(
    name="items",
    description=(
        "JD Edwards items (F4101, base prices F4106) and HubSpot products, both ways: JDE owns the "
        "fields it sends; products created in HubSpot become JDE items. See docs/BEHAVIOR.md (F)."
    ),
    streams=(
        Stream("jde", extract=extract_items, codec=JDE_STAMP, timezone_from=server_timezone),
        Stream("hubspot", extract=extract_products),
    ),
    entities=(PRODUCT, JDE_ITEM),
    full_resync_every=timedelta(days=7),
)
