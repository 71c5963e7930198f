"""The runs of each flow: windows, high-water marks and what the commit did."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from airflow_provider_mlconn.sync.schema import records, runs
from airflow_provider_mlconn.sync.store.database import Database, utcnow
from airflow_provider_mlconn.sync.store.rows import RunRef, RunSummary

_JSON_FIELDS = ("windows", "high_water", "committed")


class RunLog:
    """One row per run of a flow."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure(self, run: RunRef) -> None:
        def work(connection: Connection) -> None:
            exists = connection.execute(
                sa.select(runs.c.run_key).where(runs.c.run_key == run.run_key)
            ).first()
            if exists is None:
                now = utcnow()
                try:
                    with connection.begin_nested():
                        connection.execute(
                            runs.insert().values(
                                run_key=run.run_key,
                                flow=run.flow,
                                dag_id=run.dag_id,
                                run_id=run.run_id,
                                run_type=run.run_type,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                except IntegrityError:
                    pass  # another task of the run created it first

        self._db.write(work)

    def update(self, run_key: str, **fields: Any) -> None:
        """Save ``windows``, ``high_water`` or ``committed`` (JSON-able) and ``committed_at``."""
        values: dict[str, Any] = {"updated_at": utcnow()}
        for name, value in fields.items():
            values[name] = json.dumps(value) if name in _JSON_FIELDS else value
        self._db.write(lambda c: c.execute(runs.update().where(runs.c.run_key == run_key).values(**values)))

    def get(self, run_key: str) -> RunSummary | None:
        found = self._summaries(sa.select(runs).where(runs.c.run_key == run_key))
        return found[0] if found else None

    def recent(self, *, flow: str | None = None, limit: int = 20) -> list[RunSummary]:
        query = sa.select(runs).order_by(runs.c.created_at.desc()).limit(limit)
        if flow:
            query = query.where(runs.c.flow == flow)
        return self._summaries(query)

    def find_key(self, *, flow: str, run_id: str) -> str | None:
        """The run key of a flow's Airflow run id (for the replay form and the CLI)."""
        with self._db.read() as connection:
            return connection.execute(
                sa.select(runs.c.run_key).where(runs.c.flow == flow, runs.c.run_id == run_id)
            ).scalar()

    def status_counts(self, run_key: str, *, entity: str | None = None) -> dict[str, int]:
        query = (
            sa.select(records.c.status, sa.func.count())
            .where(records.c.run_key == run_key)
            .group_by(records.c.status)
        )
        if entity is not None:
            query = query.where(records.c.entity == entity)
        with self._db.read() as connection:
            return {status: number for status, number in connection.execute(query)}

    def _summaries(self, query: Any) -> list[RunSummary]:
        with self._db.read() as connection:
            rows = connection.execute(query).mappings().all()
            keys = [row["run_key"] for row in rows]
            counts: dict[str, Counter[str]] = {key: Counter() for key in keys}
            if keys:
                for run_key, status, number in connection.execute(
                    sa.select(records.c.run_key, records.c.status, sa.func.count())
                    .where(records.c.run_key.in_(keys))
                    .group_by(records.c.run_key, records.c.status)
                ):
                    counts[run_key][status] = number
        return [
            RunSummary(
                run_key=row["run_key"],
                flow=row["flow"],
                dag_id=row["dag_id"],
                run_id=row["run_id"],
                run_type=row["run_type"],
                created_at=row["created_at"],
                committed_at=row["committed_at"],
                windows=json.loads(row["windows"] or "{}"),
                high_water=json.loads(row["high_water"] or "{}"),
                committed=json.loads(row["committed"] or "{}"),
                counts=dict(counts[row["run_key"]]),
            )
            for row in rows
        ]
