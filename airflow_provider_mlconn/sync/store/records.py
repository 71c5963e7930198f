"""The record rows of runs: reading them (decrypted), and saving what map and order decided."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.records import Operation, Prerequisite, RecordStatus
from airflow_provider_mlconn.sync.schema import records
from airflow_provider_mlconn.sync.store.bulk import update_rows
from airflow_provider_mlconn.sync.store.database import CHUNK, Database, chunks, stored_time, utcnow
from airflow_provider_mlconn.sync.store.events import (
    EventBatch,
    actor_label,
    append_events,
    event_row,
)
from airflow_provider_mlconn.sync.store.rows import ACTOR_COLUMNS, Actor, MappingResult, Sealed, StoredRecord


def prerequisites_json(prerequisites: Sequence[Prerequisite] | None) -> str | None:
    """The stored form of a record's prerequisites: ``[]`` for none, NULL when not worked out."""
    if prerequisites is None:
        return None
    return json.dumps([p.to_json() for p in prerequisites])


#: What the map step saves on a record: its verdict, payload and prerequisites; the later steps'
#: columns are cleared (a record mapped again is ordered and loaded anew).
_MAPPING_COLUMNS = (
    "status",
    "mapped_payload",
    "payload_hash",
    "remote_id",
    "error",
    "prerequisites",
    "change",
    "batch",
    "updated_at",
    *ACTOR_COLUMNS,
)


_TIMES = ("created_at", "updated_at", "waiting_since")
#: The columns a StoredRecord is read from, in ``RecordTable._record``'s order; times as the
#: database hands them over (SQLite: text).
_READ = tuple(
    sa.type_coerce(records.c[name], sa.String).label(name) if name in _TIMES else records.c[name]
    for name in (
        "id",
        "run_key",
        "flow",
        "entity",
        "source_key",
        "payload_hash",
        "status",
        "attempts",
        "remote_id",
        "change",
        "prerequisites",
        "batch",
        "created_at",
        "updated_at",
        "source_payload",
        "mapped_payload",
        "error",
        "operation",
        "waiting_since",
        "dag_id",
        "run_id",
        "task_id",
        "try_number",
        "map_index",
    )
)


_STATUSES = {status.value: status for status in RecordStatus}
_OPERATIONS = {operation.value: operation for operation in Operation}


def _prerequisites(stored: str | None) -> tuple[Prerequisite, ...]:
    if not stored or stored == "[]":
        return ()
    return tuple(Prerequisite.from_json(p) for p in json.loads(stored))


#: How many ids of matching records ``RecordTable.iter`` reads at once (memory: ~0.5 MB).
ID_PAGE = 10_000


class RecordTable:
    """``mlconn_records``: one row per record per run."""

    def __init__(self, db: Database, cipher: PayloadCipher) -> None:
        self._db = db
        self._cipher = cipher

    def iter(
        self,
        *,
        run_key: str | None = None,
        flow: str | None = None,
        entity: str | None = None,
        statuses: Sequence[RecordStatus] | None = None,
        ids: Sequence[int] | None = None,
        claim_token: str | None = None,
        chunk_size: int = CHUNK,
    ) -> Iterator[list[StoredRecord]]:
        """Matching records in id order, one decrypted chunk at a time (short read transactions)."""
        # A row's run, flow and entity never change; its status and claim may, meanwhile.
        fixed: list[Any] = []
        if run_key is not None:
            fixed.append(records.c.run_key == run_key)
        if flow is not None:
            fixed.append(records.c.flow == flow)
        if entity is not None:
            fixed.append(records.c.entity == entity)
        changing: list[Any] = []
        if statuses is not None:
            changing.append(records.c.status.in_([s.value for s in statuses]))
        if claim_token is not None:
            changing.append(records.c.claim_token == claim_token)
        conditions = [*fixed, *changing]
        if ids is None and claim_token is None:
            for page_chunk in self._matching_ids(conditions, chunk_size):
                # By primary key: the ids matched the fixed conditions already (naming them again
                # would lead SQLite to the run's index and a sort).
                query = (
                    sa.select(*_READ).where(records.c.id.in_(page_chunk), *changing).order_by(records.c.id)
                )
                with self._db.read() as connection:
                    rows = connection.execute(query).all()
                if rows:
                    yield [self._record(row) for row in rows]
            return
        id_chunks: Iterable[Sequence[int] | None] = chunks(ids, chunk_size) if ids is not None else [None]
        for id_chunk in id_chunks:
            last_id = 0
            while True:
                query = (
                    sa.select(*_READ)
                    .where(records.c.id > last_id, *conditions)
                    .order_by(records.c.id)
                    .limit(chunk_size)
                )
                if id_chunk is not None:
                    query = query.where(records.c.id.in_(id_chunk))
                with self._db.read() as connection:
                    rows = connection.execute(query).all()
                if not rows:
                    break
                yield [self._record(row) for row in rows]
                last_id = rows[-1][0]
                if len(rows) < chunk_size:
                    break

    def _matching_ids(self, conditions: Sequence[Any], chunk_size: int) -> Iterator[Sequence[int]]:
        """The ids of the matching records in id order, ``chunk_size`` at a time, read
        ``ID_PAGE`` at a time from an index alone.

        Reading whole rows by ``id > last ORDER BY id LIMIT n`` made SQLite walk the run's index
        entries and sort them again for every chunk (a run of N records cost N * N / n index
        steps: 6 s of the map step at 20,000 records); ids come from one walk per page instead, and
        the rows by primary key.
        """
        last_id = 0
        while True:
            with self._db.read() as connection:
                page = list(
                    connection.execute(
                        sa.select(records.c.id)
                        .where(records.c.id > last_id, *conditions)
                        .order_by(records.c.id)
                        .limit(ID_PAGE)
                    ).scalars()
                )
            yield from chunks(page, chunk_size)
            if len(page) < ID_PAGE:
                return
            last_id = page[-1]

    def of_run(self, run_key: str, *, statuses: Sequence[RecordStatus] | None = None) -> list[StoredRecord]:
        return [record for chunk in self.iter(run_key=run_key, statuses=statuses) for record in chunk]

    def count(
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
        with self._db.read() as connection:
            return int(connection.execute(sa.select(sa.func.count()).where(*conditions)).scalar_one())

    def ids_to_order(
        self, *, run_key: str, entity: str, statuses: Sequence[RecordStatus]
    ) -> list[tuple[int, bool]]:
        """The ids of the run's records of ``entity`` in ``statuses``, in id order, each with whether
        its prerequisites are worked out."""
        query = (
            sa.select(records.c.id, records.c.prerequisites.is_not(None))
            .where(
                records.c.run_key == run_key,
                records.c.entity == entity,
                records.c.status.in_([s.value for s in statuses]),
            )
            .order_by(records.c.id)
        )
        with self._db.read() as connection:
            return [(record_id, bool(known)) for record_id, known in connection.execute(query)]

    def set_batches(
        self,
        *,
        run_key: str,
        entity: str,
        statuses: Sequence[RecordStatus],
        ranges: Sequence[tuple[int, int, int]],
    ) -> None:
        """Put the records in ``statuses`` with ids from ``first`` to ``last`` in ``batch``, for each
        ``(batch, first, last)``: one statement per batch."""
        if not ranges:
            return
        wanted = [s.value for s in statuses]

        def work(connection: Connection) -> None:
            for batch, first, last in ranges:
                connection.execute(
                    records.update()
                    .where(
                        records.c.run_key == run_key,
                        records.c.entity == entity,
                        records.c.status.in_(wanted),
                        records.c.id.between(first, last),
                    )
                    .values(batch=batch)
                )

        self._db.write(work)

    def keys_of_run(self, run_key: str, entity: str) -> set[str]:
        """Every source key the run holds for ``entity``."""
        with self._db.read() as connection:
            return set(
                connection.execute(
                    sa.select(records.c.source_key).where(
                        records.c.run_key == run_key, records.c.entity == entity
                    )
                ).scalars()
            )

    def _record(self, row: Sequence[Any]) -> StoredRecord:
        """The record of a row read with ``_READ`` (by position: a chunk's rows cost no mapping
        views, and times are parsed here rather than by a type processor per value)."""
        (
            record_id,
            run_key,
            flow,
            entity,
            key,
            payload_hash,
            status,
            attempts,
            remote_id,
            change,
            prerequisites,
            batch,
            created_at,
            updated_at,
            source_payload,
            mapped_payload,
            error,
            operation,
            waiting_since,
            dag_id,
            run_id,
            task_id,
            try_number,
            map_index,
        ) = row
        # Positional, in the field order (keywords cost a fifth of the record on a hot path).
        return StoredRecord(
            record_id,
            run_key,
            flow,
            entity,
            key,
            payload_hash,
            _STATUSES[status],
            attempts,
            remote_id,
            change,
            _prerequisites(prerequisites),
            batch,
            actor_label(dag_id, run_id, task_id, try_number, map_index),
            stored_time(created_at),
            stored_time(updated_at),
            Sealed(self._cipher, source_payload, mapped_payload, error),
            _OPERATIONS[operation or Operation.WRITE.value],
            None if waiting_since is None else stored_time(waiting_since),
        )

    def latest(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], tuple[str, str | None]]:
        """The latest record of each (flow, entity, key) in any run: its status and decrypted reason."""
        by_flow_entity: dict[tuple[str, str], set[str]] = {}
        for flow, entity, key in keys:
            by_flow_entity.setdefault((flow, entity), set()).add(key)
        found: dict[tuple[str, str, str], tuple[int, str, str | None]] = {}
        with self._db.read() as connection:
            for (flow, entity), wanted in by_flow_entity.items():
                for chunk in chunks(sorted(wanted)):
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
        return {pair: (status, self._cipher.decrypt(error)) for pair, (_, status, error) in found.items()}

    def latest_waiting(self, *, flow: str, entity: str, not_in_run: str) -> list[StoredRecord]:
        """The records of ``entity`` whose latest row (any run but ``not_in_run``) is waiting, and
        that ``not_in_run`` does not hold: what a run may take over."""
        newer = records.alias("newer")
        query = (
            sa.select(*_READ)
            .where(
                records.c.flow == flow,
                records.c.entity == entity,
                records.c.status == RecordStatus.WAITING.value,
                records.c.run_key != not_in_run,
                ~sa.exists().where(
                    newer.c.flow == records.c.flow,
                    newer.c.entity == records.c.entity,
                    newer.c.source_key == records.c.source_key,
                    newer.c.id > records.c.id,
                ),
            )
            .order_by(records.c.id)
        )
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [self._record(row) for row in rows]

    def save_mapping(self, results: Sequence[MappingResult], actor: Actor, *, action: str = "map") -> None:
        if not results:
            return
        encrypt = self._cipher.encrypt

        def work(connection: Connection) -> None:
            now = utcnow()
            touched = (now, *actor.values())
            rows = []
            events = EventBatch(connection, action=action, actor=actor, at=now)
            for result in results:
                error = None if result.error is None else encrypt(result.error)
                payload = None if result.payload is None else encrypt(result.payload)
                rows.append(
                    (
                        result.status.value,
                        payload,
                        result.payload_hash,
                        result.remote_id,
                        error,
                        prerequisites_json(result.prerequisites),
                        None,
                        None,
                        *touched,
                        result.record_id,
                    )
                )
                events.add(
                    result.record_id,
                    result.status,
                    result.attempts,
                    payload_hash=result.payload_hash,
                    remote_id=result.remote_id,
                    error=error,
                )
            update_rows(connection, records, _MAPPING_COLUMNS, rows)
            events.write()

        self._db.write(work)

    def save_order(self, plan: Sequence[tuple[int, int, Sequence[Prerequisite] | None]]) -> None:
        """Store each record's batch, and its prerequisites where given (``(record_id, batch,
        prerequisites)``; None keeps the ones mapping stored)."""
        if not plan:
            return

        def work(connection: Connection) -> None:
            update_rows(
                connection,
                records,
                ("batch",),
                [(batch, record_id) for record_id, batch, prerequisites in plan if prerequisites is None],
            )
            update_rows(
                connection,
                records,
                ("batch", "prerequisites"),
                [
                    (batch, prerequisites_json(prerequisites), record_id)
                    for record_id, batch, prerequisites in plan
                    if prerequisites is not None
                ],
            )

        self._db.write(work)

    def reject_expired(
        self, expired: Sequence[tuple[int, str]], actor: Actor, *, at: datetime | None = None
    ) -> None:
        """Reject waiting records that waited too long: ``(record_id, reason)``, in place."""
        if not expired:
            return

        def work(connection: Connection) -> None:
            now = at or utcnow()
            connection.execute(
                records.update()
                .where(records.c.id == sa.bindparam("record_id"))
                .values(status=RecordStatus.REJECTED.value, error=sa.bindparam("new_error"), updated_at=now),
                [{"record_id": rid, "new_error": self._cipher.encrypt(reason)} for rid, reason in expired],
            )
            append_events(
                connection,
                [
                    event_row(
                        rid,
                        action="expire",
                        status=RecordStatus.REJECTED,
                        attempt=0,
                        actor=actor,
                        at=now,
                        payload_hash=None,
                        error=self._cipher.encrypt(reason),
                    )
                    for rid, reason in expired
                ],
            )

        self._db.write(work)

    def replace_sources(
        self, sources: Sequence[tuple[int, Any]], actor: Actor, *, action: str = "refresh"
    ) -> None:
        """Put the current source in place of the stored one (``(record_id, source)``), so the next
        mapping works from what the source holds now (replay after a fix at the source)."""
        if not sources:
            return

        def work(connection: Connection) -> None:
            now = utcnow()
            connection.execute(
                records.update()
                .where(records.c.id == sa.bindparam("record_id"))
                .values(
                    source_payload=sa.bindparam("new_source"),
                    source_hash=sa.bindparam("new_hash"),
                    updated_at=now,
                ),
                [
                    {
                        "record_id": record_id,
                        "new_source": self._cipher.encrypt(source),
                        "new_hash": self._cipher.digest(source),
                    }
                    for record_id, source in sources
                ],
            )
            append_events(
                connection,
                [
                    event_row(
                        record_id,
                        action=action,
                        status=RecordStatus.STAGED,
                        attempt=0,
                        actor=actor,
                        at=now,
                        payload_hash=None,
                    )
                    for record_id, _ in sources
                ],
            )

        self._db.write(work)
