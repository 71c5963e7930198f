"""mlconn_ar_jde_to_hubspot: JD Edwards A/R -> HubSpot: invoice status, invoices raised in JDE, balances.

Schedule: Variable ``mlconn_ar_status_schedule`` (cron or preset, default ``@hourly``; ``none`` for
manual runs only). Settings: Variable ``mlconn_ar_status`` (JSON, see
airflow_provider_mlconn/flows/ar_status.py). Rules: docs/BEHAVIOR.md, section F.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Variable

from airflow_provider_mlconn.flows.ar_status import AR_STATUS
from airflow_provider_mlconn.operators.sync import flow_dag

dag = flow_dag(
    AR_STATUS,
    dag_id="mlconn_ar_jde_to_hubspot",
    schedule=Variable.get("mlconn_ar_status_schedule", default="@hourly"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags=["jde", "hubspot", "ar"],
)
