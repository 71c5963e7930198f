"""JdeAisHook: one JD Edwards AIS Server, reached through its REST API (``/jderest``).

What it takes care of, so callers do not:

- **Session**: a token requested on first use (``/v2/tokenrequest``), shared by the hook's threads,
  sent as ``jde-AIS-Auth`` with the device name it was issued for. A call answered 444 (token expired,
  logged out) logs in once more and is repeated; a second 444 is an ``AuthenticationError``. With
  ``auth_mode=basic`` every call carries HTTP Basic credentials instead. ``close()`` logs out, except
  within ``shared_sessions()``: there the hooks of one connection share one session, logged out when
  the scope ends (a load task opens a hook per call of 20 documents: one login, not one per call).
- **Reading**: ``iter_rows``/``iter_records`` stream a table query page by page in primary-key order,
  following ``next`` links, in constant memory. When a ``next`` call fails (5xx, dropped connection,
  lost cursor, expired token) the read resumes with a fresh query for keys after the last row seen, so
  no row is skipped or repeated.
- **Writing**: the published orchestrations with typed inputs and outputs; JDE business errors become
  ``JdeBusinessError`` naming the record and the input field.
- **Retries**: bounded exponential backoff with jitter (``RetryPolicy``) on 5xx and connection errors;
  4xx other than 444 are not retried.

Secrets never reach logs: the password and every token are registered with Airflow's masker, and
URLs in errors and logs lose their query string (next links embed the token).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook

from airflow_provider_mlconn.http import (
    AuthenticationError,
    OutcomeUnknownError,
    RemoteApiError,
    RequestMetrics,
    RequestRejectedError,
    RetryPolicy,
    TransientApiError,
    connection_name,
    mask_secrets,
    may_have_been_sent,
    naming_connection,
    network_failure,
    new_session,
    redact,
)
from airflow_provider_mlconn.jde import orchestrations as orch
from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.connection import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    HOOK_NAME,
    UI_FIELD_BEHAVIOUR,
    JdeAisSettings,
)
from airflow_provider_mlconn.jde.dates import parse_ais_date, server_zone
from airflow_provider_mlconn.jde.models import (
    MODELS,
    CustomerLedgerRow,
    JdeRow,
    ReceiptDetailRow,
    ReceiptHeaderRow,
    VoucherRow,
)
from airflow_provider_mlconn.jde.tables import TableSpec, table

log = logging.getLogger(__name__)

SYSTEM = "JDE AIS"
TEST_RETRY_POLICY = RetryPolicy(max_attempts=2, initial_wait=0.5, max_wait=1.0)  # the UI's Test button
M = TypeVar("M", bound=JdeRow)
T = TypeVar("T")
Row = dict[str, Any]


class JdeBusinessError(RequestRejectedError):
    """JDE refused a record on a business rule. ``record`` says which record (e.g. "invoice HS-1001 of
    customer 4242"), ``field`` which orchestration input, ``code``/``title`` the JDE error."""

    def __init__(
        self,
        message: str,
        *,
        orchestration: str,
        record: str,
        field: str | None,
        code: str | None,
        title: str | None,
        text: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.orchestration = orchestration
        self.record = record
        self.field = field
        self.code = code
        self.title = title
        self.text = text


class JdeDuplicateError(JdeBusinessError):
    """The record's external reference (invoice VR01, receipt number) is already in JDE."""


@dataclass(frozen=True)
class TableRead:
    """One data-service read for ``JdeAisHook.read_all``: a table, a query, the columns wanted."""

    table: str
    query: q.Query | q.Condition | None = None
    columns: Sequence[str] | None = None
    page_size: int | None = None


class _CursorLost(Exception):
    """A next-page link can no longer be followed; the read resumes by key."""


def _path(url: str) -> str:
    return urlsplit(url).path or url


@dataclass
class _Session:
    token: str
    date_format: str | None
    conn_id: str
    settings: JdeAisSettings


class _SharedSessions:
    """The AIS sessions of a ``shared_sessions()`` scope, one per connection (and login)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[tuple[str, ...], _Session] = {}

    def token(self, hook: JdeAisHook) -> str:
        """The connection's session token, logged in by ``hook`` if there is none yet (one login
        however many threads ask at once)."""
        with self.lock:
            session = self.sessions.get(hook.session_key)
            if session is None:
                token = hook._login()
                session = _Session(token, hook._user_date_format, hook.jde_ais_conn_id, hook.settings)
                self.sessions[hook.session_key] = session
            hook._user_date_format = session.date_format
            return session.token

    def forget(self, key: tuple[str, ...], token: str) -> None:
        """AIS refused ``token`` (444): the next hook that needs one logs in again."""
        with self.lock:
            session = self.sessions.get(key)
            if session is not None and session.token == token:
                del self.sessions[key]

    def holds(self, key: tuple[str, ...], token: str) -> bool:
        with self.lock:
            session = self.sessions.get(key)
            return session is not None and session.token == token


class _Scope:
    """The process's ``shared_sessions()`` scope, if one is open."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool: _SharedSessions | None = None


_SCOPE = _Scope()


@contextmanager
def shared_sessions() -> Iterator[None]:
    """Within this scope (a whole task, any of its threads), ``JdeAisHook``s of one connection share
    one AIS session: the first that needs a token logs in, the others use its token, closing a hook
    leaves the session open, and the scope's end logs it out. A 444 on the shared token logs in once
    more for all. Nested scopes are the outermost one."""
    with _SCOPE.lock:
        owner = _SCOPE.pool is None
        if owner:
            _SCOPE.pool = _SharedSessions()
    try:
        yield
    finally:
        if owner:
            with _SCOPE.lock:
                pool, _SCOPE.pool = _SCOPE.pool, None
            for session in pool.sessions.values() if pool is not None else ():
                leaving = JdeAisHook(session.conn_id, settings=session.settings)
                leaving._token = session.token
                leaving.close()


class JdeAisHook(BaseHook):
    """Talks to one AIS Server through the ``jde_ais`` connection ``jde_ais_conn_id``.

    Use it as a context manager (or call ``close()``) so the AIS session is logged out. ``settings``
    replaces the Airflow connection (tests, benchmarks); ``retry_policy`` the default backoff.
    """

    conn_name_attr = "jde_ais_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(
        self,
        jde_ais_conn_id: str = DEFAULT_CONN_ID,
        *,
        settings: JdeAisSettings | None = None,
        retry_policy: RetryPolicy | None = None,
        pool_size: int = 8,
    ) -> None:
        super().__init__()
        self.jde_ais_conn_id = jde_ais_conn_id
        self._explicit_settings = settings
        self.retry_policy = retry_policy or RetryPolicy()
        self.pool_size = pool_size
        self.metrics = RequestMetrics(system=SYSTEM)
        self.logins = 0
        self.cursor_resumes = 0
        self._lock = threading.Lock()
        self._token: str | None = None
        self._user_date_format: str | None = None
        self._reads_in_flight: threading.BoundedSemaphore | None = None

    # -- Airflow integration ------------------------------------------------------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form's field behaviour (also declared in provider info as ``conn-fields``)."""
        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @cached_property
    def settings(self) -> JdeAisSettings:
        if self._explicit_settings is not None:
            settings = self._explicit_settings
        else:
            settings = JdeAisSettings.from_connection(
                self.get_connection(self.jde_ais_conn_id), name=connection_name(self.jde_ais_conn_id)
            )
        mask_secrets(settings.password.get_secret_value())
        return settings

    @cached_property
    def http(self) -> requests.Session:
        return new_session(
            pool_size=max(self.pool_size, self.settings.max_parallel_reads),
            verify_ssl=self.settings.verify_ssl,
            user_agent="airflow-provider-mlconn",
        )

    @cached_property
    def server_zone(self) -> tzinfo:
        """The enterprise server's time zone (connection extra ``server_timezone``): UPMJ/UPMT are in it."""
        return server_zone(self.settings.server_timezone)

    def get_conn(self) -> requests.Session:
        """The HTTP session (logged in when ``auth_mode`` is token)."""
        if self.settings.auth_mode == "token":
            self._current_token()
        return self.http

    def test_connection(self) -> tuple[bool, str]:
        """Log in and read ``/defaultconfig`` (token mode), or count one small table (basic mode).

        Retries once at most, so the UI's Test button answers within seconds; a failure names the
        connection (the stored one, not the copy Airflow tests) and what to fix."""
        policy, self.retry_policy = self.retry_policy, TEST_RETRY_POLICY
        try:
            if self.settings.auth_mode == "token":
                self._current_token()
                config = self.default_config()
                message = (
                    f"Connected to {config.get('aisVersion', 'AIS')} at {self.settings.base_url} as "
                    f"{self.settings.username} (environment "
                    f"{self.settings.environment or config.get('defaultEnvironment')})"
                )
            else:
                units = self.count("F0006")
                message = (
                    f"Connected to {self.settings.base_url} with HTTP Basic as {self.settings.username}; "
                    f"{units} business units"
                )
            return True, message
        except (RemoteApiError, ValueError) as error:
            return False, naming_connection(str(error), connection_name(self.jde_ais_conn_id))
        finally:
            self.retry_policy = policy
            self.close()

    def __enter__(self) -> JdeAisHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Log the AIS session out (best effort; not a session ``shared_sessions()`` keeps) and
        release the connection pool."""
        with self._lock:
            token, self._token = self._token, None
        pool = _SCOPE.pool
        if token is not None and pool is not None and pool.holds(self.session_key, token):
            token = None  # the scope logs it out when it ends
        if token is not None:
            try:
                response = self._send("POST", "/v2/tokenrequest/logout", {"token": token}, token=token)
                if response.status_code not in (200, 444):
                    log.warning("JDE AIS logout answered HTTP %s", response.status_code)
            except TransientApiError as error:
                log.warning("JDE AIS logout failed: %s", error)
        if "http" in self.__dict__:
            self.http.close()
            del self.__dict__["http"]

    # -- session ------------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if "://" in path else f"{self.settings.base_url}/jderest{path}"

    @cached_property
    def session_key(self) -> tuple[str, ...]:
        """What makes two hooks' sessions interchangeable: the connection and its login."""
        s = self.settings
        return (
            self.jde_ais_conn_id,
            s.base_url,
            s.username,
            s.environment or "",
            s.role or "",
            s.device_name,
        )

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None:
                pool = _SCOPE.pool
                self._token = self._login() if pool is None else pool.token(self)
            return self._token

    def _invalidate(self, token: str | None) -> None:
        with self._lock:
            if token is not None and self._token == token:
                self._token = None
        pool = _SCOPE.pool
        if pool is not None and token is not None:
            pool.forget(self.session_key, token)

    def _login(self) -> str:
        settings = self.settings
        body: dict[str, Any] = {
            "username": settings.username,
            "password": settings.password.get_secret_value(),
            "deviceName": settings.device_name,
        }
        if settings.environment:
            body["environment"] = settings.environment
        if settings.role:
            body["role"] = settings.role
        response = self._send("POST", "/v2/tokenrequest", body, token=None, credentials=False)
        if response.status_code in (401, 403):
            message = _server_message(response)
            raise AuthenticationError(
                f"login of user {settings.username!r} (environment {settings.environment or 'default'}, "
                f"role {settings.role or 'default'}) was refused: {message}. "
                f"Check the login, password, environment and role of connection "
                f"{connection_name(self.jde_ais_conn_id)!r}.",
                system=SYSTEM,
                status=response.status_code,
                method="POST",
                url=_path(response.url),
            )
        payload = self._parse(response, "POST")
        token = (payload.get("userInfo") or {}).get("token")
        if not token:
            raise AuthenticationError(
                "the token request succeeded but the response has no userInfo.token",
                system=SYSTEM,
                status=response.status_code,
                method="POST",
                url=_path(response.url),
            )
        mask_secrets(token)
        self._user_date_format = (payload.get("userInfo") or {}).get("simpleDateFormat") or None
        self.logins += 1
        log.info("Logged in to JDE AIS as %s (login %d)", settings.username, self.logins)
        return str(token)

    @property
    def date_format(self) -> str:
        """The user's date format for query values (``userInfo.simpleDateFormat``, else the extra)."""
        if self.settings.auth_mode == "token":
            self._current_token()
            return self._user_date_format or self.settings.date_format
        return self.settings.date_format

    # -- HTTP -----------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        token: str | None,
        credentials: bool = True,
    ) -> requests.Response:
        settings = self.settings
        url = self._url(path)
        headers = {"Accept": "application/json", "jde-AIS-Auth-Device": settings.device_name}
        auth = None
        if token is not None:
            headers["jde-AIS-Auth"] = token
        elif credentials:
            auth = (settings.username, settings.password.get_secret_value())
            if settings.environment:
                headers["jde-AIS-Auth-Environment"] = settings.environment
            if settings.role:
                headers["jde-AIS-Auth-Role"] = settings.role
        started = time.monotonic()
        try:
            response = self.http.request(
                method,
                url,
                data=None if body is None else json.dumps(body, default=str),
                headers={**headers, "Content-Type": "application/json"} if body is not None else headers,
                auth=auth,
                timeout=settings.timeout,
            )
        except requests.RequestException as error:
            self.metrics.record(method, _path(url), 0, time.monotonic() - started)
            error_class = OutcomeUnknownError if may_have_been_sent(error) else TransientApiError
            raise error_class(
                network_failure(error, url),
                system=SYSTEM,
                method=method,
                url=_path(url),
            ) from None
        self.metrics.record(method, _path(url), response.status_code, time.monotonic() - started)
        return response

    def _parse(self, response: requests.Response, method: str) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            try:
                return json.loads(response.content, parse_float=Decimal)
            except ValueError:
                raise TransientApiError(
                    "the response body is not JSON (cut off?)",
                    system=SYSTEM,
                    status=status,
                    method=method,
                    url=_path(response.url),
                ) from None
        message = _server_message(response)
        kwargs: dict[str, Any] = {
            "system": SYSTEM,
            "status": status,
            "method": method,
            "url": _path(response.url),
            "body": _safe_body(response, self._secrets()),
        }
        if status >= 500:
            raise TransientApiError(message, **kwargs)
        if status in (401, 403, 444):
            raise AuthenticationError(message, **kwargs)
        raise RequestRejectedError(message, **kwargs)

    def _secrets(self) -> list[str | None]:
        return [self._token, self.settings.password.get_secret_value()]

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        """One call with the session rules: token (re-login once on 444) or Basic credentials."""
        if self.settings.auth_mode == "basic":
            response = self._send(method, path, body, token=None)
            if response.status_code == 403:
                raise AuthenticationError(
                    f"AIS refused the Basic credentials of {self.settings.username!r}: "
                    f"{_server_message(response)}",
                    system=SYSTEM,
                    status=403,
                    method=method,
                    url=_path(response.url),
                )
            return self._parse(response, method)
        token = self._current_token()
        response = self._send(method, path, body, token=token)
        if response.status_code in (403, 444):
            log.info("JDE AIS answered %s to %s: logging in again", response.status_code, _path(response.url))
            self._invalidate(token)
            token = self._current_token()
            response = self._send(method, path, body, token=token)
            if response.status_code in (403, 444):
                self._invalidate(token)
                raise AuthenticationError(
                    f"a fresh token was refused too (HTTP {response.status_code}: "
                    f"{_server_message(response)}); check that device name "
                    f"{self.settings.device_name!r} and user {self.settings.username!r} may use AIS",
                    system=SYSTEM,
                    status=response.status_code,
                    method=method,
                    url=_path(response.url),
                )
        return self._parse(response, method)

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """An AIS service call (``path`` under ``/jderest``) under the retry policy; returns the JSON."""
        return self._retrying(lambda: self._request(method, path, body))

    def _retrying(self, operation: Callable[[], T]) -> T:
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.metrics.record_retry()
            return operation()

        return self.retry_policy.call(attempt)

    def default_config(self) -> dict[str, Any]:
        """``GET /defaultconfig``: release, defaults, session timeouts and capabilities."""
        response = self._send("GET", "/defaultconfig", None, token=None, credentials=False)
        result: dict[str, Any] = self._parse(response, "GET")
        return result

    # -- data service -------------------------------------------------------------------------------------

    def count(self, table_name: str, query: q.Query | q.Condition | None = None) -> int:
        """How many rows of ``table_name`` match ``query`` (data service COUNT)."""
        spec = table(table_name)
        body = q.data_request(spec, query=query, count=True, date_format=self._query_date_format(query))
        response = self.call("POST", "/v2/dataservice", body)
        if "count" in response:
            return int(response["count"])
        raise RequestRejectedError(
            "the COUNT response has no count", system=SYSTEM, method="POST", url="/jderest/v2/dataservice"
        )

    def _query_date_format(self, query: q.Query | q.Condition | None) -> str:
        return self.date_format if query is not None else self.settings.date_format

    def _read_slot(self) -> threading.BoundedSemaphore:
        """The connection's cap on data-service requests in flight (``max_parallel_reads``)."""
        with self._lock:
            if self._reads_in_flight is None:
                self._reads_in_flight = threading.BoundedSemaphore(self.settings.max_parallel_reads)
            return self._reads_in_flight

    def read_all(self, reads: Iterable[TableRead]) -> Iterator[list[Row]]:
        """Each read's rows, one list per read in the order given, with up to ``max_parallel_reads``
        reads in flight (each still pages in key order, J6). Reads are started a few ahead of the
        one handed out, so memory holds a bounded number of results, not all of them."""
        limit = self.settings.max_parallel_reads
        pending = iter(reads)
        if limit == 1:
            for read in pending:
                yield self.fetch_rows(read)
            return
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="jde-read") as pool:
            window: deque[Future[list[Row]]] = deque()
            for read in pending:
                window.append(pool.submit(self.fetch_rows, read))
                if len(window) >= 2 * limit:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()

    def fetch_rows(self, read: TableRead) -> list[Row]:
        """``iter_rows`` of one read, as a list."""
        return list(
            self.iter_rows(read.table, query=read.query, columns=read.columns, page_size=read.page_size)
        )

    def iter_rows(
        self,
        table_name: str,
        *,
        query: q.Query | q.Condition | None = None,
        columns: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Row]:
        """Every row of ``table_name`` matching ``query``, in primary-key order, as ``{ALIAS: value}``
        (``"AN8"``, not ``"F0101_AN8"``; dates as ``"yyyyMMdd"``, amounts as Decimal).

        Pages of ``page_size`` rows (default: connection extra ``page_size``) are fetched one at a time
        as the caller iterates. ``columns`` limits the columns returned; the key columns are always
        added, since the read resumes after the last key when a next-page call fails.
        """
        spec = table(table_name)
        size = page_size or self.settings.page_size
        wanted = list(dict.fromkeys([*(c.upper() for c in columns), *spec.primary_key])) if columns else None
        order = q.by_primary_key(spec)
        last_key: tuple[Any, ...] | None = None
        seen_any = False
        while True:
            effective = query
            if last_key is not None:
                after = q.key_after(spec, last_key)
                effective = after if query is None else q.all_of(query, after)
            body = q.data_request(
                spec,
                columns=wanted,
                query=effective,
                page_size=size,
                order_by=order,
                date_format=self._query_date_format(effective),
            )
            with self._read_slot():
                page = self.call("POST", "/v2/dataservice", body)
            rows, more, link = _grid(spec, page)
            if last_key is not None and more and not rows:
                raise TransientApiError(
                    f"{spec.name}: resuming after key {last_key} returned no rows but more are announced",
                    system=SYSTEM,
                    method="POST",
                    url="/jderest/v2/dataservice",
                )
            if rows:
                # A read resumes only between pages (J6): the page's last key is the one that counts.
                last_key = _key(spec, rows[-1])
                seen_any = True
            yield from rows
            while more and link is not None:
                try:
                    with self._read_slot():
                        page = self._next_page(link)
                except (TransientApiError, _CursorLost) as error:
                    self.cursor_resumes += 1
                    log.info("%s: next page failed (%s); resuming after key %s", spec.name, error, last_key)
                    break
                rows, more, link = _grid(spec, page)
                if rows:
                    last_key = _key(spec, rows[-1])
                    seen_any = True
                yield from rows
            if not more:
                return
            if not seen_any:
                raise TransientApiError(
                    f"{spec.name}: more rows announced but none returned",
                    system=SYSTEM,
                    method="POST",
                    url="/jderest/v2/dataservice",
                )
            # No next link (stateless call) or it failed: continue after the last key.

    def _next_page(self, link: str) -> Any:
        """Follow a next link once. A token problem invalidates the token and loses the cursor (it
        lived in that session); a 5xx or dropped connection loses it too: the caller resumes by key."""
        token = self._current_token() if self.settings.auth_mode == "token" else None
        response = self._send("POST", link, {}, token=token)
        if response.status_code in (403, 444):
            self._invalidate(token)
            raise _CursorLost(f"HTTP {response.status_code} on next page")
        return self._parse(response, "POST")

    def iter_records(
        self,
        model: type[M],
        *,
        query: q.Query | q.Condition | None = None,
        columns: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[M]:
        """``iter_rows`` of ``model.table``, each row validated into ``model``."""
        for row in self.iter_rows(model.table, query=query, columns=columns, page_size=page_size):
            yield model.model_validate(row)

    # -- orchestrations -----------------------------------------------------------------------------------

    def run_orchestration(
        self, name: str, inputs: Mapping[str, Any], *, record: str | None = None
    ) -> dict[str, Any]:
        """Run orchestration ``name`` with Generic ``inputs``; its outputs (``jde__*`` included).

        A 500 that carries the step's ``userDefinedErrorText`` is a business error (not retried);
        other 5xx and dropped connections are retried. Callers that must not create a record twice
        rely on the orchestration refusing a duplicate reference (see ``create_customer_invoice``).
        """
        what = record or f"{name} inputs"
        outputs = self._retrying(lambda: self._orchestration_attempt(name, inputs, what))
        return _checked_outputs(name, what, outputs)

    def post_once(self, name: str, inputs: Mapping[str, Any], *, record: str) -> dict[str, Any]:
        """Run an orchestration that creates a document (an invoice, a receipt) once: never retried.

        Raises ``JdeBusinessError`` when JDE refused it (nothing was written), ``OutcomeUnknownError``
        when the request left and the answer was lost or was a server error (it may have been
        written: confirm by a lookup before sending it again), ``TransientApiError`` only when
        nothing reached the server, ``AuthenticationError`` for credentials. A 444 is safe to repeat
        after a new log-in (the server refused the token before running anything).
        """
        try:
            outputs = self._orchestration_attempt(name, inputs, record)
        except OutcomeUnknownError:
            raise
        except TransientApiError as error:
            if error.status is not None and error.status >= 500:
                raise OutcomeUnknownError(
                    f"{name} for {record}: HTTP {error.status} without a business error: it may have been "
                    "written",
                    system=SYSTEM,
                    status=error.status,
                    method="POST",
                    url=f"/jderest/v3/orchestrator/{name}",
                ) from None
            raise
        return _checked_outputs(name, record, outputs)

    def _orchestration_attempt(self, name: str, inputs: Mapping[str, Any], record: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._request("POST", f"/v3/orchestrator/{name}", inputs)
            return result
        except TransientApiError as error:
            body = error.body if isinstance(error.body, dict) else {}
            if body.get("userDefinedErrorText"):
                raise _business_error(name, record, body, error) from None
            raise

    def create_customer_invoice(
        self,
        invoice: orch.CustomerInvoiceInput,
        *,
        on_duplicate: Literal["raise", "return_existing"] = "return_existing",
    ) -> orch.CustomerInvoiceResult:
        """Post an A/R invoice (F03B11 + F0911). If its ``external_reference`` is already posted for
        the company, return that invoice with ``created=False`` (or raise ``JdeDuplicateError``)."""
        try:
            outputs = self.run_orchestration(
                orch.CREATE_CUSTOMER_INVOICE, invoice.to_inputs(self.date_format), record=invoice.record()
            )
        except JdeDuplicateError:
            if on_duplicate == "raise":
                raise
            existing = self.find_invoices_by_reference(invoice.external_reference, company=invoice.company)
            if not existing:
                raise
            return _invoice_result(existing)
        return orch.CustomerInvoiceResult.from_outputs(outputs, self.date_format)

    def create_receipt(
        self,
        receipt: orch.ReceiptInput,
        *,
        on_duplicate: Literal["raise", "return_existing"] = "return_existing",
    ) -> orch.ReceiptResult:
        """Post a receipt (F03B13) applied to invoices (F03B14). If its ``receipt_number`` is already
        posted for the customer, return that receipt with ``created=False`` (or raise)."""
        try:
            outputs = self.run_orchestration(
                orch.CREATE_RECEIPT, receipt.to_inputs(self.date_format), record=receipt.record()
            )
        except JdeDuplicateError:
            if on_duplicate == "raise":
                raise
            existing = self.find_receipts_by_number(receipt.receipt_number, customer=receipt.customer_number)
            if not existing:
                raise
            header = existing[0]
            details = list(self.iter_records(ReceiptDetailRow, query=q.eq("F03B14.PYID", header.payment_id)))
            return orch.ReceiptResult(
                payment_id=header.payment_id,
                receipt_number=header.receipt_number,
                applied_amount=header.receipt_amount - header.unapplied_amount,
                unapplied_amount=header.unapplied_amount,
                batch_number=header.batch_number,
                applications=[
                    orch.AppliedInvoice(
                        document_number=d.document_number,
                        document_type=d.document_type,
                        document_company=d.document_company,
                        pay_item=d.pay_item,
                        amount_applied=d.amount_applied,
                    )
                    for d in details
                ],
                created=False,
            )
        return orch.ReceiptResult.from_outputs(outputs)

    def upsert_item(self, item: orch.ItemInput) -> orch.ItemResult:
        """Create or update an item (F4101) by its 2nd item number; naturally idempotent."""
        outputs = self.run_orchestration(orch.UPSERT_ITEM, item.to_inputs(), record=item.record())
        return orch.ItemResult.from_outputs(outputs)

    def post_document_once(
        self, name: str, document: orch.CustomerInvoiceInput | orch.CreditMemoInput | orch.VoucherInput
    ) -> orch.DocumentResult:
        """Post an invoice, a credit memo or a voucher through its orchestration once (``post_once``:
        never retried; a lost answer is ``OutcomeUnknownError``)."""
        outputs = self.post_once(name, document.to_inputs(self.date_format), record=document.record())
        return orch.DocumentResult.from_outputs(outputs)

    def post_receipt_once(self, receipt: orch.ReceiptInput) -> orch.ReceiptResult:
        """Post a receipt through ``ORCH_55_CreateReceipt`` once (``post_once``: never retried; a lost
        answer is ``OutcomeUnknownError``: look it up with ``find_receipts`` before sending it again)."""
        outputs = self.post_once(
            orch.CREATE_RECEIPT, receipt.to_inputs(self.date_format), record=receipt.record()
        )
        return orch.ReceiptResult.from_outputs(outputs)

    def void_receipt(self, void: orch.VoidReceiptInput) -> orch.VoidReceiptResult:
        """Void a receipt by payment id. Repeating it is safe: a receipt voided already is refused with
        5551 (``JdeBusinessError``), nothing written twice."""
        outputs = self.run_orchestration(
            orch.VOID_RECEIPT, void.to_inputs(self.date_format), record=void.record()
        )
        return orch.VoidReceiptResult.from_outputs(outputs)

    def find_receipts(
        self, receipt_numbers: Sequence[str], *, customers: Sequence[int]
    ) -> dict[str, list[ReceiptHeaderRow]]:
        """Receipts (F03B13) by receipt number (CKNU) among ``customers``: the lookup after a lost answer."""
        found: dict[str, list[ReceiptHeaderRow]] = {number: [] for number in receipt_numbers}
        for chunk in range(0, len(receipt_numbers), 100):
            query = q.all_of(
                q.in_list("F03B13.CKNU", list(receipt_numbers[chunk : chunk + 100])),
                q.in_list("F03B13.AN8", sorted(set(customers))),
            )
            for row in self.iter_records(ReceiptHeaderRow, query=query):
                found.setdefault(row.receipt_number.strip(), []).append(row)
        return found

    def find_documents(
        self,
        references: Sequence[str],
        *,
        document_type: str = "RI",
        customers: Sequence[int] | None = None,
    ) -> dict[str, list[CustomerLedgerRow]]:
        """Customer ledger pay items (F03B11) of ``document_type`` whose VR01 is one of ``references``,
        by reference (a lookup before posting, or after an answer was lost)."""
        found: dict[str, list[CustomerLedgerRow]] = {reference: [] for reference in references}
        conditions: list[q.Condition | q.Query] = [q.eq("F03B11.DCT", document_type)]
        if customers:
            conditions.append(q.in_list("F03B11.AN8", sorted(set(customers))))
        for chunk in range(0, len(references), 100):
            query = q.all_of(q.in_list("F03B11.VR01", list(references[chunk : chunk + 100])), *conditions)
            for row in self.iter_records(CustomerLedgerRow, query=query):
                found.setdefault(row.reference, []).append(row)
        return found

    def find_vouchers(
        self, invoice_numbers: Sequence[str], *, suppliers: Sequence[int]
    ) -> dict[str, list[VoucherRow]]:
        """Supplier vouchers (F0411) by supplier invoice number (VINV)."""
        found: dict[str, list[VoucherRow]] = {number: [] for number in invoice_numbers}
        for chunk in range(0, len(invoice_numbers), 100):
            query = q.all_of(
                q.in_list("F0411.VINV", list(invoice_numbers[chunk : chunk + 100])),
                q.in_list("F0411.AN8", sorted(set(suppliers))),
            )
            for row in self.iter_records(VoucherRow, query=query):
                found.setdefault(row.supplier_invoice_number, []).append(row)
        return found

    def find_invoices_by_reference(
        self, reference: str, *, company: str | None = None, customer: int | None = None
    ) -> list[CustomerLedgerRow]:
        """Pay items of invoices (RI) whose F03B11.VR01 is ``reference``: check before posting."""
        conditions: list[q.Condition] = [q.eq("F03B11.VR01", reference), q.eq("F03B11.DCT", "RI")]
        if company:
            conditions.append(q.eq("F03B11.KCO", company.zfill(5)))
        if customer is not None:
            conditions.append(q.eq("F03B11.AN8", customer))
        return list(self.iter_records(CustomerLedgerRow, query=q.all_of(*conditions)))

    def find_receipts_by_number(self, receipt_number: str, *, customer: int) -> list[ReceiptHeaderRow]:
        query = q.all_of(q.eq("F03B13.CKNU", receipt_number), q.eq("F03B13.AN8", customer))
        return list(self.iter_records(ReceiptHeaderRow, query=query))


# -- helpers ----------------------------------------------------------------------------------------------


def _checked_outputs(name: str, what: str, outputs: dict[str, Any]) -> dict[str, Any]:
    """The outputs of a run that succeeded; a ``jde__status`` other than SUCCESS, or errors inside the
    raw step output, are a business error."""
    status = str(outputs.get("jde__status", "SUCCESS")).upper()
    nested = _nested_form_errors(outputs)
    if status not in ("SUCCESS", "") or nested:
        text = nested or str(outputs.get("jde__simpleMessage") or status)
        raise JdeBusinessError(
            f"{name} did not succeed for {what}: {text}",
            orchestration=name,
            record=what,
            field=None,
            code=None,
            title=status,
            text=text,
            system=SYSTEM,
            status=200,
            method="POST",
            url=f"/jderest/v3/orchestrator/{name}",
        )
    return outputs


def _server_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "no message")[:300]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("errorText") or body)[:500]
    return str(body)[:300]


def _safe_body(response: requests.Response, secrets: Sequence[str | None]) -> Any:
    try:
        body = response.json()
    except ValueError:
        return redact(response.text[:500], secrets)
    if isinstance(body, dict):
        return {k: redact(v, secrets) if isinstance(v, str) else v for k, v in body.items()}
    return body


def _grid(spec: TableSpec, response: Any) -> tuple[list[Row], bool, str | None]:
    form = response.get(f"fs_DATABROWSE_{spec.name}") if isinstance(response, dict) else None
    if not isinstance(form, dict):
        raise RequestRejectedError(
            f"the data service answered without fs_DATABROWSE_{spec.name}",
            system=SYSTEM,
            method="POST",
            url="/jderest/v2/dataservice",
        )
    if form.get("errors"):
        raise RequestRejectedError(
            f"{spec.name}: the data service reported errors: {form['errors']}",
            system=SYSTEM,
            method="POST",
            url="/jderest/v2/dataservice",
        )
    grid = (form.get("data") or {}).get("gridData") or {}
    prefix_length = len(spec.name) + 1
    aliases: dict[str, str] = {}
    rows = []
    for row in grid.get("rowset") or ():
        # Rows of a page share their keys: strip the "F0101_" prefix once per key, not per value.
        for key in row.keys() - aliases.keys():
            aliases[key] = key[prefix_length:]
        rows.append(dict(zip(map(aliases.__getitem__, row), row.values(), strict=True)))
    more = bool((grid.get("summary") or {}).get("moreRecords"))
    link = next(
        (entry.get("href") for entry in response.get("links") or [] if entry.get("rel") == "next"),
        None,
    )
    return rows, more, link


def _key(spec: TableSpec, row: Row) -> tuple[Any, ...]:
    values: list[Any] = []
    for column in spec.key_columns:
        value = row.get(column.alias)
        if column.kind == "date":
            day = parse_ais_date(value)
            if day is None:
                raise RequestRejectedError(
                    f"{spec.name}: key column {column.alias} is blank; cannot resume after this row",
                    system=SYSTEM,
                )
            values.append(day)
        elif column.kind == "int":
            values.append(int(str(value)))
        elif column.kind == "decimal":
            values.append(value if isinstance(value, Decimal) else Decimal(str(value)))
        else:
            values.append(str(value).rstrip())
    return tuple(values)


def _business_error(name: str, record: str, body: dict[str, Any], error: RemoteApiError) -> JdeBusinessError:
    detail = str(body.get("userDefinedErrorText") or "")
    field, separator, text = detail.partition(": ")
    if not separator:
        field, text = "", detail
    code, _, title = str(body.get("errorText") or "").partition(" ")
    duplicate = code in orch.DUPLICATE_CODES
    cls = JdeDuplicateError if duplicate else JdeBusinessError
    where = f" field {field}:" if field else ""
    return cls(
        f"JDE refused {record} ({name}):{where} {text} [JDE error {code} {title}]".strip(),
        orchestration=name,
        record=record,
        field=field or None,
        code=code or None,
        title=title or None,
        text=text,
        system=SYSTEM,
        status=error.status,
        method="POST",
        url=f"/jderest/v3/orchestrator/{name}",
        body=body,
    )


def _nested_form_errors(outputs: Mapping[str, Any]) -> str:
    """Errors of raw form-service step output an orchestration may return (``ServiceRequestN``)."""
    messages = []
    for key, value in outputs.items():
        if not (key.startswith("ServiceRequest") and isinstance(value, dict)):
            continue
        for form in value.values():
            if isinstance(form, dict):
                for entry in form.get("errors") or []:
                    messages.append(
                        f"{entry.get('CODE', '')} {entry.get('TITLE', '')} {entry.get('DESC', '')}".strip()
                    )
    return "; ".join(messages)


def _invoice_result(items: Sequence[CustomerLedgerRow]) -> orch.CustomerInvoiceResult:
    first = min(items, key=lambda row: row.key())
    same_document = [i for i in items if i.key()[:3] == first.key()[:3]]
    return orch.CustomerInvoiceResult(
        document_number=first.document_number,
        document_type=first.document_type,
        document_company=first.document_company,
        external_reference=first.reference,
        gross_amount=sum((i.gross_amount for i in same_document), Decimal(0)),
        pay_item_count=len(same_document),
        batch_number=first.batch_number or None,
        due_date=first.due_date,
        created=False,
    )


__all__ = ["MODELS", "JdeAisHook", "JdeAisSettings", "JdeBusinessError", "JdeDuplicateError", "TableRead"]
