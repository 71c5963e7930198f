"""What the store hands out and takes in: plain frozen records, decrypted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.records import Operation, Prerequisite, RecordStatus


def run_key_for(dag_id: str, run_id: str) -> str:
    """The store's name for one DAG run: ``<dag_id>/<run_id>``."""
    return f"{dag_id}/{run_id}"


#: The columns that say which task instance touched a record, in the order of ``Actor.values()``.
ACTOR_COLUMNS = ("dag_id", "run_id", "task_id", "try_number", "map_index")


@dataclass(frozen=True)
class Actor:
    """The task instance touching records; ``owner`` (without the try) holds claims across tries."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int = 1
    map_index: int = -1

    @property
    def owner(self) -> str:
        return f"{self.dag_id}/{self.run_id}/{self.task_id}/{self.map_index}"

    def columns(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "try_number": self.try_number,
            "map_index": self.map_index,
        }

    def values(self) -> tuple[str, str, str, int, int]:
        """``columns()`` as a tuple in ``ACTOR_COLUMNS`` order (bulk writes)."""
        return (self.dag_id, self.run_id, self.task_id, self.try_number, self.map_index)

    def describe(self) -> str:
        index = f"[{self.map_index}]" if self.map_index != -1 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index} try {self.try_number}"


@dataclass(frozen=True)
class RunRef:
    """One run of a flow as the store knows it."""

    flow: str
    dag_id: str
    run_id: str
    run_type: str | None = None

    @property
    def run_key(self) -> str:
        return run_key_for(self.dag_id, self.run_id)


@dataclass(frozen=True)
class Sealed:
    """A record's encrypted texts as stored, and the cipher that opens them."""

    cipher: PayloadCipher
    source: str
    payload: str | None
    error: str | None


@dataclass(frozen=True)
class StoredRecord:
    """One record row. ``source``, ``payload`` and ``error`` are decrypted when first read (a step
    that does not look at them does not pay for them)."""

    id: int
    run_key: str
    flow: str
    entity: str
    key: str
    payload_hash: str | None
    status: RecordStatus
    attempts: int
    remote_id: str | None
    change: str | None
    prerequisites: tuple[Prerequisite, ...]
    batch: int | None
    touched_by: str
    created_at: datetime
    updated_at: datetime
    sealed: Sealed = field(repr=False, compare=False)
    operation: Operation = Operation.WRITE
    waiting_since: datetime | None = None

    # Opened once, kept in the instance's __dict__ (functools.cached_property takes a lock on every
    # read in Python 3.11: microseconds per record on the load's hot path).
    @property
    def source(self) -> Mapping[str, Any]:
        opened: Mapping[str, Any] = self._opened("source")
        return opened

    @property
    def payload(self) -> Mapping[str, Any] | None:
        opened: Mapping[str, Any] | None = self._opened("payload")
        return opened

    @property
    def error(self) -> str | None:
        opened: str | None = self._opened("error")
        return opened

    def _opened(self, name: str) -> Any:
        cache = self.__dict__
        key = f"_opened_{name}"
        if key not in cache:
            cache[key] = self.sealed.cipher.decrypt(getattr(self.sealed, name))
        return cache[key]


@dataclass(frozen=True)
class StagedSource:
    """A source being staged, as the map step sees a record: ``id`` is its place in the chunk until
    the store numbers it (mapping while staging)."""

    id: int
    entity: str
    key: str
    source: Mapping[str, Any]
    attempts: int = 0
    operation: Operation = Operation.WRITE


#: Maps the new records of a staged chunk (``StagedSource`` ids are places in the list) to their
#: mapping results; None leaves them ``staged`` for the map step.
ChunkMapper = Callable[[Sequence[StagedSource]], Sequence["MappingResult"] | None]


@dataclass(frozen=True)
class RecordEvent:
    """One step of a record's history (audit trail)."""

    id: int
    record_id: int
    at: datetime
    action: str
    status: RecordStatus
    attempt: int
    remote_id: str | None
    change: str | None
    error: str | None
    payload_hash: str | None
    actor: str


@dataclass(frozen=True)
class RunSummary:
    run_key: str
    flow: str
    dag_id: str
    run_id: str
    run_type: str | None
    created_at: datetime
    committed_at: datetime | None
    windows: Mapping[str, Any]
    high_water: Mapping[str, Any]
    committed: Mapping[str, Any]
    counts: Mapping[str, int]


@dataclass(frozen=True)
class IdMapEntry:
    """Where a source key stands in the target: its id, what we last wrote, what it linked to."""

    remote_id: str
    last_loaded_hash: str
    last_record_id: int
    last_links: Mapping[str, str] = field(default_factory=dict)
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class MappingResult:
    """The map step's verdict on one record (``error`` is a rejection reason, or a note)."""

    record_id: int
    status: RecordStatus
    attempts: int
    payload: Mapping[str, Any] | None = None
    payload_hash: str | None = None
    remote_id: str | None = None
    error: str | None = None
    #: What the record needs in the target first, as its entity declares (None: not worked out).
    prerequisites: tuple[Prerequisite, ...] | None = None


@dataclass(frozen=True)
class OutcomeRow:
    """A load outcome to persist. ``attempted`` False means no call was made for it.

    ``error`` is the reason a record did not load, or the note of one that did (encrypted alike).
    ``links`` are the prerequisite target ids a loaded record was written against (kept in the id
    map, so a later run sees when a prerequisite moved). ``deleted`` marks the outcome of a
    deletion rule: the id map remembers the key is gone from the source.
    """

    record_id: int
    status: RecordStatus
    attempted: bool
    remote_id: str | None = None
    change: str | None = None
    error: str | None = None
    links: Mapping[str, str] | None = None
    deleted: bool = False
    #: Other entities' records this write put in place: (entity, key, remote id, payload hash).
    also: tuple[tuple[str, str, str, str], ...] = ()


@dataclass
class StagingCounts:
    new: int = 0
    changed: int = 0
    same: int = 0
    per_entity: Counter[str] = field(default_factory=Counter)
    #: Records mapped as they were staged, per status (``ChunkMapper``).
    mapped: Counter[str] = field(default_factory=Counter)
    #: The ids this chunk staged (new or changed) and left ``staged``; not carried over by ``add``.
    ids: list[int] = field(default_factory=list, repr=False)
    #: The run held a key of this chunk that was staged as new (staged again with a lookup).
    conflicted: bool = False

    def add(self, other: StagingCounts) -> None:
        self.new += other.new
        self.changed += other.changed
        self.same += other.same
        self.per_entity.update(other.per_entity)
        self.mapped.update(other.mapped)
