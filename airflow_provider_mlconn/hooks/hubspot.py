"""HubSpotHook: the HubSpot CRM API for the sync, paced under the portal's rate limits.

Writes go through ``batch/upsert`` on a unique property that holds the JDE key (naturally idempotent,
so retries cannot duplicate), in chunks of 100 sent concurrently from a bounded pool, with one outcome
per record. Reads page lists to the end and walk search windows in slices that never pass HubSpot's
10,000-result cap. Every call is throttled (shared per portal and token), retried when retrying can
help, and counted in ``metrics``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from airflow.sdk import BaseHook

from airflow_provider_mlconn import __version__
from airflow_provider_mlconn.http import (
    AuthenticationError,
    QuotaExhaustedError,
    RateLimitedError,
    RequestMetrics,
    RequestRejectedError,
    RetryPolicy,
    TransientApiError,
    connection_name,
    mask_secrets,
    naming_connection,
    network_failure,
    new_session,
    parse_retry_after,
)
from airflow_provider_mlconn.hubspot import connection as conn_spec
from airflow_provider_mlconn.hubspot.models import (
    AssociatedRecord,
    AssociationLink,
    AssociationOutcome,
    HubSpotRecord,
    RecordError,
    RecordOutcome,
    WriteStatus,
)
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.hubspot.properties import PropertyGroupSpec, PropertyOption, PropertySpec
from airflow_provider_mlconn.hubspot.search import PagingCursorError, epoch_ms, iter_window, next_cursor
from airflow_provider_mlconn.hubspot.throttle import PortalThrottles, RollingWindowThrottle, throttles_for

log = logging.getLogger(__name__)

SYSTEM = "HubSpot"
OBJECTS = "/crm/v3/objects"
PROPERTIES = "/crm/v3/properties"
ASSOCIATIONS = "/crm/v4/associations"
BATCH_SIZE = 100  # HubSpot's limit for object batch endpoints (hubspot.md §2.3)
ASSOCIATION_BATCH_SIZE = 1000  # batch read allows 1,000 and batch create 2,000 inputs (hubspot.md §4.1)
LIST_PAGE_SIZE = 100
DEFAULT_SEARCH_RATE_PER_S = 4  # the portal allows 5 per second, shared by every app of the account
DEFAULT_RETRY_POLICY = RetryPolicy(max_attempts=8, initial_wait=1.0, max_wait=10.0)
TEST_RETRY_POLICY = RetryPolicy(max_attempts=2, initial_wait=0.5, max_wait=1.0)  # the UI's Test button

T = TypeVar("T")
Records = Mapping[str, Mapping[str, Any]] | Iterable[tuple[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class HubSpotSettings:
    """What the connection says; the token is never logged or shown."""

    base_url: str
    token: str
    rate_limit_per_10s: int
    verify_ssl: bool
    timeout: float
    #: How far behind now a search window must end; None: the hook's own default (60 s).
    search_lag_seconds: float | None = None
    #: Who shares the rate budget: ``machine`` (every process of this machine), ``process``, or
    #: ``redis`` (every machine reaching the Redis of connection ``rate_budget_redis_conn_id``).
    rate_budget: str = conn_spec.DEFAULT_RATE_BUDGET
    rate_budget_redis_conn_id: str = conn_spec.DEFAULT_REDIS_CONN_ID

    def __repr__(self) -> str:
        return f"HubSpotSettings(base_url={self.base_url!r}, rate_limit_per_10s={self.rate_limit_per_10s})"


@dataclass(frozen=True)
class _BatchFailure:
    """A whole batch refused (400/409): maybe one poison row, maybe the request itself."""

    error: RequestRejectedError

    def record_error(self) -> RecordError:
        body = self.error.body if isinstance(self.error.body, dict) else {"message": self.error.message}
        return RecordError.from_body(body, status=self.error.status)


class _Budget:
    """How many extra requests bisection may still spend in one call (shared by the pool's threads)."""

    def __init__(self, requests_left: int) -> None:
        self._left = requests_left
        self._lock = threading.Lock()

    def take(self, count: int) -> bool:
        with self._lock:
            if self._left < count:
                return False
            self._left -= count
            return True


class HubSpotHook(BaseHook):
    """A HubSpot portal reached with a private app token (or any bearer secret: service key, OAuth token).

    :param hubspot_conn_id: connection of type ``hubspot``: password = token; host optional (default
        ``https://api.hubapi.com``, include the scheme, e.g. ``http://127.0.0.1:7078`` for the sandbox);
        extra ``rate_limit_per_10s``, ``verify_ssl``, ``timeout``.
    :param max_workers: concurrent batch requests (a bounded pool; the throttle paces them).
    :param search_rate_limit_per_s: search requests per second this process allows itself.
    :param search_safety_lag: how far behind now a search window must end (HubSpot's index lags writes).
    :param retry_policy: backoff for 429/5xx/connection errors; other 4xx are never retried.
    :param bisect_budget: extra requests one write call may spend splitting refused batches to find
        the records at fault; past it, the rest of a refused batch fails with the batch's error.
    """

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = conn_spec.DEFAULT_CONN_ID
    conn_type = conn_spec.CONN_TYPE
    hook_name = "HubSpot"

    def __init__(
        self,
        hubspot_conn_id: str = conn_spec.DEFAULT_CONN_ID,
        *,
        max_workers: int = 8,
        search_rate_limit_per_s: int = DEFAULT_SEARCH_RATE_PER_S,
        search_safety_lag: timedelta = timedelta(seconds=60),
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        bisect_budget: int = 300,
    ) -> None:
        super().__init__()
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.hubspot_conn_id = hubspot_conn_id
        self.max_workers = max_workers
        self.search_rate_limit_per_s = search_rate_limit_per_s
        self.search_safety_lag = search_safety_lag
        self.retry_policy = retry_policy
        self.bisect_budget = bisect_budget
        self.metrics = RequestMetrics(system=SYSTEM)
        self._property_groups: set[tuple[ObjectType, str]] = set()

    # ------------------------------------------------------------------------ connection
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": list(conn_spec.UI_HIDDEN_FIELDS),
            "relabeling": dict(conn_spec.UI_RELABELING),
            "placeholders": dict(conn_spec.UI_PLACEHOLDERS),
        }

    @cached_property
    def settings(self) -> HubSpotSettings:
        connection = self.get_connection(self.hubspot_conn_id)
        token = (connection.password or "").strip()
        if not token:
            raise AuthenticationError(
                f"connection '{connection_name(self.hubspot_conn_id)}' has no password: put the private "
                "app token (pat-...) there",
                system=SYSTEM,
            )
        mask_secrets(token)
        extra = connection.extra_dejson or {}
        return HubSpotSettings(
            base_url=_base_url(connection.host, connection.port),
            token=token,
            rate_limit_per_10s=int(extra.get("rate_limit_per_10s") or conn_spec.DEFAULT_RATE_LIMIT_PER_10S),
            verify_ssl=_as_bool(extra.get("verify_ssl", True)),
            timeout=float(extra.get("timeout") or conn_spec.DEFAULT_TIMEOUT_S),
            search_lag_seconds=None
            if extra.get("search_lag_seconds") in (None, "")
            else float(extra["search_lag_seconds"]),
            rate_budget=_rate_budget(extra.get("rate_budget"), self.hubspot_conn_id),
            rate_budget_redis_conn_id=str(
                extra.get("rate_budget_redis_conn_id") or conn_spec.DEFAULT_REDIS_CONN_ID
            ).strip(),
        )

    @cached_property
    def session(self) -> requests.Session:
        settings = self.settings
        session = new_session(
            pool_size=self.max_workers + 2,
            verify_ssl=settings.verify_ssl,
            user_agent=f"airflow-provider-mlconn/{__version__}",
        )
        session.headers["Authorization"] = f"Bearer {settings.token}"
        session.headers["Accept"] = "application/json"
        return session

    @cached_property
    def throttles(self) -> PortalThrottles:
        """This portal's throttles, shared with every other hook on the same portal and token: of this
        machine (``rate_budget`` ``machine``, the default), of every machine reaching one Redis
        (``redis``) or of this process (``process``)."""
        settings = self.settings
        return throttles_for(
            settings.base_url,
            settings.token,
            per_10s=settings.rate_limit_per_10s,
            search_per_s=self.search_rate_limit_per_s,
            budget=settings.rate_budget,
            redis_conn_id=settings.rate_budget_redis_conn_id,
        )

    def get_conn(self) -> requests.Session:
        return self.session

    def __enter__(self) -> HubSpotHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    def test_connection(self) -> tuple[bool, str]:
        """The cheapest authenticated call: one contact id."""
        try:
            self.request(
                "GET",
                f"{OBJECTS}/contacts",
                params={"limit": 1, "properties": "hs_object_id"},
                retry_policy=TEST_RETRY_POLICY,
            )
        except Exception as error:  # the UI shows the message; error messages never hold the token
            return False, naming_connection(str(error), connection_name(self.hubspot_conn_id))
        limit = self.throttles.general.limit
        return True, f"Connected to HubSpot at {self.settings.base_url} (rate limit {limit} per 10 s)."

    # ------------------------------------------------------------------------- transport
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry_policy: RetryPolicy | None = None,
    ) -> Any:
        """One API call, throttled and retried; returns the parsed body (None for 204).

        Raises ``AuthenticationError`` (401), ``QuotaExhaustedError`` (429 DAILY), ``RequestRejectedError``
        (other 4xx, with HubSpot's error body in ``.body``) or, once retries are spent, ``TransientApiError``.
        """
        is_search = method.upper() == "POST" and path.endswith("/search")
        throttle = self.throttles.search if is_search else self.throttles.general
        attempts = 0
        policy = retry_policy or self.retry_policy

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.metrics.record_retry()
            return self._send(
                method=method.upper(),
                path=path,
                params=params,
                body=json,
                throttle=throttle,
                attempt=attempts,
                observe=not is_search,
                policy=policy,
            )

        return policy.call(attempt)

    def _send(
        self,
        *,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        throttle: RollingWindowThrottle,
        attempt: int,
        observe: bool,
        policy: RetryPolicy,
    ) -> Any:
        url = self.settings.base_url + path
        with throttle.slot() as sent_at:
            started = time.monotonic()
            try:
                response = self.session.request(
                    method, url, params=params, json=body, timeout=self.settings.timeout
                )
            except requests.RequestException as error:
                self.metrics.record(method, path, 0, time.monotonic() - started)
                raise TransientApiError(
                    network_failure(error, url), system=SYSTEM, method=method, url=path
                ) from None
            self.metrics.record(method, path, response.status_code, time.monotonic() - started)
            if observe:
                throttle.observe(response.headers, sent_at)
        return self._interpret(
            response, method=method, path=path, throttle=throttle, wait=policy.wait_seconds(attempt)
        )

    def _interpret(
        self,
        response: requests.Response,
        *,
        method: str,
        path: str,
        throttle: RollingWindowThrottle,
        wait: float,
    ) -> Any:
        """The parsed body of a 2xx; otherwise the error class that says whether a retry can help.
        ``wait`` is the backoff a 429 without ``Retry-After`` imposes on every thread."""
        status = response.status_code
        if 200 <= status < 300:
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise TransientApiError(
                    f"answered {status} with a body that is not JSON",
                    system=SYSTEM,
                    status=status,
                    method=method,
                    url=path,
                ) from None
        body = _error_body(response)
        message = str(body.get("message") or response.reason or "no message")
        if body.get("category"):
            message = f"{message} [{body['category']}]"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        where: dict[str, Any] = {
            "system": SYSTEM,
            "status": status,
            "method": method,
            "url": path,
            "body": body,
        }
        if status == 401:
            raise AuthenticationError(
                f"the token of connection '{connection_name(self.hubspot_conn_id)}' was refused: "
                f"{message}. Check that its password holds a valid private app token (or service key) "
                "for this portal",
                **where,
            )
        if status == 429:
            policy = body.get("policyName")
            if policy == "DAILY":
                raise QuotaExhaustedError(
                    f"the portal's daily API limit is used up ({message}); it resets at midnight in the "
                    "account's time zone",
                    **where,
                )
            if retry_after is not None:
                wait = retry_after
            if policy == "SECONDLY":
                wait = max(wait, 1.0)
            throttle.pause(wait)  # every thread holds back, not only the one that was refused
            raise RateLimitedError(message, policy_name=policy, retry_after=wait, **where)
        if status == 423:  # a high-volume sync lock: lasts about 2 s (hubspot.md §1)
            raise TransientApiError(message, retry_after=max(2.0, retry_after or 0.0), **where)
        if status == 477 or status >= 500:
            raise TransientApiError(message, retry_after=retry_after, **where)
        raise RequestRejectedError(message, **where)

    def _in_pool(self, tasks: Sequence[Callable[[], T]]) -> list[T]:
        """Run ``tasks`` on the bounded pool; the first fatal error cancels what has not started."""
        _ = self.get_conn(), self.throttles  # built once here, before threads race for them
        if len(tasks) <= 1 or self.max_workers == 1:
            return [task() for task in tasks]
        with ThreadPoolExecutor(
            max_workers=min(self.max_workers, len(tasks)), thread_name_prefix="hubspot"
        ) as pool:
            futures: list[Future[T]] = [pool.submit(task) for task in tasks]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    # ---------------------------------------------------------------------------- writes
    def upsert_records(
        self,
        object_type: ObjectType | str,
        records: Records,
        *,
        id_property: str,
        isolate_failures: bool = True,
    ) -> dict[str, RecordOutcome]:
        """Create or update records keyed by the value of ``id_property`` (a ``hasUniqueValue`` property,
        or ``email`` for contacts); returns one outcome per distinct key, in input order.

        Values may be text, numbers, booleans, ``Decimal``, dates and aware datetimes; ``None`` clears the
        property. Records that share a key are merged first (later values win). A record HubSpot refuses fails
        alone: its batch is split until the refused record is isolated. With ``isolate_failures`` False a
        refused batch is not split: every record of it fails with the batch's error (a caller that can
        resolve the cause itself, such as an e-mail conflict, saves the splitting requests). Batches that
        still fail after retries come back as failed outcomes with ``error.retriable``; a refused token or
        a used-up daily limit raises. No request is sent for an empty input.
        """
        kind = ObjectType.parse(object_type)
        merged = _merge_by_key(records, lowercase=id_property == "email")
        if not merged:
            return {}
        items = list(merged.items())
        chunks = [items[i : i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]
        budget = _Budget(self.bisect_budget)
        path = f"{OBJECTS}/{kind.value}/batch/upsert"

        if not isolate_failures:
            budget = _Budget(0)

        def write(chunk: list[tuple[str, dict[str, Any]]]) -> Callable[[], dict[str, RecordOutcome]]:
            return lambda: self._write_group(path, id_property, chunk, budget)

        outcomes: dict[str, RecordOutcome] = {}
        for part in self._in_pool([write(chunk) for chunk in chunks]):
            outcomes.update(part)
        return {key: outcomes[key] for key, _ in items}

    def update_records(self, object_type: ObjectType | str, records: Records) -> dict[str, RecordOutcome]:
        """Update existing records by their HubSpot id (``batch/update``, 100 per call); one outcome per id.

        For records the caller found by other means (a contact that owns an e-mail); a record that
        does not exist fails alone (HubSpot answers 207 with ``OBJECT_NOT_FOUND``).
        """
        kind = ObjectType.parse(object_type)
        merged = _merge_by_key(records, lowercase=False)
        items = list(merged.items())
        chunks = [items[i : i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]
        path = f"{OBJECTS}/{kind.value}/batch/update"

        def update(chunk: list[tuple[str, dict[str, Any]]]) -> Callable[[], dict[str, RecordOutcome]]:
            def run() -> dict[str, RecordOutcome]:
                inputs = [
                    {"id": record_id, "objectWriteTraceId": record_id, "properties": properties}
                    for record_id, properties in chunk
                ]
                try:
                    body = self.request("POST", path, json={"inputs": inputs})
                except (RequestRejectedError, TransientApiError) as error:
                    body_error = error.body if isinstance(error.body, dict) else {"message": error.message}
                    failed = RecordError.from_body(body_error, status=error.status, retriable=error.retriable)
                    return {
                        k: RecordOutcome(key=k, status=WriteStatus.FAILED, error=failed) for k, _ in chunk
                    }
                return _update_outcomes(body or {}, [k for k, _ in chunk])

            return run

        outcomes: dict[str, RecordOutcome] = {}
        for part in self._in_pool([update(chunk) for chunk in chunks]):
            outcomes.update(part)
        return {key: outcomes[key] for key, _ in items}

    def _write_group(
        self, path: str, id_property: str, items: list[tuple[str, dict[str, Any]]], budget: _Budget
    ) -> dict[str, RecordOutcome]:
        result = self._try_upsert(path, id_property, items)
        if isinstance(result, dict):
            return result
        return self._bisect(path, id_property, items, result, budget)

    def _bisect(
        self,
        path: str,
        id_property: str,
        items: list[tuple[str, dict[str, Any]]],
        failure: _BatchFailure,
        budget: _Budget,
    ) -> dict[str, RecordOutcome]:
        if len(items) == 1 or not budget.take(2):
            error = failure.record_error()
            return {key: RecordOutcome(key=key, status=WriteStatus.FAILED, error=error) for key, _ in items}
        middle = len(items) // 2
        outcomes: dict[str, RecordOutcome] = {}
        for half in (items[:middle], items[middle:]):
            result = self._try_upsert(path, id_property, half)
            outcomes.update(
                result if isinstance(result, dict) else self._bisect(path, id_property, half, result, budget)
            )
        return outcomes

    def _try_upsert(
        self, path: str, id_property: str, items: list[tuple[str, dict[str, Any]]]
    ) -> dict[str, RecordOutcome] | _BatchFailure:
        inputs = [
            {"idProperty": id_property, "id": key, "objectWriteTraceId": key, "properties": properties}
            for key, properties in items
        ]
        try:
            body = self.request("POST", path, json={"inputs": inputs})
        except RequestRejectedError as error:
            if error.status in (400, 409):
                return _BatchFailure(error)
            raise
        except (AuthenticationError, QuotaExhaustedError):
            raise
        except TransientApiError as error:
            failed = RecordError(message=str(error), status=error.status, retriable=True)
            return {key: RecordOutcome(key=key, status=WriteStatus.FAILED, error=failed) for key, _ in items}
        return _upsert_outcomes(body or {}, [key for key, _ in items], id_property)

    # ----------------------------------------------------------------------------- reads
    def get_record(
        self,
        object_type: ObjectType | str,
        record_id: str,
        *,
        properties: Sequence[str] = (),
        associations: Sequence[ObjectType | str] = (),
        id_property: str | None = None,
    ) -> HubSpotRecord | None:
        """One record by id (or by a unique property's value); None if there is none."""
        kind = ObjectType.parse(object_type)
        params = _read_params(properties, associations)
        if id_property:
            params["idProperty"] = id_property
        try:
            body = self.request("GET", f"{OBJECTS}/{kind.value}/{quote(record_id, safe='')}", params=params)
        except RequestRejectedError as error:
            if error.status == 404:
                return None
            raise
        return HubSpotRecord.from_api(body)

    def read_records(
        self,
        object_type: ObjectType | str,
        ids: Iterable[str],
        *,
        properties: Sequence[str] = (),
        id_property: str | None = None,
    ) -> dict[str, HubSpotRecord]:
        """Records by id (or unique property value), 100 per call; ids that do not exist are left out."""
        kind = ObjectType.parse(object_type)
        wanted = list(dict.fromkeys(str(i) for i in ids))
        chunks = [wanted[i : i + BATCH_SIZE] for i in range(0, len(wanted), BATCH_SIZE)]
        path = f"{OBJECTS}/{kind.value}/batch/read"
        names = list(dict.fromkeys([*properties, *([id_property] if id_property else [])]))

        def read(chunk: list[str]) -> Callable[[], dict[str, HubSpotRecord]]:
            def run() -> dict[str, HubSpotRecord]:
                body: dict[str, Any] = {
                    "inputs": [{"id": i} for i in chunk],
                    "properties": names,
                    "propertiesWithHistory": [],
                }
                if id_property:
                    body["idProperty"] = id_property
                answer = self.request("POST", path, json=body) or {}
                found = {}
                for raw in answer.get("results", []):
                    record = HubSpotRecord.from_api(raw)
                    key = record.properties.get(id_property) if id_property else record.id
                    found[str(key)] = record
                return found

            return run

        records: dict[str, HubSpotRecord] = {}
        for part in self._in_pool([read(chunk) for chunk in chunks]):
            records.update(part)
        return records

    def iter_records(
        self,
        object_type: ObjectType | str,
        *,
        properties: Sequence[str] = (),
        associations: Sequence[ObjectType | str] = (),
        archived: bool = False,
    ) -> Iterator[HubSpotRecord]:
        """Every record of a type, paging the list endpoint to its end (100 per call)."""
        kind = ObjectType.parse(object_type)
        params: dict[str, Any] = {"limit": LIST_PAGE_SIZE, **_read_params(properties, associations)}
        if archived:
            params["archived"] = "true"
        seen: set[str] = set()
        while True:
            page = self.request("GET", f"{OBJECTS}/{kind.value}", params=params) or {}
            for raw in page.get("results", []):
                yield HubSpotRecord.from_api(raw)
            cursor = next_cursor(page)
            if not cursor:
                return
            if cursor in seen:
                raise PagingCursorError(f"list paging cursor {cursor!r} for {kind.value} came back twice")
            seen.add(cursor)
            params["after"] = cursor

    def search_horizon(self, now: datetime | None = None) -> datetime:
        """The latest instant a search window may end at: search shows writes only after a lag
        (the connection's extra ``search_lag_seconds``, else the hook's ``search_safety_lag``)."""
        current = now or datetime.now(timezone.utc)
        return current - self.search_lag

    @property
    def search_lag(self) -> timedelta:
        configured = self.settings.search_lag_seconds
        return self.search_safety_lag if configured is None else timedelta(seconds=configured)

    def iter_changed_records(
        self,
        object_type: ObjectType | str,
        *,
        start: datetime,
        end: datetime,
        properties: Sequence[str] = (),
        extra_filters: Sequence[Mapping[str, Any]] = (),
    ) -> Iterator[HubSpotRecord]:
        """Each record whose last-modified instant lies in ``[start, end)``, once, in id order.

        ``end`` must not be later than ``search_horizon()``; ``extra_filters`` (up to 3 search filters)
        narrow the window further, e.g. ``{"propertyName": "hs_invoice_status", "operator": "EQ",
        "value": "open"}``.
        """
        kind = ObjectType.parse(object_type)
        horizon = self.search_horizon()
        if end > horizon:
            raise ValueError(
                f"the window ends at {end.isoformat()}, after the search horizon {horizon.isoformat()} "
                f"(now minus {self.search_lag}): records changed since may not be searchable yet"
            )
        path = f"{OBJECTS}/{kind.value}/search"
        for raw in iter_window(
            lambda body: self.request("POST", path, json=body) or {},
            kind,
            start_ms=epoch_ms(start),
            end_ms=epoch_ms(end),
            properties=properties,
            extra_filters=extra_filters,
        ):
            yield HubSpotRecord.from_api(raw)

    # ---------------------------------------------------------------------- associations
    def associate(
        self,
        from_type: ObjectType | str,
        to_type: ObjectType | str,
        links: Iterable[AssociationLink],
    ) -> list[AssociationOutcome]:
        """Create associations (v4 batch create), one outcome per distinct pair.

        A labelled create replaces the pair's labels: name every type the pair should have. A pair whose
        record does not exist fails alone; a type of the wrong direction is a ``ValueError`` before sending.
        """
        source, target = ObjectType.parse(from_type), ObjectType.parse(to_type)
        pairs: dict[tuple[str, str], list[Any]] = {}
        for link in links:
            for kind in link.types:
                if (kind.from_type, kind.to_type) != (source, target):
                    raise ValueError(
                        f"association type {kind.type_id} goes from {kind.from_type.value} to "
                        f"{kind.to_type.value}, not from {source.value} to {target.value}"
                    )
            types = pairs.setdefault((str(link.from_id), str(link.to_id)), [])
            types.extend(k for k in link.types if k not in types)
        ordered = list(pairs.items())
        chunks = [
            ordered[i : i + ASSOCIATION_BATCH_SIZE] for i in range(0, len(ordered), ASSOCIATION_BATCH_SIZE)
        ]
        path = f"{ASSOCIATIONS}/{source.value}/{target.value}/batch/create"

        def create(chunk: list[tuple[tuple[str, str], list[Any]]]) -> Callable[[], list[AssociationOutcome]]:
            def run() -> list[AssociationOutcome]:
                inputs = [
                    {"from": {"id": a}, "to": {"id": b}, "types": [k.spec() for k in types]}
                    for (a, b), types in chunk
                ]
                return _association_outcomes(self.request("POST", path, json={"inputs": inputs}) or {}, chunk)

            return run

        outcomes: list[AssociationOutcome] = []
        for part in self._in_pool([create(chunk) for chunk in chunks]):
            outcomes.extend(part)
        return outcomes

    def dissociate(
        self, from_type: ObjectType | str, to_type: ObjectType | str, pairs: Iterable[tuple[str, str]]
    ) -> None:
        """Remove every association between each ``(from_id, to_id)`` pair (v4 batch archive, 204).

        Removing a pair that has no association, or whose record is gone, is not an error.
        """
        source, target = ObjectType.parse(from_type), ObjectType.parse(to_type)
        grouped: dict[str, list[str]] = {}
        for from_id, to_id in pairs:
            targets = grouped.setdefault(str(from_id), [])
            if str(to_id) not in targets:
                targets.append(str(to_id))
        inputs = [{"from": {"id": a}, "to": [{"id": b} for b in targets]} for a, targets in grouped.items()]
        path = f"{ASSOCIATIONS}/{source.value}/{target.value}/batch/archive"

        def archive(chunk: list[dict[str, Any]]) -> Callable[[], None]:
            return lambda: self.request("POST", path, json={"inputs": chunk})

        chunks = [
            inputs[i : i + ASSOCIATION_BATCH_SIZE] for i in range(0, len(inputs), ASSOCIATION_BATCH_SIZE)
        ]
        self._in_pool([archive(chunk) for chunk in chunks])

    def read_associations(
        self,
        from_type: ObjectType | str,
        to_type: ObjectType | str,
        ids: Iterable[str],
    ) -> dict[str, list[AssociatedRecord]]:
        """The associated records of each id (v4 batch read, following each id's paging); ids without
        associations map to an empty list."""
        source, target = ObjectType.parse(from_type), ObjectType.parse(to_type)
        wanted = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, list[AssociatedRecord]] = {i: [] for i in wanted}
        path = f"{ASSOCIATIONS}/{source.value}/{target.value}/batch/read"
        pending: list[dict[str, str]] = [{"id": i} for i in wanted]
        while pending:
            chunk, pending = pending[:ASSOCIATION_BATCH_SIZE], pending[ASSOCIATION_BATCH_SIZE:]
            answer = self.request("POST", path, json={"inputs": chunk}) or {}
            for result in answer.get("results", []):
                from_id = str(result["from"]["id"])
                for item in result.get("to", []):
                    kinds = item.get("associationTypes") or []
                    found.setdefault(from_id, []).append(
                        AssociatedRecord(
                            to_id=str(item["toObjectId"]),
                            type_ids=tuple(int(k["typeId"]) for k in kinds),
                            labels=tuple(str(k["label"]) for k in kinds if k.get("label")),
                        )
                    )
                cursor = next_cursor(result)
                if cursor:
                    pending.append({"id": from_id, "after": cursor})
            for error in answer.get("errors", []):
                if error.get("category") != "OBJECT_NOT_FOUND":  # "not found" = no associations
                    log.warning("HubSpot association read error: %s", error.get("message"))
        return found

    # ------------------------------------------------------------------------ properties
    def ensure_properties(self, specs: Iterable[PropertySpec]) -> dict[str, str]:
        """Make sure each property exists as specified; returns ``{"companies.jde_address_number":
        "created" | "exists"}``. Safe to repeat and to race: an existing property is left as it is, but one
        that lacks a required unique-value flag is an error (HubSpot sets that flag at creation only)."""
        states: dict[str, str] = {}
        for spec in specs:
            existing = self._get_property(spec.object_type, spec.name)
            state = "exists"
            if existing is None:
                self._ensure_group(spec.group)
                try:
                    existing = self.request(
                        "POST", f"{PROPERTIES}/{spec.object_type.value}", json=spec.body()
                    )
                    state = "created"
                except RequestRejectedError as error:
                    if error.status != 409:
                        raise
                    existing = self._get_property(spec.object_type, spec.name)
                    if existing is None:
                        raise RequestRejectedError(
                            f"property {spec.object_type.value}.{spec.name} exists but cannot be read: it is "
                            "probably archived; restore it in HubSpot (Settings > Properties > Archived)",
                            system=SYSTEM,
                            status=409,
                        ) from error
            _check_property(spec, existing or {})
            if state == "exists" and self._add_missing_options(spec, existing or {}):
                state = "updated"
            states[f"{spec.object_type.value}.{spec.name}"] = state
        return states

    def _add_missing_options(self, spec: PropertySpec, existing: Mapping[str, Any]) -> bool:
        """An existing enumeration gets the options the spec has and it lacks (a newer release of
        the flow added a value); its own options stay, in their order. Returns True when it changed."""
        if not spec.options:
            return False
        present = {str(option.get("value")) for option in existing.get("options") or []}
        missing = [option for option in spec.options if option.value not in present]
        if not missing:
            return False
        fields = ("label", "value", "displayOrder", "hidden", "description")
        kept = [{k: option[k] for k in fields if k in option} for option in existing.get("options") or []]
        self.request(
            "PATCH",
            f"{PROPERTIES}/{spec.object_type.value}/{spec.name}",
            json={"options": [*kept, *(option.body() for option in missing)]},
        )
        return True

    def replace_property_options(
        self,
        spec: PropertySpec,
        options: Sequence[Mapping[str, Any]],
        *,
        merge: Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], list[dict[str, Any]]],
        same: Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], bool],
    ) -> tuple[str, list[dict[str, Any]]]:
        """Make an enumeration property hold ``options``: created with them when it is missing,
        else ``merge(options, existing)`` is sent (HubSpot replaces the whole list) unless ``same``
        says HubSpot already shows it. Returns ``("created" | "updated" | "unchanged", the options
        HubSpot holds now)``."""
        existing = self._get_property(spec.object_type, spec.name)
        if existing is None:
            self._ensure_group(spec.group)
            body = {**spec.body(), "options": list(options)}
            try:
                self.request("POST", f"{PROPERTIES}/{spec.object_type.value}", json=body)
                return "created", [dict(option) for option in options]
            except RequestRejectedError as error:
                if error.status != 409:
                    raise
                existing = self._get_property(spec.object_type, spec.name) or {}
        current = list(existing.get("options") or [])
        merged = merge(options, current)
        if same(merged, current):
            return "unchanged", merged
        self.request("PATCH", f"{PROPERTIES}/{spec.object_type.value}/{spec.name}", json={"options": merged})
        return "updated", merged

    def update_property_options(
        self, object_type: ObjectType | str, name: str, options: Sequence[PropertyOption]
    ) -> dict[str, Any]:
        """Replace an enumeration property's options (HubSpot replaces the whole list)."""
        kind = ObjectType.parse(object_type)
        body = {"options": [option.body() for option in options]}
        result: dict[str, Any] = self.request("PATCH", f"{PROPERTIES}/{kind.value}/{name}", json=body)
        return result

    def _get_property(self, object_type: ObjectType, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.request("GET", f"{PROPERTIES}/{object_type.value}/{name}")
        except RequestRejectedError as error:
            if error.status == 404:
                return None
            raise
        return found

    def _ensure_group(self, group: PropertyGroupSpec) -> None:
        key = (group.object_type, group.name)
        if key in self._property_groups:
            return
        base = f"{PROPERTIES}/{group.object_type.value}/groups"
        try:
            self.request("GET", f"{base}/{group.name}")
        except RequestRejectedError as error:
            if error.status != 404:
                raise
            try:
                self.request("POST", base, json=group.body())
            except RequestRejectedError as create_error:
                if create_error.status != 409:
                    raise
        self._property_groups.add(key)


# ------------------------------------------------------------------------------ helpers
def _base_url(host: str | None, port: int | None) -> str:
    if not host:
        return conn_spec.DEFAULT_HOST
    url = host.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    if port and url.count(":") == 1:
        url = f"{url}:{port}"
    return url


def _rate_budget(value: Any, conn_id: str) -> str:
    budget = str(value or conn_spec.DEFAULT_RATE_BUDGET).strip().lower()
    if budget not in conn_spec.RATE_BUDGETS:
        raise ValueError(
            f"connection '{connection_name(conn_id)}': extra rate_budget must be one of "
            f"{', '.join(conn_spec.RATE_BUDGETS)}, got {value!r}"
        )
    return budget


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)


def _error_body(response: requests.Response) -> dict[str, Any]:
    """HubSpot's JSON error body, or ``{}`` (gateways answer 502/504 with HTML)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _read_params(properties: Sequence[str], associations: Sequence[ObjectType | str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if properties:
        params["properties"] = ",".join(properties)
    if associations:
        params["associations"] = ",".join(ObjectType.parse(a).value for a in associations)
    return params


def _merge_by_key(records: Records, *, lowercase: bool) -> dict[str, dict[str, Any]]:
    pairs = records.items() if isinstance(records, Mapping) else records
    merged: dict[str, dict[str, Any]] = {}
    for raw_key, properties in pairs:
        key = str(raw_key).strip()
        if lowercase:
            key = key.lower()
        if not key:
            raise ValueError(f"a record has an empty key (properties {dict(properties)!r})")
        if not isinstance(properties, Mapping):
            raise TypeError(f"record {key!r}: properties must be a mapping, got {type(properties).__name__}")
        target = merged.setdefault(key, {})
        for name, value in properties.items():
            target[name] = _wire_value(key, name, value)
    return merged


def _wire_value(key: str, name: str, value: Any) -> Any:
    """A property value as JSON HubSpot accepts: text, numbers, booleans; ``None`` clears (sent as "")."""
    if value is None:
        return ""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"record {key!r}, property {name!r}: datetime {value!r} has no time zone")
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"record {key!r}, property {name!r}: cannot send a {type(value).__name__} to HubSpot")


def _upsert_outcomes(body: dict[str, Any], keys: list[str], id_property: str) -> dict[str, RecordOutcome]:
    """Outcomes of one ``batch/upsert`` answer (200 or 207), matched by trace id or id value, not position."""
    known = set(keys)
    by_value = {key.lower() if id_property == "email" else key: key for key in keys}

    def key_of(trace_id: Any, value: Any) -> str | None:
        if isinstance(trace_id, str) and trace_id in known:
            return trace_id
        if value is None:
            return None
        return by_value.get(str(value).lower() if id_property == "email" else str(value))

    outcomes: dict[str, RecordOutcome] = {}
    for result in body.get("results", []):
        key = key_of(result.get("objectWriteTraceId"), (result.get("properties") or {}).get(id_property))
        if key is not None:
            status = WriteStatus.CREATED if result.get("new") else WriteStatus.UPDATED
            outcomes[key] = RecordOutcome(key=key, status=status, record_id=str(result["id"]))
    for error in body.get("errors", []):
        context = error.get("context") or {}
        named = {key_of(t, None) for t in context.get("objectWriteTraceId", [])}
        named |= {key_of(None, v) for v in context.get("ids", [])}
        targets = [k for k in named if k] or [k for k in keys if k not in outcomes]
        record_error = RecordError.from_body(error, status=None)
        for key in targets:
            outcomes.setdefault(key, RecordOutcome(key=key, status=WriteStatus.FAILED, error=record_error))
    missing = RecordError(message="HubSpot returned no result for this record", category="MISSING_RESULT")
    for key in keys:
        outcomes.setdefault(key, RecordOutcome(key=key, status=WriteStatus.FAILED, error=missing))
    return outcomes


def _update_outcomes(body: dict[str, Any], ids: list[str]) -> dict[str, RecordOutcome]:
    """Outcomes of one ``batch/update`` answer (200 or 207), matched by record id."""
    outcomes = {
        str(result["id"]): RecordOutcome(
            key=str(result["id"]), status=WriteStatus.UPDATED, record_id=str(result["id"])
        )
        for result in body.get("results", [])
        if str(result.get("id")) in ids
    }
    for error in body.get("errors", []):
        context = error.get("context") or {}
        named = [
            str(i) for i in [*context.get("ids", []), *context.get("objectWriteTraceId", [])] if str(i) in ids
        ]
        record_error = RecordError.from_body(error, status=None)
        for record_id in named or [i for i in ids if i not in outcomes]:
            outcomes.setdefault(
                record_id, RecordOutcome(key=record_id, status=WriteStatus.FAILED, error=record_error)
            )
    missing = RecordError(message="HubSpot returned no result for this record", category="MISSING_RESULT")
    for record_id in ids:
        outcomes.setdefault(record_id, RecordOutcome(key=record_id, status=WriteStatus.FAILED, error=missing))
    return outcomes


def _association_outcomes(
    body: dict[str, Any], chunk: list[tuple[tuple[str, str], list[Any]]]
) -> list[AssociationOutcome]:
    done = {
        (str(r.get("fromObjectId")), str(r.get("toObjectId"))): tuple(r.get("labels") or ())
        for r in body.get("results", [])
    }
    errors_by_id: dict[str, RecordError] = {}
    first_error: RecordError | None = None
    for error in body.get("errors", []):
        record_error = RecordError.from_body(error, status=None)
        first_error = first_error or record_error
        context = error.get("context") or {}
        for record_id in [*context.get("fromObjectId", []), *context.get("toObjectId", [])]:
            errors_by_id[str(record_id)] = record_error
    outcomes = []
    for (from_id, to_id), _types in chunk:
        if (from_id, to_id) in done:
            outcomes.append(
                AssociationOutcome(from_id=from_id, to_id=to_id, ok=True, labels=done[(from_id, to_id)])
            )
            continue
        error = (
            errors_by_id.get(from_id)
            or errors_by_id.get(to_id)
            or first_error
            or RecordError(
                message="HubSpot returned no result for this association", category="MISSING_RESULT"
            )
        )
        outcomes.append(AssociationOutcome(from_id=from_id, to_id=to_id, ok=False, error=error))
    return outcomes


def _check_property(spec: PropertySpec, existing: dict[str, Any]) -> None:
    if spec.has_unique_value and not existing.get("hasUniqueValue"):
        raise ValueError(
            f"property {spec.object_type.value}.{spec.name} exists without hasUniqueValue, so records cannot "
            "be upserted on it, and HubSpot sets that flag only at creation: archive the property and let "
            "the sync create it again"
        )
    if existing.get("type") and existing["type"] != spec.type:
        raise ValueError(
            f"property {spec.object_type.value}.{spec.name} exists with type {existing['type']!r}, "
            f"the sync needs {spec.type!r}"
        )
