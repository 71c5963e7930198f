"""The client-side throttle: a rolling window that never lets the portal count more than its limit."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_mlconn.hubspot.throttle import (
    MachineWindowThrottle,
    RollingWindowThrottle,
    throttles_for,
)
from tests.support.processes import assert_one_budget, run_spawned

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_slots_free_up_one_window_after_their_response() -> None:
    clock = FakeClock()
    throttle = RollingWindowThrottle(3, 10.0, clock=clock)
    for _ in range(3):
        with throttle.slot():
            clock.now += 1.0  # each response takes a second
    assert throttle.snapshot()["in_use"] == 3
    clock.now = 1000.0 + 1.0 + 10.0  # first response at 1001 ages out at 1011
    assert throttle.snapshot()["in_use"] == 2


def test_a_request_in_flight_holds_its_slot() -> None:
    clock = FakeClock()
    throttle = RollingWindowThrottle(2, 10.0, clock=clock)
    throttle.acquire()
    throttle.acquire()
    clock.now += 60
    assert throttle.snapshot()["in_use"] == 2  # no answer yet: the server may still count both


def test_threads_block_until_the_window_rolls() -> None:
    throttle = RollingWindowThrottle(4, 0.3)
    sent: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        with throttle.slot(), lock:
            sent.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    sent.sort()
    assert len(sent) == 12
    # any 4 consecutive sends fit the limit; the 5th must come a window after the 1st answer
    assert all(sent[i + 4] - sent[i] >= 0.29 for i in range(len(sent) - 4))


def test_headers_lower_the_limit_and_set_the_window() -> None:
    clock = FakeClock()
    throttle = RollingWindowThrottle(190, 10.0, clock=clock)
    sent = throttle.acquire()
    throttle.observe(
        {
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "99",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        },
        sent,
    )
    throttle.release()
    assert throttle.limit == 100 and throttle.window_s == 10.0
    throttle.observe({"X-HubSpot-RateLimit-Max": "250", "X-HubSpot-RateLimit-Remaining": "249"}, sent)
    assert throttle.limit == 190  # never above what the connection allows


def test_usage_by_other_clients_seen_in_remaining_takes_slots() -> None:
    clock = FakeClock()
    throttle = RollingWindowThrottle(100, 10.0, clock=clock)
    sent = throttle.acquire()
    # the portal counted 61 requests, only this one is ours: 60 belong to another app
    throttle.observe({"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "39"}, sent)
    throttle.release()
    assert throttle.snapshot()["in_use"] == 61
    clock.now += 10.5
    assert throttle.snapshot()["in_use"] == 0


def test_usage_by_other_clients_follows_their_latest_count_and_does_not_ratchet_up() -> None:
    clock = FakeClock()
    throttle = RollingWindowThrottle(100, 10.0, clock=clock)
    burst = throttle.acquire()
    throttle.observe({"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "39"}, burst)
    throttle.release()
    clock.now += 5
    later = throttle.acquire()
    # five seconds on, the other app's burst is partly out of the window: 10 of its requests remain
    throttle.observe({"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "88"}, later)
    throttle.release()
    assert throttle.snapshot()["in_use"] == 2 + 10
    # an older count answered late does not bring the burst back
    throttle.observe({"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "39"}, burst)
    assert throttle.snapshot()["in_use"] == 2 + 10


def test_our_own_requests_are_not_mistaken_for_other_clients() -> None:
    clock = FakeClock()
    throttle = RollingWindowThrottle(10, 10.0, clock=clock)
    for used in range(1, 6):
        sent = throttle.acquire()
        throttle.observe(
            {"X-HubSpot-RateLimit-Max": "10", "X-HubSpot-RateLimit-Remaining": str(10 - used)}, sent
        )
        throttle.release()
    assert throttle.snapshot()["in_use"] == 5


def test_a_pause_holds_every_thread() -> None:
    throttle = RollingWindowThrottle(100, 10.0)
    throttle.pause(0.2)
    began = time.monotonic()
    throttle.acquire()
    assert time.monotonic() - began >= 0.19


def test_the_registry_shares_a_throttle_per_host_and_token_without_keeping_the_token() -> None:
    first = throttles_for("http://h:1/", "pat-secret-a", per_10s=10, search_per_s=2)
    assert throttles_for("http://h:1", "pat-secret-a", per_10s=50, search_per_s=5) is first
    assert throttles_for("http://h:1", "pat-secret-b", per_10s=10, search_per_s=2) is not first
    from airflow_provider_mlconn.hubspot import throttle as module

    assert not any("pat-secret-a" in key for pair in module._registry for key in pair)


def test_a_throttle_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError):
        RollingWindowThrottle(0, 10.0)


# ------------------------------------------------------------- one budget for every process of the host
def _send_through_host_ledger(path: str, limit: int, window_s: float, calls: int, out: str) -> None:
    throttle = MachineWindowThrottle(limit, window_s, path=Path(path))
    sent = []
    for _ in range(calls):
        with throttle.slot():
            sent.append(time.time())
            time.sleep(0.005)  # the request's round trip
    Path(out).write_text(json.dumps(sent))


def test_processes_of_one_host_share_one_budget(tmp_path: Path) -> None:
    ledger, limit, window = tmp_path / "ledger.json", 5, 0.6
    outs = [tmp_path / f"sent-{n}.json" for n in range(3)]
    run_spawned(_send_through_host_ledger, [(str(ledger), limit, window, 6, str(out)) for out in outs])
    # three processes, each free to send 5 at once on its own, together spend one budget
    assert_one_budget(outs, sends=18, limit=limit, window_s=window)


def test_a_forked_child_opens_the_ledger_again(tmp_path: Path) -> None:
    throttle = MachineWindowThrottle(2, 30.0, path=tmp_path / "ledger.json")
    throttle.acquire()
    context = multiprocessing.get_context("fork")
    child = context.Process(
        target=throttle.acquire
    )  # the parent holds 1 of 2 slots: the child takes the other
    child.start()
    child.join(20)
    assert child.exitcode == 0
    # the child is gone with its request in flight: its slot is free again, the parent's is still held
    assert throttle.snapshot()["in_use"] == 1


def test_a_slot_of_a_process_that_died_in_flight_is_freed(tmp_path: Path) -> None:
    gone = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join(20)
    path = tmp_path / "ledger.json"
    throttle = MachineWindowThrottle(2, 10.0, path=path)
    throttle.acquire()
    data = json.loads(path.read_text())
    data["in_flight"].append([gone.pid, time.time()])
    data["in_flight"].append([os.getppid(), time.time() - 10 * 3600])  # alive, but in flight for hours
    path.write_text(json.dumps(data))
    assert throttle.snapshot()["in_use"] == 1


def test_a_pause_in_one_process_holds_the_others(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    MachineWindowThrottle(100, 10.0, path=path).pause(0.3)
    other = MachineWindowThrottle(100, 10.0, path=path)
    began = time.monotonic()
    other.acquire()
    assert time.monotonic() - began >= 0.25


def test_a_ledger_that_cannot_be_read_starts_empty(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.json"
    path.write_bytes(b'{"window_s": 10.0, "done": [1, 2')  # a machine that crashed mid-write
    throttle = MachineWindowThrottle(3, 10.0, path=path)
    throttle.acquire()
    assert throttle.snapshot()["in_use"] == 1
    assert "unreadable" in caplog.text


def test_the_host_registry_keeps_ledgers_apart_by_portal_and_token_and_never_names_the_token(
    tmp_path: Path,
) -> None:
    first = throttles_for(
        "http://h:2/", "pat-secret-c", per_10s=10, search_per_s=2, budget="machine", budget_dir=tmp_path
    )
    same = throttles_for(
        "http://h:2", "pat-secret-c", per_10s=10, search_per_s=2, budget="machine", budget_dir=tmp_path
    )
    other = throttles_for(
        "http://h:2", "pat-secret-d", per_10s=10, search_per_s=2, budget="machine", budget_dir=tmp_path
    )
    assert same is first and other is not first
    first.general.acquire()
    other.search.acquire()
    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 2 and not any("secret" in name for name in names)
    with pytest.raises(ValueError, match="rate_budget must be one of machine, process, redis"):
        throttles_for("http://h:2", "pat-secret-c", per_10s=10, search_per_s=2, budget="cluster")
