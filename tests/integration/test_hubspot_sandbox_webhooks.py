"""The sandbox delivers webhooks as HubSpot does: batched JSON arrays, signed, retried, counted.

Each test runs a tiny receiver on 127.0.0.1 that checks what HubSpot's receivers check (the v3
signature over method + URI + body + timestamp, computed here independently of the sandbox).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.hubspot import SandboxControl

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Sandbox = Callable[..., SandboxControl]
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
FAST = {"webhook_batch_delay_ms": 50, "webhook_backoff_scale": 0.0005, "webhook_timeout_s": 2.0}


@dataclass
class Received:
    uri: str
    body: bytes
    headers: dict[str, str]
    valid_v3: bool

    @property
    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = json.loads(self.body)
        return events


@dataclass
class Receiver:
    """An HTTP receiver answering ``status``; it keeps every POST and whether its v3 signature holds."""

    status: int = 200
    posts: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/hubspot?source=sandbox"

    def events(self) -> list[dict[str, Any]]:
        return [event for post in list(self.posts) for event in post.events]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not met within {timeout}s; received {len(self.posts)} POSTs")
            time.sleep(0.02)


def valid_v3(uri: str, body: bytes, headers: dict[str, str]) -> bool:
    """HubSpot's documented check: base64 HMAC-SHA256(secret, method + uri + body + timestamp), fresh."""
    timestamp = headers.get("x-hubspot-request-timestamp", "0")
    if abs(time.time() * 1000 - int(timestamp)) > 300_000:
        return False
    message = b"POST" + uri.encode() + body + timestamp.encode()
    expected = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, headers.get("x-hubspot-signature-v3", ""))


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    receivers: list[Receiver] = []

    def start(status: int = 200) -> Receiver:
        state = Receiver(status=status)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                host, port = self.server.server_address[:2]
                uri = f"http://{host}:{port}{self.path}"
                state.posts.append(Received(uri, body, headers, valid_v3(uri, body, headers)))
                self.send_response(state.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=state.server.serve_forever, daemon=True).start()
        receivers.append(state)
        return state

    yield start
    for state in receivers:
        assert state.server is not None
        state.server.shutdown()
        state.server.server_close()


def subscribe(sandbox: SandboxControl, receiver: Receiver, **body: Any) -> dict[str, Any]:
    body.setdefault("target_url", receiver.url)
    body.setdefault("client_secret", SECRET)
    created: dict[str, Any] = sandbox.control("POST", "webhooks", body)
    return created


def test_an_invoice_change_made_through_the_api_arrives_signed_with_hubspots_event_fields(
    hubspot_sandbox: Sandbox, receiver: Callable[..., Receiver]
) -> None:
    sandbox = hubspot_sandbox(**FAST)
    hook = receiver()
    subscription = subscribe(
        sandbox,
        hook,
        event_types=["object.creation", "object.propertyChange"],
        object_types=["invoices"],
        property_names=["hs_invoice_status", "hs_comments"],
    )
    created = sandbox.api("POST", "/crm/v3/objects/invoices", {"properties": {"hs_currency": "EUR"}}).json()
    sandbox.api("PATCH", f"/crm/v3/objects/invoices/{created['id']}", {"properties": {"hs_comments": "hi"}})
    hook.wait_for(lambda: len(hook.events()) >= 3)
    assert all(post.valid_v3 for post in hook.posts)
    first = hook.posts[0]
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-hubspot-signature-version"] == "v1"
    assert first.headers["x-hubspot-signature"] == hashlib.sha256(SECRET.encode() + first.body).hexdigest()
    creation, status, comment = sorted(hook.events(), key=lambda e: e["eventId"])
    assert creation == {
        "eventId": creation["eventId"],
        "subscriptionId": subscription["id"],
        "portalId": sandbox.stats()["settings"]["portal_id"],
        "appId": subscription["app_id"],
        "occurredAt": creation["occurredAt"],
        "subscriptionType": "object.creation",
        "attemptNumber": 0,
        "objectId": int(created["id"]),
        "objectTypeId": "0-53",
        "changeSource": "API",
        "changeFlag": "NEW",
    }
    assert (status["propertyName"], status["propertyValue"]) == ("hs_invoice_status", "draft")
    assert (comment["propertyName"], comment["propertyValue"], comment["changeSource"]) == (
        "hs_comments",
        "hi",
        "API",
    )
    hook.wait_for(lambda: sandbox.stats()["webhooks"]["sent"] == len(hook.posts))


def test_sandbox_edits_fire_events_too_and_calculated_properties_do_not(
    hubspot_sandbox: Sandbox, receiver: Callable[..., Receiver]
) -> None:
    sandbox = hubspot_sandbox(seed=4, **FAST)
    hook = receiver()
    subscribe(
        sandbox,
        hook,
        event_types=["object.propertyChange", "object.creation", "object.associationChange"],
        object_types=["invoices", "commerce_payments"],
    )
    invoice = next(i for i in sandbox.records("invoices") if i["properties"]["hs_invoice_status"] == "open")
    balance = invoice["properties"]["hs_balance_due"]
    sandbox.control("POST", "payments", {"invoice_id": invoice["id"], "amount": balance})
    hook.wait_for(
        lambda: (
            any(e.get("propertyValue") == "paid" for e in hook.events())
            and any(e["subscriptionType"] == "object.creation" for e in hook.events())
        )
    )
    events = hook.events()
    paid = next(e for e in events if e.get("propertyName") == "hs_invoice_status")
    assert paid["objectId"] == int(invoice["id"]) and paid["changeSource"] == "CRM_UI"
    assert not {"hs_balance_due", "hs_amount_paid", "hs_lastmodifieddate"} & {
        e.get("propertyName") for e in events
    }
    links = [e for e in events if e["subscriptionType"] == "object.associationChange"]
    assert {(e["fromObjectTypeId"], e["toObjectTypeId"], e["associationTypeId"]) for e in links} >= {
        ("0-101", "0-53", 542),
        ("0-53", "0-101", 541),
    }


def test_a_failing_receiver_gets_bounded_retries_with_growing_attempt_numbers(
    hubspot_sandbox: Sandbox, receiver: Callable[..., Receiver]
) -> None:
    sandbox = hubspot_sandbox(**{**FAST, "webhook_max_retries": 3})
    hook = receiver(status=500)
    subscribe(sandbox, hook, event_types=["object.creation"], object_types=["products"])
    sandbox.api("POST", "/crm/v3/objects/products", {"properties": {"name": "Pump"}})
    hook.wait_for(lambda: sandbox.stats()["webhooks"]["failed"] == 1)
    time.sleep(0.3)  # nothing more comes once the last retry failed
    assert [post.events[0]["attemptNumber"] for post in hook.posts] == [0, 1, 2, 3]
    assert len({post.events[0]["eventId"] for post in hook.posts}) == 1
    assert all(post.valid_v3 for post in hook.posts)
    counters = sandbox.stats()["webhooks"]
    assert (counters["sent"], counters["retried"], counters["failed"], counters["events_failed"]) == (
        0,
        3,
        1,
        1,
    )
    log = sandbox.control("GET", "webhooks/deliveries")["results"]
    assert [entry["outcome"] for entry in log] == [500, 500, 500, 500]


def test_a_receiver_that_recovers_gets_the_retry_and_an_unreachable_one_counts_as_failed(
    hubspot_sandbox: Sandbox, receiver: Callable[..., Receiver]
) -> None:
    sandbox = hubspot_sandbox(**{**FAST, "webhook_max_retries": 2})
    hook = receiver(status=503)
    subscribe(sandbox, hook, event_types=["object.creation"], object_types=["products"])
    gone = receiver()
    gone_url = gone.url
    assert gone.server is not None
    gone.server.shutdown()
    gone.server.server_close()
    subscribe(sandbox, gone, target_url=gone_url, event_types=["object.creation"], object_types=["products"])
    sandbox.api("POST", "/crm/v3/objects/products", {"properties": {"name": "Valve"}})
    hook.wait_for(lambda: len(hook.posts) >= 1)
    hook.status = 200
    hook.wait_for(
        lambda: sandbox.stats()["webhooks"]["sent"] == 1 and sandbox.stats()["webhooks"]["failed"] == 1
    )
    assert hook.posts[-1].events[0]["attemptNumber"] >= 1


def test_more_than_100_changes_arrive_in_posts_of_at_most_100_events(
    hubspot_sandbox: Sandbox, receiver: Callable[..., Receiver]
) -> None:
    sandbox = hubspot_sandbox(**FAST)
    hook = receiver()
    subscribe(sandbox, hook, event_types=["product.creation"])
    sandbox.control("POST", "objects/products/generate", {"count": 250, "properties": {"name": "Item {n}"}})
    hook.wait_for(lambda: len(hook.events()) == 250)
    assert sorted(len(post.events) for post in hook.posts) == [50, 100, 100]
    assert all(post.valid_v3 for post in hook.posts)
    assert all("objectTypeId" not in e and e["subscriptionType"] == "product.creation" for e in hook.events())
    assert len({e["eventId"] for e in hook.events()}) == 250
    assert sandbox.stats()["webhooks"]["sent"] == 3


def test_subscriptions_are_listed_and_deleted_and_a_deleted_one_gets_nothing(
    hubspot_sandbox: Sandbox, receiver: Callable[..., Receiver]
) -> None:
    sandbox = hubspot_sandbox(**FAST)
    hook = receiver()
    subscription = subscribe(sandbox, hook, event_types=["object.deletion"], object_types=["0-7"])
    listed = sandbox.control("GET", "webhooks")["results"]
    assert [s["id"] for s in listed] == [subscription["id"]] and "client_secret" not in listed[0]
    assert listed[0]["object_types"] == ["products"]
    refused = sandbox.http.post(f"{sandbox.url}/_sandbox/webhooks", json={"target_url": "x"}, timeout=10)
    assert refused.status_code == 400
    product = sandbox.api("POST", "/crm/v3/objects/products", {"properties": {"name": "Gone"}}).json()
    sandbox.api("DELETE", f"/crm/v3/objects/products/{product['id']}")
    hook.wait_for(lambda: len(hook.events()) == 1)
    assert hook.events()[0]["subscriptionType"] == "object.deletion"
    sandbox.control("DELETE", f"webhooks/{subscription['id']}")
    sandbox.api("DELETE", f"/crm/v3/objects/products/{product['id']}")
    other = sandbox.api("POST", "/crm/v3/objects/products", {"properties": {"name": "Other"}}).json()
    sandbox.api("DELETE", f"/crm/v3/objects/products/{other['id']}")
    time.sleep(0.3)
    assert len(hook.events()) == 1 and sandbox.control("GET", "webhooks")["results"] == []


def test_the_sender_thread_stops_with_the_server(
    hubspot_sandbox: Sandbox, receiver: Callable[..., Receiver]
) -> None:
    sandbox = hubspot_sandbox(**{**FAST, "webhook_backoff_scale": 1.0})  # retries would wait minutes
    hook = receiver(status=500)
    subscribe(sandbox, hook, event_types=["object.creation"], object_types=["products"])
    sandbox.api("POST", "/crm/v3/objects/products", {"properties": {"name": "Pump"}})
    hook.wait_for(lambda: len(hook.posts) == 1)
    assert any(t.name == "hubspot-sandbox-webhooks" for t in threading.enumerate())
    started = time.monotonic()
    sandbox.server.stop()
    assert time.monotonic() - started < 10
    assert not any(t.name == "hubspot-sandbox-webhooks" for t in threading.enumerate())
