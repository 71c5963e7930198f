"""The audit trail's rows: one per step a record went through (stage, map, load, replay...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.records import RecordStatus
from airflow_provider_mlconn.sync.schema import record_events
from airflow_provider_mlconn.sync.store.bulk import bound_value, insert_rows
from airflow_provider_mlconn.sync.store.rows import Actor

EVENT_COLUMNS = (
    "record_id",
    "at",
    "action",
    "status",
    "attempt",
    "remote_id",
    "change",
    "error",
    "payload_hash",
    "dag_id",
    "run_id",
    "task_id",
    "try_number",
    "map_index",
)


class EventBatch:
    """The events of one step of many records: same action, actor and time, one row per record,
    written in the transaction of ``connection``."""

    def __init__(self, connection: Connection, *, action: str, actor: Actor, at: datetime) -> None:
        self._connection = connection
        self._head = (bound_value(connection, record_events.c.at, at), action)
        self._actor = (actor.dag_id, actor.run_id, actor.task_id, actor.try_number, actor.map_index)
        self.rows: list[tuple[Any, ...]] = []

    def add(
        self,
        record_id: int,
        status: RecordStatus,
        attempt: int,
        *,
        payload_hash: str | None = None,
        remote_id: str | None = None,
        change: str | None = None,
        error: str | None = None,
    ) -> None:
        """One record's event; ``error`` is already encrypted."""
        self.rows.append(
            (
                record_id,
                *self._head,
                status.value,
                attempt,
                remote_id,
                change,
                error,
                payload_hash,
                *self._actor,
            )
        )

    def write(self) -> None:
        insert_rows(self._connection, record_events, EVENT_COLUMNS, self.rows, bound=True)


def event_row(
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
    """One event row; ``error`` is already encrypted."""
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


def append_events(connection: Connection, events: Sequence[dict[str, Any]]) -> None:
    insert_rows(
        connection, record_events, EVENT_COLUMNS, [tuple(e[c] for c in EVENT_COLUMNS) for e in events]
    )


def actor_text(row: sa.RowMapping) -> str:
    """Who touched a record (or made an event), from its dag/run/task/try columns."""
    return actor_label(row["dag_id"], row["run_id"], row["task_id"], row["try_number"], row["map_index"])


def actor_label(
    dag_id: str | None, run_id: str | None, task_id: str | None, try_number: Any, map_index: Any
) -> str:
    """``dag/run/task[map index] try N``, or empty when no task touched it."""
    if not dag_id:
        return ""
    index = f"[{map_index}]" if map_index not in (None, -1) else ""
    return f"{dag_id}/{run_id}/{task_id}{index} try {try_number}"
