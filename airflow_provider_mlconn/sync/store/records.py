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
from airflow_provider_mlconn.sync.store.bulk import placeholder, update_rows
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
#: The columns a StoredRecord is read from, in ``RecordTable._record``'s order.
_READ_NAMES = (
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
#: ``_READ_NAMES`` for SQLAlchemy queries; times as the database hands them over (SQLite: text).
_READ = tuple(
    sa.type_coerce(records.c[name], sa.String).label(name) if name in _TIMES else records.c[name]
    for name in _READ_NAMES
)
_READ_SQL = f"SELECT {', '.join(_READ_NAMES)} FROM {records.name}"


_STATUSES = {status.value: status for status in RecordStatus}
_OPERATIONS = {operation.value: operation for operation in Operation}


def _prerequisites(stored: str | None) -> tuple[Prerequisite, ...]:
    if not stored or stored == "[]":
        return ()
    return tuple(Prerequisite.from_json(p) for p in json.loads(stored))


#: How many ids of matching records ``RecordTable.iter`` reads at once (memory: ~0.5 MB).
ID_PAGE = 10_000


class _Where:
    """Conditions on ``mlconn_records`` columns, rendered as driver SQL with positional parameters."""

    def __init__(self) -> None:
        self._terms: list[tuple[str, str, tuple[Any, ...]]] = []

    def copy(self) -> _Where:
        other = _Where()
        other._terms = list(self._terms)
        return other

    def equals(self, column: str, value: Any) -> None:
        self._terms.append((column, "=", (value,)))

    def after(self, column: str, value: Any) -> None:
        self._terms.append((column, ">", (value,)))

    def is_in(self, column: str, values: Sequence[Any]) -> None:
        self._terms.append((column, "IN", tuple(values)))

    def combined(self, other: _Where) -> _Where:
        both = self.copy()
        both._terms.extend(other._terms)
        return both

    def render(self, marker: str) -> tuple[str, tuple[Any, ...]]:
        parts: list[str] = []
        parameters: list[Any] = []
        for column, operator, values in self._terms:
            if operator == "IN":
                parts.append(f"{column} IN ({', '.join([marker] * len(values))})" if values else "1 = 0")
            else:
                parts.append(f"{column} {operator} {marker}")
            parameters.extend(values)
        return " AND ".join(parts) or "1 = 1", tuple(parameters)


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
        """Matching records in id order, one decrypted chunk at a time (short read transactions).

        Read with driver SQL: every step reads its records through here, and SQLAlchemy's rows and
        statement handling cost a third of reading them."""
        # A row's run, flow and entity never change; its status and claim may, meanwhile.
        fixed = _Where()
        for name, value in (("run_key", run_key), ("flow", flow), ("entity", entity)):
            if value is not None:
                fixed.equals(name, value)
        changing = _Where()
        if statuses is not None:
            changing.is_in("status", [s.value for s in statuses])
        if claim_token is not None:
            changing.equals("claim_token", claim_token)
        if ids is None and claim_token is None:
            for page_chunk in self._matching_ids(fixed.combined(changing), chunk_size):
                # By primary key: the ids matched the fixed conditions already (naming them again
                # would lead SQLite to the run's index and a sort).
                where = changing.copy()
                where.is_in("id", page_chunk)
                rows = self._rows(where, limit=None)
                if rows:
                    yield [self._record(row) for row in rows]
            return
        base = fixed.combined(changing)
        id_chunks: Iterable[Sequence[int] | None] = chunks(ids, chunk_size) if ids is not None else [None]
        for id_chunk in id_chunks:
            last_id = 0
            while True:
                where = base.copy()
                where.after("id", last_id)
                if id_chunk is not None:
                    where.is_in("id", id_chunk)
                rows = self._rows(where, limit=chunk_size)
                if not rows:
                    break
                yield [self._record(row) for row in rows]
                last_id = rows[-1][0]
                if len(rows) < chunk_size:
                    break

    def _rows(self, where: _Where, *, limit: int | None, select: str = _READ_SQL) -> list[Any]:
        """The rows matching ``where`` in id order: by default the record rows (``_READ_NAMES``;
        times as the driver hands them over)."""
        with self._db.read() as connection:
            sql, parameters = where.render(placeholder(connection))
            tail = " ORDER BY id" + (f" LIMIT {int(limit)}" if limit is not None else "")
            return list(connection.exec_driver_sql(f"{select} WHERE {sql}{tail}", parameters))

    def _matching_ids(self, where: _Where, chunk_size: int) -> Iterator[Sequence[int]]:
        """The ids of the matching records in id order, ``chunk_size`` at a time, read
        ``ID_PAGE`` at a time from an index alone.

        Reading whole rows by ``id > last ORDER BY id LIMIT n`` made SQLite walk the run's index
        entries and sort them again for every chunk (a run of N records cost N * N / n index
        steps: 6 s of the map step at 20,000 records); ids come from one walk per page instead, and
        the rows by primary key.
        """
        last_id = 0
        while True:
            page_where = where.copy()
            page_where.after("id", last_id)
            rows = self._rows(page_where, limit=ID_PAGE, select=f"SELECT id FROM {records.name}")
            page = [record_id for (record_id,) in rows]
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
