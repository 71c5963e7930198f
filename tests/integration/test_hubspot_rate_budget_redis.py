"""The HubSpot rate budget shared through Redis (connection extra ``rate_budget`` = ``redis``): Celery
workers on several machines draw on one count. "Machines" here are processes with temporary
directories (so machine ledgers) and host names of their own, against the Redis every test run has."""

from __future__ import annotations

import json
import logging
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hubspot.properties import COMPANY_ADDRESS_NUMBER
from airflow_provider_mlconn.hubspot.throttle import BudgetUnreachableError, RedisWindowThrottle
from tests.support.processes import assert_one_budget, run_spawned

pytestmark = pytest.mark.integration
BUDGET_DB = 12  # the Celery stack test's broker is 13


def companies(count: int, start: int) -> dict[str, dict[str, str]]:
    return {str(start + i): {"name": f"Customer {start + i}", "city": "Rotterdam"} for i in range(count)}


@pytest.fixture
def budget_key(redis_url: str) -> Iterator[str]:
    key = f"mlconn:test:rate-budget:{uuid.uuid4().hex}"
    yield key
    client = redis.Redis.from_url(redis_url)
    client.delete(key, f"{key}:lock")
    client.close()


LIMIT, WINDOW_S, CALLS = 5, 0.6, 6


def _send_through_redis(url: str, key: str, host: str, out: str) -> None:
    throttle = RedisWindowThrottle(
        LIMIT, WINDOW_S, client=redis.Redis.from_url(url), key=key, where=url, host=host
    )
    sent = []
    for _ in range(CALLS):
        with throttle.slot():
            sent.append(time.time())
            time.sleep(0.005)  # the request's round trip
    Path(out).write_text(json.dumps(sent))


def test_processes_of_three_machines_share_one_budget(
    redis_url: str, budget_key: str, tmp_path: Path
) -> None:
    outs = [tmp_path / f"sent-{n}.json" for n in range(3)]
    run_spawned(
        _send_through_redis,
        [(redis_url, budget_key, f"worker-{n}.example", str(out)) for n, out in enumerate(outs)],
    )
    # each free to send 5 at once on its own, together they spend one budget
    assert_one_budget(outs, sends=3 * CALLS, limit=LIMIT, window_s=WINDOW_S)


def test_a_slot_left_by_a_dead_process_here_frees_at_once_one_of_another_machine_when_stale(
    redis_url: str, budget_key: str
) -> None:
    gone = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join(20)
    client = redis.Redis.from_url(redis_url)
    throttle = RedisWindowThrottle(3, 10.0, client=client, key=budget_key, where=redis_url, host="here")
    other = RedisWindowThrottle(3, 10.0, client=client, key=budget_key, where=redis_url, host="elsewhere")
    throttle.acquire()
    data = json.loads(client.get(budget_key) or b"{}")
    here = throttle._owner() & ~((1 << 22) - 1)
    elsewhere = other._owner() & ~((1 << 22) - 1)
    data["in_flight"] += [
        [here | gone.pid, time.time()],  # this machine, its process gone: freed
        [elsewhere | 4_000_000, time.time()],  # another machine: it cannot be checked from here, kept
        [elsewhere | 4_000_001, time.time() - 3600],  # another machine, in flight for an hour: stale
    ]
    client.set(budget_key, json.dumps(data))
    assert throttle.snapshot()["in_use"] == 2
    client.close()


def test_redis_unreachable_refuses_a_slot_as_transient_and_never_fails_a_sent_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, socket_timeout=1)
    throttle = RedisWindowThrottle(3, 10.0, client=client, key="mlconn:test:nowhere", where="127.0.0.1:1")
    with pytest.raises(
        BudgetUnreachableError, match=r"rate budget in Redis \(127.0.0.1:1\) could not be read"
    ):
        throttle.acquire()
    assert BudgetUnreachableError.retriable, "nothing was sent: the call may be repeated"
    with caplog.at_level(logging.WARNING):
        throttle.release()  # the answer of a request already sent: only a warning
        throttle.observe({"X-HubSpot-RateLimit-Remaining": "3"}, time.time())
    assert "ages out" in caplog.text


def _load_companies_on_a_machine(conn_id: str, start: int, count: int) -> None:
    tempfile.tempdir = tempfile.mkdtemp(prefix="machine-")  # a machine ledger of its own
    hook = HubSpotHook(conn_id, max_workers=4)
    outcomes = hook.upsert_records("companies", companies(count, start), id_property="jde_address_number")
    if sum(o.ok for o in outcomes.values()) != count:
        raise SystemExit(f"{count - sum(o.ok for o in outcomes.values())} companies were not loaded")


def _load_on_three_machines(conn_id: str) -> None:
    run_spawned(_load_companies_on_a_machine, [(conn_id, 100_000 * n, 1_500) for n in (1, 2, 3)])


def test_load_tasks_on_three_machines_stay_under_the_portal_limit_with_the_redis_budget(
    hubspot_sandbox: Any, hubspot_hook: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The budget's database is the URI's path, as Airflow reads a redis connection's URI.
    database = f"{redis_url.rsplit('/', 1)[0]}/{BUDGET_DB}"
    monkeypatch.setenv("AIRFLOW_CONN_MLCONN_TEST_BUDGET_REDIS", database)
    sandbox = hubspot_sandbox(rate_limit=40)
    shared = hubspot_hook(
        sandbox,
        extra={
            "rate_limit_per_10s": 40,
            "rate_budget": "redis",
            "rate_budget_redis_conn_id": "mlconn_test_budget_redis",
        },
    )
    shared.ensure_properties([COMPANY_ADDRESS_NUMBER])
    _load_on_three_machines(shared.hubspot_conn_id)
    assert sandbox.stats()["rate_limited"] == 0
    budget = redis.Redis.from_url(database)
    keys = [shared.throttles.general.key, shared.throttles.search.key]  # type: ignore[attr-defined]
    assert budget.exists(keys[0]), "the ledger is in the connection's database"
    budget.delete(*keys, *(f"{key}:lock" for key in keys))
    budget.close()

    # The same load with each machine keeping its own budget: the portal answers 429.
    apart = hubspot_hook(
        sandbox, token=sandbox.token, extra={"rate_limit_per_10s": 40, "rate_budget": "machine"}
    )
    time.sleep(10)  # the first load's window rolls by
    _load_on_three_machines(apart.hubspot_conn_id)
    assert sandbox.stats()["rate_limited"] > 0
