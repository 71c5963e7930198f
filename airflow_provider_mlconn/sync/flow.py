"""How a flow plugs into the engine: a ``Flow`` spec and the four callables it supplies.

The engine knows neither remote API. A flow names its streams (what it polls, by change time),
its entities (what it writes, in which order, to which system) and gives four callables:

- ``extract(window, writer) -> high-water mark``: stream the changes of one window into the store
  with ``writer.stage(entity, key, payload)``; return the latest change time seen (or ``None``).
- ``map(entity, source_payload) -> payload | Rejection``: pure; a ``Rejection`` carries a reason a
  person can act on.
- ``dependencies(record) -> prerequisites``: which records must exist in the target first.
- ``load(entity, records) -> {key: Loaded | Failed | Rejection}``: write a batch, say how each went.

Hooks are created inside the callables by the flow, never by the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_mlconn.sync.errors import FlowDefinitionError
from airflow_provider_mlconn.sync.ordering import load_stages
from airflow_provider_mlconn.sync.watermarks import WatermarkKind, Window

_FLOW_OR_ENTITY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: Targets whose pool (``mlconn_<target>``) the engine creates; others need an explicit ``pool``.
MANAGED_POOL_TARGETS = ("hubspot", "jde")
_STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,62}$")


class RecordStatus(str, Enum):
    """Where a record of a run stands.

    ``loaded``, ``unchanged``, ``rejected`` and ``waiting`` are final for a run: the watermark
    moves past them. ``waiting`` records need a prerequisite that is not in the target (rejected,
    or never loaded); a later run loads them once it is.
    """

    STAGED = "staged"
    MAPPED = "mapped"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    WAITING = "waiting"
    LOADED = "loaded"
    FAILED = "failed"


#: Statuses a load task still has to work on.
PENDING_LOAD = (RecordStatus.MAPPED, RecordStatus.FAILED)
#: Statuses that satisfy a prerequisite: the record exists in the target as this run wants it.
IN_TARGET = (RecordStatus.LOADED, RecordStatus.UNCHANGED)


@dataclass(frozen=True)
class Rejection:
    """The record cannot be written as it is; ``reason`` tells a person what to fix.

    Returned by ``map`` (the source is not mappable) or by ``load`` (the target refused the content
    for good). The rest of the run goes on; a replay re-maps and loads it after the fix.
    """

    reason: str


@dataclass(frozen=True)
class Loaded:
    """The target holds the record under ``remote_id``; ``created`` is False for an update.

    ``note`` tells the audit trail something a person should know about how it was written (e.g.
    linked to a record the target already had instead of creating a twin).
    """

    remote_id: str
    created: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Failed:
    """The write did not happen; ``retriable`` False says a retry soon will not help (quota, auth)."""

    error: str
    retriable: bool = True


LoadOutcome = Loaded | Failed | Rejection


@dataclass(frozen=True)
class Prerequisite:
    """A record that must exist in the target before the dependent one is written.

    ``flow`` names another flow whose id map holds the record (an invoice needs the customers
    flow's company); by default it is the dependent's own flow.
    """

    entity: str
    key: str
    flow: str | None = None

    def describe(self, own_flow: str) -> str:
        where = f"{self.flow}/" if self.flow and self.flow != own_flow else ""
        return f"{where}{self.entity} {self.key}"


@dataclass(frozen=True)
class MappedRecord:
    """What ``dependencies`` sees: one mapped record of a run."""

    entity: str
    key: str
    source: Mapping[str, Any]
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class LoadRecord:
    """What ``load`` gets for each record of a batch.

    ``remote_id`` is the target id from the id map when the record was loaded before (update it,
    do not create a twin); ``prerequisite_ids`` maps each prerequisite to its target id.
    ``attempt`` counts load attempts of this record row, 1 for the first. ``remote_id_shared_by``
    names the other keys of the entity whose last load went to the same target id (records linked
    to one target record), so a load replacing ``remote_id`` knows whether the old one is still used.
    """

    entity: str
    key: str
    payload: Mapping[str, Any]
    source: Mapping[str, Any]
    remote_id: str | None
    prerequisite_ids: Mapping[Prerequisite, str]
    attempt: int
    remote_id_shared_by: tuple[str, ...] = ()

    def prerequisite_id(self, entity: str, key: str, flow: str | None = None) -> str:
        """The target id of a prerequisite this record declared (KeyError names it otherwise)."""
        for prerequisite, remote_id in self.prerequisite_ids.items():
            if prerequisite.entity == entity and prerequisite.key == key and prerequisite.flow == flow:
                return remote_id
        raise KeyError(f"{self.entity} {self.key} declared no prerequisite {entity} {key}")


class StagingWriter(Protocol):
    """Where ``extract`` puts source records; buffered, flushed in chunks (constant memory)."""

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None: ...


ExtractFn = Callable[[Window, StagingWriter], "datetime | None"]
MapFn = Callable[[str, Mapping[str, Any]], Any]
DependenciesFn = Callable[[MappedRecord], Iterable[Prerequisite]]
LoadFn = Callable[[str, Sequence[LoadRecord]], Mapping[str, LoadOutcome]]


def no_dependencies(record: MappedRecord) -> Iterable[Prerequisite]:
    """The default ``dependencies``: nothing must exist first."""
    return ()


@dataclass(frozen=True)
class Stream:
    """One source polled by change time; it owns the watermark Variable
    ``mlconn_watermark__<flow>__<stream>``.

    ``kind`` says how the mark is written: ``JDE_DATE_TIME`` (Julian date + HHMMSS in
    ``source_timezone``, the JDE server's zone) or ``ISO_TIMESTAMP``. ``timezone_from``, when given,
    names the zone at run time instead (e.g. read from the JDE connection), so a DAG file never
    looks up a connection while it is parsed. ``initial_start`` is where the first run starts when
    no watermark exists (``None``: from the beginning).
    """

    name: str
    extract: ExtractFn
    kind: WatermarkKind = WatermarkKind.ISO_TIMESTAMP
    source_timezone: str = "UTC"
    initial_start: datetime | None = None
    timezone_from: Callable[[], str] | None = None

    def resolve_timezone(self) -> str:
        """The source's zone for this run: ``timezone_from()`` if given, else ``source_timezone``."""
        if self.timezone_from is None:
            return self.source_timezone
        zone = self.timezone_from()
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise FlowDefinitionError(
                f"stream {self.name}: timezone_from() gave {zone!r}, which is not an IANA time zone"
            ) from error
        return zone

    def __post_init__(self) -> None:
        if not _STREAM_NAME.match(self.name):
            raise FlowDefinitionError(
                f"stream name {self.name!r} must be letters, digits and '_' (it is part of a Variable name)"
            )
        try:
            ZoneInfo(self.source_timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise FlowDefinitionError(
                f"stream {self.name}: source_timezone {self.source_timezone!r} is not an IANA time zone"
            ) from error
        if self.initial_start is not None and self.initial_start.tzinfo is None:
            raise FlowDefinitionError(f"stream {self.name}: initial_start must carry a time zone")


@dataclass(frozen=True)
class Entity:
    """One kind of record the flow writes, e.g. ``company``.

    ``target`` names the remote system (``hubspot``, ``jde``); its load tasks run in the Airflow pool
    ``mlconn_<target>`` unless ``pool`` says otherwise. ``depends_on`` lists entities whose records
    must be loaded first. ``call_batch_size`` records go to one ``load`` call (HubSpot batch writes
    take 100); one load task handles up to ``task_batch_size`` records. ``asset_uri`` names the
    Airflow Asset its load tasks update (so other DAGs can be scheduled on this entity's writes).
    """

    name: str
    target: str
    depends_on: tuple[str, ...] = ()
    call_batch_size: int = 100
    task_batch_size: int = 1000
    pool: str | None = None
    asset_uri: str | None = None

    def __post_init__(self) -> None:
        if not _FLOW_OR_ENTITY_NAME.match(self.name):
            raise FlowDefinitionError(f"entity name {self.name!r} must match {_FLOW_OR_ENTITY_NAME.pattern}")
        if not _FLOW_OR_ENTITY_NAME.match(self.target):
            raise FlowDefinitionError(f"entity {self.name}: target {self.target!r} must be a lowercase name")
        if self.pool is None and self.target not in MANAGED_POOL_TARGETS:
            raise FlowDefinitionError(
                f"entity {self.name}: no pool is created for target {self.target!r} (only for "
                f"{list(MANAGED_POOL_TARGETS)}); give pool= an existing Airflow pool, else its load "
                "tasks are never scheduled"
            )
        if self.call_batch_size < 1 or self.task_batch_size < self.call_batch_size:
            raise FlowDefinitionError(
                f"entity {self.name}: need 1 <= call_batch_size <= task_batch_size, got "
                f"{self.call_batch_size} and {self.task_batch_size}"
            )

    @property
    def pool_name(self) -> str:
        return self.pool or f"mlconn_{self.target}"


@dataclass(frozen=True)
class Flow:
    """A sync flow: what it polls, what it writes, and the callables that do the remote work.

    ``overlap`` is taken off the watermark when a scheduled run starts (late commits, same-second
    changes); ``safety_lag`` keeps the window end that far behind now (search indexes and
    in-flight transactions catch up). Both can be overridden per run (params ``overlap_minutes``,
    ``safety_lag_minutes``) or per flow (Variable ``mlconn_window__<flow>``).
    ``max_batches_per_entity`` caps the mapped load tasks of one entity (Airflow's
    ``max_map_length`` caps it too); batches grow when a run has more records.
    """

    name: str
    streams: tuple[Stream, ...]
    entities: tuple[Entity, ...]
    map: MapFn
    load: LoadFn
    dependencies: DependenciesFn = no_dependencies
    overlap: timedelta = timedelta(minutes=10)
    safety_lag: timedelta = timedelta(minutes=2)
    max_batches_per_entity: int = 16
    description: str = ""
    _stages: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _FLOW_OR_ENTITY_NAME.match(self.name):
            raise FlowDefinitionError(f"flow name {self.name!r} must match {_FLOW_OR_ENTITY_NAME.pattern}")
        if not self.streams:
            raise FlowDefinitionError(f"flow {self.name} declares no stream")
        if not self.entities:
            raise FlowDefinitionError(f"flow {self.name} declares no entity")
        for kind, names in (
            ("stream", [s.name for s in self.streams]),
            ("entity", [e.name for e in self.entities]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise FlowDefinitionError(f"flow {self.name} declares {kind} {duplicates} twice")
        if self.overlap < timedelta(0) or self.safety_lag < timedelta(0):
            raise FlowDefinitionError(f"flow {self.name}: overlap and safety_lag must not be negative")
        if self.max_batches_per_entity < 1:
            raise FlowDefinitionError(f"flow {self.name}: max_batches_per_entity must be at least 1")
        try:
            stages = load_stages({e.name: e.depends_on for e in self.entities})
        except ValueError as error:
            raise FlowDefinitionError(f"flow {self.name}: {error}") from error
        object.__setattr__(self, "_stages", tuple(stages))

        from airflow_provider_mlconn.sync.registry import register_flow

        register_flow(self)

    @property
    def stages(self) -> tuple[tuple[str, ...], ...]:
        """Entities in load order: every entity comes after the ones it depends on."""
        return self._stages

    def entity(self, name: str) -> Entity:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise FlowDefinitionError(
            f"flow {self.name} has no entity {name!r}; it has {[e.name for e in self.entities]}"
        )

    def stream(self, name: str) -> Stream:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise FlowDefinitionError(
            f"flow {self.name} has no stream {name!r}; it has {[s.name for s in self.streams]}"
        )
