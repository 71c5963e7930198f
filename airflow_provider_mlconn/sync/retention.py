"""Retention: old runs' record rows and events go after a while; the id map and each record's
latest row stay (they are what later runs compare against, and what replay and audit show). The
webhook inbox's events and request counts older than the retention go too (not in a dry run).

The retention time is ``[mlconn] retention_days`` (``AIRFLOW__MLCONN__RETENTION_DAYS``), 90 days
unless set; ``mlconn store prune`` and the ``mlconn_store_maintenance`` DAG (daily) apply it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from airflow_provider_mlconn.sync.store import PruneResult, Store

DEFAULT_RETENTION_DAYS = 90.0


def configured_retention_days() -> float:
    from airflow.sdk.configuration import conf

    return float(
        conf.get("mlconn", "retention_days", fallback=str(DEFAULT_RETENTION_DAYS)) or DEFAULT_RETENTION_DAYS
    )


def prune_store(
    store: Store, *, older_than_days: float | None = None, dry_run: bool = False, now: datetime | None = None
) -> PruneResult:
    """Prune rows last touched more than ``older_than_days`` (default: the configured retention) ago,
    and reconciliation reports made before then (the newest stays)."""
    days = configured_retention_days() if older_than_days is None else older_than_days
    if days <= 0:
        raise ValueError(f"the retention must be a positive number of days, got {days}")
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    result = store.audit.prune(cutoff=cutoff, dry_run=dry_run)
    if not dry_run:
        store.webhooks.prune(older_than=cutoff)
    reports = store.reconcile_reports.prune(cutoff=cutoff, dry_run=dry_run)
    return replace(result, reconcile_reports=reports)
