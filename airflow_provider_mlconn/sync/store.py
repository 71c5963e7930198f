"""The store: staging area, audit trail and id map in one SQLAlchemy database.

SQLite under ``$AIRFLOW_HOME/mlconn/`` by default (WAL, busy timeout, ``BEGIN IMMEDIATE`` so
writers queue instead of failing), any PostgreSQL URL through the ``mlconn_store`` connection for
several workers. Payloads and error texts are Fernet-encrypted (``crypto``); keys, ids, statuses
and hashes are clear so they can be queried.

Concurrency: a load claims its records in one transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the database write lock on SQLite) and writes each outcome only while it still holds
the claim, so two workers never load the same record. A claim older than ``claim_timeout`` is
taken over (the worker died); the same task instance (a later try) takes its own claims at once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.errors import CallableContractError, StoreConfigurationError
from airflow_provider_mlconn.sync.flow import IN_TARGET, PENDING_LOAD, Prerequisite, RecordStatus
from airflow_provider_mlconn.sync.ordering import PrerequisiteState
from airflow_provider_mlconn.sync.schema import id_map, migrate, record_events, records, runs

log = logging.getLogger(__name__)

T = TypeVar("T")
UTC = timezone.utc
STORE_CONN_ID = "mlconn_store"
_CHUNK = 500
IN_TARGET_VALUES = frozenset(status.value for status in IN_TARGET)
_KEY_LENGTH = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    """Slices of at most ``size`` items (keeps IN lists and statements small)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_key_for(dag_id: str, run_id: str) -> str:
    """The store's name for one DAG run: ``<dag_id>/<run_id>``."""
    return f"{dag_id}/{run_id}"


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
class StoredRecord:
    """One record row, decrypted."""

    id: int
    run_key: str
    flow: str
    entity: str
    key: str
    source: Mapping[str, Any]
    payload: Mapping[str, Any] | None
    payload_hash: str | None
    status: RecordStatus
    attempts: int
    remote_id: str | None
    change: str | None
    error: str | None
    prerequisites: tuple[Prerequisite, ...]
    batch: int | None
    touched_by: str
    created_at: datetime
    updated_at: datetime


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
    remote_id: str
    last_loaded_hash: str
    last_record_id: int


@dataclass(frozen=True)
class MappingResult:
    """The map step's verdict on one record."""

    record_id: int
    status: RecordStatus
    attempts: int
    payload: Mapping[str, Any] | None = None
    payload_hash: str | None = None
    remote_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class OutcomeRow:
    """A load outcome to persist. ``attempted`` False means held back (no call was made).

    ``error`` is the reason a record did not load, or the note of one that did (encrypted alike).
    """

    record_id: int
    status: RecordStatus
    attempted: bool
    remote_id: str | None = None
    change: str | None = None
    error: str | None = None


@dataclass
class StagingCounts:
    new: int = 0
    changed: int = 0
    same: int = 0
    per_entity: Counter[str] = field(default_factory=Counter)


class StagingWriter:
    """Stages source records of one run, ``chunk_size`` at a time (constant memory).

    Staging is idempotent per run: the same payload again is a no-op (a loaded record stays
    loaded); a changed payload puts the record back to ``staged`` so the new version is loaded.
    """

    def __init__(
        self, store: Store, run: RunRef, actor: Actor, *, entities: Iterable[str], chunk_size: int = _CHUNK
    ) -> None:
        self._store = store
        self._run = run
        self._actor = actor
        self._entities = frozenset(entities)
        self._chunk_size = chunk_size
        self._buffer: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.counts = StagingCounts()

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None:
        if entity not in self._entities:
            raise CallableContractError(
                f"flow {self._run.flow}: extract staged entity {entity!r}, which the flow does not "
                f"declare (it declares {sorted(self._entities)})"
            )
        key_text = str(key)
        if not key_text or len(key_text) > _KEY_LENGTH:
            raise CallableContractError(
                f"flow {self._run.flow}: {entity} key {key_text!r} must be 1..{_KEY_LENGTH} characters"
            )
        model_dump = getattr(payload, "model_dump", None)
        if callable(model_dump):
            payload = model_dump(mode="json")
        if not isinstance(payload, Mapping):
            raise CallableContractError(
                f"flow {self._run.flow}: {entity} {key_text} payload must be a mapping, "
                f"got {type(payload).__name__}"
            )
        self._buffer[(entity, key_text)] = payload
        if len(self._buffer) >= self._chunk_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        items, self._buffer = self._buffer, {}
        self._store._stage_chunk(self._run, self._actor, items, self.counts)


class Store:
    """Repository over the store's tables. Open one with ``Store(url, cipher)`` or ``open_store()``."""

    def __init__(
        self,
        url: str,
        cipher: PayloadCipher,
        *,
        busy_timeout: float = 30.0,
        claim_timeout: timedelta = timedelta(hours=1),
    ) -> None:
        self.url = url
        self.cipher = cipher
        self.claim_timeout = claim_timeout
        self.engine = _create_engine(url, busy_timeout=busy_timeout)
        self._write(migrate)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- transactions -------------------------------------------------------------------------

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction; repeat it (up to 3 times) when the database says busy."""
        for attempt in range(1, 4):
            try:
                with self.engine.begin() as connection:
                    return work(connection)
            except OperationalError as error:
                message = str(error.orig).lower()
                transient = "locked" in message or "deadlock" in message or "could not serialize" in message
                if not transient or attempt == 3:
                    raise
                log.warning("store busy (%s); retrying the transaction", message.splitlines()[0])
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    # -- runs ---------------------------------------------------------------------------------

    def ensure_run(self, run: RunRef) -> None:
        def work(connection: Connection) -> None:
            exists = connection.execute(
                sa.select(runs.c.run_key).where(runs.c.run_key == run.run_key)
            ).first()
            if exists is None:
                now = utcnow()
                try:
                    with connection.begin_nested():
                        connection.execute(
                            runs.insert().values(
                                run_key=run.run_key,
                                flow=run.flow,
                                dag_id=run.dag_id,
                                run_id=run.run_id,
                                run_type=run.run_type,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                except IntegrityError:
                    pass  # another task of the run created it first

        self._write(work)

    def update_run(self, run_key: str, **fields: Any) -> None:
        """Save ``windows``, ``high_water`` or ``committed`` (JSON-able) and ``committed_at``."""
        values: dict[str, Any] = {"updated_at": utcnow()}
        for name, value in fields.items():
            values[name] = json.dumps(value) if name in ("windows", "high_water", "committed") else value
        self._write(lambda c: c.execute(runs.update().where(runs.c.run_key == run_key).values(**values)))

    def list_runs(self, *, flow: str | None = None, limit: int = 20) -> list[RunSummary]:
        query = sa.select(runs).order_by(runs.c.created_at.desc()).limit(limit)
        if flow:
            query = query.where(runs.c.flow == flow)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
            keys = [row["run_key"] for row in rows]
            counts: dict[str, Counter[str]] = {key: Counter() for key in keys}
            if keys:
                for run_key, status, number in connection.execute(
                    sa.select(records.c.run_key, records.c.status, sa.func.count())
                    .where(records.c.run_key.in_(keys))
                    .group_by(records.c.run_key, records.c.status)
                ):
                    counts[run_key][status] = number
        return [
            RunSummary(
                run_key=row["run_key"],
                flow=row["flow"],
                dag_id=row["dag_id"],
                run_id=row["run_id"],
                run_type=row["run_type"],
                created_at=row["created_at"],
                committed_at=row["committed_at"],
                windows=json.loads(row["windows"] or "{}"),
                high_water=json.loads(row["high_water"] or "{}"),
                committed=json.loads(row["committed"] or "{}"),
                counts=dict(counts[row["run_key"]]),
            )
            for row in rows
        ]

    def find_run_key(self, *, flow: str, run_id: str) -> str | None:
        """The run key of a flow's Airflow run id (for the replay form and the CLI)."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(runs.c.run_key).where(runs.c.flow == flow, runs.c.run_id == run_id)
            ).scalar()

    def status_counts(self, run_key: str, *, entity: str | None = None) -> dict[str, int]:
        query = (
            sa.select(records.c.status, sa.func.count())
            .where(records.c.run_key == run_key)
            .group_by(records.c.status)
        )
        if entity is not None:
            query = query.where(records.c.entity == entity)
        with self.engine.connect() as connection:
            return {status: number for status, number in connection.execute(query)}

    # -- staging ------------------------------------------------------------------------------

    def staging_writer(
        self, run: RunRef, actor: Actor, *, entities: Iterable[str], chunk_size: int = _CHUNK
    ) -> StagingWriter:
        return StagingWriter(self, run, actor, entities=entities, chunk_size=chunk_size)

    def _stage_chunk(
        self,
        run: RunRef,
        actor: Actor,
        items: Mapping[tuple[str, str], Mapping[str, Any]],
        counts: StagingCounts,
    ) -> None:
        prepared = {
            pair: (self.cipher.digest(payload), self.cipher.encrypt(payload))
            for pair, payload in items.items()
        }

        def work(connection: Connection) -> StagingCounts:
            chunk_counts = StagingCounts()
            now = utcnow()
            existing = {
                (row.entity, row.source_key): (row.id, row.source_hash)
                for row in connection.execute(
                    sa.select(
                        records.c.id, records.c.entity, records.c.source_key, records.c.source_hash
                    ).where(
                        records.c.run_key == run.run_key,
                        sa.tuple_(records.c.entity, records.c.source_key).in_(list(prepared)),
                    )
                )
            }
            touched = {"updated_at": now, **actor.columns()}
            new_rows = [
                {
                    "run_key": run.run_key,
                    "flow": run.flow,
                    "entity": entity,
                    "source_key": key,
                    "source_payload": token,
                    "source_hash": digest,
                    "status": RecordStatus.STAGED.value,
                    "attempts": 0,
                    "created_at": now,
                    **touched,
                }
                for (entity, key), (digest, token) in prepared.items()
                if (entity, key) not in existing
            ]
            staged_ids: list[tuple[int, str]] = []
            if new_rows:
                result = connection.execute(
                    records.insert().returning(
                        records.c.id, records.c.source_hash, sort_by_parameter_order=True
                    ),
                    new_rows,
                )
                staged_ids.extend((row.id, row.source_hash) for row in result)
                chunk_counts.new += len(new_rows)
                chunk_counts.per_entity.update(row["entity"] for row in new_rows)
            for pair, (record_id, old_hash) in existing.items():
                digest, token = prepared[pair]
                if digest == old_hash:
                    chunk_counts.same += 1
                    continue
                connection.execute(
                    records.update()
                    .where(records.c.id == record_id)
                    .values(
                        source_payload=token,
                        source_hash=digest,
                        status=RecordStatus.STAGED.value,
                        mapped_payload=None,
                        payload_hash=None,
                        remote_id=None,
                        change=None,
                        error=None,
                        prerequisites=None,
                        batch=None,
                        **touched,
                    )
                )
                staged_ids.append((record_id, digest))
                chunk_counts.changed += 1
                chunk_counts.per_entity[pair[0]] += 1
            self._append_events(
                connection,
                [
                    _event(
                        record_id,
                        action="stage",
                        status=RecordStatus.STAGED,
                        attempt=0,
                        actor=actor,
                        at=now,
                        payload_hash=None,
                    )
                    for record_id, _ in staged_ids
                ],
            )
            return chunk_counts

        try:
            chunk_counts = self._write(work)
        except IntegrityError:
            # Another writer inserted one of these keys for the same run meanwhile; now they exist.
            chunk_counts = self._write(work)
        counts.new += chunk_counts.new
        counts.changed += chunk_counts.changed
        counts.same += chunk_counts.same
        counts.per_entity.update(chunk_counts.per_entity)

    # -- reading records ------------------------------------------------------------------------

    def iter_records(
        self,
        *,
        run_key: str | None = None,
        entity: str | None = None,
        statuses: Sequence[RecordStatus] | None = None,
        ids: Sequence[int] | None = None,
        claim_token: str | None = None,
        chunk_size: int = _CHUNK,
    ) -> Iterator[list[StoredRecord]]:
        """Matching records in id order, one decrypted chunk at a time (short read transactions)."""
        conditions: list[Any] = []
        if run_key is not None:
            conditions.append(records.c.run_key == run_key)
        if entity is not None:
            conditions.append(records.c.entity == entity)
        if statuses is not None:
            conditions.append(records.c.status.in_([s.value for s in statuses]))
        if claim_token is not None:
            conditions.append(records.c.claim_token == claim_token)
        id_chunks: Iterable[Sequence[int] | None] = _chunks(ids, chunk_size) if ids is not None else [None]
        for id_chunk in id_chunks:
            last_id = 0
            while True:
                query = (
                    sa.select(records)
                    .where(records.c.id > last_id, *conditions)
                    .order_by(records.c.id)
                    .limit(chunk_size)
                )
                if id_chunk is not None:
                    query = query.where(records.c.id.in_(id_chunk))
                with self.engine.connect() as connection:
                    rows = connection.execute(query).mappings().all()
                if not rows:
                    break
                yield [self._decrypt_record(row) for row in rows]
                last_id = rows[-1]["id"]
                if len(rows) < chunk_size:
                    break

    def records_of_run(
        self, run_key: str, *, statuses: Sequence[RecordStatus] | None = None
    ) -> list[StoredRecord]:
        return [record for chunk in self.iter_records(run_key=run_key, statuses=statuses) for record in chunk]

    def count_records(
        self,
        *,
        run_key: str,
        entity: str,
        statuses: Sequence[RecordStatus],
        batch: int | None = None,
        not_claimed_by: str | None = None,
    ) -> int:
        conditions = [
            records.c.run_key == run_key,
            records.c.entity == entity,
            records.c.status.in_([s.value for s in statuses]),
        ]
        if batch is not None:
            conditions.append(records.c.batch == batch)
        if not_claimed_by is not None:
            conditions.append(
                sa.or_(records.c.claim_token.is_(None), records.c.claim_token != not_claimed_by)
            )
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).where(*conditions)).scalar_one())

    def _decrypt_record(self, row: sa.RowMapping) -> StoredRecord:
        prerequisites = json.loads(row["prerequisites"]) if row["prerequisites"] else []
        return StoredRecord(
            id=row["id"],
            run_key=row["run_key"],
            flow=row["flow"],
            entity=row["entity"],
            key=row["source_key"],
            source=self.cipher.decrypt(row["source_payload"]),
            payload=self.cipher.decrypt(row["mapped_payload"]),
            payload_hash=row["payload_hash"],
            status=RecordStatus(row["status"]),
            attempts=row["attempts"],
            remote_id=row["remote_id"],
            change=row["change"],
            error=self.cipher.decrypt(row["error"]),
            prerequisites=tuple(Prerequisite(p["entity"], p["key"], p.get("flow")) for p in prerequisites),
            batch=row["batch"],
            touched_by=_actor_text(row),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    # -- id map -------------------------------------------------------------------------------

    def id_map_entries(self, flow: str, entity: str, keys: Iterable[str]) -> dict[str, IdMapEntry]:
        wanted = sorted(set(keys))
        found: dict[str, IdMapEntry] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(wanted):
                for row in connection.execute(
                    sa.select(
                        id_map.c.source_key,
                        id_map.c.remote_id,
                        id_map.c.last_loaded_hash,
                        id_map.c.last_record_id,
                    ).where(
                        id_map.c.flow == flow,
                        id_map.c.entity == entity,
                        id_map.c.source_key.in_(chunk),
                    )
                ):
                    found[row.source_key] = IdMapEntry(
                        row.remote_id, row.last_loaded_hash, row.last_record_id
                    )
        return found

    def source_key_for(self, flow: str, entity: str, remote_id: str) -> str | None:
        """The reverse lookup: which source key a target id belongs to."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(id_map.c.source_key).where(
                    id_map.c.flow == flow, id_map.c.entity == entity, id_map.c.remote_id == remote_id
                )
            ).scalar()

    def keys_by_remote_id(self, flow: str, entity: str, remote_ids: Iterable[str]) -> dict[str, set[str]]:
        """The id map read backwards: each target id -> the source keys last loaded to it."""
        found: dict[str, set[str]] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(sorted(set(remote_ids))):
                for row in connection.execute(
                    sa.select(id_map.c.remote_id, id_map.c.source_key).where(
                        id_map.c.flow == flow, id_map.c.entity == entity, id_map.c.remote_id.in_(chunk)
                    )
                ):
                    found.setdefault(row.remote_id, set()).add(row.source_key)
        return found

    def moved_remote_ids(self, flow: str, run_key: str, entity: str) -> dict[str, tuple[str | None, str]]:
        """Records of ``entity`` this run loaded to another target id than before: key -> (before, now).

        "Before" is the remote id of the key's latest earlier record that was in the target
        (loaded or unchanged); a key with none counts as moved from ``None``.
        """
        with self.engine.connect() as connection:
            loaded = {
                row.source_key: (row.id, row.remote_id)
                for row in connection.execute(
                    sa.select(records.c.id, records.c.source_key, records.c.remote_id).where(
                        records.c.run_key == run_key,
                        records.c.entity == entity,
                        records.c.status == RecordStatus.LOADED.value,
                    )
                )
            }
            before: dict[str, tuple[int, str]] = {}
            for chunk in _chunks(sorted(loaded)):
                for row in connection.execute(
                    sa.select(records.c.id, records.c.source_key, records.c.remote_id).where(
                        records.c.flow == flow,
                        records.c.entity == entity,
                        records.c.source_key.in_(chunk),
                        records.c.run_key != run_key,
                        records.c.status.in_([s.value for s in IN_TARGET]),
                        records.c.remote_id.is_not(None),
                    )
                ):
                    this_id = loaded[row.source_key][0]
                    latest = before.get(row.source_key)
                    if row.id < this_id and (latest is None or row.id > latest[0]):
                        before[row.source_key] = (row.id, row.remote_id)
        moved: dict[str, tuple[str | None, str]] = {}
        for key, (_, remote_id) in loaded.items():
            previous = before[key][1] if key in before else None
            if previous != remote_id:
                moved[key] = (previous, remote_id)
        return moved

    # -- map and order ------------------------------------------------------------------------

    def save_mapping(self, results: Sequence[MappingResult], actor: Actor, *, action: str = "map") -> None:
        if not results:
            return

        def work(connection: Connection) -> None:
            now = utcnow()
            rows, events = [], []
            for result in results:
                error = None if result.error is None else self.cipher.encrypt(result.error)
                rows.append(
                    {
                        "record_id": result.record_id,
                        "new_status": result.status.value,
                        "new_payload": None
                        if result.payload is None
                        else self.cipher.encrypt(result.payload),
                        "new_hash": result.payload_hash,
                        "new_remote_id": result.remote_id,
                        "new_error": error,
                    }
                )
                events.append(
                    _event(
                        result.record_id,
                        action=action,
                        status=result.status,
                        attempt=result.attempts,
                        actor=actor,
                        at=now,
                        payload_hash=result.payload_hash,
                        remote_id=result.remote_id,
                        error=error,
                    )
                )
            connection.execute(
                records.update()
                .where(records.c.id == sa.bindparam("record_id"))
                .values(
                    status=sa.bindparam("new_status"),
                    mapped_payload=sa.bindparam("new_payload"),
                    payload_hash=sa.bindparam("new_hash"),
                    remote_id=sa.bindparam("new_remote_id"),
                    error=sa.bindparam("new_error"),
                    change=None,
                    prerequisites=None,
                    batch=None,
                    updated_at=now,
                    **actor.columns(),
                ),
                rows,
            )
            self._append_events(connection, events)

        self._write(work)

    def save_order(self, plan: Sequence[tuple[int, int, Sequence[Prerequisite]]]) -> None:
        """Store each record's batch and prerequisites: ``(record_id, batch, prerequisites)``."""
        if not plan:
            return

        def work(connection: Connection) -> None:
            connection.execute(
                records.update()
                .where(records.c.id == sa.bindparam("record_id"))
                .values(batch=sa.bindparam("new_batch"), prerequisites=sa.bindparam("new_prerequisites")),
                [
                    {
                        "record_id": record_id,
                        "new_batch": batch,
                        "new_prerequisites": json.dumps(
                            [{"entity": p.entity, "key": p.key, "flow": p.flow} for p in prerequisites]
                        )
                        if prerequisites
                        else None,
                    }
                    for record_id, batch, prerequisites in plan
                ],
            )

        self._write(work)

    # -- claims and load outcomes ---------------------------------------------------------------

    def claim(
        self,
        *,
        owner: str,
        statuses: Sequence[RecordStatus] = PENDING_LOAD,
        run_key: str | None = None,
        entity: str | None = None,
        batch: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> str:
        """Claim the matching records nobody else holds; returns the claim token.

        Read the claimed records with ``iter_records(claim_token=...)``; give back the ones left
        with ``release(token)``.
        """
        token = str(uuid.uuid4())
        conditions: list[Any] = [records.c.status.in_([s.value for s in statuses])]
        if run_key is not None:
            conditions.append(records.c.run_key == run_key)
        if entity is not None:
            conditions.append(records.c.entity == entity)
        if batch is not None:
            conditions.append(records.c.batch == batch)

        def work(connection: Connection) -> None:
            now = utcnow()
            free = sa.or_(
                records.c.claim_token.is_(None),
                records.c.claim_owner == owner,
                records.c.claimed_at < now - self.claim_timeout,
            )
            id_chunks: Iterable[Sequence[int] | None] = _chunks(ids) if ids is not None else [None]
            for id_chunk in id_chunks:
                query = sa.select(records.c.id).where(*conditions, free).order_by(records.c.id)
                if id_chunk is not None:
                    query = query.where(records.c.id.in_(id_chunk))
                candidates = list(connection.execute(query.with_for_update(skip_locked=True)).scalars())
                for chunk in _chunks(candidates):
                    connection.execute(
                        records.update()
                        .where(records.c.id.in_(chunk), *conditions, free)
                        .values(claim_token=token, claim_owner=owner, claimed_at=now)
                    )

        self._write(work)
        return token

    def release(self, token: str) -> None:
        self._write(
            lambda c: c.execute(
                records.update()
                .where(records.c.claim_token == token)
                .values(claim_token=None, claim_owner=None, claimed_at=None)
            )
        )

    def prerequisite_states(
        self, flow: str, run_key: str, prerequisites: Iterable[Prerequisite]
    ) -> dict[Prerequisite, PrerequisiteState]:
        """Where each prerequisite stands: its record in ``run_key`` (own flow), else the id map.

        For one that is not in the target, the state also carries its latest record's status and
        reason (from this run, or from an earlier run of its flow), so a dependent can say why it
        waits.
        """
        wanted = set(prerequisites)
        states: dict[Prerequisite, PrerequisiteState] = {}
        own = [p for p in wanted if p.flow in (None, flow)]
        with self.engine.connect() as connection:
            # One entity per query: "entity = ? AND source_key IN (...)" is an index lookup on the
            # (run_key, entity, source_key) key; a row-value IN over both columns scanned the run.
            for entity, group in _by_entity_key(own).items():
                for chunk in _chunks(sorted(group)):
                    for row in connection.execute(
                        sa.select(
                            records.c.source_key, records.c.status, records.c.remote_id, records.c.error
                        ).where(
                            records.c.run_key == run_key,
                            records.c.entity == entity,
                            records.c.source_key.in_(chunk),
                        )
                    ):
                        in_target = row.status in IN_TARGET_VALUES
                        for prerequisite in group[row.source_key]:
                            states[prerequisite] = PrerequisiteState(
                                row.status,
                                row.remote_id,
                                latest_status=None if in_target else row.status,
                                error=None if in_target else self.cipher.decrypt(row.error),
                            )
        # Outside the run, or in it but not in the target: the id map knows whether an earlier
        # (or, for an older record being replayed, a later) run put it there.
        unresolved = [p for p in wanted if p not in states or states[p].run_status not in IN_TARGET_VALUES]
        missing: list[Prerequisite] = []
        for (map_flow, entity), named in _by_flow_entity(unresolved, flow).items():
            entries = self.id_map_entries(map_flow, entity, [p.key for p in named])
            for prerequisite in named:
                entry = entries.get(prerequisite.key)
                in_run = states.get(prerequisite)
                if in_run is not None:
                    if entry is not None:
                        states[prerequisite] = replace(in_run, remote_id=entry.remote_id)
                elif entry is None:
                    missing.append(prerequisite)
                else:
                    states[prerequisite] = PrerequisiteState(None, entry.remote_id)
        latest = self.latest_records(
            (prerequisite.flow or flow, prerequisite.entity, prerequisite.key) for prerequisite in missing
        )
        for prerequisite in missing:
            found = latest.get((prerequisite.flow or flow, prerequisite.entity, prerequisite.key))
            states[prerequisite] = PrerequisiteState(
                None,
                None,
                latest_status=None if found is None else found[0],
                error=None if found is None else found[1],
            )
        return states

    def latest_records(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], tuple[str, str | None]]:
        """The latest record of each (flow, entity, key) in any run: its status and decrypted reason."""
        by_flow_entity: dict[tuple[str, str], set[str]] = {}
        for flow, entity, key in keys:
            by_flow_entity.setdefault((flow, entity), set()).add(key)
        found: dict[tuple[str, str, str], tuple[int, str, str | None]] = {}
        with self.engine.connect() as connection:
            for (flow, entity), wanted in by_flow_entity.items():
                for chunk in _chunks(sorted(wanted)):
                    for row in connection.execute(
                        sa.select(
                            records.c.id, records.c.source_key, records.c.status, records.c.error
                        ).where(
                            records.c.flow == flow,
                            records.c.entity == entity,
                            records.c.source_key.in_(chunk),
                        )
                    ):
                        pair = (flow, entity, row.source_key)
                        if pair not in found or found[pair][0] < row.id:
                            found[pair] = (row.id, row.status, row.error)
        return {pair: (status, self.cipher.decrypt(error)) for pair, (_, status, error) in found.items()}

    def save_outcomes(self, token: str, outcomes: Sequence[OutcomeRow], actor: Actor, *, action: str) -> int:
        """Persist load outcomes of claimed records, release their claims; returns how many were saved.

        An outcome whose claim was taken over meanwhile (this worker was presumed dead) is not
        written: the new owner's outcome counts.
        """
        if not outcomes:
            return 0

        def work(connection: Connection) -> int:
            now = utcnow()
            held = {
                row.id: row
                for chunk in _chunks(outcomes)
                for row in connection.execute(
                    sa.select(
                        records.c.id,
                        records.c.flow,
                        records.c.entity,
                        records.c.source_key,
                        records.c.run_key,
                        records.c.payload_hash,
                        records.c.attempts,
                    ).where(
                        records.c.id.in_([o.record_id for o in chunk]),
                        records.c.claim_token == token,
                    )
                )
            }
            updates, events, loaded_rows = [], [], []
            for outcome in outcomes:
                row = held.get(outcome.record_id)
                if row is None:
                    log.warning("record %s: claim lost before its outcome was saved", outcome.record_id)
                    continue
                attempts = row.attempts + (1 if outcome.attempted else 0)
                error_token = None if outcome.error is None else self.cipher.encrypt(outcome.error)
                updates.append(
                    {
                        "record_id": outcome.record_id,
                        "new_status": outcome.status.value,
                        "new_attempts": attempts,
                        "new_remote_id": outcome.remote_id,
                        "new_change": outcome.change,
                        "new_error": error_token,
                    }
                )
                events.append(
                    _event(
                        outcome.record_id,
                        action=action,
                        status=outcome.status,
                        attempt=attempts,
                        actor=actor,
                        at=now,
                        payload_hash=row.payload_hash,
                        remote_id=outcome.remote_id,
                        change=outcome.change,
                        error=error_token,
                    )
                )
                if outcome.status is RecordStatus.LOADED and outcome.remote_id is not None:
                    loaded_rows.append(
                        {
                            "flow": row.flow,
                            "entity": row.entity,
                            "source_key": row.source_key,
                            "remote_id": outcome.remote_id,
                            "last_loaded_hash": row.payload_hash or "",
                            "last_record_id": outcome.record_id,
                            "last_run_key": row.run_key,
                            "created_at": now,
                            "loaded_at": now,
                        }
                    )
            if updates:
                connection.execute(
                    records.update()
                    .where(records.c.id == sa.bindparam("record_id"))
                    .values(
                        status=sa.bindparam("new_status"),
                        attempts=sa.bindparam("new_attempts"),
                        remote_id=sa.bindparam("new_remote_id"),
                        change=sa.bindparam("new_change"),
                        error=sa.bindparam("new_error"),
                        claim_token=None,
                        claim_owner=None,
                        claimed_at=None,
                        updated_at=now,
                        **actor.columns(),
                    ),
                    updates,
                )
            _upsert_id_map(connection, loaded_rows)
            self._append_events(connection, events)
            return len(updates)

        return self._write(work)

    # -- audit and replay -----------------------------------------------------------------------

    def events_of(self, record_ids: Sequence[int]) -> dict[int, list[RecordEvent]]:
        history: dict[int, list[RecordEvent]] = {record_id: [] for record_id in record_ids}
        if not record_ids:
            return history
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(record_events)
                .where(record_events.c.record_id.in_(list(record_ids)))
                .order_by(record_events.c.id)
            ).mappings()
            for row in rows:
                history[row["record_id"]].append(
                    RecordEvent(
                        id=row["id"],
                        record_id=row["record_id"],
                        at=row["at"],
                        action=row["action"],
                        status=RecordStatus(row["status"]),
                        attempt=row["attempt"],
                        remote_id=row["remote_id"],
                        change=row["change"],
                        error=self.cipher.decrypt(row["error"]),
                        payload_hash=row["payload_hash"],
                        actor=_actor_text(row),
                    )
                )
        return history

    def record_history(
        self, *, flow: str, entity: str, key: str
    ) -> list[tuple[StoredRecord, list[RecordEvent]]]:
        """Every run's row of one record, oldest first, each with its events."""
        with self.engine.connect() as connection:
            ids = list(
                connection.execute(
                    sa.select(records.c.id)
                    .where(records.c.flow == flow, records.c.entity == entity, records.c.source_key == key)
                    .order_by(records.c.id)
                ).scalars()
            )
        rows = [record for chunk in self.iter_records(ids=ids) for record in chunk]
        events = self.events_of(ids)
        return [(record, events[record.id]) for record in rows]

    def select_for_replay(
        self,
        *,
        flow: str,
        statuses: Sequence[RecordStatus],
        entity: str | None = None,
        run_key: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[int]:
        """Ids of records to replay: the latest row of each (entity, key), in the given statuses.

        An older row whose key has a newer row (a later run saw the record again) is superseded:
        replaying it would write stale data over newer.
        """
        newer = records.alias("newer")
        conditions: list[Any] = [
            records.c.flow == flow,
            records.c.status.in_([s.value for s in statuses]),
            ~sa.exists().where(
                newer.c.flow == records.c.flow,
                newer.c.entity == records.c.entity,
                newer.c.source_key == records.c.source_key,
                newer.c.id > records.c.id,
            ),
        ]
        if entity:
            conditions.append(records.c.entity == entity)
        if run_key:
            conditions.append(records.c.run_key == run_key)
        if since:
            conditions.append(records.c.updated_at >= since)
        if until:
            conditions.append(records.c.updated_at < until)
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    sa.select(records.c.id).where(*conditions).order_by(records.c.id).limit(limit)
                ).scalars()
            )

    # -- helpers ------------------------------------------------------------------------------

    def _append_events(self, connection: Connection, events: list[dict[str, Any]]) -> None:
        if events:
            connection.execute(record_events.insert(), events)


def _by_entity_key(prerequisites: Iterable[Prerequisite]) -> dict[str, dict[str, list[Prerequisite]]]:
    """Prerequisites grouped by entity, then key (a key may be named by several prerequisites)."""
    grouped: dict[str, dict[str, list[Prerequisite]]] = {}
    for prerequisite in prerequisites:
        grouped.setdefault(prerequisite.entity, {}).setdefault(prerequisite.key, []).append(prerequisite)
    return grouped


def _by_flow_entity(
    prerequisites: Iterable[Prerequisite], flow: str
) -> dict[tuple[str, str], list[Prerequisite]]:
    grouped: dict[tuple[str, str], list[Prerequisite]] = {}
    for prerequisite in prerequisites:
        grouped.setdefault((prerequisite.flow or flow, prerequisite.entity), []).append(prerequisite)
    return grouped


def _event(
    record_id: int,
    *,
    action: str,
    status: RecordStatus,
    attempt: int,
    actor: Actor,
    at: datetime,
    payload_hash: str | None,
    remote_id: str | None = None,
    change: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "at": at,
        "action": action,
        "status": status.value,
        "attempt": attempt,
        "remote_id": remote_id,
        "change": change,
        "error": error,
        "payload_hash": payload_hash,
        **actor.columns(),
    }


def _actor_text(row: sa.RowMapping) -> str:
    if not row["dag_id"]:
        return ""
    index = f"[{row['map_index']}]" if row["map_index"] not in (None, -1) else ""
    return f"{row['dag_id']}/{row['run_id']}/{row['task_id']}{index} try {row['try_number']}"


def _upsert_id_map(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert or update id map rows; a row only moves forward (a newer record wins)."""
    if not rows:
        return
    dialect = pg_dialect if connection.dialect.name == "postgresql" else sqlite_dialect
    statement = dialect.insert(id_map)
    statement = statement.on_conflict_do_update(
        index_elements=[id_map.c.flow, id_map.c.entity, id_map.c.source_key],
        set_={
            "remote_id": statement.excluded.remote_id,
            "last_loaded_hash": statement.excluded.last_loaded_hash,
            "last_record_id": statement.excluded.last_record_id,
            "last_run_key": statement.excluded.last_run_key,
            "loaded_at": statement.excluded.loaded_at,
        },
        where=id_map.c.last_record_id <= statement.excluded.last_record_id,
    )
    connection.execute(statement, rows)


def _create_engine(url: str, *, busy_timeout: float) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as error:
        raise StoreConfigurationError(f"store URL is not a SQLAlchemy URL: {error}") from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})

        @sa_event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" below issue BEGIN IMMEDIATE: a write lock up front, so two
            # writers queue on the busy timeout instead of failing on a lock upgrade.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa_event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if backend == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
    raise StoreConfigurationError(
        f"the store supports SQLite and PostgreSQL URLs, not {backend!r} ({parsed.render_as_string()})"
    )


# -- opening the store from Airflow -------------------------------------------------------------

_open_stores: dict[tuple[int, str, str], Store] = {}
_open_lock = threading.Lock()


@dataclass(frozen=True)
class StoreSettings:
    url: str
    fernet_keys: str = field(repr=False)


def default_store_url() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    return f"sqlite:///{home / 'mlconn' / 'store.db'}"


def store_settings(connection: Any | None, *, airflow_fernet_key: str | None) -> StoreSettings:
    """Where the store lives and which keys encrypt it, from the ``mlconn_store`` connection.

    URL: extra ``sqlalchemy_url``; else ``host`` if it is a URL; else a PostgreSQL URL built from
    host/port/login/password/schema; else SQLite under ``$AIRFLOW_HOME/mlconn/``. Keys: extra
    ``fernet_key``, else Airflow's ``[core] fernet_key``.
    """
    extra: Mapping[str, Any] = {}
    url = None
    if connection is not None:
        extra = connection.extra_dejson or {}
        host = connection.host or ""
        if extra.get("sqlalchemy_url"):
            url = str(extra["sqlalchemy_url"])
        elif "://" in host:
            url = host
        elif host:
            credentials = ""
            if connection.login:
                credentials = quote(connection.login, safe="")
                if connection.password:
                    credentials += ":" + quote(connection.password, safe="")
                credentials += "@"
            port = f":{connection.port}" if connection.port else ""
            url = f"postgresql+psycopg2://{credentials}{host}{port}/{connection.schema or 'mlconn'}"
    keys = str(extra.get("fernet_key") or airflow_fernet_key or "").strip()
    if not keys or keys.startswith("{"):
        raise StoreConfigurationError(
            "the mlconn store encrypts payloads and needs a Fernet key: set extra "
            '"fernet_key" on the mlconn_store connection, or Airflow\'s [core] fernet_key'
        )
    return StoreSettings(url=url or default_store_url(), fernet_keys=keys)


def open_store(settings: StoreSettings) -> Store:
    """One Store per process and settings (engines must not cross a fork)."""
    cache_key = (os.getpid(), settings.url, settings.fernet_keys)
    with _open_lock:
        store = _open_stores.get(cache_key)
        if store is None:
            store = Store(settings.url, PayloadCipher(settings.fernet_keys))
            _open_stores[cache_key] = store
        return store


def close_stores() -> None:
    """Dispose of every store this process opened (tests, CLI exit)."""
    with _open_lock:
        for store in _open_stores.values():
            store.dispose()
        _open_stores.clear()
