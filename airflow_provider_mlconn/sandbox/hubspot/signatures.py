"""HubSpot's webhook request signatures, as its sender computes them (hubspot-commerce.md §4.3).

- v3 (``X-HubSpot-Signature-v3``): base64 HMAC-SHA256, key = the app's client secret, message =
  ``method + uri + body + timestamp`` (timestamp in epoch ms, also sent as ``X-HubSpot-Request-Timestamp``).
  In the URI a fixed set of percent-escapes is decoded first (never the ``?`` that starts the query).
- v2 (``X-HubSpot-Signature`` with version v2): hex SHA-256 of ``secret + method + uri + body``.
- v1 (``X-HubSpot-Signature`` with version v1, CRM object subscriptions): hex SHA-256 of ``secret + body``.

HubSpot's published test vectors (reference §4.3) are checked in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

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


def signing_uri(url: str) -> str:
    """The URI as the v3 signature covers it: the listed escapes decoded, nothing else."""
    return _ESCAPE.sub(lambda match: _DECODED[match.group(0).upper()], url)


def v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    message = method.encode() + signing_uri(uri).encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def headers(
    secret: str, uri: str, body: bytes, timestamp_ms: int, *, legacy_version: str = "v1"
) -> dict[str, str]:
    """The signature headers of one delivery: v3, plus v1 (or v2) in ``X-HubSpot-Signature`` as CRM
    object deliveries carry both [obs]."""
    legacy = v1(secret, body) if legacy_version == "v1" else v2(secret, "POST", uri, body)
    return {
        "X-HubSpot-Signature-v3": v3(secret, "POST", uri, body, timestamp_ms),
        "X-HubSpot-Request-Timestamp": str(timestamp_ms),
        "X-HubSpot-Signature": legacy,
        "X-HubSpot-Signature-Version": legacy_version,
    }
