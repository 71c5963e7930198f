"""The client-side throttle: a rolling window that never lets the portal count more than its limit."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_mlconn.hubspot.throttle import RollingWindowThrottle, throttles_for

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
