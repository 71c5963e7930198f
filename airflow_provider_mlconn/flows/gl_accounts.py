"""GL accounts and business units, JD Edwards -> HubSpot line-item property options.

One stream (``jde``): when any F0901 (account master) or F0006 (business unit master) row carries
an audit stamp inside the window, the accounts and business units the settings cover are read
whole (a property's option list is replaced as a whole). The entities, each one record:

=======================  ===========================================================
entity                   write
=======================  ===========================================================
gl_account_options       replace the options of line-item property ``jde_gl_account``
business_unit_options    replace the options of line-item property ``jde_business_unit``
=======================  ===========================================================

An account that may not be posted to (PEC not blank), is deleted or falls outside the filter
keeps its option, hidden. A run that finds nothing changed writes nothing. Settings: Variable
``mlconn_gl_accounts`` (``GlAccountSettings``). Rules: docs/BEHAVIOR.md, section F (GL accounts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mlconn.flows.settings import SettingsVariable
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.hubspot.properties import PropertySpec, jde_group
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.dates import JDE_STAMP, JdeTimestamp, window_stamps
from airflow_provider_mlconn.jde.models import AccountRow, BusinessUnitRow
from airflow_provider_mlconn.mapping.reference_data import (
    MAX_OPTIONS,
    AccountFilter,
    OptionLimitExceeded,
    account_options,
    business_unit_options,
    merge_options,
    same_options,
)
from airflow_provider_mlconn.sync.flow import (
    Entity,
    Failed,
    Flow,
    Loaded,
    LoadOutcome,
    LoadRecord,
    StagingWriter,
    Stream,
    WriteMode,
)
from airflow_provider_mlconn.sync.watermarks import Window, WindowMode

log = logging.getLogger(__name__)

SETTINGS_VARIABLE = "mlconn_gl_accounts"
WATCHED_TABLES = ("F0901", "F0006")
LINE_ITEMS_ASSET = "hubspot://crm/properties/line_items"


class GlAccountSettings(BaseModel):
    """The flow's settings: Variable ``mlconn_gl_accounts`` (JSON object; every field optional).

    Charts of accounts differ: set ``object_ranges`` to the revenue (or cost) object accounts sales
    may post to, and ``companies`` to the companies HubSpot sells for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    jde_conn_id: str = "jde_ais_default"
    hubspot_conn_id: str = "hubspot_default"
    object_ranges: tuple[tuple[str, str], ...] = (("4000", "4999"),)
    companies: tuple[str, ...] = ()
    page_size: int | None = Field(None, ge=1)

    @property
    def account_filter(self) -> AccountFilter:
        return AccountFilter(object_ranges=self.object_ranges, companies=self.companies)


_SETTINGS = SettingsVariable(SETTINGS_VARIABLE, GlAccountSettings)


def read_settings(*, fresh: bool = False) -> GlAccountSettings:
    return _SETTINGS.get(fresh=fresh)


def server_timezone() -> str:
    return JdeAisHook(read_settings().jde_conn_id).settings.server_timezone


GL_ACCOUNT_PROPERTY = PropertySpec(
    object_type=ObjectType.LINE_ITEMS,
    name="jde_gl_account",
    label="JDE G/L account",
    group=jde_group(ObjectType.LINE_ITEMS),
    type="enumeration",
    field_type="select",
    description="The JD Edwards account (BU.Object.Subsidiary, F0901) this line posts its revenue to",
)
BUSINESS_UNIT_PROPERTY = PropertySpec(
    object_type=ObjectType.LINE_ITEMS,
    name="jde_business_unit",
    label="JDE business unit",
    group=jde_group(ObjectType.LINE_ITEMS),
    type="enumeration",
    field_type="select",
    description="The JD Edwards business unit (F0006.MCU) that replaces the account's own on this line",
)


# -- extract ---------------------------------------------------------------------------------------


def extract_reference_data(window: Window, writer: StagingWriter) -> datetime | None:
    """Stage both option lists, read whole, when an account or business unit changed (or on a full
    read); see the module doc."""
    settings = read_settings(fresh=True)
    with JdeAisHook(settings.jde_conn_id) as hook:
        latest: JdeTimestamp | None = None
        if window.start is None:
            changed = True
        else:
            since, until = window_stamps(window.start, window.end, window.source_timezone)
            assert since is not None
            changed = False
            for table_name in WATCHED_TABLES:
                for row in hook.iter_rows(
                    table_name,
                    query=q.changed_since(table_name, since, until),
                    columns=["UPMJ", "UPMT"],
                    page_size=settings.page_size,
                ):
                    changed = True
                    latest = _later(latest, JdeTimestamp.from_row(row.get("UPMJ"), row.get("UPMT")))
        if not changed:
            return None
        accounts = list(hook.iter_rows("F0901", query=_account_query(settings), page_size=settings.page_size))
        units = list(hook.iter_rows("F0006", query=_unit_query(settings), page_size=settings.page_size))
        if window.start is None:
            for row in (*accounts, *units):
                latest = _later(latest, JdeTimestamp.from_row(row.get("UPMJ"), row.get("UPMT")))
        writer.stage("gl_account_options", GL_ACCOUNT_PROPERTY.name, {"accounts": accounts})
        writer.stage("business_unit_options", BUSINESS_UNIT_PROPERTY.name, {"business_units": units})
        log.info("staged %d accounts and %d business units", len(accounts), len(units))
        zone = hook.server_zone
    return None if latest is None else latest.to_datetime(zone)


class _Collector:
    """A staging writer that keeps what it is given."""

    def __init__(self) -> None:
        self.staged: dict[str, Mapping[str, Any]] = {}

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None:
        self.staged[entity] = payload

    def mark_complete(self, entity: str) -> None:
        return None


def read_reference_data() -> dict[str, Mapping[str, Any]]:
    """Both option lists' sources, read whole now: entity -> staged source (the reconciliation
    compares them with HubSpot; a repair or a replay re-reads them)."""
    collector = _Collector()
    end = datetime.now(timezone.utc)
    extract_reference_data(Window("jde", JDE_STAMP.name, None, end, WindowMode.RANGE), collector)
    return collector.staged


def refresh_reference_data(entity: str) -> Any:
    """The ``refresh`` of an option list: the list's source read again, whole."""

    def refresh(keys: Sequence[str]) -> dict[str, Mapping[str, Any] | None]:
        source = read_reference_data().get(entity)
        return {key: source for key in keys}

    return refresh


def _later(current: JdeTimestamp | None, stamp: JdeTimestamp | None) -> JdeTimestamp | None:
    if stamp is None:
        return current
    return stamp if current is None or stamp > current else current


def _account_query(settings: GlAccountSettings) -> q.Query:
    ranges = [q.between("F0901.OBJ", low, high) for low, high in settings.object_ranges]
    parts: list[q.Query | q.Condition] = [q.any_of(*ranges) if len(ranges) > 1 else q.all_of(*ranges)]
    if settings.companies:
        parts.append(q.in_list("F0901.CO", settings.account_filter.companies))
    return q.all_of(*parts)


def _unit_query(settings: GlAccountSettings) -> q.Query | None:
    if not settings.companies:
        return None
    return q.all_of(q.in_list("F0006.CO", settings.account_filter.companies))


# -- map -------------------------------------------------------------------------------------------


def map_account_options(source: Mapping[str, Any]) -> Mapping[str, Any]:
    accounts = [AccountRow.model_validate(row) for row in source["accounts"]]
    return {"options": account_options(accounts, read_settings().account_filter)}


def map_business_unit_options(source: Mapping[str, Any]) -> Mapping[str, Any]:
    units = [BusinessUnitRow.model_validate(row) for row in source["business_units"]]
    return {"options": business_unit_options(units, read_settings().account_filter)}


# -- load ------------------------------------------------------------------------------------------


def _merge_within_limit(
    options: Sequence[Mapping[str, Any]], existing: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """JDE's options plus HubSpot's others, hidden; OptionLimitExceeded past HubSpot's limit."""
    merged = merge_options(options, existing)
    if len(merged) > MAX_OPTIONS:
        raise OptionLimitExceeded(
            f"with the options HubSpot keeps hidden the property would hold {len(merged):,} options, "
            f"more than {MAX_OPTIONS:,}; narrow the Variable {SETTINGS_VARIABLE}, or remove hidden "
            "options no line item uses in HubSpot"
        )
    return merged


def replace_options(spec: PropertySpec) -> Any:
    """The load of an option list: the property holds JDE's options, and every option it had that
    JDE no longer lists stays, hidden. Nothing is sent when HubSpot shows that already."""

    def load(records: Sequence[LoadRecord]) -> Mapping[str, LoadOutcome]:
        results: dict[str, LoadOutcome] = {}
        with HubSpotHook(read_settings().hubspot_conn_id) as hook:
            for record in records:
                try:
                    state, now = hook.replace_property_options(
                        spec, list(record.payload["options"]), merge=_merge_within_limit, same=same_options
                    )
                except OptionLimitExceeded as error:
                    results[record.key] = Failed(f"{spec.name}: {error}", retriable=False)
                    continue
                except Exception as error:  # the outcome says which call failed and why
                    results[record.key] = Failed(f"{spec.object_type.value}.{spec.name}: {error}")
                    continue
                hidden = sum(1 for option in now if option.get("hidden"))
                results[record.key] = Loaded(
                    f"{spec.object_type.value}.{spec.name}",
                    created=state == "created",
                    note=f"{state}: {len(now) - hidden} options shown, {hidden} hidden",
                )
        return results

    return load


GL_ACCOUNT_OPTIONS = Entity(
    "gl_account_options",
    target="hubspot",
    key="the property line_items.jde_gl_account (one record)",
    write=WriteMode.REPLACE_SET,
    map=map_account_options,
    load=replace_options(GL_ACCOUNT_PROPERTY),
    refresh=refresh_reference_data("gl_account_options"),
    asset_uri=LINE_ITEMS_ASSET,
    call_batch_size=1,
)
BUSINESS_UNIT_OPTIONS = Entity(
    "business_unit_options",
    target="hubspot",
    key="the property line_items.jde_business_unit (one record)",
    write=WriteMode.REPLACE_SET,
    map=map_business_unit_options,
    load=replace_options(BUSINESS_UNIT_PROPERTY),
    refresh=refresh_reference_data("business_unit_options"),
    asset_uri=LINE_ITEMS_ASSET,
    call_batch_size=1,
)

GL_ACCOUNTS = Flow(
    name="gl_accounts",
    description=(
        "JD Edwards accounts (F0901) and business units (F0006) to the options of the HubSpot "
        "line-item properties jde_gl_account and jde_business_unit. See docs/BEHAVIOR.md (F)."
    ),
    streams=(Stream("jde", extract=extract_reference_data, codec=JDE_STAMP, timezone_from=server_timezone),),
    entities=(GL_ACCOUNT_OPTIONS, BUSINESS_UNIT_OPTIONS),
    # An account deleted in JDE leaves no stamp: a weekly full read hides its option.
    full_resync_every=timedelta(days=7),
)
