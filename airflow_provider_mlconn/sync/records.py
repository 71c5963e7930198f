"""The vocabulary of a sync run: where a record stands, what it needs first, what a load is given
and what it answers.

A load answers each record with one outcome:

- ``Loaded(remote_id)``: the target holds it (``created`` for a new record; ``note`` for the audit);
- ``Failed(error)``: it was **not** written; a retry may help (``retriable=False``: not soon);
- ``Uncertain(error)``: it **may** have been written (a timeout, a dropped connection or a gateway
  error after the request left): the engine confirms it by a lookup before it is ever sent again;
- ``Rejection(reason)``: the target refused the content for good; a person must act.

An entity's ``confirm`` answers ``Loaded`` (found), ``Absent`` (not there: send it) or ``Failed``
(the lookup itself failed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from airflow_provider_mlconn.rejection import Rejection

__all__ = [
    "IN_TARGET",
    "NOT_FINAL",
    "NOT_LOADED",
    "PENDING_LOAD",
    "Absent",
    "ConfirmOutcome",
    "Failed",
    "LoadOutcome",
    "LoadRecord",
    "Loaded",
    "MappedRecord",
    "Operation",
    "Prerequisite",
    "RecordStatus",
    "Rejection",
    "Uncertain",
    "WaitingRecord",
    "WriteMode",
]


class RecordStatus(str, Enum):
    """Where a record of a run stands.

    ``loaded``, ``unchanged``, ``rejected`` and ``waiting`` are final for a run: the watermark moves
    past them. ``waiting`` records need a prerequisite that is not in the target (rejected, or
    never loaded); a later run loads them once it is. ``uncertain`` records may have been written:
    they are confirmed by a lookup before they are sent again.
    """

    STAGED = "staged"
    MAPPED = "mapped"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    WAITING = "waiting"
    LOADED = "loaded"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


#: Statuses a load task still has to work on.
PENDING_LOAD = (RecordStatus.MAPPED, RecordStatus.FAILED, RecordStatus.UNCERTAIN)
#: Statuses that satisfy a prerequisite: the record exists in the target as this run wants it.
IN_TARGET = (RecordStatus.LOADED, RecordStatus.UNCHANGED)
#: Statuses that hold a run's watermark: a retry of the run can still change them.
NOT_FINAL = (RecordStatus.STAGED, RecordStatus.MAPPED, RecordStatus.FAILED, RecordStatus.UNCERTAIN)
#: Statuses of records that did not reach the target (what ``mlconn audit failures`` lists).
NOT_LOADED = (RecordStatus.FAILED, RecordStatus.UNCERTAIN, RecordStatus.REJECTED, RecordStatus.WAITING)


class WriteMode(str, Enum):
    """How an entity's writes behave in the target, which decides what a repeat costs."""

    #: Create or update on a unique key the record carries: repeating a write is harmless.
    UPSERT = "upsert"
    #: Every send creates (a JDE document): never sent twice; an uncertain send is confirmed by a
    #: lookup first, and the engine notes each send before making it (a crash mid-call is uncertain).
    CREATE_ONCE = "create once"
    #: The record replaces a whole set in the target (an association's labels, a property's options).
    REPLACE_SET = "replace set"
    #: One record stands for an aggregate computed from many (a company's open balance).
    AGGREGATE = "aggregate"


class Operation(str, Enum):
    """What a load does with a record: write it, or apply the entity's deletion rule."""

    WRITE = "write"
    DELETE = "delete"


@dataclass(frozen=True)
class Prerequisite:
    """A record that must exist in the target before the dependent one is written.

    ``flow`` names another flow whose id map holds the record (an invoice needs the customers
    flow's company); by default it is the dependent's own flow. With ``by_remote_id`` the key is
    the record's *target* id, and the prerequisite resolves to its *source* key: the id map read
    backwards (the JDE customer behind HubSpot company 123). ``when_missing`` is what a person
    reads when it is not there ("HubSpot company 123 (Acme) has no JDE customer").
    """

    entity: str
    key: str
    flow: str | None = None
    by_remote_id: bool = False
    when_missing: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "key": self.key,
            "flow": self.flow,
            **({"by_remote_id": True} if self.by_remote_id else {}),
            **({"when_missing": self.when_missing} if self.when_missing else {}),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Prerequisite:
        return cls(
            value["entity"],
            value["key"],
            value.get("flow"),
            bool(value.get("by_remote_id", False)),
            value.get("when_missing"),
        )

    def describe(self, own_flow: str) -> str:
        where = f"{self.flow}/" if self.flow and self.flow != own_flow else ""
        if self.by_remote_id:
            return f"{where}{self.entity} with target id {self.key}"
        return f"{where}{self.entity} {self.key}"


@dataclass(frozen=True)
class MappedRecord:
    """What an entity's ``prerequisites`` sees: one mapped record of a run."""

    entity: str
    key: str
    source: Mapping[str, Any]
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class LoadRecord:
    """What ``load``, ``confirm`` and ``delete`` get for each record of a batch.

    ``remote_id`` is the target id from the id map when the record was loaded before (update it,
    do not create a twin); ``prerequisite_ids`` maps each prerequisite to its target id.
    ``attempt`` counts load attempts of this record row, 1 for the first. ``remote_id_shared_by``
    names the other keys of the entity whose last load went to the same target id (several source
    records mapped to one target record), so a load replacing or deleting ``remote_id`` knows
    whether it is still used. ``operation`` is ``delete`` for records a full resync no longer saw.
    """

    entity: str
    key: str
    payload: Mapping[str, Any]
    source: Mapping[str, Any]
    remote_id: str | None
    prerequisite_ids: Mapping[Prerequisite, str]
    attempt: int
    remote_id_shared_by: tuple[str, ...] = ()
    operation: Operation = Operation.WRITE

    def prerequisite_id(self, entity: str, key: str, flow: str | None = None) -> str:
        """The target id of a prerequisite this record declared (KeyError names it otherwise)."""
        for prerequisite, remote_id in self.prerequisite_ids.items():
            if prerequisite.entity == entity and prerequisite.key == key and prerequisite.flow == flow:
                return remote_id
        raise KeyError(f"{self.entity} {self.key} declared no prerequisite {entity} {key}")


@dataclass(frozen=True)
class WaitingRecord:
    """What an entity's ``on_wait`` is told of a record that waits: its source and the reason."""

    entity: str
    key: str
    source: Mapping[str, Any]
    payload: Mapping[str, Any]
    reason: str


@dataclass(frozen=True)
class Loaded:
    """The target holds the record under ``remote_id``; ``created`` is False for an update.

    ``note`` tells the audit trail something a person should know about how it was written (e.g.
    linked to a record the target already had instead of creating a twin). ``also`` names records
    of *other* entities of the flow this write put in place too, as ``(entity, key) -> (remote id,
    payload)``: their id map then knows them, so when their own stream reads them back they are
    ``unchanged`` (an item created in JDE from a HubSpot product is, at that moment, also the
    product the JDE -> HubSpot direction would write).
    """

    remote_id: str
    created: bool = False
    note: str | None = None
    also: Mapping[tuple[str, str], tuple[str, Mapping[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """The write did not happen; ``retriable`` False says a retry soon will not help (quota, auth)."""

    error: str
    retriable: bool = True


@dataclass(frozen=True)
class Uncertain:
    """The write may or may not have happened (the response was lost after the request left)."""

    error: str


@dataclass(frozen=True)
class Absent:
    """``confirm``: the target does not hold the record; it may be sent."""

    note: str | None = None


LoadOutcome = Loaded | Failed | Uncertain | Rejection
ConfirmOutcome = Loaded | Absent | Failed
