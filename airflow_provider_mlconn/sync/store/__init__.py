"""The store: staging area, audit trail and id map in one SQLAlchemy database.

``Store(url, cipher)`` (or ``open_store(settings)``) gathers one object per concern, each over the
same database:

- ``runs``: one row per run of a flow (windows, high-water marks, commit);
- ``staging``: source records into a run's rows (``staging_writer`` for an extract);
- ``records``: reading record rows (decrypted) and saving what map and order decided;
- ``claims``: claiming records for a load and saving their outcomes (two workers never load the
  same record);
- ``id_map``: source key <-> target id, with what we last wrote there;
- ``journal``: writes whose outcome is unknown, confirmed before a resend;
- ``prerequisites``: where a record's prerequisites stand;
- ``audit``: histories, replay selections, pruning;
- ``reports``: each task try's time and calls, and what run reports read;
- ``webhooks``: the webhook inbox (events deduplicated on their content) and request outcomes.
- ``reconcile_reports``: the reports of ``mlconn_reconcile`` runs.

SQLite under ``$AIRFLOW_HOME/mlconn/`` by default, PostgreSQL through the ``mlconn_store``
connection for several workers. Payloads and error texts are Fernet-encrypted (``crypto``); keys,
ids, statuses and hashes are clear so they can be queried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.schema import migrate
from airflow_provider_mlconn.sync.store.audit import AuditTrail, PruneResult
from airflow_provider_mlconn.sync.store.claims import Claims, JournalSettlement, WaitPolicy
from airflow_provider_mlconn.sync.store.database import CHUNK, Database
from airflow_provider_mlconn.sync.store.id_map import IdMap
from airflow_provider_mlconn.sync.store.journal import JournalEntry, WriteJournal
from airflow_provider_mlconn.sync.store.opening import (
    STORE_CONN_ID,
    StoreSettings,
    close_stores,
    default_store_url,
    open_store,
    store_settings,
)
from airflow_provider_mlconn.sync.store.prerequisites import PrerequisiteLookup
from airflow_provider_mlconn.sync.store.reconcile import ReconcileReports, StoredReconcileReport
from airflow_provider_mlconn.sync.store.records import RecordTable
from airflow_provider_mlconn.sync.store.reports import OutcomeCount, RunReports, TaskRun
from airflow_provider_mlconn.sync.store.rows import (
    Actor,
    ChunkMapper,
    IdMapEntry,
    MappingResult,
    OutcomeRow,
    RecordEvent,
    RunRef,
    RunSummary,
    StagedSource,
    StagingCounts,
    StoredRecord,
    run_key_for,
)
from airflow_provider_mlconn.sync.store.runs import RunLog
from airflow_provider_mlconn.sync.store.staging import Staging, StagingWriter
from airflow_provider_mlconn.sync.store.webhooks import Recorded, WebhookInbox

__all__ = [
    "STORE_CONN_ID",
    "Actor",
    "ChunkMapper",
    "IdMapEntry",
    "JournalEntry",
    "JournalSettlement",
    "MappingResult",
    "OutcomeCount",
    "OutcomeRow",
    "PruneResult",
    "ReconcileReports",
    "RecordEvent",
    "Recorded",
    "RunRef",
    "RunReports",
    "RunSummary",
    "StagedSource",
    "StagingCounts",
    "StagingWriter",
    "Store",
    "StoreSettings",
    "StoredReconcileReport",
    "StoredRecord",
    "TaskRun",
    "WaitPolicy",
    "WebhookInbox",
    "close_stores",
    "default_store_url",
    "open_store",
    "run_key_for",
    "store_settings",
]


class Store:
    """The store's parts over one database; see the module docstring."""

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
        self.db = Database(url, busy_timeout=busy_timeout)
        self.db.write(migrate)
        self.runs = RunLog(self.db)
        self.staging = Staging(self.db, cipher)
        self.records = RecordTable(self.db, cipher)
        self.id_map = IdMap(self.db)
        self.journal = WriteJournal(self.db, cipher)
        self.claims = Claims(self.db, cipher, self.journal, claim_timeout=claim_timeout)
        self.prerequisites = PrerequisiteLookup(self.db, cipher, self.id_map, self.records)
        self.audit = AuditTrail(self.db, cipher, self.records)
        self.reports = RunReports(self.db)
        self.webhooks = WebhookInbox(self.db)
        self.reconcile_reports = ReconcileReports(self.db, cipher)

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        """The SQLAlchemy engine (tests read raw rows through it)."""
        return self.db.engine

    def staging_writer(
        self,
        run: RunRef,
        actor: Actor,
        *,
        entities: Iterable[str],
        chunk_size: int = CHUNK,
        after_flush: Callable[[Sequence[int]], None] | None = None,
        mapper: ChunkMapper | None = None,
    ) -> StagingWriter:
        return self.staging.writer(
            run, actor, entities=entities, chunk_size=chunk_size, after_flush=after_flush, mapper=mapper
        )

    def dispose(self) -> None:
        self.db.dispose()
