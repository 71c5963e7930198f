"""Shared pytest fixtures for the sync tests (registered in tests/conftest.py), and the toy flow.

The toy flow has the shape the real flows have: one change-time stream, two entities (``contact``
depends on ``company``), a pure ``map`` that rejects what it cannot map, ``dependencies`` and a
batch ``load``. Its source and target are a ``ToyWorld`` in memory, shared by a test and the
DAG it runs in-process through ``dag.test()``.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest
from cryptography.fernet import Fernet

from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.flow import (
    Entity,
    Failed,
    Flow,
    Loaded,
    LoadOutcome,
    LoadRecord,
    MappedRecord,
    Prerequisite,
    RecordStatus,
    Rejection,
    StagingWriter,
    Stream,
    WriteMode,
)
from airflow_provider_mlconn.sync.store import Actor, RunRef, Store, close_stores
from airflow_provider_mlconn.sync.watermarks import Window

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
#: "Now" of the engine-level tests: two hours after the toy world's first change.
NOW = T0 + timedelta(hours=2)


@dataclass
class ToyWorld:
    """A toy source system and a toy target.

    ``fail_first``: (entity, key) pairs whose first write fails (a transient 503);
    ``fail_always``: pairs whose writes fail until removed; ``mapping_version`` 1 rejects contact
    e-mails written "name at domain", version 2 (the fix) accepts them; ``remote_ids``: pairs
    the target answers with another id than ``"co-KEY"`` (a record merged into another);
    ``mapping_crashes``: the map function raises (a bug, not a rejection).
    """

    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    fail_first: set[tuple[str, str]] = field(default_factory=set)
    fail_always: set[tuple[str, str]] = field(default_factory=set)
    mapping_version: int = 1
    target: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    received: list[LoadRecord] = field(default_factory=list)
    posts: list[tuple[str, str]] = field(default_factory=list)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    remote_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    mapping_crashes: bool = False
    watermark_during_load: list[str | None] = field(default_factory=list)
    watch_variable: str | None = None

    def reset(self) -> None:
        self.__dict__.update(ToyWorld().__dict__)

    def company(self, key: str, name: str, changed_at: datetime) -> None:
        self.rows[("company", key)] = {"key": key, "name": name, "changed_at": changed_at.isoformat()}

    def contact(self, key: str, company: str, email: str, changed_at: datetime) -> None:
        self.rows[("contact", key)] = {
            "key": key,
            "company": company,
            "email": email,
            "changed_at": changed_at.isoformat(),
        }

    def posted(self, entity: str) -> list[str]:
        return [key for posted_entity, key in self.posts if posted_entity == entity]


TOY_WORLD = ToyWorld()


def toy_extract(world: ToyWorld) -> Any:
    def extract(window: Window, writer: StagingWriter) -> datetime | None:
        high_water = None
        every_row = True
        for (entity, key), row in sorted(world.rows.items(), key=lambda item: item[1]["changed_at"]):
            changed_at = datetime.fromisoformat(row["changed_at"])
            if window.contains(changed_at):
                writer.stage(entity, key, row)
                high_water = changed_at if high_water is None else max(high_water, changed_at)
            else:
                every_row = False
        if window.from_beginning and every_row:
            # A read of everything the toy source has: keys it no longer has were deleted.
            for entity in sorted({entity for entity, _ in world.rows}):
                writer.mark_complete(entity)
        return high_water

    return extract


def toy_map(world: ToyWorld) -> Any:
    def map_record(entity: str, source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
        if world.mapping_crashes:
            raise RuntimeError("toy mapping bug")
        if entity == "company":
            return {"name": source["name"].strip(), "jde_address_number": source["key"]}
        email = source["email"].strip().lower()
        if world.mapping_version >= 2:
            email = email.replace(" at ", "@")
        if "@" not in email:
            return Rejection(
                f"contact {source['key']}: e-mail {source['email']!r} has no '@'; correct it in JDE"
            )
        return {"email": email, "jde_contact": source["key"]}

    return map_record


def toy_dependencies(record: MappedRecord) -> list[Prerequisite]:
    if record.entity == "contact":
        return [Prerequisite("company", record.source["company"])]
    return []


def toy_load(world: ToyWorld) -> Any:
    def load(entity: str, records: Sequence[LoadRecord]) -> dict[str, LoadOutcome]:
        world.calls.append((entity, [record.key for record in records]))
        world.received.extend(records)
        if world.watch_variable:
            from airflow.sdk import Variable

            world.watermark_during_load.append(Variable.get(world.watch_variable, default=None))
        outcomes: dict[str, LoadOutcome] = {}
        for record in records:
            pair = (entity, record.key)
            world.attempts[pair] = world.attempts.get(pair, 0) + 1
            if pair in world.fail_always or (pair in world.fail_first and world.attempts[pair] == 1):
                outcomes[record.key] = Failed(f"toy target: HTTP 503 writing {entity} {record.key}")
                continue
            created = pair not in world.target
            stored = dict(record.payload)
            if entity == "contact":
                stored["company_id"] = record.prerequisite_id("company", record.source["company"])
            world.target[pair] = stored
            world.posts.append(pair)
            remote_id = world.remote_ids.get(pair, f"{entity[:2]}-{record.key}")
            outcomes[record.key] = Loaded(remote_id=remote_id, created=created)
        return outcomes

    return load


def toy_entities(
    world: ToyWorld, *, task_batch_size: int = 1000, call_batch_size: int = 100
) -> tuple[Entity, Entity]:
    """The toy flow's two entities: companies, and contacts that need their company first."""
    map_record, load = toy_map(world), toy_load(world)
    return (
        Entity(
            "company",
            target="hubspot",
            key="key",
            write=WriteMode.UPSERT,
            map=lambda source: map_record("company", source),
            load=lambda records: load("company", records),
            call_batch_size=call_batch_size,
            task_batch_size=task_batch_size,
        ),
        Entity(
            "contact",
            target="hubspot",
            key="key",
            write=WriteMode.UPSERT,
            map=lambda source: map_record("contact", source),
            load=lambda records: load("contact", records),
            prerequisites=toy_dependencies,
            depends_on=("company",),
            call_batch_size=call_batch_size,
            task_batch_size=task_batch_size,
        ),
    )


def make_toy_flow(
    name: str,
    world: ToyWorld = TOY_WORLD,
    *,
    overlap: timedelta = timedelta(minutes=5),
    safety_lag: timedelta = timedelta(0),
    task_batch_size: int = 1000,
    call_batch_size: int = 100,
) -> Flow:
    return Flow(
        name=name,
        streams=(Stream("changes", extract=toy_extract(world)),),
        entities=toy_entities(world, task_batch_size=task_batch_size, call_batch_size=call_batch_size),
        overlap=overlap,
        safety_lag=safety_lag,
        description="Toy flow of the sync engine tests.",
    )


def toy_flow_dag(dag_id: str, flow_name: str, *, load_retries: int) -> Any:
    """The toy flow's DAG; the test bundle's DAG file calls this with the same arguments."""
    from airflow_provider_mlconn.operators.sync import flow_dag

    return flow_dag(
        make_toy_flow(flow_name),
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        tags=["toy"],
        load_retries=load_retries,
        load_retry_delay=timedelta(0),
    )


class EngineRun:
    """Drives one run of a flow through the engine's steps, like the DAG does (which maps while it
    extracts: ``map_while_extracting``)."""

    def __init__(self, flow, store, variables, run_id: str, *, map_while_extracting: bool = False):
        self.flow, self.store, self.variables = flow, store, variables
        self.map_while_extracting = map_while_extracting
        self.info = engine.RunInfo(
            dag_id=f"dag_{flow.name}", run_id=run_id, run_type="manual", data_interval_end=NOW
        )
        self.ref = self.info.ref(flow)

    @classmethod
    def completed(cls, flow, store, variables, run_id: str) -> EngineRun:
        """A run loaded in full and committed (the state later runs start from)."""
        run = cls(flow, store, variables, run_id)
        run.prepare()
        for entity in flow.entities:
            run.load(entity.name)
        run.commit()
        return run

    def actor(self, task_id: str, try_number: int = 1, map_index: int = -1):
        return actor_for(self.ref, task_id, try_number=try_number, map_index=map_index)

    def prepare(self) -> dict[str, list[int]]:
        self.plan = engine.plan_windows(self.flow, self.info, self.variables, now=NOW)
        self.extracted = engine.extract(
            self.flow,
            self.store,
            self.info,
            self.actor("extract"),
            self.plan,
            map_while_extracting=self.map_while_extracting,
        )
        # The map task's first try maps what the extract left staged.
        left = (RecordStatus.STAGED,) if self.map_while_extracting else engine.TO_MAP
        engine.map_records(self.flow, self.store, self.ref.run_key, self.actor("map"), statuses=left)
        return {
            entity.name: engine.order_entity(
                self.flow,
                self.store,
                self.ref,
                entity.name,
                max_map_length=1024,
                actor=self.actor(f"{entity.name}.order"),
                complete=self.extracted.complete,
            ).batches
            for entity in self.flow.entities
        }

    def load(self, entity: str, batch: int = 0, try_number: int = 1):
        return engine.load_batch(
            self.flow,
            self.store,
            run_key=self.ref.run_key,
            entity_name=entity,
            batch=batch,
            actor=self.actor(f"{entity}.load", try_number, map_index=batch),
        )

    def commit(self):
        return engine.commit_watermarks(
            self.flow,
            self.store,
            self.variables,
            run_key=self.ref.run_key,
            plan=self.plan,
            extract_manifest=self.extracted,
            now=NOW,
        )

    def statuses(self) -> dict[tuple[str, str], str]:
        return {(r.entity, r.key): r.status.value for r in self.store.records.of_run(self.ref.run_key)}


class DictVariables:
    """The engine's VariableAccess over a dict (unit tests)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


def actor_for(run: RunRef, task_id: str, *, try_number: int = 1, map_index: int = -1) -> Actor:
    return Actor(run.dag_id, run.run_id, task_id, try_number, map_index)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def fernet_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def sqlite_store(tmp_path: Path, fernet_key: str) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", PayloadCipher(fernet_key))
    yield store
    store.dispose()


@pytest.fixture
def postgres_store_url(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards; yields its URL."""
    import psycopg2

    name = f"mlconn_store_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(urlparse(postgres_url)._replace(scheme="postgresql+psycopg2", path=f"/{name}"))
    try:
        yield url
    finally:
        close_stores()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on each backend: SQLite in tmp_path, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_store_url"))


@pytest.fixture
def toy_world() -> Iterator[ToyWorld]:
    TOY_WORLD.reset()
    yield TOY_WORLD
    TOY_WORLD.reset()


@pytest.fixture
def airflow_store(tmp_path: Path, fernet_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the ``mlconn_store`` connection at a fresh SQLite store; yields its URL."""
    url = f"sqlite:///{tmp_path / 'airflow-store.db'}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLCONN_STORE",
        json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url, "fernet_key": fernet_key}}),
    )
    yield url
    close_stores()


@dataclass(frozen=True)
class ToyBundle:
    dag_id: str
    flow_name: str
    path: Path


@pytest.fixture
def toy_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Any]:
    """Write DAG files into a DAG bundle of their own (dag.test() needs a DAG from a bundle).

    Returns ``add(load_retries) -> ToyBundle``; the bundle also holds the replay DAG.
    """
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "mlconn_replay_for_tests.py").write_text(
        "from airflow_provider_mlconn.operators.replay import replay_dag\n\ndag = replay_dag()\n"
    )
    monkeypatch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        json.dumps(
            [
                {
                    "name": f"mlconn-sync-tests-{uuid.uuid4().hex[:6]}",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(folder)},
                },
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {},
                },
            ]
        ),
    )

    def add(load_retries: int) -> ToyBundle:
        suffix = uuid.uuid4().hex[:8]
        bundle = ToyBundle(dag_id=f"mlconn_toy_{suffix}", flow_name=f"toy_{suffix}", path=folder)
        (folder / f"{bundle.dag_id}.py").write_text(
            textwrap.dedent(
                f"""\
                # An Airflow DAG of the sync engine tests (the toy flow).
                from tests.support.sync import toy_flow_dag

                dag = toy_flow_dag({bundle.dag_id!r}, {bundle.flow_name!r}, load_retries={load_retries})
                """
            )
        )
        return bundle

    yield add
    close_stores()


def clear_and_rerun(dag: Any, run_id: str, task_id: str) -> Any:
    """Clear one task and its downstream tasks in an existing run, as the UI's Clear does, and run
    the run again in-process the way ``dag.test()`` does (same run id, next try numbers)."""
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    task_ids = [task_id, *dag.get_task(task_id).get_flat_relative_ids(upstream=False)]
    scheduler_dag.clear(run_id=run_id, task_ids=task_ids, dag_run_state=DagRunState.RUNNING)
    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id))
        dag_run.dag = scheduler_dag
        for _ in range(100):  # bounded: a run of the toy DAG needs about ten rounds
            if dag_run.state != DagRunState.RUNNING:
                break
            session.expire_all()
            schedulable, _ = dag_run.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            for ti in dag_run.get_task_instances(session=session):
                if ti.state == TaskInstanceState.SCHEDULED:
                    _run_task(ti=ti, task=dag.task_dict[ti.task_id])
    with create_session() as session:
        finished = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id))
        session.expunge(finished)
        return finished


def with_entity(flow: Flow, name: str, **changes: Any) -> Flow:
    """The flow with one entity's behaviour replaced (a test's broken load, a stricter mapping)."""
    import dataclasses

    entities = tuple(dataclasses.replace(e, **changes) if e.name == name else e for e in flow.entities)
    return dataclasses.replace(flow, entities=entities)
