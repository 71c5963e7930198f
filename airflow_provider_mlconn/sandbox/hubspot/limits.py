"""HubSpot's rate limits as a portal enforces them (hubspot.md §7).

A rolling 10-second window per app (TEN_SECONDLY_ROLLING), a daily counter per account (DAILY, reset
at midnight UTC here [inf]: the real one follows the account's time zone) and search's own per-second
limit (SECONDLY). A refused request does not use up any budget [inf].
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
SECONDLY = "SECONDLY"
DAILY = "DAILY"

MESSAGES = {
    TEN_SECONDLY: "You have reached your ten_secondly_rolling limit.",
    SECONDLY: "You have reached your secondly limit.",
    DAILY: "You have reached your daily limit.",
}


class RollingWindow:
    """At most ``limit`` admissions in any ``window_s`` seconds, counted at arrival."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.admitted: deque[float] = deque()
        self.peak = 0

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self.admitted and self.admitted[0] <= horizon:
            self.admitted.popleft()

    def admit(self) -> bool:
        now = self.clock()
        self._expire(now)
        if len(self.admitted) >= self.limit:
            return False
        self.admitted.append(now)
        self.peak = max(self.peak, len(self.admitted))
        return True

    def remaining(self) -> int:
        self._expire(self.clock())
        return max(0, self.limit - len(self.admitted))

    def fill(self, count: int) -> None:
        """Use up ``count`` slots now, as another app on the same portal would."""
        now = self.clock()
        self._expire(now)
        self.admitted.extend([now] * max(0, count))

    def clear(self) -> None:
        self.admitted.clear()
        self.peak = 0


@dataclass
class DailyCounter:
    limit: int
    used: int = 0
    day: str = ""

    def _roll(self) -> None:
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        if today != self.day:
            self.day, self.used = today, 0

    def admit(self) -> bool:
        self._roll()
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def remaining(self) -> int:
        self._roll()
        return max(0, self.limit - self.used)


class RateLimits:
    """The three budgets of one portal; ``check`` names the policy a request breaks, or None."""

    def __init__(self, *, per_10s: int, search_per_s: int, daily: int) -> None:
        self.burst = RollingWindow(per_10s, 10.0)
        self.search = RollingWindow(search_per_s, 1.0)
        self.daily = DailyCounter(daily)
        self.storm_until = 0.0

    def check(self, *, is_search: bool) -> str | None:
        if time.monotonic() < self.storm_until:
            return TEN_SECONDLY
        if self.daily.remaining() <= 0:
            return DAILY
        window = self.search if is_search else self.burst
        if not window.admit():
            return SECONDLY if is_search else TEN_SECONDLY
        self.daily.admit()
        return None

    def headers(self) -> dict[str, str]:
        """The ``X-HubSpot-RateLimit-*`` headers of every non-search response."""
        return {
            "X-HubSpot-RateLimit-Max": str(self.burst.limit),
            "X-HubSpot-RateLimit-Remaining": str(self.burst.remaining()),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.burst.window_s * 1000)),
            "X-HubSpot-RateLimit-Daily": str(self.daily.limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(self.daily.remaining()),
        }

    def reset(self) -> None:
        self.burst.clear()
        self.search.clear()
        self.daily.used = 0
        self.storm_until = 0.0
