"""What both hooks share: error classes, the retry policy, request metrics and secret masking.

Each hook knows one remote system; this module knows none. It turns "how did the call go" into a
small set of exception classes that say whether a retry can help, and gives one retry policy
(exponential backoff with jitter, honouring a server-given wait) to every caller. Every call a hook
records in its ``RequestMetrics`` is also counted, per system, by each ``counting_calls()`` block
open in the process (a task's calls, 429s, retries and waits, for its run report).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

T = TypeVar("T")


class RemoteApiError(Exception):
    """A remote system refused a call or could not be reached.

    ``retriable`` says whether repeating the same call can succeed; the message names the system,
    the call and what the server said, never a secret.
    """

    retriable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status
        self.method = method
        self.url = url
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        status = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{self.system}{where}: {status}{self.message}"


class TransientApiError(RemoteApiError):
    """5xx, dropped connections, timeouts and locks: the same call may succeed later."""

    retriable = True


class OutcomeUnknownError(TransientApiError):
    """The request left and its answer was lost (a read timeout, a connection dropped after the
    request was sent, a gateway error): the server may have done it. A write that is not an upsert
    must be confirmed by a lookup before it is sent again, never simply retried."""


class RateLimitedError(TransientApiError):
    """HTTP 429. ``policy_name`` says which limit (HubSpot: TEN_SECONDLY_ROLLING, SECONDLY, DAILY)."""

    def __init__(self, message: str, *, policy_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.policy_name = policy_name


class QuotaExhaustedError(RemoteApiError):
    """A limit that will not reset within a task's lifetime (HubSpot's DAILY policy): do not retry."""


class AuthenticationError(RemoteApiError):
    """Credentials are missing, wrong or expired beyond renewal. Fix the connection; retrying won't help."""


class RequestRejectedError(RemoteApiError):
    """A 4xx other than 429: the request itself is wrong (validation, not found, conflict)."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter; a server-given wait takes precedence.

    ``attempt`` counts from 1 (the first retry waits about ``initial_wait``).
    """

    max_attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_server_wait: float = 120.0

    def wait_seconds(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_server_wait)
        backoff = min(self.max_wait, self.initial_wait * self.multiplier ** max(attempt - 1, 0))
        spread = backoff * self.jitter
        return max(0.0, backoff - spread + random.random() * 2 * spread)

    def retrying(self, *, sleep: Callable[[float], None] = time.sleep) -> tenacity.Retrying:
        """A tenacity ``Retrying`` that repeats calls failing with a retriable ``RemoteApiError``."""

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            return self.wait_seconds(state.attempt_number, retry_after)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            if isinstance(error, RemoteApiError):
                _tell_tallies(
                    lambda tally: tally.add_wait(
                        error.system, delay, rate_limited=isinstance(error, RateLimitedError)
                    )
                )
            log.warning(
                "Attempt %d/%d failed (%s); retrying in %.2fs",
                state.attempt_number,
                self.max_attempts,
                error,
                delay,
            )

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, RemoteApiError) and e.retriable),
            wait=wait,
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    def call(self, func: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
        """Run ``func`` under this policy and return its result (or raise its last error)."""
        return self.retrying(sleep=sleep)(func)


_ID_SEGMENT = re.compile(r"/(?:\d+|[0-9a-f]{8}-[0-9a-f-]{27,})(?=/|$)")


def path_template(path: str) -> str:
    """``/crm/v3/objects/contacts/123`` -> ``/crm/v3/objects/contacts/{id}``, for metrics keys."""
    return _ID_SEGMENT.sub("/{id}", path.split("?", 1)[0])


@dataclass
class SystemCalls:
    """What one task sent to one remote system: calls, 429 answers, retries and the seconds waited
    before retries (``waited_429``: the part of it after a 429)."""

    calls: int = 0
    rate_limited: int = 0
    errors: int = 0
    retries: int = 0
    seconds: float = 0.0
    waited: float = 0.0
    waited_429: float = 0.0

    def add(self, other: SystemCalls) -> None:
        for name in ("calls", "rate_limited", "errors", "retries", "seconds", "waited", "waited_429"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
            "waited": round(self.waited, 3),
            "waited_429": round(self.waited_429, 3),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SystemCalls:
        return cls(**{name: value.get(name, 0) for name in cls.__dataclass_fields__})


class CallTally:
    """Thread-safe counts of the calls made while a ``counting_calls()`` block is open, per system
    (the hooks' ``SYSTEM``: ``JDE AIS``, ``HubSpot``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._systems: dict[str, SystemCalls] = {}

    def _system(self, system: str) -> SystemCalls:
        return self._systems.setdefault(system or "unnamed", SystemCalls())

    def add_call(self, system: str, status: int, seconds: float) -> None:
        with self._lock:
            counts = self._system(system)
            counts.calls += 1
            counts.seconds += seconds
            if status == 429:
                counts.rate_limited += 1
            elif status == 0 or status >= 500:
                counts.errors += 1

    def add_retry(self, system: str) -> None:
        with self._lock:
            self._system(system).retries += 1

    def add_wait(self, system: str, seconds: float, *, rate_limited: bool) -> None:
        with self._lock:
            counts = self._system(system)
            counts.waited += seconds
            if rate_limited:
                counts.waited_429 += seconds

    def snapshot(self) -> dict[str, SystemCalls]:
        """A copy of the counts so far, by system."""
        with self._lock:
            return {name: SystemCalls(**vars(counts)) for name, counts in sorted(self._systems.items())}


_tallies: list[CallTally] = []
_tallies_lock = threading.Lock()


def _tell_tallies(update: Callable[[CallTally], None]) -> None:
    with _tallies_lock:
        open_tallies = list(_tallies)
    for tally in open_tallies:
        update(tally)


@contextmanager
def counting_calls() -> Iterator[CallTally]:
    """Count every call any hook of this process makes while the block is open, from any thread.

    Process-wide on purpose: the hooks send from their own thread pools, which a context variable
    would not reach, and a task runs alone in its process (``dag.test()`` runs tasks one at a time).
    """
    tally = CallTally()
    with _tallies_lock:
        _tallies.append(tally)
    try:
        yield tally
    finally:
        with _tallies_lock:
            _tallies.remove(tally)


@dataclass
class RequestMetrics:
    """Thread-safe counters of what a hook sent: calls by (method, path, status), time, retries.

    ``system`` names the remote system for ``counting_calls()`` tallies, which every call and
    retry is reported to as well.
    """

    calls: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    seconds: float = 0.0
    retries: int = 0
    rate_limited: int = 0
    system: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, method: str, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.calls[(method.upper(), path_template(path), status)] += 1
            self.seconds += seconds
            if status == 429:
                self.rate_limited += 1
        _tell_tallies(lambda tally: tally.add_call(self.system, status, seconds))

    def record_retry(self) -> None:
        with self._lock:
            self.retries += 1
        _tell_tallies(lambda tally: tally.add_retry(self.system))

    @property
    def total_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def count(self, *, method: str | None = None, path_prefix: str = "", status: int | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (m, p, s), n in self.calls.items()
                if (method is None or m == method.upper())
                and p.startswith(path_prefix)
                and (status is None or s == status)
            )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total_calls": sum(self.calls.values()),
                "seconds": round(self.seconds, 3),
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "calls": {f"{m} {p} {s}": n for (m, p, s), n in sorted(self.calls.items())},
            }


def mask_secrets(*secrets: str | None) -> None:
    """Register secrets with Airflow's log masker so they never reach task logs."""
    values = [s for s in secrets if s]
    if not values:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # outside Airflow (sandbox-only installs): nothing to register with
        return
    for value in values:
        mask_secret(value)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each secret in ``text`` with ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def new_session(*, pool_size: int = 10, verify_ssl: bool = True, user_agent: str) -> requests.Session:
    """A ``requests.Session`` whose connection pool fits ``pool_size`` concurrent threads."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = verify_ssl
    session.headers["User-Agent"] = user_agent
    return session


#: The connection id a person asked Airflow to test. The api-server's Test endpoint tests a copy of
#: the connection under a random id; the provider's api-server middleware records the real one here
#: (``airflow_provider_mlconn.plugins.api_server``) so the hooks' messages name it.
tested_connection_id: ContextVar[str | None] = ContextVar("mlconn_tested_connection_id", default=None)


def connection_name(conn_id: str) -> str:
    """The connection id to show a person: the stored connection's while the UI's Test button runs."""
    return tested_connection_id.get() or conn_id


def naming_connection(message: str, conn_id: str) -> str:
    """``message``, ending with which connection it is about unless it names it already."""
    return message if f"'{conn_id}'" in message else f"{message} (connection '{conn_id}')"


def may_have_been_sent(error: requests.RequestException) -> bool:
    """Whether the request may have reached the server before ``error``: not when the connection
    could not be made (refused, unresolvable, connect timeout, TLS), yes in every other case (a read
    timeout, a connection reset or closed while waiting for the answer)."""
    if isinstance(error, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(error, requests.exceptions.ConnectionError):
        text = str(error).lower()
        never_connected = (
            "newconnectionerror",
            "connection refused",
            "name or service not known",
            "temporary failure in name resolution",
            "no route to host",
            "network is unreachable",
        )
        return not any(marker in text for marker in never_connected)
    return True


def network_failure(error: requests.RequestException, url: str) -> str:
    """Which server could not be reached and why, in a line: ``cannot reach http://h:9300 (connection
    refused)``. Names scheme, host and port only (paths and queries may hold tokens)."""
    parts = urlsplit(url)
    server = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}" if parts.netloc else url
    if isinstance(error, requests.exceptions.SSLError):
        reason = "TLS handshake or certificate check failed"
    elif isinstance(error, requests.exceptions.ConnectTimeout):
        reason = "no answer to the connection attempt before the timeout"
    elif isinstance(error, requests.exceptions.Timeout):
        reason = "no response before the timeout"
    else:
        reason = _socket_reason(error) or type(error).__name__
    return f"cannot reach {server} ({reason})"


#: Reasons urllib3 only gives as text; never the whole text, which may quote a URL with a token.
_SOCKET_REASONS = (
    "connection refused",
    "name or service not known",
    "temporary failure in name resolution",
    "no route to host",
    "network is unreachable",
    "connection reset by peer",
)


def _socket_reason(error: BaseException) -> str | None:
    """The operating system's words for a failed connection (``connection refused``, ``name or
    service not known``), found in the chain of wrapped urllib3 errors."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror).lower()
        text = str(current).lower()
        for marker in _SOCKET_REASONS:
            if marker in text:
                return marker
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return None
