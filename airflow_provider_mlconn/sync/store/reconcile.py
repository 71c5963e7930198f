"""``mlconn_reconcile_reports``: each reconciliation's report, its summary in clear (counts only)
and the whole report (values of both systems) encrypted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.schema import reconcile_reports
from airflow_provider_mlconn.sync.store.bulk import upsert_rows
from airflow_provider_mlconn.sync.store.database import Database, utcnow


@dataclass(frozen=True)
class StoredReconcileReport:
    run_key: str
    dag_id: str
    run_id: str
    created_at: datetime
    differences: int
    summary: dict[str, Any]
    report: dict[str, Any]


class ReconcileReports:
    """Save and read the reports of ``mlconn_reconcile`` runs (a run's retry replaces its report)."""

    def __init__(self, db: Database, cipher: PayloadCipher) -> None:
        self._db = db
        self._cipher = cipher

    def save(
        self, *, run_key: str, dag_id: str, run_id: str, summary: dict[str, Any], report: dict[str, Any]
    ) -> None:
        row = (
            run_key,
            dag_id,
            run_id,
            utcnow(),
            int(summary.get("differences", 0)),
            json.dumps(summary, sort_keys=True),
            self._cipher.encrypt(report),
        )
        columns = ("run_key", "dag_id", "run_id", "created_at", "differences", "summary", "report")
        self._db.write(
            lambda connection: upsert_rows(
                connection, reconcile_reports, columns, [row], conflict=("run_key",), update=columns[1:]
            )
        )

    def latest(self, run_key: str | None = None) -> StoredReconcileReport | None:
        """The report of ``run_key``, else the newest one."""
        query = sa.select(reconcile_reports)
        if run_key:
            query = query.where(reconcile_reports.c.run_key == run_key)
        query = query.order_by(reconcile_reports.c.created_at.desc()).limit(1)
        with self._db.read() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        return StoredReconcileReport(
            run_key=row["run_key"],
            dag_id=row["dag_id"],
            run_id=row["run_id"],
            created_at=row["created_at"],
            differences=row["differences"],
            summary=json.loads(row["summary"]),
            report=self._cipher.decrypt(row["report"]),
        )

    def prune(self, *, cutoff: datetime, dry_run: bool = False) -> int:
        """Delete the reports made before ``cutoff``, except the newest; returns how many."""

        def work(connection: Any) -> int:
            newest = connection.execute(sa.select(sa.func.max(reconcile_reports.c.created_at))).scalar()
            old = sa.and_(reconcile_reports.c.created_at < cutoff, reconcile_reports.c.created_at != newest)
            count = int(connection.execute(sa.select(sa.func.count()).where(old)).scalar() or 0)
            if count and not dry_run:
                connection.execute(reconcile_reports.delete().where(old))
            return count

        return self._db.write(work)
