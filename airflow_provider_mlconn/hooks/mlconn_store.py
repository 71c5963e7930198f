"""``MlconnStoreHook``: the sync store (staging, audit trail, id map) behind the ``mlconn_store``
connection.

The connection is optional (type *generic*): extra ``sqlalchemy_url`` (or a URL in host, or
host/port/login/password/schema for PostgreSQL) and extra ``fernet_key``; without it the store is
SQLite under ``$AIRFLOW_HOME/mlconn/``, encrypted with Airflow's own ``[core] fernet_key``.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from airflow.sdk import BaseHook
from sqlalchemy.engine import make_url

from airflow_provider_mlconn.sync.store import STORE_CONN_ID, Store, StoreSettings, open_store, store_settings


class MlconnStoreHook(BaseHook):
    """Opens the store named by the ``mlconn_store`` connection (one per process and settings).

    ``connection`` may be given directly (the CLI reads it from the metadata database outside a
    task); inside a task it is looked up by ``mlconn_conn_id``.
    """

    conn_name_attr = "mlconn_conn_id"
    default_conn_name = STORE_CONN_ID
    conn_type = "generic"
    hook_name = "mlconn sync store"

    def __init__(self, mlconn_conn_id: str = default_conn_name, *, connection: Any | None = None) -> None:
        super().__init__()
        self.mlconn_conn_id = mlconn_conn_id
        self._connection = connection

    def settings(self) -> StoreSettings:
        """Where the store lives and its keys; the secrets are registered with Airflow's masker."""
        from airflow.sdk.configuration import conf
        from airflow.sdk.exceptions import AirflowNotFoundException
        from airflow.sdk.log import mask_secret

        connection = self._connection
        if connection is None:
            with suppress(AirflowNotFoundException):  # the connection is optional
                connection = self.get_connection(self.mlconn_conn_id)
        settings = store_settings(connection, airflow_fernet_key=conf.get("core", "fernet_key", fallback=""))
        # Neither "fernet_key" nor "sqlalchemy_url" is among Airflow's sensitive names: mask them here.
        mask_secret(settings.fernet_keys)
        password = make_url(settings.url).password
        if password:
            mask_secret(str(password))
        return settings

    def get_store(self) -> Store:
        return open_store(self.settings())

    def test_connection(self) -> tuple[bool, str]:
        try:
            store = self.get_store()
            runs = store.runs.recent(limit=1)
        except Exception as error:
            return (
                False,
                f"mlconn store of connection {self.mlconn_conn_id!r}: {type(error).__name__}: {error}",
            )
        return (
            True,
            f"mlconn store at {make_url(store.url).render_as_string()}: {len(runs)} recent run(s) readable",
        )
