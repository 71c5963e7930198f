"""mlconn_invoices_hubspot_to_jde: HubSpot invoices -> JD Edwards A/R invoices (F03B11, F0911), once.

Schedule: Variable ``mlconn_invoices_schedule`` (cron or preset, default ``*/15 * * * *``; ``none``
for no timed runs). Also runs when HubSpot webhooks report a change (the webhook asset;
such a run reads the records named, README "Webhooks"). Settings: Variable ``mlconn_invoices`` (JSON, see
airflow_provider_mlconn/flows/invoices.py). Rules: docs/BEHAVIOR.md, section F.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Variable

from airflow_provider_mlconn.flows.invoices import INVOICES
from airflow_provider_mlconn.operators.sync import flow_dag, webhook_asset

dag = flow_dag(
    INVOICES,
    dag_id="mlconn_invoices_hubspot_to_jde",
    schedule=Variable.get("mlconn_invoices_schedule", default="*/15 * * * *"),
    triggered_by=[webhook_asset("invoices")],
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags=["jde", "hubspot", "invoices"],
)
