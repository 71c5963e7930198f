"""The provider's Airflow plugin (entry point ``airflow.plugins``: ``mlconn``).

- registers ``SyncTimetable``, the flow DAGs' schedule (a timetable that is not Airflow's own must be
  registered for the scheduler and the api-server to read serialized DAGs);
- adds ``ApiServerMiddleware`` to the api-server (the UI's Test button for the provider's connection
  types, dry-run notes); see ``plugins/api_server.py``;
- listens for the end of provider DAG runs to set the run report as the run's note
  (``plugins/run_notes.py``);
- serves the HubSpot webhook receiver in the api-server at ``POST /mlconn/webhooks/hubspot``
  (``plugins/webhooks.py``, a FastAPI app mounted under ``/mlconn``).

The pools listener is a plugin of its own (``airflow_provider_mlconn.sync.pools``).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_mlconn.plugins import run_notes, webhooks
from airflow_provider_mlconn.plugins.api_server import ApiServerMiddleware
from airflow_provider_mlconn.timetables import SyncTimetable


class MlconnPlugin(AirflowPlugin):
    name = "mlconn"
    timetables = [SyncTimetable]
    fastapi_root_middlewares = [
        {"name": "mlconn_api_server", "middleware": ApiServerMiddleware, "args": [], "kwargs": {}}
    ]
    listeners = [run_notes]
    fastapi_apps = [
        {"app": webhooks.airflow_app(), "url_prefix": webhooks.URL_PREFIX, "name": "mlconn_webhooks"}
    ]
