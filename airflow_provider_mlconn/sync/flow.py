"""How a flow plugs into the engine: its streams (what it polls) and its entities (what it writes).

The engine knows neither remote API. A flow names:

- its **streams**: each polls one source by change time with ``extract(window, writer) ->
  high-water mark``, staging source records with ``writer.stage(entity, key, payload)``;
- its **entities**: each owns its behaviour, declared in one place: its key and write semantics
  (``WriteMode``), ``map(source) -> payload | Rejection`` (pure), ``prerequisites(record)``,
  ``load(records) -> {key: outcome}``, and where it applies ``confirm`` (look a record up by its
  business key after an uncertain write), ``delete`` (what a record the source no longer has
  becomes in the target), ``refresh`` (re-read the current source of records that wait) and
  ``echo_of`` / ``echo_view`` (a two-way flow: reading back what we wrote costs nothing).

Hooks are created inside the callables by the flow, never by the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_mlconn.sync.errors import FlowDefinitionError
from airflow_provider_mlconn.sync.ordering import load_stages
from airflow_provider_mlconn.sync.records import (
    IN_TARGET,
    PENDING_LOAD,
    Absent,
    ConfirmOutcome,
    Failed,
    Loaded,
    LoadOutcome,
    LoadRecord,
    MappedRecord,
    Prerequisite,
    RecordStatus,
    Rejection,
    Uncertain,
    WaitingRecord,
    WriteMode,
)
from airflow_provider_mlconn.sync.watermarks import ISO_INSTANT, TimeCodec, Window

__all__ = [
    "IN_TARGET",
    "MANAGED_POOL_TARGETS",
    "PENDING_LOAD",
    "Absent",
    "ConfirmOutcome",
    "Entity",
    "Failed",
    "Flow",
    "LoadOutcome",
    "LoadRecord",
    "Loaded",
    "MappedRecord",
    "Prerequisite",
    "RecordStatus",
    "Rejection",
    "StagingWriter",
    "Stream",
    "Uncertain",
    "WaitingRecord",
    "WriteMode",
]

_FLOW_OR_ENTITY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: Targets whose pool (``mlconn_<target>``) the engine creates; others need an explicit ``pool``.
MANAGED_POOL_TARGETS = ("hubspot", "jde")
_STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,62}$")


class StagingWriter(Protocol):
    """Where ``extract`` puts source records; buffered, flushed in chunks (constant memory)."""

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None: ...

    def mark_complete(self, entity: str) -> None:
        """Say that this run staged every key the source has for ``entity`` (a full read), so keys
        the id map knows and the run did not see were deleted at the source."""


ExtractFn = Callable[[Window, StagingWriter], "datetime | None"]
MapFn = Callable[[Mapping[str, Any]], Any]
PrerequisitesFn = Callable[[MappedRecord], Iterable[Prerequisite]]
LoadFn = Callable[[Sequence[LoadRecord]], Mapping[str, LoadOutcome]]
ConfirmFn = Callable[[Sequence[LoadRecord]], Mapping[str, ConfirmOutcome]]
RefreshFn = Callable[[Sequence[str]], Mapping[str, "Mapping[str, Any] | None"]]
EchoViewFn = Callable[[Mapping[str, Any]], Mapping[str, Any]]
OnWaitFn = Callable[[Sequence[WaitingRecord]], None]
BatchKeyFn = Callable[[Mapping[str, Any]], "str | None"]


def no_prerequisites(record: MappedRecord) -> Iterable[Prerequisite]:
    """The default ``prerequisites``: nothing must exist first."""
    return ()


@dataclass(frozen=True)
class Stream:
    """One source polled by change time; it owns the watermark Variable
    ``mlconn_watermark__<flow>__<stream>``.

    ``codec`` says how the source writes change times (ISO instants by default; a JDE stream brings
    the UPMJ/UPMT codec) and so what its Variable shows beside the instant. ``source_timezone`` is
    the zone those times are local to; ``timezone_from``, when given, names it at run time instead
    (e.g. read from the JDE connection), so a DAG file never looks up a connection while it is
    parsed. ``initial_start`` is where the first run starts when no watermark exists (``None``:
    from the beginning).
    """

    name: str
    extract: ExtractFn
    codec: TimeCodec = ISO_INSTANT
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
    """One kind of record the flow writes, e.g. ``company``, with everything it does.

    - ``key`` names the record's key in words (``"jde_address_number = F0101.AN8"``) and ``write``
      its write semantics; ``describe()`` gives both in one line (the DAG's documentation).
    - ``map(source)`` returns the payload (a mapping or pydantic model) or a ``Rejection``; pure.
    - ``prerequisites(record)`` names the records that must be in the target first; their entities
      must be in ``depends_on`` (so they load first).
    - ``load(records)`` writes a batch and answers each key with an outcome.
    - ``confirm(records)`` looks records up by their business key after an uncertain write;
      required for ``WriteMode.CREATE_ONCE``.
    - ``delete(records)`` applies the deletion rule to records a full read no longer saw (None: the
      entity has none; such records stay in the target as last written).
    - ``refresh(keys)`` re-reads the current source of records that wait (None: their stored
      source is mapped again); a key the source no longer has maps to None.
    - ``echo_of`` names the entity of the other direction of a two-way flow, and
      ``echo_view(source)`` gives this entity's source in that entity's payload shape: a record
      whose view equals what that entity last wrote is our own write read back and costs no call.
    - ``on_wait(records)`` is told of records that wait for a prerequisite, with the reason (to
      show it in the source system); its failure is logged, never the load's.

    - ``batch_key(payload)`` names what the target keeps once across records (a contact's e-mail):
      records with the same key go to the same load batch, so batches loading side by side never
      race for one target record (None: the record may go to any batch).

    ``target`` names the remote system; load tasks run in the pool ``mlconn_<target>`` unless
    ``pool`` says otherwise. ``call_batch_size`` records go to one ``load`` call; one load task
    handles up to ``task_batch_size``; at most ``max_batches`` load tasks per run (they run in
    parallel within the pool). ``asset_uri`` names the Airflow Asset its load tasks update.
    """

    name: str
    target: str
    key: str
    write: WriteMode
    map: MapFn
    load: LoadFn
    depends_on: tuple[str, ...] = ()
    prerequisites: PrerequisitesFn = no_prerequisites
    confirm: ConfirmFn | None = None
    delete: LoadFn | None = None
    refresh: RefreshFn | None = None
    echo_of: str | None = None
    echo_view: EchoViewFn | None = None
    on_wait: OnWaitFn | None = None
    batch_key: BatchKeyFn | None = None
    call_batch_size: int = 100
    task_batch_size: int = 1000
    max_batches: int = 16
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
        if self.max_batches < 1:
            raise FlowDefinitionError(f"entity {self.name}: max_batches must be at least 1")
        if self.write is WriteMode.CREATE_ONCE and self.confirm is None:
            raise FlowDefinitionError(
                f"entity {self.name} creates once ({self.write.value}) and so needs confirm=: a write "
                "whose response was lost must be looked up before it is ever sent again"
            )
        if (self.echo_of is None) != (self.echo_view is None):
            raise FlowDefinitionError(f"entity {self.name}: echo_of and echo_view go together")

    @property
    def pool_name(self) -> str:
        return self.pool or f"mlconn_{self.target}"

    def describe(self) -> str:
        """One line: what the entity writes, keyed how, with which semantics."""
        after = f", after {', '.join(self.depends_on)}" if self.depends_on else ""
        extras = [
            word
            for word, present in (
                ("confirms uncertain writes", self.confirm is not None),
                ("deletes", self.delete is not None),
                (f"echo of {self.echo_of}", self.echo_of is not None),
            )
            if present
        ]
        more = f" ({'; '.join(extras)})" if extras else ""
        return f"{self.name} -> {self.target}: {self.write.value} on {self.key}{after}{more}"


@dataclass(frozen=True)
class Flow:
    """A sync flow: the streams it polls and the entities it writes.

    ``overlap`` is taken off the watermark when a scheduled run starts (late commits, same-second
    changes); ``safety_lag`` keeps the window end that far behind now (search indexes and
    in-flight transactions catch up). Both can be overridden per run (params ``overlap_minutes``,
    ``safety_lag_minutes``) or per flow (Variable ``mlconn_window__<flow>``). ``max_wait`` is how
    long a record may wait for a prerequisite before it is rejected. ``full_resync_every`` makes a
    scheduled run read everything again that often (so deletions at the source are seen).
    """

    name: str
    streams: tuple[Stream, ...]
    entities: tuple[Entity, ...]
    overlap: timedelta = timedelta(minutes=10)
    safety_lag: timedelta = timedelta(minutes=2)
    max_wait: timedelta = timedelta(days=7)
    full_resync_every: timedelta | None = None
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
        if self.max_wait <= timedelta(0):
            raise FlowDefinitionError(f"flow {self.name}: max_wait must be positive")
        if self.full_resync_every is not None and self.full_resync_every <= timedelta(0):
            raise FlowDefinitionError(f"flow {self.name}: full_resync_every must be positive or None")
        declared = {e.name for e in self.entities}
        for entity in self.entities:
            if entity.echo_of is not None and entity.echo_of not in declared:
                raise FlowDefinitionError(
                    f"flow {self.name}: entity {entity.name} is an echo of {entity.echo_of!r}, which the "
                    f"flow does not declare"
                )
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

    def describe(self) -> str:
        """The flow's entities, one line each (for the DAG's documentation)."""
        return "\n".join(f"- {entity.describe()}" for entity in self.entities)
