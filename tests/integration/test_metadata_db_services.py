"""The services the multi-machine stack relies on, used for real: Airflow's metadata schema on
PostgreSQL (what `airflow db migrate` does in docker-compose.airflow.yml) and Redis as the Celery broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.services]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture
def fresh_postgres_database(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the test PostgreSQL, dropped afterwards; yields its SQLAlchemy URL."""
    import psycopg2

    name = f"mlconn_migrate_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    parsed = urlparse(postgres_url)
    url = urlunparse(parsed._replace(scheme="postgresql+psycopg2", path=f"/{name}"))
    try:
        yield url
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_airflow_db_migrate_builds_the_metadata_schema_on_postgres(
    fresh_postgres_database: str, tmp_path: Path
) -> None:
    import sqlalchemy

    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": fresh_postgres_database,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]

    engine = sqlalchemy.create_engine(fresh_postgres_database)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
        with engine.connect() as connection:
            revision = connection.execute(
                sqlalchemy.text("SELECT version_num FROM alembic_version")
            ).scalar_one()
    finally:
        engine.dispose()
    assert {"dag", "dag_run", "task_instance", "connection", "variable", "xcom"} <= tables
    assert revision

    check = subprocess.run(
        [AIRFLOW, "db", "check-migrations", "--migration-wait-timeout", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr[-3000:]


def test_redis_accepts_celery_broker_round_trip(redis_url: str) -> None:
    from kombu import Connection

    queue_name = f"mlconn-ci-{uuid.uuid4().hex[:8]}"
    with Connection(redis_url, connect_timeout=5) as connection:
        queue = connection.SimpleQueue(queue_name)
        try:
            queue.put({"task": "ping"})
            message = queue.get(timeout=5)
            assert message.payload == {"task": "ping"}
            message.ack()
        finally:
            queue.clear()
            queue.close()
