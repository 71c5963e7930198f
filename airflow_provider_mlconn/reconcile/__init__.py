"""The reconciliation: both systems read through their APIs and compared record by record, with the
flows' own mapping (``mlconn_reconcile``; see ``airflow_provider_mlconn/operators/reconcile.py``)."""
