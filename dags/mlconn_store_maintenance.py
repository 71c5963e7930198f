"""mlconn_store_maintenance: prune the sync store daily (see airflow_provider_mlconn/sync/retention.py)."""

from __future__ import annotations

from airflow_provider_mlconn.operators.maintenance import store_maintenance_dag

dag = store_maintenance_dag()
