"""The webhook receiver: HubSpot's signatures (its published test vectors), refusals, dedup, assets.

Requests are signed with the sandbox's sender (``sandbox/hubspot/signatures.py``), written apart
from the receiver's check: both must agree with HubSpot's vectors and with each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow_provider_mlconn.hooks.hubspot_webhooks import WebhookSettings, webhook_settings
from airflow_provider_mlconn.hubspot import webhooks
from airflow_provider_mlconn.plugins.webhooks import Receiver, create_app
from airflow_provider_mlconn.sandbox.hubspot import signatures as sandbox_signatures
from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.store import Store

pytestmark = pytest.mark.unit

# HubSpot's published test vectors (hubspot-commerce.md §4.3), as the sandbox's tests use them.
VECTOR_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
VECTOR_URI = "https://www.example.com/webhook_uri"
V1_VECTOR_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)

SECRET = "test-client-secret"
BASE = "http://testserver"
PATH = "/mlconn/webhooks/hubspot"
NOW_MS = 1_780_000_000_000
INVOICES_URI = "hubspot://webhooks/invoices"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("1693657560000", "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="),
        ("1700000300000", "RnbPH7+UMKVkbV32P8bz450N4M56aPmcru1+D3kSDtw="),
    ],
)
def test_v3_signatures_match_hubspots_test_vectors(timestamp: str, expected: str) -> None:
    body = b"{'example_field':'example_value'}"
    assert webhooks.v3_signature(VECTOR_SECRET, "POST", VECTOR_URI, body, timestamp) == expected
    headers = {"X-HubSpot-Signature-V3": expected, "X-HubSpot-Request-Timestamp": timestamp}
    version = webhooks.verify_signature(
        headers=headers,
        method="POST",
        uri=VECTOR_URI,
        body=body,
        secrets=[VECTOR_SECRET],
        now_ms=int(timestamp) + 299_000,
    )
    assert version == "v3"


def test_v2_and_v1_signatures_match_hubspots_test_vectors() -> None:
    v2_post = webhooks.v2_signature(VECTOR_SECRET, "POST", VECTOR_URI, b'{"example_field":"example_value"}')
    assert v2_post == "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    assert webhooks.v2_signature(VECTOR_SECRET, "GET", VECTOR_URI, b"") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    )
    v1 = webhooks.v1_signature(VECTOR_SECRET, V1_VECTOR_BODY)
    assert v1 == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    assert (
        webhooks.verify_signature(
            headers={"X-HubSpot-Signature": v1, "X-HubSpot-Signature-Version": "v1"},
            method="POST",
            uri=VECTOR_URI,
            body=V1_VECTOR_BODY,
            secrets=[VECTOR_SECRET],
            now_ms=0,
            allow_legacy=True,
        )
        == "v1"
    )


def test_the_v3_uri_decodes_only_the_listed_escapes_as_the_sandbox_sender_does() -> None:
    uri = "https://hooks.test/a%3Ab%2fc?x=%40y%20z&q=%3F"
    assert webhooks.signing_uri(uri) == "https://hooks.test/a:b/c?x=@y%20z&q=?"
    assert webhooks.signing_uri(uri) == sandbox_signatures.signing_uri(uri)


# -- the receiver over HTTP ----------------------------------------------------------------------------


class Emitted:
    """Asset events the receiver emitted (stands in for Airflow's asset manager)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.answer: bool | Exception = True

    def __call__(self, name: str, uri: str, extra: Mapping[str, Any]) -> bool:
        if isinstance(self.answer, Exception):
            raise self.answer
        self.calls.append((name, uri, dict(extra)))
        return self.answer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", PayloadCipher(Fernet.generate_key().decode()))
    yield store
    store.dispose()


class Harness:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.emitted = Emitted()
        self.settings = WebhookSettings(secrets=(SECRET,))
        self.now_ms = NOW_MS
        receiver = Receiver(
            settings=lambda: self.settings,
            inbox=lambda: store.webhooks,
            emit=self.emitted,
            clock=lambda: self.now_ms / 1000,
        )
        # Mounted under /mlconn as the api-server mounts the plugin's app.
        server = FastAPI()
        server.mount("/mlconn", create_app(receiver))
        self.client = TestClient(server)

    def post(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        secret: str = SECRET,
        signed_uri: str = BASE + PATH,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        sent = dict(
            headers
            if headers is not None
            else sandbox_signatures.headers(secret, signed_uri, body, timestamp or self.now_ms)
        )
        sent["Content-Type"] = "application/json"
        return self.client.post(PATH, content=body, headers=sent)

    def requests(self) -> dict[str, int]:
        return self.store.webhooks.request_counts("hubspot")

    def events(self) -> dict[str, int]:
        return self.store.webhooks.event_counts("hubspot")


@pytest.fixture
def harness(store: Store) -> Harness:
    return Harness(store)


def event(object_id: int = 101, **fields: Any) -> dict[str, Any]:
    body = {
        "eventId": 1000 + object_id,
        "subscriptionId": 1,
        "portalId": 4242,
        "appId": 4040001,
        "occurredAt": NOW_MS - 2000,
        "subscriptionType": "object.propertyChange",
        "objectTypeId": "0-53",
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM_UI",
        "propertyName": "hs_invoice_status",
        "propertyValue": "open",
    }
    body.update(fields)
    return body


def encode(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()


def test_a_signed_delivery_is_recorded_and_schedules_its_flow_with_the_record_ids(harness: Harness) -> None:
    answer = harness.post(encode([event(101), event(102), event(101, propertyName="hs_due_date")]))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ok",
        "received": 3,
        "new": 3,
        "duplicates": 0,
        "scheduled": {INVOICES_URI: 2},
    }
    (call,) = harness.emitted.calls
    assert call == (
        "hubspot_webhook_invoices",
        INVOICES_URI,
        {"source": "hubspot_webhook", "object_type": "invoices", "object_ids": ["101", "102"], "events": 3},
    )
    assert harness.events() == {INVOICES_URI: 3}
    assert harness.requests() == {"accepted": 1}


def test_each_object_type_schedules_its_own_asset_once_per_request(harness: Harness) -> None:
    body = encode(
        [
            event(1),
            event(2, objectTypeId="0-101", propertyName="hs_latest_status"),
            event(3, subscriptionType="product.creation", objectTypeId=None),
            event(4, objectTypeId="0-8"),  # a line item: no flow reads line item events
        ]
    )
    assert harness.post(body).status_code == 200
    assert {(uri, tuple(extra["object_ids"])) for _, uri, extra in harness.emitted.calls} == {
        (INVOICES_URI, ("1",)),
        ("hubspot://webhooks/commerce_payments", ("2",)),
        ("hubspot://webhooks/products", ("3",)),
    }
    assert harness.events()["ignored"] == 1


def test_our_own_write_back_schedules_nothing(harness: Harness) -> None:
    answer = harness.post(encode([event(7, propertyName="jde_document_number", propertyValue="1001")]))
    assert answer.status_code == 200
    assert answer.json()["scheduled"] == {}
    assert harness.emitted.calls == []
    assert harness.events() == {"ignored": 1}


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong secret", "bad_signature"),
        ("tampered body", "bad_signature"),
        ("other url", "bad_signature"),
        ("unsigned", "unsigned"),
        ("no timestamp", "unsigned"),
        ("stale", "stale"),
        ("from the future", "stale"),
    ],
)
def test_badly_signed_unsigned_and_stale_requests_are_refused_counted_and_never_processed(
    harness: Harness, case: str, reason: str
) -> None:
    body = encode([event(5)])
    signed = sandbox_signatures.headers(SECRET, BASE + PATH, body, NOW_MS)
    if case == "wrong secret":
        answer = harness.post(body, secret="not-the-secret")
    elif case == "tampered body":
        answer = harness.post(encode([event(6)]), headers=signed)
    elif case == "other url":
        answer = harness.post(body, signed_uri="https://elsewhere.example.com" + PATH)
    elif case == "unsigned":
        answer = harness.post(body, headers={})
    elif case == "no timestamp":
        answer = harness.post(body, headers={"X-HubSpot-Signature-v3": signed["X-HubSpot-Signature-v3"]})
    elif case == "stale":
        answer = harness.post(body, timestamp=NOW_MS - 5 * 60 * 1000 - 1)
    else:
        answer = harness.post(body, timestamp=NOW_MS + 5 * 60 * 1000 + 1)
    assert answer.status_code == 401
    assert answer.json()["reason"] == reason
    assert harness.emitted.calls == []
    assert harness.events() == {}
    assert harness.requests() == {reason: 1}


def test_a_timestamp_just_within_five_minutes_is_accepted(harness: Harness) -> None:
    assert harness.post(encode([event(5)]), timestamp=NOW_MS - 5 * 60 * 1000 + 1000).status_code == 200


def test_a_replayed_request_is_deduplicated_and_a_late_replay_is_stale(harness: Harness) -> None:
    body = encode([event(8), event(9)])
    signed = sandbox_signatures.headers(SECRET, BASE + PATH, body, NOW_MS)
    assert harness.post(body, headers=signed).status_code == 200
    again = harness.post(body, headers=signed)
    assert again.status_code == 200
    assert again.json() | {"status": "ok"} == {
        "status": "ok",
        "received": 2,
        "new": 0,
        "duplicates": 2,
        "scheduled": {},
    }
    assert len(harness.emitted.calls) == 1
    harness.now_ms = NOW_MS + 5 * 60 * 1000 + 1
    assert harness.post(body, headers=signed).json()["reason"] == "stale"
    assert harness.requests() == {"accepted": 2, "stale": 1}
    assert harness.events() == {INVOICES_URI: 2}


def test_a_retried_delivery_is_the_same_event_but_a_reused_event_id_is_not(harness: Harness) -> None:
    assert harness.post(encode([event(10)])).status_code == 200
    retry = harness.post(encode([event(10, attemptNumber=1)]))
    assert retry.json()["duplicates"] == 1
    # eventId "is not guaranteed to be unique": another change under the same id is another event.
    other = harness.post(encode([event(10, propertyName="hs_due_date", propertyValue="2026-12-01")]))
    assert other.json()["new"] == 1
    assert harness.events() == {INVOICES_URI: 2}


def test_legacy_v1_and_v2_signatures_only_where_the_connection_allows_them(harness: Harness) -> None:
    body = encode([event(11)])
    v1_only = {
        "X-HubSpot-Signature": sandbox_signatures.v1(SECRET, body),
        "X-HubSpot-Signature-Version": "v1",
    }
    refused = harness.post(body, headers=v1_only)
    assert (refused.status_code, refused.json()["reason"]) == (401, "unsigned")
    harness.settings = WebhookSettings(secrets=(SECRET,), allow_legacy_signatures=True)
    assert harness.post(body, headers=v1_only).status_code == 200
    v2_only = {
        "X-HubSpot-Signature": sandbox_signatures.v2(SECRET, "POST", BASE + PATH, encode([event(12)])),
        "X-HubSpot-Signature-Version": "v2",
    }
    assert harness.post(encode([event(12)]), headers=v2_only).status_code == 200
    bad_v1 = dict(v1_only, **{"X-HubSpot-Signature": "0" * 64})
    assert harness.post(body, headers=bad_v1).json()["reason"] == "bad_signature"


def test_behind_a_proxy_the_signature_covers_the_public_url(harness: Harness) -> None:
    public = "https://airflow.example.com"
    body = encode([event(13)])
    assert harness.post(body, signed_uri=public + PATH).status_code == 401
    harness.settings = WebhookSettings(secrets=(SECRET,), public_base_url=public + "/")
    assert harness.post(body, signed_uri=public + PATH).status_code == 200


def test_a_rotated_secret_is_accepted_alongside_the_new_one(harness: Harness) -> None:
    harness.settings = WebhookSettings(secrets=("new-secret", SECRET))
    assert harness.post(encode([event(14)])).status_code == 200
    assert harness.post(encode([event(15)]), secret="new-secret").status_code == 200


def test_without_a_client_secret_every_request_is_refused(harness: Harness) -> None:
    harness.settings = webhook_settings(None)
    answer = harness.post(encode([event(16)]))
    assert (answer.status_code, answer.json()["reason"]) == (401, "not_configured")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "malformed"),
        (b'{"eventId": 1}', "malformed"),
        (b"[]", "malformed"),
        (b'["text"]', "malformed"),
        (encode([{k: v for k, v in event(1).items() if k != "objectId"}]), "malformed"),
        (encode([event(1, occurredAt="yesterday")]), "malformed"),
        (encode([event(1, subscriptionType=None)]), "malformed"),
        (encode([event(i) for i in range(101)]), "too_many_events"),
    ],
)
def test_malformed_bodies_are_refused_with_400(harness: Harness, body: bytes, reason: str) -> None:
    answer = harness.post(body)
    assert (answer.status_code, answer.json()["reason"]) == (400, reason)
    assert harness.emitted.calls == [] and harness.events() == {}


def test_an_oversized_body_is_refused_before_its_signature_is_checked(harness: Harness) -> None:
    harness.settings = WebhookSettings(secrets=(SECRET,), max_body_bytes=2048)
    body = encode([event(i, propertyValue="x" * 100) for i in range(20)])
    assert len(body) > 2048
    answer = harness.post(body)
    assert (answer.status_code, answer.json()["reason"]) == (400, "too_large")
    assert harness.requests() == {"too_large": 1}


def test_events_of_another_portal_are_refused_when_the_portal_is_set(harness: Harness) -> None:
    harness.settings = WebhookSettings(secrets=(SECRET,), portal_id=4242)
    assert harness.post(encode([event(1)])).status_code == 200
    answer = harness.post(encode([event(2, portalId=9999)]))
    assert (answer.status_code, answer.json()["reason"]) == (400, "wrong_portal")


def test_a_hundred_events_are_answered_fast_with_one_asset_event(harness: Harness) -> None:
    body = encode([event(i) for i in range(1, 101)])
    started = datetime.now(timezone.utc)
    answer = harness.post(body)
    elapsed = (datetime.now(timezone.utc) - started).total_seconds()
    assert answer.status_code == 200
    assert elapsed < 1.0  # HubSpot waits 5 s
    (call,) = harness.emitted.calls
    assert len(call[2]["object_ids"]) == 100


def test_when_the_asset_event_fails_hubspots_retry_schedules_it(harness: Harness) -> None:
    harness.emitted.answer = RuntimeError("metadata database unavailable")
    first = harness.post(encode([event(20)]))
    assert first.status_code == 503
    harness.emitted.answer = True
    retry = harness.post(encode([event(20, attemptNumber=1)]))
    assert retry.json() | {"status": "ok"} == {
        "status": "ok",
        "received": 1,
        "new": 0,
        "duplicates": 1,
        "scheduled": {INVOICES_URI: 1},
    }
    assert harness.requests() == {"not_recorded": 1, "accepted": 1}


def test_events_for_an_asset_no_dag_declares_are_kept_for_the_next_delivery(harness: Harness) -> None:
    harness.emitted.answer = False
    assert harness.post(encode([event(30)])).json()["scheduled"] == {}
    harness.emitted.answer = True
    assert harness.post(encode([event(30, attemptNumber=1)])).json()["scheduled"] == {INVOICES_URI: 1}


def test_the_connection_gives_the_receiver_its_settings() -> None:
    class Conn:
        password = " s3cret "
        extra_dejson: Mapping[str, Any] = {
            "public_base_url": "https://airflow.example.com",
            "allow_legacy_signatures": "true",
            "previous_client_secret": "old",
            "portal_id": "4242",
            "max_body_bytes": 4096,
        }

    settings = webhook_settings(Conn())
    assert settings == WebhookSettings(
        secrets=("s3cret", "old"),
        public_base_url="https://airflow.example.com",
        allow_legacy_signatures=True,
        portal_id=4242,
        max_body_bytes=4096,
    )
    assert "s3cret" not in repr(settings)
    Conn.extra_dejson = {"public_base_url": "airflow.example.com"}
    with pytest.raises(ValueError, match="public_base_url must be an http"):
        webhook_settings(Conn())


def test_the_inbox_forgets_events_after_the_retention(harness: Harness, store: Store) -> None:
    from datetime import timedelta

    from airflow_provider_mlconn.sync.retention import prune_store

    assert harness.post(encode([event(40)])).status_code == 200
    prune_store(store, older_than_days=1, now=datetime.now(timezone.utc) + timedelta(days=2))
    assert harness.events() == {} and harness.requests() == {}
    # Forgotten: a very late retry of the delivery would schedule it again (and cost one id read).
    assert harness.post(encode([event(40, attemptNumber=9)])).json()["new"] == 1
