"""Webhook subscriptions and their delivery, as HubSpot does it (hubspot-commerce.md §4, hubspot.md §9).

- Events are queued per subscription (one app: one target URL and client secret) and POSTed as a JSON
  array of at most 100 events [doc], a short batching delay after the first one (``batch_delay_ms``).
- Each POST is signed (``signatures.headers``: v3 plus v1 or v2).
- A non-2xx answer, a refused connection or no answer within ``timeout_s`` (HubSpot: 5 s [doc]) is
  retried with the same events and ``attemptNumber`` + 1, up to ``max_retries`` times (HubSpot: 10 over
  24 h [doc]) after randomized, doubling delays: 84.4 s x 2^n x 0.75..1.25 [I: ten of them add up to about
  24 h], times ``backoff_scale`` so tests can shrink them.
- Sent, retried and failed POSTs are counted for ``/_sandbox/stats``.

One background thread delivers, one POST at a time [I: HubSpot allows 10 in flight]. It starts when an
event is queued, ends when nothing is left to send, and is stopped when the server that queued the event
stops (a task in the server's event loop stops it when the loop shuts down) or by ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import http.client
import itertools
import json
import random
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_mlconn.sandbox.hubspot import signatures
from airflow_provider_mlconn.sandbox.hubspot.catalog import (
    ASSOCIATION_BY_ID,
    COMPANIES,
    CONTACTS,
    DEALS,
    LINE_ITEMS,
    OBJECT_TYPES,
    PRODUCTS,
    resolve_object_type,
)
from airflow_provider_mlconn.sandbox.hubspot.changes import (
    ASSOCIATION_CHANGE,
    CREATION,
    DELETION,
    PROPERTY_CHANGE,
    Change,
)
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal

BATCH_SIZE = 100
RETRY_BASE_S = 84.4
DEFAULT_APP_ID = 4_040_001
ACTIONS = (CREATION, PROPERTY_CHANGE, DELETION, ASSOCIATION_CHANGE)
# Generic subscriptions name the object type separately; legacy ones carry it in the event type
# (the webhooks-v3 spec's event type list has these four kinds for contact, company, deal, line_item
# and product).
GENERIC = {f"object.{action}": action for action in ACTIONS}
LEGACY_KINDS = {kind.singular: kind for kind in (CONTACTS, COMPANIES, DEALS, LINE_ITEMS, PRODUCTS)}
LEGACY = {
    f"{singular}.{action}": (kind.name, action)
    for singular, kind in LEGACY_KINDS.items()
    for action in ACTIONS
    if not (kind is PRODUCTS and action == ASSOCIATION_CHANGE)  # products cannot be associated [doc]
}
EVENT_TYPES = (*GENERIC, *LEGACY)
LOG_SIZE = 500


class WebhookSettings(Protocol):
    portal_id: int
    webhook_batch_delay_ms: int
    webhook_backoff_scale: float
    webhook_max_retries: int
    webhook_timeout_s: float


@dataclass(frozen=True)
class Subscription:
    """What one app subscribed to, and where HubSpot sends it."""

    id: int
    target_url: str
    client_secret: str
    event_types: tuple[str, ...]
    object_types: tuple[str, ...]  # plural names, for the generic ``object.*`` event types
    property_names: tuple[str, ...]  # for property changes; empty = every property [I]
    app_id: int = DEFAULT_APP_ID
    signature_version: str = "v1"  # what X-HubSpot-Signature carries next to v3
    active: bool = True
    created_ms: int = 0

    def subscription_types(self, change: Change) -> list[str]:
        """The ``subscriptionType`` values under which ``change`` is delivered to this subscription."""
        if not self.active:
            return []
        if (
            change.action == PROPERTY_CHANGE
            and self.property_names
            and change.property_name not in self.property_names
        ):
            return []
        found = []
        generic = f"object.{change.action}"
        if generic in self.event_types and change.object_type in self.object_types:
            found.append(generic)
        for event_type in self.event_types:
            if LEGACY.get(event_type) == (change.object_type, change.action):
                found.append(event_type)
        return found

    def as_json(self) -> dict[str, Any]:
        """The subscription as the control API shows it (never the client secret)."""
        return {
            "id": self.id,
            "target_url": self.target_url,
            "event_types": list(self.event_types),
            "object_types": list(self.object_types),
            "property_names": list(self.property_names),
            "app_id": self.app_id,
            "signature_version": self.signature_version,
            "active": self.active,
            "created_at": self.created_ms,
        }


def subscription_from(body: dict[str, Any], subscription_id: int, now: int) -> Subscription:
    """A subscription from the control API's body; ValueError says what is wrong."""
    target = body.get("target_url")
    if not isinstance(target, str) or urlsplit(target).scheme not in ("http", "https"):
        raise ValueError("target_url must be an http(s) URL.")
    secret = body.get("client_secret")
    if not isinstance(secret, str) or not secret:
        raise ValueError("client_secret must be a non-empty string (the app's client secret).")
    event_types = _strings(body, "event_types")
    unknown = [e for e in event_types if e not in EVENT_TYPES]
    if not event_types or unknown:
        raise ValueError(f"event_types must name some of {list(EVENT_TYPES)}; unknown: {unknown}.")
    object_types = []
    for name in _strings(body, "object_types"):
        kind = resolve_object_type(name)
        if kind is None:
            raise ValueError(f"Unknown object type {name!r}; known: {[k.name for k in OBJECT_TYPES]}.")
        object_types.append(kind.name)
    if any(e in GENERIC for e in event_types) and not object_types:
        raise ValueError("object.* event types need object_types (e.g. invoices, commerce_payments).")
    version = body.get("signature_version", "v1")
    if version not in ("v1", "v2"):
        raise ValueError("signature_version is v1 (CRM object subscriptions) or v2.")
    return Subscription(
        id=subscription_id,
        target_url=target,
        client_secret=secret,
        event_types=tuple(event_types),
        object_types=tuple(dict.fromkeys(object_types)),
        property_names=tuple(_strings(body, "property_names")),
        app_id=int(body.get("app_id", DEFAULT_APP_ID)),
        signature_version=version,
        active=bool(body.get("active", True)),
        created_ms=now,
    )


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of strings.")
    return value


def event_body(change: Change, subscription_type: str) -> dict[str, Any]:
    """The event fields that depend on the change ([doc][sdk] hubspot-commerce.md §4.2); the sender adds
    eventId, subscriptionId, portalId, appId and attemptNumber."""
    kind = resolve_object_type(change.object_type)
    assert kind is not None
    event: dict[str, Any] = {
        "occurredAt": change.occurred_ms,
        "subscriptionType": subscription_type,
        "objectId": int(change.object_id),
        "changeSource": change.source,
    }
    generic = subscription_type.startswith("object.")
    if generic:
        event["objectTypeId"] = kind.type_id
    if change.action == CREATION:
        event["changeFlag"] = "NEW"  # as in HubSpot's signed example event (reference §4.3)
    elif change.action == PROPERTY_CHANGE:
        event["propertyName"] = change.property_name
        event["propertyValue"] = change.property_value
    elif change.action == ASSOCIATION_CHANGE:
        to_kind = resolve_object_type(change.to_type or "")
        assert to_kind is not None and change.to_id is not None
        event["fromObjectId"] = int(change.object_id)
        event["toObjectId"] = int(change.to_id)
        event["associationRemoved"] = change.association_removed
        event["isPrimaryAssociation"] = change.primary
        if generic:
            event["fromObjectTypeId"] = kind.type_id
            event["toObjectTypeId"] = to_kind.type_id
            event["associationTypeId"] = change.association_type_id
        else:
            assoc = ASSOCIATION_BY_ID.get(change.association_type_id or -1)
            event["associationType"] = (
                assoc.name.upper() if assoc else f"{kind.label}_TO_{to_kind.label}"
            ).removesuffix("_UNLABELED")
    return event


@dataclass
class Delivery:
    """One POST's worth of events for one subscription, and how often it was tried."""

    subscription_id: int
    events: list[dict[str, Any]]
    attempt: int = 0


@dataclass
class WebhookStats:
    events: int = 0  # events queued
    sent: int = 0  # POSTs answered 2xx
    retried: int = 0  # POSTs repeated after a failure
    failed: int = 0  # POSTs given up after the last retry
    events_delivered: int = 0
    events_failed: int = 0
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "events_delivered": self.events_delivered,
            "events_failed": self.events_failed,
        }


class WebhookSender:
    """The subscriptions of a portal and the thread that delivers their events."""

    def __init__(self, portal: Portal, settings: WebhookSettings, *, seed: int | None = None) -> None:
        self.portal = portal
        self.settings = settings
        self.random = random.Random(seed)
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.stopping = False
        self._watched: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        self._watchers: set[asyncio.Task[None]] = set()  # held, or the loop could drop them
        self.reset()

    # ------------------------------------------------------------ subscriptions
    # Lock order everywhere: the portal's lock, then ``cond`` (``observe`` runs under the portal's lock).
    def reset(self) -> None:
        """No subscriptions, nothing pending, counters at zero (a running delivery finishes)."""
        with self.portal.lock, self.cond:
            self.subscriptions: dict[int, Subscription] = {}
            self.queues: dict[int, deque[tuple[float, dict[str, Any]]]] = {}
            self.retries: list[tuple[float, int, Delivery]] = []
            self.sequence = itertools.count()
            self.next_subscription_id = 1
            self.next_event_id = 1
            self.stats = WebhookStats()
            self._observe()
            self.cond.notify_all()

    def subscribe(self, body: dict[str, Any]) -> Subscription:
        with self.portal.lock, self.cond:
            subscription = subscription_from(body, self.next_subscription_id, int(time.time() * 1000))
            self.next_subscription_id += 1
            self.subscriptions[subscription.id] = subscription
            self.queues[subscription.id] = deque()
            self._observe()
            return subscription

    def unsubscribe(self, subscription_id: int) -> bool:
        """Remove a subscription; its undelivered events are dropped."""
        with self.portal.lock, self.cond:
            found = self.subscriptions.pop(subscription_id, None) is not None
            self.queues.pop(subscription_id, None)
            self._observe()
            return found

    def _observe(self) -> None:
        # The portal reports changes only while someone listens: no cost without subscriptions.
        self.portal.observer = self.observe if self.subscriptions else None

    # ------------------------------------------------------------ queueing
    def observe(self, change: Change) -> None:
        """Queue ``change`` for every subscription that wants it (called under the portal lock)."""
        if change.action == PROPERTY_CHANGE and not self._fires(change):
            return
        with self.cond:
            queued = False
            now = time.monotonic()
            for subscription in self.subscriptions.values():
                for subscription_type in subscription.subscription_types(change):
                    event = {
                        "eventId": self.next_event_id,
                        "subscriptionId": subscription.id,
                        "portalId": self.settings.portal_id,
                        "appId": subscription.app_id,
                        **event_body(change, subscription_type),
                    }
                    self.next_event_id += 1
                    self.queues[subscription.id].append((now, event))
                    self.stats.events += 1
                    queued = True
            if queued:
                self._start()
                self.cond.notify_all()

    def _fires(self, change: Change) -> bool:
        """Calculated properties generally do not fire property changes ([obs] reference §4.1)."""
        kind = resolve_object_type(change.object_type)
        prop = self.portal.property(kind, change.property_name or "") if kind else None
        return prop is not None and not prop.calculated

    def _start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.stopping = False
            self.thread = threading.Thread(target=self._run, name="hubspot-sandbox-webhooks", daemon=True)
            self.thread.start()
        self._stop_with_running_loop()

    def _stop_with_running_loop(self) -> None:
        """Tie the thread to the server that queued the event: when its loop shuts down (its tasks are
        cancelled), ``stop`` runs. Outside a loop (a test driving the portal directly) the thread simply
        ends once idle."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop not in self._watched:
            self._watched.add(loop)
            watcher = loop.create_task(self._until_cancelled())
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)

    async def _until_cancelled(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop delivering now (queued events stay queued); waits for a POST in flight to end."""
        with self.cond:
            thread = self.thread
            self.stopping = True
            self.cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.settings.webhook_timeout_s + 2)

    def pending(self) -> dict[str, int]:
        with self.cond:
            return {
                "pending_events": sum(len(q) for q in self.queues.values()),
                "pending_retries": len(self.retries),
            }

    # ------------------------------------------------------------ delivering
    def _run(self) -> None:
        while True:
            with self.cond:
                delivery = None
                while delivery is None:
                    if self.stopping:
                        return
                    now = time.monotonic()
                    delivery = self._due(now)
                    if delivery is None:
                        wait = self._next_wake(now)
                        if wait is None:
                            self.thread = None
                            return
                        self.cond.wait(wait)
            self._deliver(delivery)

    def _due(self, now: float) -> Delivery | None:
        if self.retries and self.retries[0][0] <= now:
            return heapq.heappop(self.retries)[2]
        delay = self.settings.webhook_batch_delay_ms / 1000
        for subscription_id, queue in self.queues.items():
            if queue and (len(queue) >= BATCH_SIZE or queue[0][0] + delay <= now):
                events = [queue.popleft()[1] for _ in range(min(BATCH_SIZE, len(queue)))]
                return Delivery(subscription_id, events)
        return None

    def _next_wake(self, now: float) -> float | None:
        delay = self.settings.webhook_batch_delay_ms / 1000
        moments = [queue[0][0] + delay for queue in self.queues.values() if queue]
        if self.retries:
            moments.append(self.retries[0][0])
        return max(min(moments) - now, 0.0) if moments else None

    def _deliver(self, delivery: Delivery) -> None:
        with self.cond:
            subscription = self.subscriptions.get(delivery.subscription_id)
        if subscription is None:
            return  # unsubscribed meanwhile: its events go nowhere
        events = [{**event, "attemptNumber": delivery.attempt} for event in delivery.events]
        body = json.dumps(events, separators=(",", ":")).encode()
        timestamp = int(time.time() * 1000)
        headers = {
            "Content-Type": "application/json",
            **signatures.headers(
                subscription.client_secret,
                subscription.target_url,
                body,
                timestamp,
                legacy_version=subscription.signature_version,
            ),
        }
        outcome = _post(subscription.target_url, body, headers, self.settings.webhook_timeout_s)
        ok = isinstance(outcome, int) and 200 <= outcome < 300
        with self.cond:
            self.stats.log.append(
                {
                    "subscription_id": subscription.id,
                    "attempt": delivery.attempt,
                    "events": len(events),
                    "outcome": outcome,
                    "at": timestamp,
                }
            )
            if ok:
                self.stats.sent += 1
                self.stats.events_delivered += len(events)
            elif delivery.attempt < self.settings.webhook_max_retries:
                self.stats.retried += 1
                due = time.monotonic() + self._backoff(delivery.attempt)
                retry = Delivery(delivery.subscription_id, delivery.events, delivery.attempt + 1)
                heapq.heappush(self.retries, (due, next(self.sequence), retry))
            else:
                self.stats.failed += 1
                self.stats.events_failed += len(events)

    def _backoff(self, attempt: int) -> float:
        return (
            self.settings.webhook_backoff_scale * RETRY_BASE_S * 2**attempt * self.random.uniform(0.75, 1.25)
        )


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int | str:
    """POST once; the status, or why there is none."""
    parts = urlsplit(url)
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname or "", parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as error:
        return f"{type(error).__name__}: {error}"
    finally:
        with contextlib.suppress(OSError):
            connection.close()
