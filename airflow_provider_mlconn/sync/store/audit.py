"""Reading the audit trail (histories, replay selections) and pruning it after the retention time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.records import RecordStatus
from airflow_provider_mlconn.sync.schema import record_events, records, runs, task_runs, write_journal
from airflow_provider_mlconn.sync.store.database import Database, chunks
from airflow_provider_mlconn.sync.store.events import actor_text
from airflow_provider_mlconn.sync.store.records import RecordTable
from airflow_provider_mlconn.sync.store.rows import RecordEvent, StoredRecord


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed (or would remove, in a dry run)."""

    records: int
    events: int
    runs: int
    cutoff: datetime
    dry_run: bool
    #: Reconciliation reports older than the cutoff (the newest one always stays).
    reconcile_reports: int = 0


class AuditTrail:
    def __init__(self, db: Database, cipher: PayloadCipher, records_table: RecordTable) -> None:
        self._db = db
        self._cipher = cipher
        self._records = records_table

    def events_of(self, record_ids: Sequence[int]) -> dict[int, list[RecordEvent]]:
        history: dict[int, list[RecordEvent]] = {record_id: [] for record_id in record_ids}
        if not record_ids:
            return history
        with self._db.read() as connection:
            for chunk in chunks(list(record_ids)):
                rows = connection.execute(
                    sa.select(record_events)
                    .where(record_events.c.record_id.in_(list(chunk)))
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
                            error=self._cipher.decrypt(row["error"]),
                            payload_hash=row["payload_hash"],
                            actor=actor_text(row),
                        )
                    )
        return history

    def history(self, *, flow: str, entity: str, key: str) -> list[tuple[StoredRecord, list[RecordEvent]]]:
        """Every run's row of one record, oldest first, each with its events."""
        with self._db.read() as connection:
            ids = list(
                connection.execute(
                    sa.select(records.c.id)
                    .where(records.c.flow == flow, records.c.entity == entity, records.c.source_key == key)
                    .order_by(records.c.id)
                ).scalars()
            )
        rows = [record for chunk in self._records.iter(ids=ids) for record in chunk]
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
        conditions: list[Any] = [
            records.c.flow == flow,
            records.c.status.in_([s.value for s in statuses]),
            _latest_of_its_key(),
        ]
        if entity:
            conditions.append(records.c.entity == entity)
        if run_key:
            conditions.append(records.c.run_key == run_key)
        if since:
            conditions.append(records.c.updated_at >= since)
        if until:
            conditions.append(records.c.updated_at < until)
        with self._db.read() as connection:
            return list(
                connection.execute(
                    sa.select(records.c.id).where(*conditions).order_by(records.c.id).limit(limit)
                ).scalars()
            )

    def prune(self, *, cutoff: datetime, dry_run: bool = False) -> PruneResult:
        """Delete record rows (with their events) last touched before ``cutoff``, except each key's
        latest row and rows with a write in the journal; then runs left without records.

        The id map is never pruned: it is what makes a later run recognise unchanged records.
        """
        journaled = sa.select(write_journal.c.record_id)
        prunable: list[Any] = [
            records.c.updated_at < cutoff,
            ~_latest_of_its_key(),
            records.c.id.not_in(journaled),
        ]

        def count(connection: Connection) -> tuple[list[int], int]:
            ids = list(connection.execute(sa.select(records.c.id).where(*prunable)).scalars())
            events = 0
            for chunk in chunks(ids):
                events += int(
                    connection.execute(
                        sa.select(sa.func.count()).where(record_events.c.record_id.in_(list(chunk)))
                    ).scalar_one()
                )
            return ids, events

        def stale_runs(connection: Connection) -> list[str]:
            return list(
                connection.execute(
                    sa.select(runs.c.run_key).where(
                        runs.c.updated_at < cutoff,
                        ~sa.exists().where(records.c.run_key == runs.c.run_key),
                    )
                ).scalars()
            )

        def work(connection: Connection) -> PruneResult:
            ids, events = count(connection)
            if dry_run:
                # Runs whose every record would go.
                kept_runs = set(
                    connection.execute(
                        sa.select(records.c.run_key).where(records.c.id.not_in(ids) if ids else sa.true())
                    ).scalars()
                )
                old_runs = connection.execute(
                    sa.select(runs.c.run_key).where(runs.c.updated_at < cutoff)
                ).scalars()
                return PruneResult(len(ids), events, len(set(old_runs) - kept_runs), cutoff, True)
            for chunk in chunks(ids):
                connection.execute(record_events.delete().where(record_events.c.record_id.in_(list(chunk))))
                connection.execute(records.delete().where(records.c.id.in_(list(chunk))))
            gone = stale_runs(connection)
            for keys in chunks(gone):
                connection.execute(runs.delete().where(runs.c.run_key.in_(list(keys))))
                connection.execute(task_runs.delete().where(task_runs.c.run_key.in_(list(keys))))
            return PruneResult(len(ids), events, len(gone), cutoff, False)

        return self._db.write(work)


def _latest_of_its_key() -> Any:
    newer = records.alias("newer")
    return ~sa.exists().where(
        newer.c.flow == records.c.flow,
        newer.c.entity == records.c.entity,
        newer.c.source_key == records.c.source_key,
        newer.c.id > records.c.id,
    )
