"""mlconn_customers_jde_to_hubspot: JD Edwards customers and contacts -> HubSpot companies and contacts.

Schedule: Variable ``mlconn_customers_schedule`` (a cron expression or preset such as ``@hourly``,
the default; ``none`` for manual runs only). Settings: Variable ``mlconn_customers`` (JSON, see
airflow_provider_mlconn/flows/customers.py). Mapping rules: docs/BEHAVIOR.md, section F.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import Param, Variable

from airflow_provider_mlconn.flows.customers import CUSTOMERS
from airflow_provider_mlconn.operators.sync import flow_dag

dag = flow_dag(
    CUSTOMERS,
    dag_id="mlconn_customers_jde_to_hubspot",
    schedule=Variable.get("mlconn_customers_schedule", default="@hourly"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    tags=["jde", "hubspot", "customers"],
    params={
        "address_numbers": Param(
            None,
            type=["null", "array"],
            items={"type": "integer"},
            title="Only these address numbers",
            description="Sync just these JDE customers (F0101.AN8), whole, whatever changed; "
            "the watermark does not move. Empty: every changed customer.",
        ),
    },
)
