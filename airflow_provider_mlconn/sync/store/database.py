"""The database under the store: one SQLAlchemy engine, and transactions that wait out a busy lock.

SQLite (the default, one machine) runs in WAL mode with a busy timeout and ``BEGIN IMMEDIATE``, so
writers queue instead of failing on a lock upgrade; PostgreSQL (several workers) takes any URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from airflow_provider_mlconn.sync.errors import StoreConfigurationError

log = logging.getLogger(__name__)

T = TypeVar("T")
UTC = timezone.utc
#: Rows per IN list and per statement batch.
CHUNK = 500
#: Execution option of the connections ``Database.read`` hands out.
_READ_ONLY = "mlconn_read_only"


def utcnow() -> datetime:
    return datetime.now(UTC)


def stored_time(value: datetime | str) -> datetime:
    """An aware UTC datetime of a stored time read past SQLAlchemy's types: SQLite's text (naive
    UTC) or a driver's datetime."""
    if isinstance(value, str):
        return _utc_of_text(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=256)
def _utc_of_text(value: str) -> datetime:
    # A step stamps every record of a chunk with one time: each distinct text is parsed once.
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Slices of at most ``size`` items (keeps IN lists and statements small)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Database:
    """An engine and the one way to write: ``write(work)`` runs ``work(connection)`` in a transaction."""

    def __init__(self, url: str, *, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.engine = _create_engine(url, busy_timeout=busy_timeout)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction; repeat it (up to 3 times) when the database says busy."""
        for attempt in range(1, 4):
            try:
                with self.engine.begin() as connection:
                    return work(connection)
            except OperationalError as error:
                message = str(error.orig).lower()
                transient = "locked" in message or "deadlock" in message or "could not serialize" in message
                if not transient or attempt == 3:
                    raise
                log.warning("store busy (%s); retrying the transaction", message.splitlines()[0])
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    def read(self) -> Any:
        """A connection for reads (``with db.read() as connection``): on SQLite a deferred
        transaction, a snapshot that neither waits for nor holds up the writers (WAL)."""
        return self.engine.connect().execution_options(**{_READ_ONLY: True})

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str, *, busy_timeout: float) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as error:
        raise StoreConfigurationError(f"store URL is not a SQLAlchemy URL: {error}") from error
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout, "check_same_thread": False})

        @sa_event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" below issue BEGIN IMMEDIATE: a write lock up front, so two
            # writers queue on the busy timeout instead of failing on a lock upgrade.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa_event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            read_only = connection.get_execution_options().get(_READ_ONLY, False)
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if backend == "postgresql":
        options: dict[str, Any] = {}
        if parsed.get_driver_name() == "psycopg2":
            # The store's bulk writes are executemany: batched statements, not a round trip per row.
            options["executemany_mode"] = "values_plus_batch"
        return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4, **options)
    raise StoreConfigurationError(
        f"the store supports SQLite and PostgreSQL URLs, not {backend!r} ({parsed.render_as_string()})"
    )
