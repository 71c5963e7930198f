"""What every sync operator needs from Airflow: the store, the Variables, the run and the actor."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from airflow_provider_mlconn.http import (
    AuthenticationError,
    QuotaExhaustedError,
    RemoteApiError,
    RequestRejectedError,
)
from airflow_provider_mlconn.sync.engine import RunInfo
from airflow_provider_mlconn.sync.errors import (
    LoadBlocked,
    StoreConfigurationError,
    WatermarkNotCommitted,
    WatermarkValueError,
    WindowError,
)
from airflow_provider_mlconn.sync.store import STORE_CONN_ID, Actor, Store
from airflow_provider_mlconn.sync.watermarks import parse_instant


def store_from_airflow(conn_id: str = STORE_CONN_ID) -> Store:
    """Inside a task: the store named by the ``mlconn_store`` connection (optional), keyed by its
    Fernet key or Airflow's."""
    from airflow_provider_mlconn.hooks.mlconn_store import MlconnStoreHook

    return MlconnStoreHook(conn_id).get_store()


#: Objects the youngest generation takes before the cyclic garbage collector runs, in a task's work
#: (Python's default is 700).
YOUNG_GENERATION_SIZE = 20_000


@contextmanager
def roomier_young_generation(size: int = YOUNG_GENERATION_SIZE) -> Iterator[None]:
    """The task's work with the collector's youngest generation holding ``size`` objects, Python's
    own setting back afterwards (also when the work fails).

    A collection promotes every object it finds alive to the next generation, and once the oldest
    has grown by a quarter, a full collection walks all of it: in a task process that is Airflow,
    its imports and the DAG, some 700,000 objects. At Python's 700, a chunk of records and its
    outcomes are still alive at several collections, so a load promotes most of what it builds and
    sets off a full collection every few thousand records. With room for 20,000 most of it dies
    young. Measured on the customers flow at 20,000 customers under ``dag.test()``: collector time
    7.4 s -> 2.1 s, CPU 36.7 s -> 33.8 s, peak RSS within run-to-run noise (5,000: 3.7 s; 100,000:
    1.9 s but 20 MB more at the peak). Freezing the older objects (``gc.freeze()``) saved as much
    but kept their garbage cycles through the task: 10-25 MB more at the peak.
    """
    young, *older = gc.get_threshold()
    gc.set_threshold(max(young, size), *older)
    try:
        yield
    finally:
        gc.set_threshold(young, *older)


def connection_from_metadata_db(conn_id: str) -> Any:
    """Outside a task (the CLI): the connection from env vars, secrets backends or the metadata DB."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None


class AirflowVariables:
    """Airflow Variables through the Task SDK (inside a task) as the engine's ``VariableAccess``."""

    def get(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        from airflow.sdk import Variable

        Variable.set(
            key, value, description="mlconn sync watermark: moved by the flow's commit_watermark task"
        )


def run_info(context: Any) -> RunInfo:
    dag_run = context["dag_run"]
    run_type = getattr(dag_run, "run_type", None)
    return RunInfo(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        run_type=None if run_type is None else str(getattr(run_type, "value", run_type)),
        data_interval_start=getattr(dag_run, "data_interval_start", None),
        data_interval_end=getattr(dag_run, "data_interval_end", None),
    )


def actor(context: Any) -> Actor:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return Actor(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=int(getattr(ti, "try_number", 1) or 1),
        map_index=-1 if map_index is None else int(map_index),
    )


def optional_text(value: Any) -> str | None:
    """A templated or param value that may be empty: None, "", "None" and "null" mean absent."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "None", "null") else text


def optional_instant(value: Any, what: str) -> datetime | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise WindowError(f"{what} {value.isoformat()} has no time zone")
        return value
    text = optional_text(value)
    return None if text is None else parse_instant(text, what)


def optional_number(value: Any, what: str) -> float | None:
    text = optional_text(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError as error:
        raise WindowError(f"{what} {text!r} is not a number of minutes") from error
    if number < 0:
        raise WindowError(f"{what} must not be negative, got {number}")
    return number


#: Failures a person fixes outside the code (credentials, a business rule, a parameter, a record
#: that waits for another): a retry of the same task cannot help and a traceback adds nothing.
EXPECTED_FAILURES: tuple[type[Exception], ...] = (
    AuthenticationError,
    RequestRejectedError,
    QuotaExhaustedError,
    LoadBlocked,
    WindowError,
    WatermarkValueError,
    StoreConfigurationError,
    WatermarkNotCommitted,
)


class TaskFailed(SystemExit):
    """Ends a task as failed with one line in its log: the reason, and no traceback.

    Airflow's task runner logs a ``SystemExit`` as ``Task exited`` with its code (here the message)
    and no traceback, where any other exception gets "Task failed with exception" and a traceback
    that pushes the reason off the screen. Raised for ``EXPECTED_FAILURES`` only; a load task's
    retry policy fails it at once (``LOAD_RETRY_POLICY``).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def failure_line(error: Exception) -> str:
    """What went wrong first (the log view cuts long lines), where it happened last."""
    if isinstance(error, RemoteApiError):
        where = " ".join(str(part) for part in (error.method, error.url) if part)
        status = f"HTTP {error.status}" if error.status is not None else ""
        detail = ", ".join(part for part in (status, where) if part)
        return f"{error.system}: {error.message}" + (f" [{detail}]" if detail else "")
    return f"{error} [{type(error).__name__}]"


F = TypeVar("F", bound=Callable[..., Any])


def one_line_failures(execute: F) -> F:
    """Wrap an operator's ``execute``: an expected failure becomes ``TaskFailed``."""

    @functools.wraps(execute)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, *args, **kwargs)
        except EXPECTED_FAILURES as error:
            raise TaskFailed(failure_line(error)) from None

    wrapper.one_line_failures = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class OneLineFailures:
    """Operator mixin: every subclass's ``execute`` ends expected failures in one log line."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        execute = cls.__dict__.get("execute")
        if execute is not None and not getattr(execute, "one_line_failures", False):
            cls.execute = one_line_failures(execute)  # type: ignore[attr-defined]
