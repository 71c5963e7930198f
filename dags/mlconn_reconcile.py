"""mlconn_reconcile: compare JD Edwards and HubSpot through their APIs (read only) and report what is
missing, doubled or drifted; daily by default (Variable ``mlconn_reconcile_schedule``), or triggered
with params ``flows`` and ``repair``. See airflow_provider_mlconn/operators/reconcile.py and the README.
"""

from __future__ import annotations

from airflow_provider_mlconn.operators.reconcile import reconcile_dag

dag = reconcile_dag("mlconn_reconcile")
