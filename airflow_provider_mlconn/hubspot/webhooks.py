"""HubSpot webhook deliveries as the receiver sees them: signatures, events, and what they schedule.

Pure (no I/O, no Airflow): ``plugins/webhooks.py`` serves it. Facts: shared reference
hubspot-commerce.md §4 and hubspot.md §9; the rules we follow: docs/BEHAVIOR.md H20.

- **v3** (``X-HubSpot-Signature-v3``): base64 HMAC-SHA256 keyed with the app's client secret over
  ``method + uri + body + timestamp``; the timestamp (``X-HubSpot-Request-Timestamp``, epoch ms) must
  be within 5 minutes of now. In the URI a fixed set of percent-escapes is decoded first.
- **v2** / **v1** (``X-HubSpot-Signature`` + ``X-HubSpot-Signature-Version``; legacy apps): hex
  SHA-256 of ``secret + method + uri + body`` / ``secret + body``. They carry no timestamp, so a
  captured request can be replayed for ever: accepted only where the connection allows it.

Written from the reference, not from the sandbox's sender (the sandbox imports nothing of ours and
we nothing of it): the tests check both against HubSpot's published test vectors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlconn.hubspot.objects import ObjectType

#: HubSpot refuses v3 requests older than this [doc]; we also refuse ones this far in the future.
MAX_AGE_MS = 5 * 60 * 1000
#: HubSpot sends "up to 100 events" per request [doc].
MAX_EVENTS = 100
#: 100 events are about 40 KB; anything near a megabyte is not HubSpot.
DEFAULT_MAX_BODY_BYTES = 1_000_000

V3_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
LEGACY_HEADER = "x-hubspot-signature"
LEGACY_VERSION_HEADER = "x-hubspot-signature-version"

# The escapes the v3 check decodes in the URI [doc]; any other escape stays as it is.
_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPE = re.compile("|".join(_DECODED), re.IGNORECASE)


class Refused(Exception):
    """A request that is not processed: ``status`` (401 or 400) and ``reason`` (a short code that
    is counted: ``unsigned``, ``bad_signature``, ``stale``, ``too_large``, ``malformed``,
    ``too_many_events``, ``wrong_portal``, ``not_configured``)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


# -- signatures --------------------------------------------------------------------------------------


def signing_uri(uri: str) -> str:
    """The URI as the v3 signature covers it: the listed escapes decoded, nothing else."""
    return _ESCAPE.sub(lambda match: _DECODED[match.group(0).upper()], uri)


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + signing_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def v2_signature(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def v1_signature(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def verify_signature(
    *,
    headers: Mapping[str, str],
    method: str,
    uri: str,
    body: bytes,
    secrets: Sequence[str],
    now_ms: int,
    allow_legacy: bool = False,
) -> str:
    """The signature version that vouches for the request (``v3``, or ``v1``/``v2`` when
    ``allow_legacy``), else ``Refused`` (401). ``headers`` are matched case-insensitively (HubSpot's
    docs spell the header both ``-v3`` and ``-V3``); ``secrets`` are the client secrets accepted (two
    while one is rotated). Every comparison is constant-time."""
    lower = {name.lower(): value for name, value in headers.items()}
    if not secrets:
        raise Refused(401, "not_configured", "no client secret is configured for HubSpot webhooks")
    signature = lower.get(V3_HEADER)
    if signature is not None:
        timestamp = lower.get(TIMESTAMP_HEADER, "").strip()
        if not timestamp.isdigit():
            raise Refused(
                401, "unsigned", "X-HubSpot-Signature-v3 without a numeric X-HubSpot-Request-Timestamp"
            )
        if abs(now_ms - int(timestamp)) > MAX_AGE_MS:
            raise Refused(401, "stale", "X-HubSpot-Request-Timestamp is more than 5 minutes from now")
        expected = [v3_signature(secret, method, uri, body, timestamp) for secret in secrets]
        if _matches(signature.strip(), expected):
            return "v3"
        raise Refused(401, "bad_signature", "X-HubSpot-Signature-v3 does not match")
    legacy = lower.get(LEGACY_HEADER)
    if legacy is None:
        raise Refused(401, "unsigned", "no X-HubSpot-Signature-v3 header")
    if not allow_legacy:
        raise Refused(
            401, "unsigned", "only v3 signatures are accepted (the connection does not allow v1/v2)"
        )
    version = lower.get(LEGACY_VERSION_HEADER, "v1").strip().lower()
    if version == "v1":
        expected = [v1_signature(secret, body) for secret in secrets]
    elif version == "v2":
        expected = [v2_signature(secret, method, uri, body) for secret in secrets]
    else:
        raise Refused(401, "unsigned", f"unknown X-HubSpot-Signature-Version {version!r}")
    if _matches(legacy.strip().lower(), expected):
        return version
    raise Refused(401, "bad_signature", f"X-HubSpot-Signature ({version}) does not match")


def _matches(given: str, expected: Sequence[str]) -> bool:
    # Compare against every secret (no early exit) so the time says nothing about which one matched.
    found = False
    for candidate in expected:
        found |= hmac.compare_digest(given.encode(), candidate.encode())
    return found


def public_uri(base_url: str | None, path: str, query: str, request_url: str) -> str:
    """The URI HubSpot signed: the target URL as configured in the app. Behind a proxy the request
    the api-server sees has another scheme/host; ``base_url`` (the connection's public base URL,
    e.g. ``https://airflow.example.com``) replaces them, and the path and query are the request's."""
    if not base_url:
        return request_url
    return base_url.rstrip("/") + path + (f"?{query}" if query else "")


# -- events ------------------------------------------------------------------------------------------

#: The object types whose events schedule a flow, and the Airflow asset each schedules. These are not
#: the ``hubspot://crm/objects/...`` assets the flows' load tasks update: a flow scheduled on the asset
#: its own write-back updates would trigger itself after every run.
WEBHOOK_ASSETS: dict[ObjectType, tuple[str, str]] = {
    ObjectType.INVOICES: ("hubspot_webhook_invoices", "hubspot://webhooks/invoices"),
    ObjectType.COMMERCE_PAYMENTS: (
        "hubspot_webhook_commerce_payments",
        "hubspot://webhooks/commerce_payments",
    ),
    ObjectType.PRODUCTS: ("hubspot_webhook_products", "hubspot://webhooks/products"),
}
#: The ``extra`` of the asset events the receiver emits carries this source name.
EVENT_SOURCE = "hubspot_webhook"
#: The run option (``window.options``) naming the HubSpot record ids a webhook-triggered run reads.
HUBSPOT_IDS_OPTION = "hubspot_ids"
#: More ids than this in one run: it reads its window instead (a search is cheaper than id reads).
MAX_TRIGGERED_IDS = 2000
#: Legacy subscription types name the object in front of the action (``product.creation``).
_LEGACY_PREFIXES = {
    "contact": ObjectType.CONTACTS,
    "company": ObjectType.COMPANIES,
    "deal": ObjectType.DEALS,
    "line_item": ObjectType.LINE_ITEMS,
    "product": ObjectType.PRODUCTS,
}
#: Properties the connector itself writes: HubSpot fires on our write-backs too; they change nothing
#: a flow reads from HubSpot, so they schedule nothing (else every posting triggered one more run).
OWN_PROPERTY_PREFIX = "jde_"
_REQUIRED_INTS = ("eventId", "portalId", "occurredAt", "objectId")


@dataclass(frozen=True)
class WebhookEvent:
    """One event of a delivery, as recorded: who, what, when, and what it schedules."""

    dedup_key: str
    event_id: int
    portal_id: int
    subscription_type: str
    object_type: str | None  # the ObjectType value, or None for a type we do not know
    object_id: str
    property_name: str | None
    occurred_at: datetime
    attempt: int
    asset_uri: str | None  # None: recorded, schedules nothing
    ignored: str | None  # why it schedules nothing

    @property
    def asset_name(self) -> str | None:
        for name, uri in WEBHOOK_ASSETS.values():
            if uri == self.asset_uri:
                return name
        return None


def dedup_key(event: Mapping[str, Any]) -> str:
    """The event's content without ``attemptNumber``: a retry of a delivery is the same event, and
    ``eventId`` alone is "not guaranteed to be unique" [doc]."""
    content = {name: value for name, value in event.items() if name != "attemptNumber"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_events(body: bytes, *, portal_id: int | None = None) -> list[WebhookEvent]:
    """The events of a delivery body; ``Refused`` (400) when it is not a JSON array of 1 to 100
    HubSpot events (or, with ``portal_id``, an event is from another portal)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise Refused(400, "malformed", f"the body is not JSON: {error}") from None
    if not isinstance(data, list) or not data:
        raise Refused(400, "malformed", "the body must be a JSON array of events")
    if len(data) > MAX_EVENTS:
        raise Refused(400, "too_many_events", f"{len(data)} events; HubSpot sends at most {MAX_EVENTS}")
    events = [_event(item, index) for index, item in enumerate(data)]
    if portal_id is not None:
        others = sorted({e.portal_id for e in events if e.portal_id != portal_id})
        if others:
            raise Refused(400, "wrong_portal", f"events of portal {others}, not {portal_id}")
    return events


def _event(item: Any, index: int) -> WebhookEvent:
    if not isinstance(item, dict):
        raise Refused(400, "malformed", f"event {index} is not a JSON object")
    for name in _REQUIRED_INTS:
        value = item.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Refused(400, "malformed", f"event {index}: {name} must be an integer")
    subscription_type = item.get("subscriptionType")
    if not isinstance(subscription_type, str) or "." not in subscription_type:
        raise Refused(400, "malformed", f"event {index}: subscriptionType must be like 'object.creation'")
    attempt = item.get("attemptNumber", 0)
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise Refused(400, "malformed", f"event {index}: attemptNumber must be an integer")
    property_name = item.get("propertyName")
    if property_name is not None and not isinstance(property_name, str):
        raise Refused(400, "malformed", f"event {index}: propertyName must be a string")
    object_type = _object_type(item, subscription_type)
    asset_uri, ignored = _schedules(object_type, subscription_type, property_name)
    return WebhookEvent(
        dedup_key=dedup_key(item),
        event_id=item["eventId"],
        portal_id=item["portalId"],
        subscription_type=subscription_type[:100],
        object_type=None if object_type is None else object_type.value,
        object_id=str(item["objectId"]),
        property_name=None if property_name is None else property_name[:200],
        occurred_at=datetime.fromtimestamp(item["occurredAt"] / 1000, tz=timezone.utc),
        attempt=attempt,
        asset_uri=asset_uri,
        ignored=ignored,
    )


def _object_type(item: Mapping[str, Any], subscription_type: str) -> ObjectType | None:
    """Generic ``object.*`` events name the type by ``objectTypeId`` (``0-53``); legacy ones in the
    subscription type (``product.propertyChange``)."""
    type_id = item.get("objectTypeId")
    if isinstance(type_id, str) and type_id:
        try:
            return ObjectType.parse(type_id)
        except ValueError:
            return None
    return _LEGACY_PREFIXES.get(subscription_type.partition(".")[0])


def _schedules(
    object_type: ObjectType | None, subscription_type: str, property_name: str | None
) -> tuple[str | None, str | None]:
    if object_type is None or object_type not in WEBHOOK_ASSETS:
        return None, "no flow reads this object type from HubSpot"
    if subscription_type.endswith(".propertyChange") and (property_name or "").startswith(
        OWN_PROPERTY_PREFIX
    ):
        return None, "a property the connector writes (its own write-back)"
    return WEBHOOK_ASSETS[object_type][1], None


def asset_extra(events: Sequence[WebhookEvent]) -> dict[str, Any]:
    """The extra of the asset event for ``events`` (one object type): the record ids a run reads."""
    return {
        "source": EVENT_SOURCE,
        "object_type": events[0].object_type if events else None,
        "object_ids": sorted({e.object_id for e in events}, key=_id_order),
        "events": len(events),
    }


def object_ids_of(extras: Sequence[Mapping[str, Any]]) -> list[str]:
    """The record ids named by the receiver's asset events (their ``extra``), in id order."""
    ids: set[str] = set()
    for extra in extras:
        if extra.get("source") != EVENT_SOURCE:
            continue
        ids.update(str(i) for i in extra.get("object_ids") or [])
    return sorted(ids, key=_id_order)


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)
