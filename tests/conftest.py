"""Test session set-up: an isolated AIRFLOW_HOME, no example DAGs, and the local services.

The environment is set at import time, before any test module imports Airflow, because Airflow
reads its configuration once on first import.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

# Fixtures of each area live beside it; listed here so every test module can use them.
pytest_plugins = [
    "tests.support.jde",
    "tests.support.hubspot",
    "tests.support.sync",
    "tests.support.customers",
    "tests.support.faults",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mlconn-airflow-home-"))

os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "4q4Jp5Fq2bW4yN0i9mQv8Yk0Xx1Jm7aXwzvB3cG5dEo=")
os.environ.pop("AIRFLOW_CONN_JDE_AIS_DEFAULT", None)
os.environ.pop("AIRFLOW_CONN_HUBSPOT_DEFAULT", None)

POSTGRES_URL = os.environ.get("MLCONN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MLCONN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("MLCONN_REQUIRE_SERVICES", "") not in ("", "0", "false", "False")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def _require(url: str, default_port: int, what: str) -> str:
    if _reachable(url, default_port):
        return url
    message = f"{what} not reachable at {url}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (MLCONN_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL URL (``MLCONN_TEST_POSTGRES_URL``); skip, or fail under CI, if it is down."""
    return _require(POSTGRES_URL, 5432, "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL (``MLCONN_TEST_REDIS_URL``); skip, or fail under CI, if it is down."""
    return _require(REDIS_URL, 6379, "Redis")


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Iterator[None]:
    """Airflow's metadata database (SQLite in the session's AIRFLOW_HOME), migrated once."""
    from airflow.utils import db

    db.resetdb()
    yield
