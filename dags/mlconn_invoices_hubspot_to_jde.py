"""mlconn_invoices_hubspot_to_jde: HubSpot invoices -> JD Edwards A/R invoices (F03B11, F0911), once.

Schedule: Variable ``mlconn_invoices_schedule`` (cron or preset, default ``*/15 * * * *``; ``none``
for manual runs only). Settings: Variable ``mlconn_invoices`` (JSON, see
airflow_provider_mlconn/flows/invoices.py). Rules: docs/BEHAVIOR.md, section F.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Variable

from airflow_provider_mlconn.flows.invoices import INVOICES
from airflow_provider_mlconn.operators.sync import flow_dag

dag = flow_dag(
    INVOICES,
    dag_id="mlconn_invoices_hubspot_to_jde",
    schedule=Variable.get("mlconn_invoices_schedule", default="*/15 * * * *"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags=["jde", "hubspot", "invoices"],
)
