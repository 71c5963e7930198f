"""The ``mlconn_store_maintenance`` DAG: prune the sync store daily after its retention time."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, BaseOperator, Param

from airflow_provider_mlconn.operators.common import store_from_airflow
from airflow_provider_mlconn.sync.retention import DEFAULT_RETENTION_DAYS, prune_store


class PruneStoreOperator(BaseOperator):
    """Delete record rows and events last touched before the retention time (``[mlconn]
    retention_days``, or the run's ``retention_days`` param); the id map and each record's latest
    row stay."""

    def execute(self, context: Any) -> dict[str, Any]:
        params = context.get("params") or {}
        days = params.get("retention_days")
        result = prune_store(
            store_from_airflow(),
            older_than_days=None if days in (None, "") else float(days),
            dry_run=bool(params.get("dry_run")),
        )
        self.log.info(
            "%s %d record rows and %d events last touched before %s, %d runs left without records and "
            "%d reconciliation reports",
            "would delete" if result.dry_run else "deleted",
            result.records,
            result.events,
            result.cutoff.isoformat(),
            result.runs,
            result.reconcile_reports,
        )
        return {
            "records": result.records,
            "events": result.events,
            "runs": result.runs,
            "reconcile_reports": result.reconcile_reports,
            "cutoff": result.cutoff.isoformat(),
            "dry_run": result.dry_run,
        }


def store_maintenance_dag(dag_id: str = "mlconn_store_maintenance") -> DAG:
    """The maintenance DAG; ``dags/mlconn_store_maintenance.py`` is this one call."""
    with DAG(
        dag_id=dag_id,
        description="Prunes the mlconn sync store: old runs' record rows and events after the retention time",
        schedule="@daily",
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["mlconn", "maintenance"],
        params={
            "retention_days": Param(
                None,
                type=["null", "number"],
                minimum=1,
                title="Retention (days)",
                description=f"Empty: [mlconn] retention_days, else {DEFAULT_RETENTION_DAYS:g}.",
            ),
            "dry_run": Param(
                False, type="boolean", title="Dry run", description="Count only; delete nothing."
            ),
        },
        doc_md=__doc__,
    ) as dag:
        PruneStoreOperator(task_id="prune_store")
    return dag
