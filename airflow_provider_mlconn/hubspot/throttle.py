"""Client-side pacing that keeps a HubSpot portal under its rate limits without waiting for 429s.

HubSpot counts requests in a rolling window (10 s for the app's burst limit, 1 s for search) at the
moment they arrive. The client cannot see arrival times, but it knows that a request arrived no later
than its response came back. So each request occupies a slot from the moment it is sent until its
response time plus one window: never fewer than the server counts.

The limit belongs to the app, not to a process: every task of a deployment that uses one token draws
on the same budget. ``RollingWindowThrottle`` shares it between the threads of one process;
``MachineWindowThrottle`` keeps the same ledger in a small locked file, so every process on the machine
(a LocalExecutor's task processes, a Celery worker's) draws on one count. The
``X-HubSpot-RateLimit-*`` headers correct either when the portal's limit differs or clients elsewhere
(other machines, other apps) use the same budget.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
import zlib
from bisect import bisect_right, insort
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_provider_mlconn.http import TransientApiError
from airflow_provider_mlconn.hubspot.connection import DEFAULT_REDIS_CONN_ID, RATE_BUDGETS

log = logging.getLogger(__name__)

# How a connection shares its budget (connection extra ``rate_budget``, hubspot/connection.py).
BUDGET_MACHINE, BUDGET_PROCESS, BUDGET_REDIS = RATE_BUDGETS
# A request in flight in the Redis ledger is owned by host (CRC-32 of its name) and process id.
PID_BITS = 22

# A request of another process still "in flight" after this long is taken for lost with its process
# (killed between sending and recording the answer); it frees its slot then, or at once when that
# process is seen to be gone.
STALE_IN_FLIGHT_S = 300.0
# How often the waiting thread looks at the shared ledger again while every slot is in flight.
HOST_POLL_S = 0.05


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Ledger:
    """The accounting of one budget: requests in flight and answered, pauses, other clients' usage.

    Pure data without locks or clocks; the throttles keep it in memory or in a file.
    """

    __slots__ = (
        "done",
        "foreign",
        "foreign_sent_at",
        "foreign_until",
        "in_flight",
        "paused_until",
        "portal_limit",
        "window_s",
    )

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.portal_limit: int | None = None  # X-HubSpot-RateLimit-Max, once seen
        self.done: list[float] = []  # response times, non-decreasing
        self.in_flight: list[tuple[int, float]] = []  # (process id, send time)
        self.paused_until = 0.0
        self.foreign = 0  # slots other clients of the portal were seen to use
        self.foreign_until = 0.0
        self.foreign_sent_at = float("-inf")  # send time of the request that reported them

    def limit(self, configured: int) -> int:
        return configured if self.portal_limit is None else max(1, min(configured, self.portal_limit))

    def used(self, now: float) -> int:
        if len(self.done) > 512:  # keep the log short; entries older than a window count for nothing
            del self.done[: bisect_right(self.done, now - 2 * self.window_s)]
        recent = len(self.done) - bisect_right(self.done, now - self.window_s)
        foreign = self.foreign if now < self.foreign_until else 0
        return len(self.in_flight) + recent + foreign

    def next_change(self, now: float) -> float | None:
        """Seconds until a slot frees up by time alone (None: only a finishing request frees one)."""
        start = bisect_right(self.done, now - self.window_s)
        candidates = []
        if start < len(self.done):
            candidates.append(self.done[start] + self.window_s - now)
        if now < self.foreign_until:
            candidates.append(self.foreign_until - now)
        return max(min(candidates), 0.001) if candidates else None

    def take(self, now: float, limit: int, owner: int) -> float | None:
        """Take a slot (None) or say how long to wait before looking again (inf: until a release)."""
        if now < self.paused_until:
            return self.paused_until - now
        if self.used(now) < limit:
            self.in_flight.append((owner, now))
            return None
        wait = self.next_change(now)
        return float("inf") if wait is None else wait

    def finish(self, now: float, owner: int) -> None:
        for index, (pid, _) in enumerate(self.in_flight):
            if pid == owner:
                del self.in_flight[index]
                break
        insort(self.done, now)

    def observe(
        self, limit: int | None, remaining: int | None, interval_ms: int | None, sent_at: float, now: float
    ) -> None:
        """Learn from ``X-HubSpot-RateLimit-*``: the portal's real limit and window, and usage by others.

        The server's ``Max - Remaining`` counts requests that arrived in the window ending at this one's
        arrival; ours that could be among them are those in flight or answered after ``sent_at - window``.
        Anything beyond that belongs to other clients. The latest count wins (by send time: answers can
        come back out of order), for at most a window. Keeping the largest ever seen while answers keep
        coming never let it fall: processes loading side by side each saw the others' burst and crawled
        at a few calls a second after it.
        """
        if interval_ms:
            self.window_s = interval_ms / 1000
        if limit:
            self.portal_limit = limit
        if limit is None or remaining is None:
            return
        ours = len(self.in_flight) + len(self.done) - bisect_right(self.done, sent_at - self.window_s)
        if sent_at >= self.foreign_sent_at:
            self.foreign = max((limit - remaining) - ours, 0)
            self.foreign_until = now + self.window_s
            self.foreign_sent_at = sent_at

    # ------------------------------------------------------------------ the ledger file
    def dump(self, now: float) -> bytes:
        keep_from = bisect_right(self.done, now - self.window_s)
        return json.dumps(
            {
                "window_s": self.window_s,
                "portal_limit": self.portal_limit,
                "done": self.done[keep_from:],
                "in_flight": self.in_flight,
                "paused_until": self.paused_until,
                "foreign": self.foreign,
                "foreign_until": self.foreign_until,
                "foreign_sent_at": self.foreign_sent_at if self.foreign_sent_at > float("-inf") else None,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def load(cls, raw: bytes, window_s: float) -> _Ledger:
        ledger = cls(window_s)
        if not raw:
            return ledger
        data: dict[str, Any] = json.loads(raw)
        ledger.window_s = float(data["window_s"])
        ledger.portal_limit = data["portal_limit"]
        ledger.done = [float(at) for at in data["done"]]
        ledger.in_flight = [(int(pid), float(at)) for pid, at in data["in_flight"]]
        ledger.paused_until = float(data["paused_until"])
        ledger.foreign = int(data["foreign"])
        ledger.foreign_until = float(data["foreign_until"])
        sent = data["foreign_sent_at"]
        ledger.foreign_sent_at = float("-inf") if sent is None else float(sent)
        return ledger


class RollingWindowThrottle:
    """At most ``limit`` requests in any ``window_s`` seconds, across the threads of this process;
    blocks until one may go."""

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
        self._initial_window_s = window_s
        self._clock = clock
        self._ledger = _Ledger(window_s)
        self._cond = threading.Condition()
        self._first_in_line = False  # a thread of this process is waiting for the next slot
        self._seen_limit = limit
        self._seen_window_s = window_s
        self.waited_s = 0.0

    def _owner(self) -> int:
        """Who a request in flight belongs to, as the ledger names it: this process."""
        return os.getpid()

    @contextmanager
    def _open(self) -> Iterator[_Ledger]:
        """The ledger, for the caller alone while the block runs (the caller holds ``_cond``)."""
        yield self._ledger

    #: How often to look at the ledger again while every slot is in flight: None, a release of one
    #: of this process's threads wakes the waiter; a ledger other processes share polls.
    FULL_POLL_S: float | None = None

    def _longest_wait(self, wait: float) -> float | None:
        """How long to sleep before looking again (None: until another thread of ours releases).

        Slots free up by time (an answer holds its slot a window long), so a known wait is exact;
        when every slot is in flight, only an answer (maybe another process's) starts that clock."""
        return self.FULL_POLL_S if wait == float("inf") else wait

    @contextmanager
    def _ledger_held(self) -> Iterator[_Ledger]:
        """The ledger while the block runs; the caller holds ``_cond``."""
        with self._open() as ledger:
            yield ledger
            self._seen_limit = ledger.limit(self.configured_limit)
            self._seen_window_s = ledger.window_s

    @property
    def limit(self) -> int:
        """The limit in force, as last seen: the connection's, or the portal's where that is lower."""
        return self._seen_limit

    @property
    def window_s(self) -> float:
        return self._seen_window_s

    def acquire(self) -> float:
        """Wait for a slot and take it; returns the send time to pass to ``observe``.

        One thread of the process at a time looks at the ledger (the first in line); the others wait
        for it to get its slot. With the machine's ledger, a full pool of threads in every load process
        would otherwise each read the file whenever a slot frees up.
        """
        started = self._clock()
        owner = self._owner()
        with self._cond:
            while self._first_in_line:
                self._cond.wait()
            self._first_in_line = True
            try:
                while True:
                    with self._ledger_held() as ledger:
                        now = self._clock()
                        wait = ledger.take(now, ledger.limit(self.configured_limit), owner)
                    if wait is None:
                        self.waited_s += now - started
                        return now
                    self._cond.wait(timeout=self._longest_wait(wait))
            finally:
                self._first_in_line = False
                self._cond.notify_all()

    def release(self) -> None:
        """The response came back (or the request failed): the slot now ages out one window from now."""
        with self._cond, self._ledger_held() as ledger:
            ledger.finish(self._clock(), self._owner())
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
        with self._cond, self._ledger_held() as ledger:
            ledger.paused_until = max(ledger.paused_until, self._clock() + seconds)
            self._cond.notify_all()

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Learn from ``X-HubSpot-RateLimit-*`` (see ``_Ledger.observe``); call it while the request
        still holds its slot."""
        with self._cond, self._ledger_held() as ledger:
            ledger.observe(
                _header_int(headers, "X-HubSpot-RateLimit-Max"),
                _header_int(headers, "X-HubSpot-RateLimit-Remaining"),
                _header_int(headers, "X-HubSpot-RateLimit-Interval-Milliseconds"),
                sent_at,
                self._clock(),
            )

    def snapshot(self) -> dict[str, float]:
        with self._cond, self._ledger_held() as ledger:
            return {
                "limit": ledger.limit(self.configured_limit),
                "window_s": ledger.window_s,
                "in_use": ledger.used(self._clock()),
                "waited_s": round(self.waited_s, 3),
            }


class MachineWindowThrottle(RollingWindowThrottle):
    """The same budget shared by every process of this machine: the ledger lives in ``path``, read and
    written under an exclusive ``flock``.

    Times are wall-clock (``time.time``), which every process reads alike. A process that is killed
    while its request is in flight leaves a slot behind: it is freed as soon as the process is seen to
    be gone, at the latest after ``STALE_IN_FLIGHT_S``. A ledger file that cannot be parsed (a machine
    that crashed mid-write) starts empty again; the headers' ``Remaining`` catches what it forgot.
    """

    FULL_POLL_S = HOST_POLL_S

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        path: Path,
        name: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(limit, window_s, name=name, clock=clock)
        self.path = path
        self._fd: int | None = None
        self._fd_pid = 0

    def _file(self) -> int:
        if self._fd is None or self._fd_pid != os.getpid():
            # a forked child must not share its parent's open file: flock would count both as one holder
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _forget_old_ledgers(self.path.parent)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        return self._fd

    @contextmanager
    def _open(self) -> Iterator[_Ledger]:
        fd = self._file()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            raw = os.pread(fd, 1 << 20, 0)
            try:
                ledger = _Ledger.load(raw, self._initial_window_s)
            except (ValueError, KeyError, TypeError) as error:
                log.warning("HubSpot rate ledger %s was unreadable (%s); it starts empty", self.path, error)
                ledger = _Ledger(self._initial_window_s)
            self._forget_lost(ledger, self._clock())
            yield ledger
            data = ledger.dump(self._clock())
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _forget_lost(self, ledger: _Ledger, now: float) -> None:
        _forget_lost(ledger, now, self._owner(), _process_exists)


def _forget_lost(ledger: _Ledger, now: float, me: int, alive: Callable[[int], bool | None]) -> None:
    """Free the slots of requests whose sender is gone: ``alive(owner)`` says whether it still runs
    (None: cannot tell from here); any other owner's request older than ``STALE_IN_FLIGHT_S``."""
    seen: dict[int, bool | None] = {}

    def kept(owner: int, sent_at: float) -> bool:
        if owner == me:
            return True
        if sent_at < now - STALE_IN_FLIGHT_S or sent_at > now + ledger.window_s:
            return False  # lost, or written before the clock was set back
        if owner not in seen:
            seen[owner] = alive(owner)
        return seen[owner] is not False

    ledger.in_flight = [(owner, at) for owner, at in ledger.in_flight if kept(owner, at)]
    if ledger.done and ledger.done[-1] > now + ledger.window_s:  # the clock was set back
        ledger.done = [at for at in ledger.done if at <= now]


class BudgetUnreachableError(TransientApiError):
    """The shared rate budget (Redis) did not answer: no request was sent, so it may be retried."""


class RedisWindowThrottle(RollingWindowThrottle):
    """The same budget shared by every machine that reaches one Redis (rate budget ``redis``): the
    ledger is one Redis value, read and written under a Redis lock.

    Times are wall-clock (``time.time``): the machines' clocks must agree (NTP) to within a fraction
    of the window. A request in flight is owned by (host, process): one of this host whose process is
    gone frees its slot at once, one of another host after ``STALE_IN_FLIGHT_S``. Redis unreachable
    when a slot is wanted is a ``BudgetUnreachableError`` (transient: nothing was sent); when a request
    that was sent gives its slot back, only a warning (repeating the request would send it twice),
    and the slot ages out as stale.
    """

    FULL_POLL_S = HOST_POLL_S
    LOCK_TIMEOUT_S = 5.0
    KEY_TTL_S = 86_400

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        client: Any,
        key: str,
        where: str,
        name: str = "",
        clock: Callable[[], float] = time.time,
        host: str | None = None,
    ) -> None:
        super().__init__(limit, window_s, name=name, clock=clock)
        self.client = client
        self.key = key
        self.where = where
        self._host = zlib.crc32((host or socket.gethostname()).encode())

    def _owner(self) -> int:
        return (self._host << PID_BITS) | os.getpid()

    def _alive(self, owner: int) -> bool | None:
        if owner >> PID_BITS != self._host:
            return None  # another machine's process: only its age tells
        return _process_exists(owner & ((1 << PID_BITS) - 1))

    @contextmanager
    def _open(self) -> Iterator[_Ledger]:
        from redis.exceptions import LockError, RedisError

        lock = self.client.lock(
            f"{self.key}:lock", timeout=self.LOCK_TIMEOUT_S, blocking_timeout=self.LOCK_TIMEOUT_S, sleep=0.002
        )
        try:
            if not lock.acquire():
                raise BudgetUnreachableError(
                    f"the rate budget in Redis ({self.where}) stayed locked for {self.LOCK_TIMEOUT_S:.0f} s",
                    system="HubSpot",
                )
            raw = self.client.get(self.key) or b""
        except RedisError as error:
            raise BudgetUnreachableError(
                f"the rate budget in Redis ({self.where}) could not be read: {error}", system="HubSpot"
            ) from None
        try:
            try:
                ledger = _Ledger.load(raw, self._initial_window_s)
            except (ValueError, KeyError, TypeError) as error:
                log.warning(
                    "HubSpot rate ledger %s in Redis was unreadable (%s); it starts empty", self.key, error
                )
                ledger = _Ledger(self._initial_window_s)
            now = self._clock()
            _forget_lost(ledger, now, self._owner(), self._alive)
            yield ledger
            try:
                self.client.set(self.key, ledger.dump(self._clock()), ex=self.KEY_TTL_S)
            except RedisError as error:
                raise BudgetUnreachableError(
                    f"the rate budget in Redis ({self.where}) could not be written: {error}", system="HubSpot"
                ) from None
        finally:
            try:
                lock.release()
            except (LockError, RedisError) as error:
                log.warning("HubSpot rate ledger lock %s: %s", self.key, error)

    def release(self) -> None:
        try:
            super().release()
        except BudgetUnreachableError as error:
            log.warning("%s; the slot ages out in %.0f s", error, STALE_IN_FLIGHT_S)

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        try:
            super().observe(headers, sent_at)
        except BudgetUnreachableError as error:
            log.warning("%s; the rate-limit headers were not recorded", error)

    def pause(self, seconds: float) -> None:
        try:
            super().pause(seconds)
        except BudgetUnreachableError as error:
            log.warning("%s; this process pauses alone", error)
            time.sleep(min(seconds, 10.0))


# A ledger nobody wrote for this long belongs to a portal or sandbox no longer used.
OLD_LEDGER_S = 86_400.0
_swept: set[Path] = set()


def _forget_old_ledgers(directory: Path) -> None:
    """Delete ledgers untouched for a day, once per directory and process (a test suite's sandboxes,
    each on its own port, leave one behind each)."""
    if directory in _swept:
        return
    _swept.add(directory)
    cutoff = time.time() - OLD_LEDGER_S
    for path in directory.glob("hubspot-*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue  # another process swept it first


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM  # exists, owned by another user
    return True


class PortalThrottles:
    """The two budgets of one portal and token: the app's burst window and search's per-second one."""

    def __init__(self, general: RollingWindowThrottle, search: RollingWindowThrottle) -> None:
        self.general = general
        self.search = search

    @classmethod
    def in_process(cls, *, per_10s: int, search_per_s: int) -> PortalThrottles:
        return cls(
            RollingWindowThrottle(per_10s, 10.0, name="general"),
            RollingWindowThrottle(search_per_s, 1.0, name="search"),
        )

    @classmethod
    def in_redis(
        cls, client: Any, where: str, key: str, *, per_10s: int, search_per_s: int
    ) -> PortalThrottles:
        prefix = f"mlconn:rate-budget:hubspot-{key[:32]}"
        return cls(
            RedisWindowThrottle(
                per_10s, 10.0, client=client, key=f"{prefix}-general", where=where, name="general"
            ),
            RedisWindowThrottle(
                search_per_s, 1.0, client=client, key=f"{prefix}-search", where=where, name="search"
            ),
        )

    @classmethod
    def on_machine(cls, directory: Path, key: str, *, per_10s: int, search_per_s: int) -> PortalThrottles:
        return cls(
            MachineWindowThrottle(
                per_10s, 10.0, path=directory / f"hubspot-{key[:32]}-general.json", name="general"
            ),
            MachineWindowThrottle(
                search_per_s, 1.0, path=directory / f"hubspot-{key[:32]}-search.json", name="search"
            ),
        )


def default_budget_dir() -> Path:
    """Where machine-wide ledgers live: one directory per user in the machine's temporary directory."""
    return Path(tempfile.gettempdir()) / f"airflow-provider-mlconn-{os.getuid()}" / "rate-budget"


_registry: dict[tuple[str, str, str], PortalThrottles] = {}
_registry_lock = threading.Lock()


def throttles_for(
    base_url: str,
    token: str,
    *,
    per_10s: int,
    search_per_s: int,
    budget: str = BUDGET_PROCESS,
    budget_dir: Path | None = None,
    redis_conn_id: str = DEFAULT_REDIS_CONN_ID,
) -> PortalThrottles:
    """The throttles of one portal (keyed by host and a hash of the token, never the token).

    ``budget`` ``process`` shares them between the threads and hooks of this process; ``machine`` between
    every process of the machine, through ledger files in ``budget_dir`` (default
    ``default_budget_dir()``); ``redis`` between every machine reaching the Redis of the Airflow
    connection ``redis_conn_id``. The first caller's limits win; later callers with other limits share
    the same budget.
    """
    if budget not in RATE_BUDGETS:
        raise ValueError(f"rate_budget must be one of {', '.join(RATE_BUDGETS)}, got {budget!r}")
    key = hashlib.sha256(f"{base_url.rstrip('/')}\0{token}".encode()).hexdigest()
    directory = (budget_dir or default_budget_dir()) if budget == BUDGET_MACHINE else None
    where = redis_conn_id if budget == BUDGET_REDIS else str(directory or "")
    registry_key = (key, budget, where)
    with _registry_lock:
        found = _registry.get(registry_key)
        if found is None:
            if budget == BUDGET_REDIS:
                client, shown = redis_client(redis_conn_id)
                found = PortalThrottles.in_redis(
                    client, shown, key, per_10s=per_10s, search_per_s=search_per_s
                )
            elif directory is None:
                found = PortalThrottles.in_process(per_10s=per_10s, search_per_s=search_per_s)
            else:
                found = PortalThrottles.on_machine(directory, key, per_10s=per_10s, search_per_s=search_per_s)
            _registry[registry_key] = found
        return found


def redis_client(conn_id: str) -> tuple[Any, str]:
    """A Redis client for the Airflow connection ``conn_id`` (type redis: host, port, login, password,
    extra ``db`` and ``ssl``; a URI's path, ``redis://host:6379/13``, is the database too) and how to
    name it in messages (never with the password)."""
    try:
        import redis
    except ImportError:
        raise ValueError(
            "rate_budget redis needs the redis package: install airflow-provider-mlconn[celery]"
        ) from None
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    extra = connection.extra_dejson or {}
    host = connection.host or "127.0.0.1"
    port = int(connection.port or 6379)
    schema = str(connection.schema or "").strip()
    db = int(extra["db"]) if extra.get("db") not in (None, "") else int(schema) if schema.isdigit() else 0
    client = redis.Redis(
        host=host,
        port=port,
        db=db,
        username=connection.login or None,
        password=connection.password or None,
        ssl=str(extra.get("ssl", "")).lower() in ("true", "1", "yes"),
        socket_timeout=5,
        socket_connect_timeout=5,
    )
    return client, f"connection {conn_id!r}, {host}:{port}/{db}"
