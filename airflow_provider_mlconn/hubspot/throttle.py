"""Client-side pacing that keeps a HubSpot portal under its rate limits without waiting for 429s.

HubSpot counts requests in a rolling window (10 s for the app's burst limit, 1 s for search) at the
moment they arrive. The client cannot see arrival times, but it knows that a request arrived no later
than its response came back. So each request occupies a slot from the moment it is sent until its
response time plus one window: never fewer than the server counts. One throttle per portal and token
is shared by every thread (and every hook) of the process; the ``X-HubSpot-RateLimit-*`` headers
correct it when the portal's limit differs or other clients use the same budget.
"""

from __future__ import annotations

import hashlib
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class RollingWindowThrottle:
    """At most ``limit`` requests in any ``window_s`` seconds, across threads; blocks until one may go."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"a throttle needs limit >= 1 and a positive window, got {limit}/{window_s}s")
        self.name = name
        self.configured_limit = limit
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._done: list[float] = []  # response times, non-decreasing
        self._in_flight = 0
        self._paused_until = 0.0
        self._foreign = 0  # slots other clients of the portal were seen to use
        self._foreign_until = 0.0
        self._foreign_sent_at = float("-inf")  # send time of the request that reported them
        self._cond = threading.Condition()
        self.waited_s = 0.0

    # ----------------------------------------------------------------- accounting
    def _used(self, now: float) -> int:
        if len(self._done) > 4 * self.limit:  # keep the log short; older entries count for nothing
            del self._done[: bisect_right(self._done, now - 2 * self.window_s)]
        recent = len(self._done) - bisect_right(self._done, now - self.window_s)
        foreign = self._foreign if now < self._foreign_until else 0
        return self._in_flight + recent + foreign

    def _next_change(self, now: float) -> float | None:
        """Seconds until a slot frees up by time alone (None: only a finishing request frees one)."""
        start = bisect_right(self._done, now - self.window_s)
        candidates = []
        if start < len(self._done):
            candidates.append(self._done[start] + self.window_s - now)
        if now < self._foreign_until:
            candidates.append(self._foreign_until - now)
        return max(min(candidates), 0.001) if candidates else None

    def acquire(self) -> float:
        """Wait for a slot and take it; returns the send time to pass to ``observe``."""
        started = self._clock()
        with self._cond:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    wait: float | None = self._paused_until - now
                elif self._used(now) < self.limit:
                    self._in_flight += 1
                    self.waited_s += now - started
                    return now
                else:
                    wait = self._next_change(now)
                self._cond.wait(timeout=wait)

    def release(self) -> None:
        """The response came back (or the request failed): the slot now ages out one window from now."""
        with self._cond:
            self._in_flight -= 1
            self._done.append(self._clock())
            self._cond.notify_all()

    @contextmanager
    def slot(self) -> Iterator[float]:
        sent_at = self.acquire()
        try:
            yield sent_at
        finally:
            self.release()

    def pause(self, seconds: float) -> None:
        """Hold every thread back for ``seconds`` (after a 429: the portal disagrees with our count)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._cond.notify_all()

    # ----------------------------------------------------------------- feedback
    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Learn from ``X-HubSpot-RateLimit-*``: the portal's real limit and window, and usage by others.

        Call it while the request still holds its slot. The server's ``Max - Remaining`` counts requests
        that arrived in the window ending at this one's arrival; ours that could be among them are those
        in flight or answered after ``sent_at - window``. Anything beyond that belongs to other clients.
        """
        limit = _header_int(headers, "X-HubSpot-RateLimit-Max")
        remaining = _header_int(headers, "X-HubSpot-RateLimit-Remaining")
        interval_ms = _header_int(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        with self._cond:
            if interval_ms:
                self.window_s = interval_ms / 1000
            if limit:
                self.limit = max(1, min(self.configured_limit, limit))
            if limit is None or remaining is None:
                return
            now = self._clock()
            ours = self._in_flight + len(self._done) - bisect_right(self._done, sent_at - self.window_s)
            others = (limit - remaining) - ours
            # The latest count wins (by send time: answers can come back out of order), for at most a
            # window. Keeping the largest ever seen while answers keep coming never let it fall:
            # processes loading side by side each saw the others' burst and crawled at a few calls
            # a second after it.
            if sent_at >= self._foreign_sent_at:
                self._foreign = max(others, 0)
                self._foreign_until = now + self.window_s
                self._foreign_sent_at = sent_at

    def snapshot(self) -> dict[str, float]:
        with self._cond:
            now = self._clock()
            return {
                "limit": self.limit,
                "window_s": self.window_s,
                "in_use": self._used(now),
                "waited_s": round(self.waited_s, 3),
            }


class PortalThrottles:
    """The two budgets of one portal and token: the app's burst window and search's per-second one."""

    def __init__(self, *, per_10s: int, search_per_s: int) -> None:
        self.general = RollingWindowThrottle(per_10s, 10.0, name="general")
        self.search = RollingWindowThrottle(search_per_s, 1.0, name="search")


_registry: dict[tuple[str, str], PortalThrottles] = {}
_registry_lock = threading.Lock()


def throttles_for(base_url: str, token: str, *, per_10s: int, search_per_s: int) -> PortalThrottles:
    """The process-wide throttles of one portal (keyed by host and a hash of the token, never the token).

    The first caller's limits win; later callers with other limits share the same budget.
    """
    key = (base_url.rstrip("/"), hashlib.sha256(token.encode()).hexdigest())
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = _registry[key] = PortalThrottles(per_10s=per_10s, search_per_s=search_per_s)
        return found
