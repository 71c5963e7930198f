"""What a run report reads and keeps: each task try's time, calls and records (``mlconn_task_runs``),
the run's outcome counts, the records a person must look at, and the payloads written before."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.records import RecordStatus
from airflow_provider_mlconn.sync.schema import records, task_runs
from airflow_provider_mlconn.sync.store.database import Database, chunks
from airflow_provider_mlconn.sync.store.rows import Actor

#: Statuses written to the target (or equal to what it holds): a record's previous write.
_WRITTEN = (RecordStatus.LOADED.value, RecordStatus.UNCHANGED.value)


@dataclass(frozen=True)
class TaskRun:
    """One try of one task of a run."""

    task_id: str
    map_index: int
    try_number: int
    state: str
    started_at: datetime
    ended_at: datetime | None
    #: system -> counts (``calls``, ``rate_limited``, ``errors``, ``retries``, ``seconds``, ``waited``, ...)
    calls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class OutcomeCount:
    """How many records of a run's entity ended in one status (and, when loaded, how)."""

    entity: str
    status: str
    change: str | None
    operation: str
    count: int


@dataclass(frozen=True)
class RecordKey:
    """A record row named without decrypting it."""

    id: int
    entity: str
    key: str
    operation: str
    status: RecordStatus
    change: str | None


class RunReports:
    """The store's side of run reports."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save_task(
        self,
        run_key: str,
        actor: Actor,
        *,
        state: str,
        started_at: datetime,
        ended_at: datetime | None,
        calls: Mapping[str, Mapping[str, Any]],
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Save (or replace) one task try's row."""
        key = {
            "run_key": run_key,
            "task_id": actor.task_id,
            "map_index": actor.map_index,
            "try_number": actor.try_number,
        }
        values = {
            **key,
            "state": state,
            "started_at": started_at,
            "ended_at": ended_at,
            "calls": json.dumps(calls, sort_keys=True),
            "detail": json.dumps(detail, sort_keys=True) if detail else None,
        }

        def work(connection: Connection) -> None:
            connection.execute(
                task_runs.delete().where(*(task_runs.c[name] == value for name, value in key.items()))
            )
            connection.execute(task_runs.insert().values(**values))

        self._db.write(work)

    def tasks(self, run_key: str) -> list[TaskRun]:
        """Every task try of the run, by task, batch and try."""
        with self._db.read() as connection:
            rows = connection.execute(
                sa.select(task_runs)
                .where(task_runs.c.run_key == run_key)
                .order_by(
                    task_runs.c.started_at, task_runs.c.task_id, task_runs.c.map_index, task_runs.c.try_number
                )
            ).mappings()
            return [
                TaskRun(
                    task_id=row["task_id"],
                    map_index=row["map_index"],
                    try_number=row["try_number"],
                    state=row["state"],
                    started_at=row["started_at"],
                    ended_at=row["ended_at"],
                    calls=json.loads(row["calls"] or "{}"),
                    detail=json.loads(row["detail"] or "{}"),
                )
                for row in rows
            ]

    def outcome_counts(self, run_key: str) -> list[OutcomeCount]:
        """The run's records counted by entity, status, change (created/updated/deleted) and operation."""
        operation = sa.func.coalesce(records.c.operation, "write")
        query = (
            sa.select(records.c.entity, records.c.status, records.c.change, operation, sa.func.count())
            .where(records.c.run_key == run_key)
            .group_by(records.c.entity, records.c.status, records.c.change, operation)
        )
        with self._db.read() as connection:
            return [
                OutcomeCount(entity, status, change, str(op), int(number))
                for entity, status, change, op, number in connection.execute(query)
            ]

    def record_ids(
        self, run_key: str, statuses: Sequence[RecordStatus], *, limit: int
    ) -> tuple[list[int], int]:
        """Up to ``limit`` ids of the run's records in ``statuses`` (in the order of ``statuses``, then
        entity and key), and how many there are in all."""
        wanted = [status.value for status in statuses]
        rank = sa.case({status: number for number, status in enumerate(wanted)}, value=records.c.status)
        conditions = [records.c.run_key == run_key, records.c.status.in_(wanted)]
        with self._db.read() as connection:
            total = int(connection.execute(sa.select(sa.func.count()).where(*conditions)).scalar_one())
            ids = list(
                connection.execute(
                    sa.select(records.c.id)
                    .where(*conditions)
                    .order_by(rank, records.c.entity, records.c.source_key)
                    .limit(limit)
                ).scalars()
            )
        return ids, total

    def record_keys(self, run_key: str, statuses: Sequence[RecordStatus]) -> list[RecordKey]:
        """The run's records in ``statuses``, by entity and key; nothing decrypted."""
        query = (
            sa.select(
                records.c.id,
                records.c.entity,
                records.c.source_key,
                sa.func.coalesce(records.c.operation, "write"),
                records.c.status,
                records.c.change,
            )
            .where(records.c.run_key == run_key, records.c.status.in_([s.value for s in statuses]))
            .order_by(records.c.entity, records.c.source_key)
        )
        with self._db.read() as connection:
            return [
                RecordKey(int(i), str(e), str(k), str(o), RecordStatus(s), c)
                for i, e, k, o, s, c in connection.execute(query)
            ]

    def previous_writes(self, record_ids: Sequence[int]) -> dict[int, int]:
        """For each record id, the id of the latest earlier row of the same record (flow, entity, key)
        that was written to the target or found equal to it (``loaded``/``unchanged``)."""
        earlier = records.alias("earlier")
        previous = (
            sa.select(sa.func.max(earlier.c.id))
            .where(
                earlier.c.flow == records.c.flow,
                earlier.c.entity == records.c.entity,
                earlier.c.source_key == records.c.source_key,
                earlier.c.id < records.c.id,
                earlier.c.status.in_(_WRITTEN),
            )
            .scalar_subquery()
        )
        found: dict[int, int] = {}
        with self._db.read() as connection:
            for chunk in chunks(list(record_ids)):
                for record_id, previous_id in connection.execute(
                    sa.select(records.c.id, previous).where(records.c.id.in_(list(chunk)))
                ):
                    if previous_id is not None:
                        found[int(record_id)] = int(previous_id)
        return found
