"""Payloads at rest: authenticated encryption and keyed payload hashes.

Source and mapped payloads, and error texts (targets echo the values they refuse), are stored
encrypted: nothing a customer typed is readable in the raw database. Each value is sealed on its
own with AES-256-GCM (a random 96-bit nonce per value) under a key derived with HKDF from the
Fernet key; the token is ``m1.`` + url-safe base64 of nonce, ciphertext and tag. Payload hashes
are HMAC-SHA256 under another key derived from the primary Fernet key, so a hash cannot confirm
a guessed e-mail address either. Several comma-separated keys rotate like Airflow's own
``fernet_key``: the first encrypts, all decrypt. Fernet tokens written by earlier releases still
decrypt.

Why not Fernet for every value: a Fernet token costs ~6 µs of Python per value (a fresh cipher,
padding and HMAC object each time), the largest single cost of a record in the store; one AEAD
call on a key set up once costs under 1 µs (docs/BEHAVIOR.md S7).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_provider_mlconn.sync.errors import CallableContractError, StoreConfigurationError

#: Marks a token sealed with AES-256-GCM (Fernet tokens start with "gAAAAA").
TOKEN_PREFIX = "m1."
_NONCE_BYTES = 12
_AEAD_KEY_INFO = b"mlconn store payloads: AES-256-GCM, v1"
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
#: Where orjson and the json module write a float differently (1e-05 is 0.00001 in orjson, 1e+16
#: is 1e16): text with a digit before an "e" or four zeros after "0." (a float, or a string that
#: merely looks like one) is serialised again with the json module, so payload hashes stay what
#: earlier releases computed. Digits are folded to "0" first, so two substring searches do it.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def canonical_json(value: Any, *, what: str = "payload") -> str:
    """Stable JSON text (sorted keys, no spaces); dates as ISO, Decimals as strings, models dumped."""
    return canonical_bytes(value, what=what).decode()


def canonical_bytes(value: Any, *, what: str = "payload") -> bytes:
    """``canonical_json`` as UTF-8 bytes, byte for byte what ``json.dumps`` gives (orjson when it can).

    The one exception: NaN and infinities, which the json module writes as non-JSON words and
    orjson as ``null``; no payload a target accepts holds them.
    """
    try:
        data = orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:
        # Integers beyond 64 bits, non-string keys, or a value without JSON form (which the json
        # module then names).
        return _json_module_text(value, what).encode()
    if b"0.0000" in data or b"0e" in data.translate(_DIGITS_AS_ZERO):
        return _json_module_text(value, what).encode()
    return data


def json_bytes(value: Any, *, what: str = "payload") -> bytes:
    """Sorted-key JSON as orjson writes it, without ``canonical_bytes``' float check: for what is
    only decrypted or compared with text written the same way (sealed values, source digests)."""
    try:
        return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS)
    except TypeError:
        return _json_module_text(value, what).encode()


def _json_module_text(value: Any, what: str) -> str:
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


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # integers beyond 64 bits, which orjson refuses


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
        self._aeads = [AESGCM(_aead_key(part)) for part in parts]
        self._hash_key = hashlib.sha256(b"mlconn payload hash\x00" + parts[0].encode()).digest()
        # HMAC-SHA256 as RFC 2104 builds it, with the key's inner and outer pads hashed once:
        # each digest copies the two states (``hmac.new`` set the key up again every time: 8 µs
        # of a digest's 11 on this machine).
        padded = self._hash_key.ljust(hashlib.sha256().block_size, b"\x00")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))

    def encrypt(self, value: Any) -> str:
        """A token of the value's JSON."""
        return self.seal(json_bytes(value))

    def seal(self, data: bytes) -> str:
        """A token of ``data`` (already serialised) under the primary key."""
        nonce = _NONCES.take()
        sealed = self._aeads[0].encrypt(nonce, data, None)
        # base64.urlsafe_b64encode, without its two layers of Python around the C calls.
        return (
            TOKEN_PREFIX + binascii.b2a_base64(nonce + sealed, newline=False).translate(_TO_URLSAFE).decode()
        )

    def source_digest_and_token(self, value: Any) -> tuple[str, str]:
        """A digest and the token of a source, from a single serialisation. The digest is for
        comparing sources staged in one run; it equals ``digest`` unless the source holds a float
        orjson writes in another form than the json module (``canonical_bytes``)."""
        data = json_bytes(value)
        return self.digest_bytes(data), self.seal(data)

    def decrypt(self, token: str | None) -> Any:
        if token is None:
            return None
        if token.startswith(TOKEN_PREFIX):
            return _loads(self._open(token))
        try:
            return _loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken as error:
            raise _wrong_key() from error

    def _open(self, token: str) -> bytes:
        try:
            # base64.urlsafe_b64decode, without its layers of Python around the C call.
            raw = binascii.a2b_base64(token[len(TOKEN_PREFIX) :].encode("ascii").translate(_FROM_URLSAFE))
        except (binascii.Error, ValueError) as error:
            raise _wrong_key() from error
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        for aead in self._aeads:
            try:
                return aead.decrypt(nonce, sealed, None)
            except InvalidTag:
                continue
        raise _wrong_key()

    def digest(self, value: Mapping[str, Any] | Any) -> str:
        """HMAC-SHA256 (hex) of the canonical JSON; equal payloads give equal digests."""
        return self.digest_bytes(canonical_bytes(value))

    def digest_bytes(self, data: bytes) -> str:
        """HMAC-SHA256 (hex) of ``data`` under the payload hash key."""
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


class _NonceSource:
    """Random 96-bit nonces cut from 48 KB of ``os.urandom`` at a time: one system call per 4,096
    values instead of one per value (the values are as random; only the reads are pooled). A forked
    child starts with an empty pool: parent and child must never cut the same nonce (a repeated
    nonce under one GCM key gives the key stream away).

    No lock: ``list.pop`` is atomic, so each nonce is handed out once; two threads that find the
    pool empty at once each fill a pool, and the one replaced is dropped unused."""

    def __init__(self) -> None:
        self._pool: list[bytes] = []
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool = []

    def take(self) -> bytes:
        try:
            return self._pool.pop()
        except IndexError:
            block = os.urandom(_NONCE_BYTES * 4096)
            pool = [block[start : start + _NONCE_BYTES] for start in range(0, len(block), _NONCE_BYTES)]
            nonce = pool.pop()
            self._pool = pool
            return nonce


_NONCES = _NonceSource()


def _aead_key(fernet_key: str) -> bytes:
    """The AES-256 key for sealed tokens, derived from one Fernet key (its 32 bytes as key material)."""
    material = base64.urlsafe_b64decode(fernet_key.encode())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AEAD_KEY_INFO).derive(material)


def _wrong_key() -> StoreConfigurationError:
    return StoreConfigurationError(
        "a stored payload does not decrypt with the configured Fernet key(s); was the key "
        "rotated without keeping the old one after it in the list?"
    )
