"""The audit trail's rows: one per step a record went through (stage, map, load, replay...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.records import RecordStatus
from airflow_provider_mlconn.sync.schema import record_events
from airflow_provider_mlconn.sync.store.rows import Actor


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
    if events:
        connection.execute(record_events.insert(), list(events))


def actor_text(row: sa.RowMapping) -> str:
    """Who touched a record (or made an event), from its dag/run/task/try columns."""
    if not row["dag_id"]:
        return ""
    index = f"[{row['map_index']}]" if row["map_index"] not in (None, -1) else ""
    return f"{row['dag_id']}/{row['run_id']}/{row['task_id']}{index} try {row['try_number']}"
