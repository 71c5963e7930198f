"""mlconn_items_sync: JD Edwards items (F4101, F4106) <-> HubSpot products, both ways.

Schedule: Variable ``mlconn_items_schedule`` (cron or preset, default ``@hourly``; ``none`` for
no timed runs). Also runs when HubSpot webhooks report a product change (the webhook asset;
such a run reads the products named, README "Webhooks"). Settings: Variable ``mlconn_items`` (JSON, see
airflow_provider_mlconn/flows/items.py). Rules: docs/BEHAVIOR.md, section F.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Variable

from airflow_provider_mlconn.flows.items import ITEMS
from airflow_provider_mlconn.operators.sync import flow_dag, webhook_asset

dag = flow_dag(
    ITEMS,
    dag_id="mlconn_items_sync",
    schedule=Variable.get("mlconn_items_schedule", default="@hourly"),
    triggered_by=[webhook_asset("products")],
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags=["jde", "hubspot", "reference-data", "items"],
)
