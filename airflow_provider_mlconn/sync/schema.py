"""The store's tables and their migrations, applied on first use.

- ``mlconn_runs``: one row per run of a flow (windows, high-water marks, commit).
- ``mlconn_records``: one row per record per run: encrypted source and mapped payloads, hashes,
  status, attempts, remote id, encrypted error, prerequisites, batch, claim, and the
  dag/run/task/try that touched it last.
- ``mlconn_record_events``: the audit trail, one row per step a record went through (replays too).
- ``mlconn_id_map``: source key <-> target id per flow and entity, with the last loaded hash, the
  prerequisite ids the last write linked to, and when the source deleted the record.
- ``mlconn_write_journal``: writes whose outcome is not known (sent, and no outcome saved yet, or
  the response was lost): confirmed by a lookup before the record is sent again.
- ``mlconn_task_runs``: one row per try of each task of a run: when it ran, how it ended, the calls
  it made to each remote system (429s, retries, waits) and the records it worked on (run reports).
- ``mlconn_webhook_events``: the webhook inbox: one row per distinct event received (deduplicated
  on its content), what it schedules and when its asset event was emitted; no payload values.
- ``mlconn_webhook_requests``: one row per webhook request: accepted or refused, and why (counts).
- ``mlconn_reconcile_reports``: one row per run of ``mlconn_reconcile``: its summary (counts, nothing
  personal) and the whole report (every finding with both values), encrypted.

Migrations are numbered functions run in one transaction under a lock (PostgreSQL advisory lock,
SQLite ``BEGIN IMMEDIATE``), so several workers starting at once apply each exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

metadata = sa.MetaData()

# SQLite only auto-increments a column typed exactly INTEGER PRIMARY KEY.
_RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given to the store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


schema_migrations = sa.Table(
    "mlconn_schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

runs = sa.Table(
    "mlconn_runs",
    metadata,
    sa.Column("run_key", sa.String(500), primary_key=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("run_type", sa.String(50), nullable=True),
    sa.Column("windows", sa.Text, nullable=True),
    sa.Column("high_water", sa.Text, nullable=True),
    sa.Column("committed", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("committed_at", UtcDateTime, nullable=True),
    sa.Index("ix_mlconn_runs_flow_created", "flow", "created_at"),
)

records = sa.Table(
    "mlconn_records",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("run_key", sa.String(500), nullable=False),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("entity", sa.String(100), nullable=False),
    sa.Column("source_key", sa.String(200), nullable=False),
    sa.Column("source_payload", sa.Text, nullable=False),
    sa.Column("source_hash", sa.String(64), nullable=False),
    sa.Column("mapped_payload", sa.Text, nullable=True),
    sa.Column("payload_hash", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("remote_id", sa.String(200), nullable=True),
    sa.Column("change", sa.String(10), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("prerequisites", sa.Text, nullable=True),
    sa.Column("batch", sa.Integer, nullable=True),
    sa.Column("claim_owner", sa.String(600), nullable=True),
    sa.Column("claim_token", sa.String(36), nullable=True),
    sa.Column("claimed_at", UtcDateTime, nullable=True),
    sa.Column("dag_id", sa.String(250), nullable=True),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("task_id", sa.String(250), nullable=True),
    sa.Column("try_number", sa.Integer, nullable=True),
    sa.Column("map_index", sa.Integer, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Migration 2: what the load does with the record, and since when it waits for a prerequisite.
    sa.Column("operation", sa.String(10), nullable=True),
    sa.Column("waiting_since", UtcDateTime, nullable=True),
    sa.UniqueConstraint("run_key", "entity", "source_key", name="uq_mlconn_records_run_entity_key"),
    sa.Index("ix_mlconn_records_run_entity_status", "run_key", "entity", "status", "batch"),
    sa.Index("ix_mlconn_records_key_history", "flow", "entity", "source_key", "id"),
    sa.Index("ix_mlconn_records_claim_token", "claim_token"),
    sa.Index("ix_mlconn_records_status_updated", "flow", "status", "updated_at"),
)

record_events = sa.Table(
    "mlconn_record_events",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("record_id", _RowId, sa.ForeignKey("mlconn_records.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("remote_id", sa.String(200), nullable=True),
    sa.Column("change", sa.String(10), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("payload_hash", sa.String(64), nullable=True),
    sa.Column("dag_id", sa.String(250), nullable=True),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("task_id", sa.String(250), nullable=True),
    sa.Column("try_number", sa.Integer, nullable=True),
    sa.Column("map_index", sa.Integer, nullable=True),
    sa.Index("ix_mlconn_record_events_record", "record_id", "id"),
)

id_map = sa.Table(
    "mlconn_id_map",
    metadata,
    sa.Column("flow", sa.String(100), primary_key=True),
    sa.Column("entity", sa.String(100), primary_key=True),
    sa.Column("source_key", sa.String(200), primary_key=True),
    sa.Column("remote_id", sa.String(200), nullable=False),
    sa.Column("last_loaded_hash", sa.String(64), nullable=False),
    sa.Column("last_record_id", _RowId, nullable=False),
    sa.Column("last_run_key", sa.String(500), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("loaded_at", UtcDateTime, nullable=False),
    # Migration 2: the prerequisite target ids the last write linked to (JSON), and deletion.
    sa.Column("last_links", sa.Text, nullable=True),
    sa.Column("deleted_at", UtcDateTime, nullable=True),
    sa.Index("ix_mlconn_id_map_remote", "flow", "entity", "remote_id"),
)

write_journal = sa.Table(
    "mlconn_write_journal",
    metadata,
    sa.Column("flow", sa.String(100), primary_key=True),
    sa.Column("entity", sa.String(100), primary_key=True),
    sa.Column("source_key", sa.String(200), primary_key=True),
    sa.Column("record_id", _RowId, nullable=False),
    # "sent": noted before the call, no outcome saved yet; "uncertain": the response was lost.
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.Column("sent_by", sa.String(600), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
)

task_runs = sa.Table(
    "mlconn_task_runs",
    metadata,
    sa.Column("run_key", sa.String(500), primary_key=True),
    sa.Column("task_id", sa.String(250), primary_key=True),
    sa.Column("map_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("try_number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime, nullable=True),
    # JSON: {system: {calls, rate_limited, errors, retries, seconds, waited, waited_429}}; no payloads.
    sa.Column("calls", sa.Text, nullable=True),
    # JSON: what the task worked on ({"records": done, "total": n} for a load batch).
    sa.Column("detail", sa.Text, nullable=True),
)

webhook_events = sa.Table(
    "mlconn_webhook_events",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(40), nullable=False),
    # SHA-256 of the event without its attempt number: a retried delivery is the same event.
    sa.Column("dedup_key", sa.String(64), nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("portal_id", sa.BigInteger, nullable=False),
    sa.Column("subscription_type", sa.String(100), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=True),
    sa.Column("object_id", sa.String(64), nullable=False),
    sa.Column("property_name", sa.String(200), nullable=True),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    # The asset the event schedules (None: recorded only, ``ignored`` says why).
    sa.Column("asset_uri", sa.String(200), nullable=True),
    sa.Column("ignored", sa.String(200), nullable=True),
    # When its asset event was emitted; None: not yet (a retried delivery emits it then).
    sa.Column("signalled_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("source", "dedup_key", name="uq_mlconn_webhook_events_dedup"),
    sa.Index("ix_mlconn_webhook_events_received", "received_at"),
)

webhook_requests = sa.Table(
    "mlconn_webhook_requests",
    metadata,
    sa.Column("id", _RowId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    # "accepted", or why it was refused: unsigned, bad_signature, stale, too_large, malformed, ...
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("new_events", sa.Integer, nullable=False),
    sa.Column("duplicates", sa.Integer, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("detail", sa.String(300), nullable=True),
    sa.Index("ix_mlconn_webhook_requests_received", "received_at"),
)

reconcile_reports = sa.Table(
    "mlconn_reconcile_reports",
    metadata,
    sa.Column("run_key", sa.String(500), primary_key=True),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("differences", sa.Integer, nullable=False),
    # JSON: counts per flow, entity and kind of difference; no values (the asset event's extra).
    sa.Column("summary", sa.Text, nullable=False),
    # Encrypted JSON: the whole report, each finding with the JDE and the HubSpot value.
    sa.Column("report", sa.Text, nullable=False),
    sa.Index("ix_mlconn_reconcile_reports_created", "created_at"),
)

#: Columns added to existing tables by migration 2 (created with the tables on a new store).
_MIGRATION_2_COLUMNS = (
    (records, ("operation", "waiting_since")),
    (id_map, ("last_links", "deleted_at")),
)


def _create_initial_tables(connection: Connection) -> None:
    metadata.create_all(connection, tables=[runs, records, record_events, id_map], checkfirst=True)


def _add_waiting_uncertain_and_deletions(connection: Connection) -> None:
    """Columns for waiting records, deletions and links; the journal of writes not yet confirmed."""
    inspector = sa.inspect(connection)
    for table, names in _MIGRATION_2_COLUMNS:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for name in names:
            if name in present:
                continue  # a store created after this migration was written has it already
            column = table.c[name]
            column_type = column.type.compile(dialect=connection.dialect)
            connection.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {column_type}"))
    write_journal.create(connection, checkfirst=True)


def _create_task_runs(connection: Connection) -> None:
    """The tries of each task of a run, for run reports (idempotent: safe under another number)."""
    task_runs.create(connection, checkfirst=True)


def _create_webhook_inbox(connection: Connection) -> None:
    """The webhook inbox and request log (idempotent)."""
    metadata.create_all(connection, tables=[webhook_events, webhook_requests], checkfirst=True)


def _create_reconcile_reports(connection: Connection) -> None:
    """The reconciliation's reports (idempotent: safe whatever was applied before it)."""
    reconcile_reports.create(connection, checkfirst=True)


Migration = tuple[int, str, Callable[[Connection], Any]]

#: Append only; a released migration never changes.
MIGRATIONS: tuple[Migration, ...] = (
    (1, "runs, records, record events, id map", _create_initial_tables),
    (2, "waiting records, deletions, links, write journal", _add_waiting_uncertain_and_deletions),
    (3, "task runs: time, calls and records per task try", _create_task_runs),
    (4, "webhook inbox: events received, deduplicated; requests accepted and refused", _create_webhook_inbox),
    # Each migration is applied when missing, whatever the highest one applied (a store that got 5
    # before 4 existed still gets 4).
    (5, "reconcile reports: one per run of mlconn_reconcile", _create_reconcile_reports),
)

LATEST_VERSION = max(version for version, _, _ in MIGRATIONS)
_ADVISORY_LOCK_ID = 0x6D6C636F6E6E  # "mlconn"


def applied_version(connection: Connection) -> int:
    if not sa.inspect(connection).has_table(schema_migrations.name):
        return 0
    return int(connection.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar() or 0)


def migrate(connection: Connection) -> list[int]:
    """Apply the missing migrations inside the caller's transaction; returns the versions applied."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _ADVISORY_LOCK_ID})
    schema_migrations.create(connection, checkfirst=True)
    done = set(connection.execute(sa.select(schema_migrations.c.version)).scalars())
    applied: list[int] = []
    for version, description, apply in MIGRATIONS:
        if version in done:
            continue
        apply(connection)
        connection.execute(
            schema_migrations.insert().values(
                version=version, description=description, applied_at=datetime.now(timezone.utc)
            )
        )
        applied.append(version)
    return applied
