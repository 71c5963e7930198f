"""mlconn_payments_hubspot_to_jde: HubSpot commerce payments -> JD Edwards receipts (F03B13, F03B14), once.

Schedule: Variable ``mlconn_payments_schedule`` (cron or preset, default ``*/15 * * * *``; ``none``
for no timed runs). Also runs when HubSpot webhooks report a change (the webhook asset;
such a run reads the records named, README "Webhooks"). Settings: Variable ``mlconn_payments`` (JSON, see
airflow_provider_mlconn/flows/payments.py). Rules: docs/BEHAVIOR.md, section F.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Variable

from airflow_provider_mlconn.flows.payments import PAYMENTS
from airflow_provider_mlconn.operators.sync import flow_dag, webhook_asset

dag = flow_dag(
    PAYMENTS,
    dag_id="mlconn_payments_hubspot_to_jde",
    schedule=Variable.get("mlconn_payments_schedule", default="*/15 * * * *"),
    triggered_by=[webhook_asset("commerce_payments")],
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags=["jde", "hubspot", "payments"],
)
