"""Payloads at rest: Fernet encryption and keyed payload hashes.

Source and mapped payloads, and error texts (targets echo the values they refuse), are stored as
Fernet tokens: nothing a customer typed is readable in the raw database. Payload hashes are
HMAC-SHA256 under a key derived from the primary Fernet key, so a hash cannot confirm a guessed
e-mail address either. Several comma-separated keys rotate like Airflow's own ``fernet_key``:
the first encrypts, all decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from airflow_provider_mlconn.sync.errors import CallableContractError, StoreConfigurationError


def canonical_json(value: Any, *, what: str = "payload") -> str:
    """Stable JSON text (sorted keys, no spaces); dates as ISO, Decimals as strings, models dumped."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
        )
    except (TypeError, ValueError) as error:
        raise CallableContractError(f"{what} is not JSON-serialisable: {error}") from error


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} value {value!r} has no JSON form")


class PayloadCipher:
    """Encrypts and hashes payloads with one set of Fernet keys (comma-separated, first is primary)."""

    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise StoreConfigurationError("no Fernet key given")
        try:
            fernets = [Fernet(part.encode()) for part in parts]
        except (ValueError, TypeError) as error:
            raise StoreConfigurationError(
                "the Fernet key is not a url-safe base64 32-byte key (make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from error
        self._fernet = MultiFernet(fernets)
        self._hash_key = hashlib.sha256(b"mlconn payload hash\x00" + parts[0].encode()).digest()

    def encrypt(self, value: Any) -> str:
        """A Fernet token of the value's canonical JSON."""
        return self._fernet.encrypt(canonical_json(value).encode()).decode("ascii")

    def decrypt(self, token: str | None) -> Any:
        if token is None:
            return None
        try:
            return json.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken as error:
            raise StoreConfigurationError(
                "a stored payload does not decrypt with the configured Fernet key(s); was the key "
                "rotated without keeping the old one after it in the list?"
            ) from error

    def digest(self, value: Mapping[str, Any] | Any) -> str:
        """HMAC-SHA256 (hex) of the canonical JSON; equal payloads give equal digests."""
        return hmac.new(self._hash_key, canonical_json(value).encode(), hashlib.sha256).hexdigest()
