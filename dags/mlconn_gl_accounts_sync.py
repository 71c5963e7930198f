"""mlconn_gl_accounts_sync: JD Edwards accounts and business units -> HubSpot line-item options.

Schedule: Variable ``mlconn_gl_accounts_schedule`` (cron or preset, default ``@daily``; ``none`` for
manual runs only). Settings: Variable ``mlconn_gl_accounts`` (JSON, see
airflow_provider_mlconn/flows/gl_accounts.py). Rules: docs/BEHAVIOR.md, section F.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Variable

from airflow_provider_mlconn.flows.gl_accounts import GL_ACCOUNTS
from airflow_provider_mlconn.operators.sync import flow_dag

dag = flow_dag(
    GL_ACCOUNTS,
    dag_id="mlconn_gl_accounts_sync",
    schedule=Variable.get("mlconn_gl_accounts_schedule", default="@daily"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags=["jde", "hubspot", "reference-data"],
)
