"""The compose file's multi-machine stack run for real, as processes: Airflow 3 on the CeleryExecutor
(api-server, scheduler, dag-processor, triggerer, two Celery workers) on PostgreSQL and Redis,
running the customers flow at 5,000 customers with the HubSpot pool at 4 slots.

Not part of ``make test`` (it takes ~6 minutes): ``make e2e-celery`` runs it
(``MLCONN_CELERY_STACK=1``). ``MLCONN_CELERY_CUSTOMERS`` changes the size.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
import requests

from airflow_provider_mlconn.hubspot.objects import CONTACT_TO_COMPANY_PRIMARY
from airflow_provider_mlconn.sandbox.connections import connection_environment, sandbox_connections
from airflow_provider_mlconn.sandbox.runner import SandboxProcess
from airflow_provider_mlconn.sync.pools import pool_slots
from airflow_provider_mlconn.sync.store import close_stores
from tests.conftest import REPO_ROOT
from tests.integration.test_customers_flow import (
    COMPANY_PROPERTIES,
    CONTACT_PROPERTIES,
    HubSpotState,
    JdeTruth,
    jde_truth,
    run_dag,
)
from tests.support.airflow import wait_for
from tests.support.celery_stack import CeleryStack
from tests.support.customers import (
    HUBSPOT_TOKEN,
    JDE_PASSWORD,
    JDE_TIMEZONE,
    JDE_USER,
    Sandboxes,
    forget_customers_watermark,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.celery_stack,
    pytest.mark.skipif(
        os.environ.get("MLCONN_CELERY_STACK") != "1",
        reason="the Celery stack test runs with make e2e-celery (MLCONN_CELERY_STACK=1)",
    ),
]

DAG_ID = "mlconn_customers_jde_to_hubspot"
CUSTOMERS = int(os.environ.get("MLCONN_CELERY_CUSTOMERS", "5000"))
SEED = 18
CONF = {"safety_lag_minutes": 0}
REDIS_DB = 13
WATERMARK = "mlconn_watermark__customers__jde"
RUN_BOUND_S = 420
MINUTE = 60
PRIMARY = CONTACT_TO_COMPANY_PRIMARY.type_id


class PatientSandboxes(Sandboxes):
    """The test's own reads of HubSpot wait out its rate limit (the flow's load shares it)."""

    def hubspot_api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        for _ in range(60):
            response = self.http.request(
                method,
                f"{self.hubspot.url}{path}",
                json=body,
                params=params or None,
                headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"},
                timeout=60,
            )
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After") or 1))
        response.raise_for_status()
        return response.json()


def snapshot(sandboxes: PatientSandboxes) -> tuple[HubSpotState, dict[str, int]]:
    """What HubSpot holds, and how many records carry a key that another record carries too."""
    companies = sandboxes.hubspot_objects("companies", COMPANY_PROPERTIES)
    contacts = sandboxes.hubspot_objects("contacts", CONTACT_PROPERTIES)

    def props(record: dict[str, Any], names: list[str]) -> dict[str, Any]:
        return {name: record["properties"].get(name) for name in names}

    def repeated(values: list[Any]) -> int:
        present = [value for value in values if value]
        return len(present) - len(set(present))

    duplicates = {
        "companies with a repeated jde_address_number": repeated(
            [c["properties"].get("jde_address_number") for c in companies]
        ),
        "contacts with a repeated jde_contact_key": repeated(
            [c["properties"].get("jde_contact_key") for c in contacts]
        ),
        "contacts with a repeated e-mail": repeated([c["properties"].get("email") for c in contacts]),
        "contacts without a jde_contact_key": sum(
            1 for c in contacts if not c["properties"].get("jde_contact_key")
        ),
    }
    state = HubSpotState(
        companies={c["properties"]["jde_address_number"]: props(c, COMPANY_PROPERTIES) for c in companies},
        contacts={c["id"]: props(c, CONTACT_PROPERTIES) for c in contacts},
        associations=sandboxes.contact_company_types([c["id"] for c in contacts]),
        company_ids={c["properties"]["jde_address_number"]: c["id"] for c in companies},
    )
    return state, duplicates


def assert_every_jde_record_in_hubspot(state: HubSpotState, truth: JdeTruth) -> None:
    """Nothing lost: every customer a company, every contact line a contact (or linked to the contact
    that owns its e-mail) associated to its customer's company."""
    assert set(state.companies) == truth.customers
    by_key, by_email = state.contact_by_key(), state.contact_by_email()
    assert set(by_key) <= set(truth.contacts)
    for key, email in truth.contacts.items():
        contact_id = by_key.get(key) or by_email.get(email)
        assert contact_id, f"JDE contact {key} ({email or 'no e-mail'}) is not in HubSpot"
        company_id = state.company_ids[key.split("-")[0]]
        assert (contact_id, company_id) in state.associations, f"{key} is not associated to its company"


def reset_hubspot(sandboxes: PatientSandboxes) -> None:
    response = requests.post(f"{sandboxes.hubspot.url}/_sandbox/reset", json={}, timeout=60)
    response.raise_for_status()


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[PatientSandboxes]:
    """Both sandboxes as processes, at their defaults but for the size, seed and credentials."""
    jde = SandboxProcess(
        "jde",
        [
            *("--customers", str(CUSTOMERS), "--seed", str(SEED)),
            *("--username", JDE_USER, "--password", JDE_PASSWORD, "--timezone", JDE_TIMEZONE),
        ],
    )
    hubspot = SandboxProcess("hubspot", ["--token", HUBSPOT_TOKEN])
    with jde, hubspot:
        yield PatientSandboxes(jde=jde, hubspot=hubspot)  # type: ignore[arg-type]


def stack_connections(sandboxes: PatientSandboxes) -> dict[str, dict[str, Any]]:
    return sandbox_connections(
        jde_url=sandboxes.jde.url,
        hubspot_url=sandboxes.hubspot.url,
        jde_user=JDE_USER,
        jde_password=JDE_PASSWORD,
        jde_timezone=JDE_TIMEZONE,
        hubspot_token=HUBSPOT_TOKEN,
        device_name="mlconn-celery-stack",
    )


@pytest.fixture(scope="module")
def reference(sandboxes: PatientSandboxes, airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The same seed through ``dag.test()`` (this process, SQLite store): HubSpot's state after it, and
    what JDE holds; HubSpot is reset afterwards."""
    store = tmp_path_factory.mktemp("dag-test-store") / "store.db"
    environment = {
        **connection_environment(stack_connections(sandboxes)),
        "AIRFLOW_CONN_MLCONN_STORE": json.dumps(
            {"conn_type": "generic", "extra": {"sqlalchemy_url": f"sqlite:///{store}"}}
        ),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        reset_hubspot(sandboxes)
        forget_customers_watermark()
        started = time.monotonic()
        run_dag(CONF)
        wall = time.monotonic() - started
        truth = jde_truth()
        forget_customers_watermark()
        close_stores()
    state, duplicates = snapshot(sandboxes)
    assert not any(duplicates.values()), duplicates
    assert_every_jde_record_in_hubspot(state, truth)
    reset_hubspot(sandboxes)
    FIGURES["dag.test() wall s"] = round(wall, 1)
    FIGURES["contacts shared by two customers' lines (primary label: last written)"] = comparable(state)[
        "contested contacts"
    ]
    return Reference(canonical=comparable(state), truth=truth)


class Reference:
    def __init__(self, *, canonical: dict[str, Any], truth: JdeTruth) -> None:
        self.canonical = canonical
        self.truth = truth


#: What the tests measured, printed at the end of the module (``make e2e-celery`` shows it).
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def stack(
    sandboxes: PatientSandboxes, postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryStack]:
    """The compose file's Airflow services as processes, but no worker yet; all stopped afterwards."""
    broker = f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}"
    connections = stack_connections(sandboxes)
    # As the compose file has it: the workers share HubSpot's rate budget through the broker's Redis.
    connections["hubspot_default"]["extra"]["rate_budget"] = "redis"
    stack = CeleryStack(
        root=tmp_path_factory.mktemp("celery-stack"),
        postgres_url=postgres_url,
        redis_url=broker,
        connections={
            **connection_environment(connections),
            "AIRFLOW_CONN_REDIS_DEFAULT": broker,
            "AIRFLOW_CONN_MLCONN_STORE": "",  # set below, once the store's URL is known
        },
        dags=[REPO_ROOT / "dags" / f"{DAG_ID}.py"],
        # Manual runs only, and a lost load task is retried a second after it is found lost.
        variables={"mlconn_customers_schedule": "none", "mlconn_load_retry_delay_seconds": "1"},
    )
    stack.connections = {
        **stack.connections,
        "AIRFLOW_CONN_MLCONN_STORE": json.dumps(
            {"conn_type": "generic", "extra": {"sqlalchemy_url": stack.store_url}}
        ),
    }
    try:
        deadline = time.monotonic() + 6 * MINUTE
        stack.prepare()
        stack.start(deadline)

        def dag_listed() -> bool:
            stack.assert_running()
            return any(d["dag_id"] == DAG_ID for d in stack.api("GET", "/dags")["dags"])

        wait_for("the customers DAG parsed", dag_listed, deadline)
        stack.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
        yield stack
    finally:
        left = stack.stop()
        print(f"\nCelery stack figures ({CUSTOMERS} customers): {json.dumps(FIGURES, indent=2)}", flush=True)
    assert not left, f"processes outlived SIGTERM and were killed: {left}"


def run_flow(stack: CeleryStack, sandboxes: PatientSandboxes, *, on_progress: Any = None) -> dict[str, Any]:
    """One run of the customers flow from an empty HubSpot, store and watermark; the run as the
    REST API reports it, with its task instances and wall time."""
    reset_hubspot(sandboxes)
    stack.empty_store()
    response = stack.http.delete(f"{stack.url}/api/v2/variables/{WATERMARK}", timeout=30)
    assert response.status_code in (204, 404), response.text
    run_id = stack.trigger(DAG_ID, CONF)
    deadline = time.monotonic() + RUN_BOUND_S
    if on_progress is not None:
        on_progress(run_id, deadline)
    run = stack.wait_for_run(DAG_ID, run_id, deadline)
    run["task_instances"] = stack.task_instances(DAG_ID, run_id)
    run["wall_s"] = (_at(run["end_date"]) - _at(run["start_date"])).total_seconds()
    return run


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def loads(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [ti for ti in run["task_instances"] if ti["task_id"].endswith(".load")]


def load_phase_s(run: dict[str, Any]) -> float:
    """From the first load task's start to the last one's end."""
    batches = loads(run)
    start = min(_at(ti["start_date"]) for ti in batches)
    end = max(_at(ti["end_date"]) for ti in batches)
    return round((end - start).total_seconds(), 1)


def side_by_side(run: dict[str, Any]) -> list[tuple[str, str, float]]:
    """Pairs of load tasks that ran at the same time on different workers, with the overlap (s)."""
    found = []
    batches = loads(run)
    for index, first in enumerate(batches):
        for second in batches[index + 1 :]:
            if first["hostname"] == second["hostname"]:
                continue
            start = max(_at(first["start_date"]), _at(second["start_date"]))
            end = min(_at(first["end_date"]), _at(second["end_date"]))
            if start < end:
                names = [
                    f"{ti['task_id']}[{ti['map_index']}]@{ti['hostname']}/{ti['pid']}"
                    for ti in (first, second)
                ]
                found.append((names[0], names[1], round((end - start).total_seconds(), 1)))
    return found


def comparable(state: HubSpotState) -> dict[str, Any]:
    """``state.canonical()`` without the primary label of contacts associated to more than one
    company: HubSpot keeps one primary company per contact, the last written (BEHAVIOR.md F7), and
    which of two customers' main-contact lines sharing an e-mail writes last depends on how the
    load calls interleave (so on the executor). That each such contact has at most one primary
    company is asserted instead."""
    companies_of: dict[str, list[str]] = {}
    for contact_id, company_id in state.associations:
        companies_of.setdefault(contact_id, []).append(company_id)
    contested = {contact_id for contact_id, companies in companies_of.items() if len(companies) > 1}
    for contact_id in contested:
        primaries = [c for c in companies_of[contact_id] if PRIMARY in state.associations[(contact_id, c)]]
        assert len(primaries) <= 1, f"contact {contact_id} is primary for {primaries}"
    associations = {
        pair: (types - {PRIMARY} if pair[0] in contested else types)
        for pair, types in state.associations.items()
    }
    canonical = HubSpotState(state.companies, state.contacts, associations, state.company_ids).canonical()
    canonical["contested contacts"] = len(contested)
    return canonical


def assert_same_as_dag_test(sandboxes: PatientSandboxes, reference: Reference) -> None:
    state, duplicates = snapshot(sandboxes)
    assert not any(duplicates.values()), duplicates
    assert_every_jde_record_in_hubspot(state, reference.truth)
    canonical = comparable(state)
    for part in ("companies", "contacts", "associations", "contested contacts"):
        assert canonical[part] == reference.canonical[part], f"HubSpot {part} differ from the dag.test() run"


@pytest.mark.timeout(25 * MINUTE)
def test_two_celery_workers_load_side_by_side_and_leave_what_dag_test_leaves(
    stack: CeleryStack, sandboxes: PatientSandboxes, reference: Reference
) -> None:
    pool = stack.api("GET", "/pools/mlconn_hubspot")
    assert pool["slots"] == pool_slots("mlconn_hubspot") == 4

    stack.start_worker("worker-1", time.monotonic() + 3 * MINUTE)
    one = run_flow(stack, sandboxes)
    FIGURES["one worker: run wall s"] = round(one["wall_s"], 1)
    FIGURES["one worker: load phase s"] = load_phase_s(one)
    assert {ti["hostname"] for ti in one["task_instances"]} == {"worker-1"}
    assert_same_as_dag_test(sandboxes, reference)

    stack.start_worker("worker-2", time.monotonic() + 3 * MINUTE)
    two = run_flow(stack, sandboxes)
    FIGURES["two workers: run wall s"] = round(two["wall_s"], 1)
    FIGURES["two workers: load phase s"] = load_phase_s(two)
    assert_same_as_dag_test(sandboxes, reference)
    budget = redis.Redis.from_url(stack.redis_url).keys("mlconn:rate-budget:hubspot-*")
    assert budget, "the workers drew on HubSpot's rate budget in the broker's Redis (rate_budget redis)"

    by_worker: dict[str, int] = {}
    for ti in loads(two):
        by_worker[ti["hostname"]] = by_worker.get(ti["hostname"], 0) + 1
    pairs = side_by_side(two)
    FIGURES.update(
        {
            "load tasks": len(loads(two)),
            "two workers: load tasks per worker": by_worker,
            "two workers: load tasks side by side on different workers": pairs,
        }
    )
    assert set(by_worker) == {"worker-1", "worker-2"}, by_worker
    assert pairs, "no two load batches ran at the same time on different workers"
    assert stack.listening_addresses() <= {"127.0.0.1"}, stack.listening_addresses()


@pytest.mark.timeout(12 * MINUTE)
def test_a_worker_killed_in_the_middle_of_a_load_loses_and_duplicates_nothing(
    stack: CeleryStack, sandboxes: PatientSandboxes, reference: Reference
) -> None:
    for name in ("worker-1", "worker-2"):
        if name not in stack.components:
            stack.start_worker(name, time.monotonic() + 3 * MINUTE)
    victim: dict[str, Any] = {}

    def kill_a_worker_mid_load(run_id: str, deadline: float) -> None:
        def loading() -> dict[str, Any] | None:
            stack.assert_running()
            now = time.time()
            for ti in stack.task_instances(DAG_ID, run_id):
                if (
                    ti["task_id"].endswith(".load")
                    and ti["state"] == "running"
                    and ti["hostname"]
                    and now - _at(ti["start_date"]).timestamp() > 1.5
                ):
                    return ti
            return None

        def written(entity: str) -> int:
            """HubSpot batch writes of the entity's objects answered 2xx so far."""
            path = (
                f"/objects/{entity}s/batch/upsert" if entity in ("company", "contact") else "/associations/"
            )
            calls: dict[str, dict[str, int]] = sandboxes.hubspot_stats()["requests"]
            return sum(
                count
                for call, by_status in calls.items()
                if call.startswith("POST ") and path in call
                for status, count in by_status.items()
                if str(status).startswith("2")
            )

        def writing() -> dict[str, Any] | None:
            ti = loading()
            return ti if ti and written(ti["task_id"].split(".")[0]) else None

        ti = wait_for(
            "a load task running for 1.5 s whose writes HubSpot answers", writing, deadline, step=0.3
        )
        stack.kill(ti["hostname"])
        victim.update(ti)
        FIGURES["kill: HubSpot batch writes of that entity answered before the kill"] = written(
            ti["task_id"].split(".")[0]
        )

    run = run_flow(stack, sandboxes, on_progress=kill_a_worker_mid_load)
    tries = stack.tries(DAG_ID, run["dag_run_id"], victim["task_id"], victim["map_index"])
    survivor = ({"worker-1", "worker-2"} - {victim["hostname"]}).pop()
    FIGURES["kill: killed"] = f"{victim['hostname']} during {victim['task_id']}[{victim['map_index']}]"
    FIGURES["kill: tries of that task"] = [(t["try_number"], t["state"], t["hostname"]) for t in tries]
    FIGURES["kill: run wall s"] = round(run["wall_s"], 1)
    assert [t["state"] for t in tries][-1] == "success"
    assert tries[0]["hostname"] == victim["hostname"] and tries[0]["state"] == "failed", tries
    assert tries[-1]["hostname"] == survivor, tries
    assert_same_as_dag_test(sandboxes, reference)
