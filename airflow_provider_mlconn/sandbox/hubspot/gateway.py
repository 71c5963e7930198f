"""What stands in front of every API call: bearer auth, rate limits, latency, injected faults, stats.

A pure ASGI middleware (no per-request task or body copy), so the sandbox is limited by the rate
limit it enforces, not by its own overhead. ``/_sandbox/`` bypasses all of it.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlconn.sandbox.hubspot.changes import API, CHANGE_SOURCE
from airflow_provider_mlconn.sandbox.hubspot.limits import MESSAGES, RateLimits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/_sandbox"
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")
AUTH_FAILURE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass
class Settings:
    """What ``mlconn-sandbox hubspot`` options (and ``POST /_sandbox/settings``) control."""

    token: str = "pat-na1-sandbox"
    rate_limit: int = 190
    search_rate_limit: int = 5
    daily_limit: int = 1_000_000
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    search_lag_ms: int = 1000
    seed: int | None = None
    portal_id: int = 40_400_001
    # Whether commerce payments recorded through the API count towards their invoice (H18).
    api_payments_update_invoices: bool = True
    # Webhook delivery (H19): batching delay, retry backoff (1.0 = HubSpot's ~24 h), retries, timeout.
    webhook_batch_delay_ms: int = 1000
    webhook_backoff_scale: float = 1.0
    webhook_max_retries: int = 10
    webhook_timeout_s: float = 5.0

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "token"}


@dataclass
class Stats:
    """Counters the control API reports: requests per (method, path, status), 429s per policy, faults."""

    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    faults: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests[(method, _ID_SEGMENT.sub("/{id}", path), status)] += 1

    def count_rate_limited(self, policy: str) -> None:
        with self.lock:
            self.rate_limited[policy] += 1

    def count_fault(self) -> None:
        with self.lock:
            self.faults += 1

    def as_json(self) -> dict[str, Any]:
        with self.lock:
            by_path: dict[str, dict[str, int]] = {}
            for (method, path, status), count in sorted(self.requests.items()):
                by_path.setdefault(f"{method} {path}", {})[str(status)] = count
            by_status = Counter[str]()
            for (_, _, status), count in self.requests.items():
                by_status[str(status)] += count
            return {
                "total": sum(self.requests.values()),
                "by_status": dict(sorted(by_status.items())),
                "requests": by_path,
                "rate_limited": sum(self.rate_limited.values()),
                "rate_limited_by_policy": dict(self.rate_limited),
                "faults": self.faults,
            }

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.rate_limited.clear()
            self.faults = 0


class Gateway:
    """ASGI middleware: the checks HubSpot's edge makes before (and around) the CRM handlers."""

    def __init__(self, app: ASGIApp, *, settings: Settings, limits: RateLimits, stats: Stats) -> None:
        self.app = app
        self.settings = settings
        self.limits = limits
        self.stats = stats
        self.random = random.Random(settings.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        correlation_id = str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        base_headers = {"X-HubSpot-Correlation-Id": correlation_id}

        if not self._authorized(scope):
            await self._reply(
                send,
                401,
                {
                    "status": "error",
                    "message": AUTH_FAILURE,
                    "correlationId": correlation_id,
                    "category": "INVALID_AUTHENTICATION",
                },
                {**base_headers, "X-HubSpot-Auth-Failure": "401 Unauthorized"},
            )
            self.stats.record(method, path, 401)
            return

        is_search = method == "POST" and path.endswith("/search")
        policy = self.limits.check(is_search=is_search)
        rate_headers = {} if is_search else self.limits.headers()
        if policy is not None:
            self.stats.count_rate_limited(policy)
            body = {
                "status": "error",
                "message": MESSAGES[policy],
                "errorType": "RATE_LIMIT",
                "correlationId": correlation_id,
                "policyName": policy,
                "requestId": str(uuid.uuid4()),
            }
            await self._reply(send, 429, body, {**base_headers, **rate_headers})
            self.stats.record(method, path, 429)
            return

        if self.settings.latency_ms > 0:
            await asyncio.sleep(self.settings.latency_ms / 1000)
        fault = self._fault()
        if fault == "before":
            await self._fault_reply(send, base_headers)
            self.stats.record(method, path, 502)
            return

        status_holder: list[int] = []
        extra = [(k.lower().encode(), v.encode()) for k, v in {**base_headers, **rate_headers}.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder.append(message["status"])
                message["headers"] = [*message.get("headers", []), *extra]
            if fault != "after":
                await send(message)

        source = CHANGE_SOURCE.set(API)  # what this call changes, webhooks report as changeSource API
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            CHANGE_SOURCE.reset(source)
        if fault == "after":
            # The write happened, the answer is lost on the way back: what makes retries dangerous.
            await self._fault_reply(send, base_headers, status=504)
            self.stats.record(method, path, 504)
            return
        self.stats.record(method, path, status_holder[0] if status_holder else 500)

    def _authorized(self, scope: Scope) -> bool:
        expected = f"Bearer {self.settings.token}".encode()
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                return bool(value == expected)
        return False

    def _fault(self) -> str | None:
        if self.settings.fault_rate <= 0 or self.random.random() >= self.settings.fault_rate:
            return None
        self.stats.count_fault()
        return "before" if self.random.random() < 0.5 else "after"

    async def _fault_reply(self, send: Send, headers: dict[str, str], status: int = 502) -> None:
        # HubSpot's edge answers 502/504 with an HTML page, not JSON: clients must not assume a body.
        reason = {502: "Bad Gateway", 504: "Gateway Timeout"}.get(status, "Error")
        page = f"<html><head><title>{status} {reason}</title></head><body>{status} {reason}</body></html>"
        await self._raw(send, status, page.encode(), "text/html", headers)

    async def _reply(self, send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        await self._raw(send, status, data, "application/json;charset=utf-8", headers)

    @staticmethod
    async def _raw(send: Send, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        raw_headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(data)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": data})
