"""Where the store lives and which keys encrypt it, and one open store per process."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_mlconn.sync.errors import StoreConfigurationError

if TYPE_CHECKING:
    from airflow_provider_mlconn.sync.store import Store

STORE_CONN_ID = "mlconn_store"

_open_stores: dict[tuple[int, str, str], Store] = {}
_open_lock = threading.Lock()


@dataclass(frozen=True)
class StoreSettings:
    url: str
    fernet_keys: str = field(repr=False)


def default_store_url() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    return f"sqlite:///{home / 'mlconn' / 'store.db'}"


def store_settings(connection: Any | None, *, airflow_fernet_key: str | None) -> StoreSettings:
    """Where the store lives and which keys encrypt it, from the ``mlconn_store`` connection.

    URL: extra ``sqlalchemy_url``; else ``host`` if it is a URL; else a PostgreSQL URL built from
    host/port/login/password/schema; else SQLite under ``$AIRFLOW_HOME/mlconn/``. Keys: extra
    ``fernet_key``, else Airflow's ``[core] fernet_key``.
    """
    extra: Mapping[str, Any] = {}
    url = None
    if connection is not None:
        extra = connection.extra_dejson or {}
        host = connection.host or ""
        if extra.get("sqlalchemy_url"):
            url = str(extra["sqlalchemy_url"])
        elif "://" in host:
            url = host
        elif host:
            credentials = ""
            if connection.login:
                credentials = quote(connection.login, safe="")
                if connection.password:
                    credentials += ":" + quote(connection.password, safe="")
                credentials += "@"
            port = f":{connection.port}" if connection.port else ""
            url = f"postgresql+psycopg2://{credentials}{host}{port}/{connection.schema or 'mlconn'}"
    keys = str(extra.get("fernet_key") or airflow_fernet_key or "").strip()
    if not keys or keys.startswith("{"):
        raise StoreConfigurationError(
            "the mlconn store encrypts payloads and needs a Fernet key: set extra "
            '"fernet_key" on the mlconn_store connection, or Airflow\'s [core] fernet_key'
        )
    return StoreSettings(url=url or default_store_url(), fernet_keys=keys)


def open_store(settings: StoreSettings) -> Store:
    """One Store per process and settings (engines must not cross a fork)."""
    from airflow_provider_mlconn.sync.crypto import PayloadCipher
    from airflow_provider_mlconn.sync.store import Store

    cache_key = (os.getpid(), settings.url, settings.fernet_keys)
    with _open_lock:
        store = _open_stores.get(cache_key)
        if store is None:
            store = Store(settings.url, PayloadCipher(settings.fernet_keys))
            _open_stores[cache_key] = store
        return store


def close_stores() -> None:
    """Dispose of every store this process opened (tests, CLI exit)."""
    with _open_lock:
        for store in _open_stores.values():
            store.dispose()
        _open_stores.clear()
