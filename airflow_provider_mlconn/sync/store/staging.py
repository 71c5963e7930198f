"""Staging: source records into a run's rows, idempotently; records taken over from earlier runs;
the deletions a full read found."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.errors import CallableContractError
from airflow_provider_mlconn.sync.records import Operation, RecordStatus
from airflow_provider_mlconn.sync.schema import records
from airflow_provider_mlconn.sync.store.bulk import bound_value, insert_rows, update_rows
from airflow_provider_mlconn.sync.store.database import CHUNK, Database, chunks, utcnow
from airflow_provider_mlconn.sync.store.events import EventBatch, append_events, event_row
from airflow_provider_mlconn.sync.store.records import prerequisites_json
from airflow_provider_mlconn.sync.store.rows import (
    ACTOR_COLUMNS,
    Actor,
    ChunkMapper,
    MappingResult,
    RunRef,
    StagedSource,
    StagingCounts,
)

KEY_LENGTH = 200


class StagingWriter:
    """Stages source records of one run, ``chunk_size`` at a time (constant memory).

    Staging is idempotent per run: the same payload again is a no-op (a loaded record stays
    loaded); a changed payload puts the record back to ``staged`` so the new version is loaded.
    ``mark_complete(entity)`` says the run staged every key the source has for an entity.
    With ``mapper``, each flush maps its new records before they are written, and writes them
    mapped (``Staging.stage_chunk``). ``after_flush(ids)`` is called after each flush with the ids
    it left ``staged``.
    """

    def __init__(
        self,
        staging: Staging,
        run: RunRef,
        actor: Actor,
        *,
        entities: Iterable[str],
        chunk_size: int = CHUNK,
        after_flush: Callable[[Sequence[int]], None] | None = None,
        mapper: ChunkMapper | None = None,
    ) -> None:
        self._staging = staging
        self._after_flush = after_flush
        self._mapper = mapper
        self._run = run
        self._actor = actor
        self._entities = frozenset(entities)
        self._chunk_size = chunk_size
        self._buffer: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._assume_new: bool | None = None
        self.counts = StagingCounts()
        self.complete: set[str] = set()

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None:
        self._check_entity(entity)
        key_text = str(key)
        if not key_text or len(key_text) > KEY_LENGTH:
            raise CallableContractError(
                f"flow {self._run.flow}: {entity} key {key_text!r} must be 1..{KEY_LENGTH} characters"
            )
        if type(payload) is not dict:  # a dict, the common case, needs none of these checks
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

    def mark_complete(self, entity: str) -> None:
        self._check_entity(entity)
        self.complete.add(entity)

    def flush(self) -> None:
        if not self._buffer:
            return
        items, self._buffer = self._buffer, {}
        if self._assume_new is None:
            # A run's first extract finds the run empty: its keys are new until one is not.
            self._assume_new = not self._staging.run_holds_records(self._run)
        counts = self._staging.stage_chunk(
            self._run, self._actor, items, mapper=self._mapper, assume_new=self._assume_new
        )
        if counts.conflicted:
            self._assume_new = False
        self.counts.add(counts)
        if self._after_flush is not None:
            self._after_flush(counts.ids)

    def _check_entity(self, entity: str) -> None:
        if entity not in self._entities:
            raise CallableContractError(
                f"flow {self._run.flow}: extract staged entity {entity!r}, which the flow does not "
                f"declare (it declares {sorted(self._entities)})"
            )


_NEW_ROW_COLUMNS = (
    "run_key",
    "flow",
    "entity",
    "source_key",
    "source_payload",
    "source_hash",
    "status",
    "attempts",
    "created_at",
    "operation",
    "mapped_payload",
    "payload_hash",
    "remote_id",
    "error",
    "prerequisites",
    "updated_at",
    *ACTOR_COLUMNS,
)
_STAGED = RecordStatus.STAGED.value
_WRITE = Operation.WRITE.value
#: The mapped columns of a new row left ``staged`` (in ``_NEW_ROW_COLUMNS`` order).
_NOT_MAPPED = (None, None, None, None, None)
#: What staging a changed source sets besides the source: a clean slate for the later steps.
_RESTAGED_CLEARED = {
    "status": RecordStatus.STAGED.value,
    "mapped_payload": None,
    "payload_hash": None,
    "remote_id": None,
    "change": None,
    "error": None,
    "prerequisites": None,
    "batch": None,
    "operation": Operation.WRITE.value,
}
_RESTAGED_COLUMNS = ("source_payload", "source_hash", *_RESTAGED_CLEARED, "updated_at", *ACTOR_COLUMNS)


def _ids_of(
    connection: Connection, run_key: str, keys: Mapping[str, Sequence[str]]
) -> dict[tuple[str, str], tuple[int, str]]:
    """(entity, key) -> (record id, source hash) of the run's rows among ``keys`` (entity -> keys).

    One entity per query: ``entity = ? AND source_key IN (...)`` is a lookup on the run's unique
    key, where a row-value IN over both columns scanned the run's rows.
    """
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for entity, entity_keys in keys.items():
        for chunk in chunks(entity_keys):
            for row in connection.execute(
                sa.select(records.c.id, records.c.source_key, records.c.source_hash).where(
                    records.c.run_key == run_key,
                    records.c.entity == entity,
                    records.c.source_key.in_(chunk),
                )
            ):
                found[(entity, row.source_key)] = (row.id, row.source_hash)
    return found


def _largest_id(connection: Connection) -> int | None:
    """On SQLite, the table's largest record id before an insert (0 when empty); None elsewhere."""
    if connection.dialect.name != "sqlite":
        return None
    return int(connection.exec_driver_sql(f"SELECT max(id) FROM {records.name}").scalar() or 0)


def _inserted_ids(
    connection: Connection, before: int | None, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int] | None:
    """On SQLite, the ids of the rows just inserted for ``pairs`` (in that order) by this
    transaction, whose largest id was ``before``; None elsewhere, or when they are not the ids
    after it.

    SQLite numbers a row one past the table's largest id, and this transaction holds the write
    lock: an insert of N rows that ends at ``last_insert_rowid() == before + N`` took exactly the N
    ids after ``before``, in order (a rowid chosen at random, past the largest possible one,
    cannot end there). Looking the keys up again cost a fifth of the extract's store time.
    """
    if before is None or not pairs:
        return None
    last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    if last - before != len(pairs):
        return None
    return {pair: before + place for place, pair in enumerate(pairs, start=1)}


class Staging:
    """Writes staged rows (and their ``stage`` events) into ``mlconn_records``."""

    def __init__(self, db: Database, cipher: PayloadCipher) -> None:
        self._db = db
        self._cipher = cipher

    def writer(
        self,
        run: RunRef,
        actor: Actor,
        *,
        entities: Iterable[str],
        chunk_size: int = CHUNK,
        after_flush: Callable[[Sequence[int]], None] | None = None,
        mapper: ChunkMapper | None = None,
    ) -> StagingWriter:
        return StagingWriter(
            self,
            run,
            actor,
            entities=entities,
            chunk_size=chunk_size,
            after_flush=after_flush,
            mapper=mapper,
        )

    def stage_chunk(
        self,
        run: RunRef,
        actor: Actor,
        items: Mapping[tuple[str, str], Mapping[str, Any]],
        *,
        action: str = "stage",
        mapper: ChunkMapper | None = None,
        assume_new: bool = False,
    ) -> StagingCounts:
        """Stage ``(entity, key) -> source``; ``action`` names the event (``adopt`` for records taken
        over from an earlier run).

        With ``mapper``, the chunk's new records are mapped from the sources at hand, in the same
        transaction, and inserted mapped: each gets its ``stage`` event and then its ``map`` event,
        as if the map step had read it back (what that cost: a read, a decryption and a rewrite of
        every row). A source that changed within the run, and a chunk the mapper declines, stay
        ``staged`` for the map step (``counts.ids``).

        ``assume_new``: the run is not expected to hold any of these keys, so they are inserted
        without looking them up first; the run's unique key refuses one it holds, and the chunk is
        staged again with the lookup (``counts.conflicted``).
        """
        prepared = {pair: self._cipher.source_digest_and_token(payload) for pair, payload in items.items()}
        by_entity: dict[str, list[str]] = {}
        for entity, key in prepared:
            by_entity.setdefault(entity, []).append(key)

        def work(connection: Connection, *, look_up: bool = True) -> StagingCounts:
            counts = StagingCounts()
            now = utcnow()
            existing = _ids_of(connection, run.run_key, by_entity) if look_up else {}
            touched = (now, *actor.values())
            # The new rows go to the driver as they are: every value is text, a number or NULL, and
            # the one time stamp is converted here.
            stamp = bound_value(connection, records.c.created_at, now)
            actor_values = actor.values()
            # Entity by entity (each in the source's order), so a load's outcomes for one entity
            # rewrite neighbouring rows, not one page per record among the other entities' rows.
            new_pairs = sorted((pair for pair in prepared if pair not in existing), key=itemgetter(0))
            results = self._mapped(mapper, new_pairs, items)
            before = _largest_id(connection) if new_pairs else None
            columns = [_NOT_MAPPED if result is None else self._mapped_columns(result) for result in results]
            insert_rows(
                connection,
                records,
                _NEW_ROW_COLUMNS,
                [
                    (
                        run.run_key,
                        run.flow,
                        entity,
                        key,
                        prepared[(entity, key)][1],
                        prepared[(entity, key)][0],
                        _STAGED if result is None else result.status.value,
                        0,
                        stamp,
                        _WRITE,
                        *mapped_columns,
                        stamp,
                        *actor_values,
                    )
                    for (entity, key), result, mapped_columns in zip(new_pairs, results, columns, strict=True)
                ],
                bound=True,
            )
            staged_ids: list[int] = []
            events = EventBatch(connection, action=action, actor=actor, at=now)
            mapped_events = EventBatch(connection, action="map", actor=actor, at=now)
            if new_pairs:
                inserted = _inserted_ids(connection, before, new_pairs)
                if inserted is None:
                    new_by_entity: dict[str, list[str]] = {}
                    for entity, key in new_pairs:
                        new_by_entity.setdefault(entity, []).append(key)
                    found = _ids_of(connection, run.run_key, new_by_entity)
                    inserted = {pair: record_id for pair, (record_id, _) in found.items()}
                for pair, result, (_, _, _, error, _) in zip(new_pairs, results, columns, strict=True):
                    record_id = inserted[pair]
                    events.add(record_id, RecordStatus.STAGED, 0)
                    if result is None:
                        staged_ids.append(record_id)
                        continue
                    mapped_events.add(
                        record_id,
                        result.status,
                        0,
                        payload_hash=result.payload_hash,
                        remote_id=result.remote_id,
                        error=error,
                    )
                    counts.mapped[result.status.value] += 1
                counts.new += len(new_pairs)
                counts.per_entity.update(entity for entity, _ in new_pairs)
            restaged = []
            for pair, (record_id, old_hash) in existing.items():
                digest, token = prepared[pair]
                if digest == old_hash:
                    counts.same += 1
                    continue
                restaged.append((token, digest, *_RESTAGED_CLEARED.values(), *touched, record_id))
                events.add(record_id, RecordStatus.STAGED, 0)
                staged_ids.append(record_id)
                counts.changed += 1
                counts.per_entity[pair[0]] += 1
            update_rows(connection, records, _RESTAGED_COLUMNS, restaged)
            events.write()
            mapped_events.write()
            counts.ids = staged_ids
            return counts

        try:
            return self._db.write(lambda connection: work(connection, look_up=not assume_new))
        except IntegrityError:
            # The run held one of these keys (another writer inserted it meanwhile, or it was
            # assumed new): look them up this time.
            counts = self._db.write(work)
            counts.conflicted = True
            return counts

    def run_holds_records(self, run: RunRef) -> bool:
        """Whether any record of the run is staged already."""
        with self._db.read() as connection:
            found = connection.execute(
                sa.select(records.c.id).where(records.c.run_key == run.run_key).limit(1)
            )
            return found.first() is not None

    @staticmethod
    def _mapped(
        mapper: ChunkMapper | None,
        pairs: Sequence[tuple[str, str]],
        items: Mapping[tuple[str, str], Mapping[str, Any]],
    ) -> list[MappingResult | None]:
        """The mapping result of each new pair, in order (None: left ``staged``)."""
        if mapper is None or not pairs:
            return [None] * len(pairs)
        results = mapper(
            [
                StagedSource(place, entity, key, items[(entity, key)])
                for place, (entity, key) in enumerate(pairs)
            ]
        )
        if results is None:
            return [None] * len(pairs)
        by_place: list[MappingResult | None] = [None] * len(pairs)
        for result in results:
            by_place[result.record_id] = result
        return by_place

    def _mapped_columns(self, result: MappingResult) -> tuple[Any, ...]:
        """``mapped_payload, payload_hash, remote_id, error, prerequisites`` of a mapped new row."""
        return (
            None if result.payload is None else self._cipher.encrypt(result.payload),
            result.payload_hash,
            result.remote_id,
            None if result.error is None else self._cipher.encrypt(result.error),
            prerequisites_json(result.prerequisites),
        )

    def stage_deletions(
        self, run: RunRef, actor: Actor, entity: str, gone: Sequence[tuple[str, str, str]]
    ) -> int:
        """Rows for keys a full read no longer found: ``(key, remote id, last loaded hash)``.

        They go straight to ``mapped`` with operation ``delete`` (nothing to map); the load step
        hands them to the entity's deletion rule. A key the run holds already is left alone.
        """
        if not gone:
            return 0
        source = {"deleted_at_source": True}

        def work(connection: Connection) -> int:
            now = utcnow()
            held = set(
                connection.execute(
                    sa.select(records.c.source_key).where(
                        records.c.run_key == run.run_key,
                        records.c.entity == entity,
                        records.c.source_key.in_([key for key, _, _ in gone]),
                    )
                ).scalars()
            )
            rows = [
                {
                    "run_key": run.run_key,
                    "flow": run.flow,
                    "entity": entity,
                    "source_key": key,
                    "source_payload": self._cipher.encrypt(source),
                    "source_hash": self._cipher.digest(source),
                    "mapped_payload": self._cipher.encrypt({}),
                    "payload_hash": f"deleted:{last_hash}",
                    "remote_id": remote_id,
                    "status": RecordStatus.MAPPED.value,
                    "attempts": 0,
                    "operation": Operation.DELETE.value,
                    "created_at": now,
                    "updated_at": now,
                    **actor.columns(),
                }
                for key, remote_id, last_hash in gone
                if key not in held
            ]
            if not rows:
                return 0
            result = connection.execute(
                records.insert().returning(records.c.id, sort_by_parameter_order=True), rows
            )
            note = self._cipher.encrypt("not at the source any more (full read): the deletion rule applies")
            append_events(
                connection,
                [
                    event_row(
                        row.id,
                        action="deleted",
                        status=RecordStatus.MAPPED,
                        attempt=0,
                        actor=actor,
                        at=now,
                        payload_hash=None,
                        error=note,
                    )
                    for row in result
                ],
            )
            return len(rows)

        return self._db.write(work)
