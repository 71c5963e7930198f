"""Request parsing and response writing shared by the sandbox's route modules."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from fastapi import Request, Response

from airflow_provider_mlconn.sandbox.hubspot.catalog import ObjectTypeDef, resolve_object_type
from airflow_provider_mlconn.sandbox.hubspot.errors import HubSpotError, bad_request
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal
from airflow_provider_mlconn.sandbox.hubspot.values import iso, now_ms

JSON_TYPE = "application/json;charset=utf-8"
_NUMERIC = re.compile(r"^\d+$")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(content=body, status_code=status, media_type=JSON_TYPE, headers=headers)


def no_content() -> Response:
    return Response(status_code=204)


async def read_json(request: Request) -> Any:
    """The parsed body; malformed JSON is HubSpot's 400, not a crash."""
    raw = await request.body()
    if not raw.strip():
        raise bad_request("Invalid input JSON: the request body is empty.")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise bad_request(
            f"Invalid input JSON on line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except UnicodeDecodeError:
        raise bad_request("Invalid input JSON: the body is not UTF-8.") from None


def query_list(request: Request, name: str) -> list[str]:
    """A multi-valued query parameter, repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def query_bool(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.sandbox.portal
    return portal


def kind_named(name: str) -> ObjectTypeDef:
    """The object type a path names (plural, singular or 0-x id); HubSpot's 400 otherwise."""
    kind = resolve_object_type(name)
    if kind is None:
        raise bad_request(f"Unable to infer object type from: {name}", context={"objectType": [name]})
    return kind


def is_numeric(value: str) -> bool:
    return bool(_NUMERIC.match(value))


def encode_cursor(record_id: str) -> str:
    """A list cursor: opaque to clients, like HubSpot's (base64 of the next record id)."""
    return base64.b64encode(f"{record_id}\n".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        return int(base64.b64decode(cursor.encode(), validate=True).decode().strip())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request(f"Invalid paging cursor: {cursor!r}", context={"after": [cursor]}) from None


def inputs_of(body: Any, *, limit: int) -> list[Any]:
    """``body.inputs`` as a list of at most ``limit`` items (more is HubSpot's 400)."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise bad_request("Invalid input JSON: the body needs an 'inputs' list.")
    if len(inputs) > limit:
        raise HubSpotError(
            400,
            f"Batch input has {len(inputs)} inputs; the limit is {limit}.",
            category="VALIDATION_ERROR",
            context={"inputs": [str(len(inputs))]},
        )
    return inputs


def batch_body(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now_iso(),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return body


def now_iso() -> str:
    return iso(now_ms())
