"""What the provider changes in Airflow's api-server requests, for the UI (a root middleware).

- **The connection Test button** (``POST /api/v2/connections/test``) for ``jde_ais``, ``hubspot``
  and ``hubspot_webhooks`` connections. Airflow 3.3's UI sends ``"port": 0`` for a connection
  without a port (it builds the body with ``Number(connection.port)``), the route takes 0 for
  another destination than the stored NULL and refuses to test with the stored password ("The host
  or port to test differs from the stored connection"). Port 0 addresses nothing, so the middleware
  drops it (Airflow fixes the route the same way in apache/airflow#73298); an empty extra (``"{}"``)
  goes too. The route then tests a copy of the connection under a random id; the middleware keeps
  the requested id in ``http.tested_connection_id`` so the hooks' messages name the stored
  connection.
- **Every extra field in the connection Edit form.** The UI's form lists only the extras the
  stored connection has (when it has any), so a connection made with a few extras hides the others
  (``auth_mode``, ``timeout``, ...). Connection reads (``GET /api/v2/connections[/{id}]``) of the
  provider's types get each missing field with its default, the value the hook uses anyway.
- **Dry runs in the runs list.** Triggering a provider DAG (id ``mlconn_...``) with ``dry_run``
  true gives the run the id ``dry_run__<time>`` (unless one is given) and the note ``DRY_RUN_NOTE``
  (unless one is given): the runs list shows both.

Bodies are rewritten by pure functions (``connection_test_body``, ``trigger_body``,
``connection_with_defaults``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlconn.http import tested_connection_id
from airflow_provider_mlconn.hubspot import connection as hubspot_connection
from airflow_provider_mlconn.hubspot import webhook_connection
from airflow_provider_mlconn.jde import connection as jde_connection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The provider's connection types and their extra fields (``conn-fields``).
CONN_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    jde_connection.CONN_TYPE: jde_connection.CONN_FIELDS,
    hubspot_connection.CONN_TYPE: hubspot_connection.CONN_FIELDS,
    webhook_connection.CONN_TYPE: webhook_connection.CONN_FIELDS,
}
CONN_TYPES = frozenset(CONN_FIELDS)
DAG_ID_PREFIX = "mlconn_"
DRY_RUN_NOTE = "Dry run: read and mapped only; nothing written, no watermark moved."
DRY_RUN_ID_PREFIX = "dry_run__"
_TEST_PATH = re.compile(r"/api/v2/connections/test$")
_TRIGGER_PATH = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns$")
_CONNECTIONS_PATH = re.compile(r"/api/v2/connections(/[^/]+)?$")
_MAX_BODY = 1_000_000


def connection_test_body(body: dict[str, Any]) -> dict[str, Any]:
    """The Test request of a provider connection without the UI's stand-ins for "none": ``"port": 0``
    and ``"extra": "{}"`` (Airflow would mask the 2-character text as a secret and warn it is too
    short); the stored values are tested instead."""
    if body.get("conn_type") not in CONN_TYPES:
        return body
    blank = {"port": (0, "0"), "extra": ("{}", "")}
    cleaned = {name: value for name, value in body.items() if value not in blank.get(name, ())}
    return cleaned if len(cleaned) != len(body) else body


def trigger_body(dag_id: str, body: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The trigger request of a provider DAG's dry run with a run id and a note saying so."""
    conf = body.get("conf")
    dry_run = isinstance(conf, dict) and conf.get("dry_run") in (True, "true", "True")
    if not (dag_id.startswith(DAG_ID_PREFIX) and dry_run):
        return body
    marked = dict(body)
    if not (body.get("note") or "").strip():
        marked["note"] = DRY_RUN_NOTE
    if not (body.get("dag_run_id") or "").strip():
        marked["dag_run_id"] = f"{DRY_RUN_ID_PREFIX}{(now or datetime.now(timezone.utc)).isoformat()}"
    return marked


def connection_with_defaults(connection: dict[str, Any]) -> dict[str, Any]:
    """A connection as the API shows it, its extra completed with the defaults of missing fields."""
    fields = CONN_FIELDS.get(str(connection.get("conn_type")))
    extra = _json_object((connection.get("extra") or "").encode()) if fields else None
    if not fields or not extra:
        return connection  # no extra at all: the UI shows every field with its default already
    missing = {
        name: spec.get("schema", {}).get("default") for name, spec in fields.items() if name not in extra
    }
    if not missing:
        return connection
    return {**connection, "extra": json.dumps({**extra, **missing})}


def connections_response(body: Any) -> Any:
    """``GET /api/v2/connections`` (a page) or ``/connections/{id}`` (one), completed."""
    if isinstance(body, dict) and isinstance(body.get("connections"), list):
        return {**body, "connections": [_completed(item) for item in body["connections"]]}
    return _completed(body)


def _completed(item: Any) -> Any:
    return connection_with_defaults(item) if isinstance(item, dict) else item


class ApiServerMiddleware:
    """Pure ASGI middleware: rewrites the two requests above, passes everything else through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "GET" and _CONNECTIONS_PATH.search(str(scope.get("path", ""))):
            # Uncompressed, so the answer can be read: a page of connections is small.
            headers = [(k, v) for k, v in scope.get("headers") or [] if k.lower() != b"accept-encoding"]
            await self.app({**scope, "headers": headers}, receive, _rewriting(send, connections_response))
            return
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        trigger = _TRIGGER_PATH.search(path)
        is_test = _TEST_PATH.search(path) is not None
        if not (is_test or trigger):
            await self.app(scope, receive, send)
            return
        raw, disconnected = await _read_body(receive)
        body = _json_object(raw)
        if body is None or disconnected:
            await self.app(scope, _replay(raw, receive), send)
            return
        if is_test:
            rewritten = connection_test_body(body)
        else:
            assert trigger is not None
            rewritten = trigger_body(trigger["dag_id"], body)
        if rewritten is not body:
            raw = json.dumps(rewritten).encode()
            scope = {**scope, "headers": _with_length(scope.get("headers") or [], len(raw))}
        token = tested_connection_id.set(str(body.get("connection_id") or "") or None) if is_test else None
        try:
            await self.app(scope, _replay(raw, receive), send)
        finally:
            if token is not None:
                tested_connection_id.reset(token)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body") or size > _MAX_BODY:
            return b"".join(chunks), False


def _json_object(raw: bytes) -> dict[str, Any] | None:
    if len(raw) > _MAX_BODY:
        return None
    try:
        parsed = json.loads(raw or b"null")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _replay(raw: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the (rewritten) body over once, then waits for the client as before."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


def _with_length(headers: list[tuple[bytes, bytes]], length: int) -> list[tuple[bytes, bytes]]:
    kept = [(name, value) for name, value in headers if name.lower() != b"content-length"]
    return [*kept, (b"content-length", str(length).encode())]


def _rewriting(send: Send, rewrite: Callable[[Any], Any]) -> Send:
    """A ``send`` that holds a JSON response back, rewrites a 200's body and sends it whole."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        raw = b"".join(chunks)
        headers = list(start.get("headers") or [])
        names = {name.lower(): value for name, value in headers}
        body = _json_object(raw) if start.get("status") == 200 and b"content-encoding" not in names else None
        if body is not None:
            rewritten = rewrite(body)
            if rewritten != body:
                raw = json.dumps(rewritten).encode()
                headers = _with_length(headers, len(raw))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": raw, "more_body": False})

    return wrapped
