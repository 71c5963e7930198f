"""The HubSpot webhook receiver: ``POST /mlconn/webhooks/hubspot`` on the api-server (contract).

The plugin mounts ``app`` under ``/mlconn`` (Airflow 3 ``fastapi_apps``). A delivery is answered
well within HubSpot's 5 s, and never synced inline:

1. the body is read up to the connection's ``max_body_bytes`` (larger: 400 ``too_large``, unread);
2. the signature is checked with the client secret of the ``hubspot_webhooks_default`` connection
   (v3, timestamp within 5 minutes; v1/v2 only if the connection allows them): else 401;
3. the body must be a JSON array of 1-100 HubSpot events: else 400;
4. the events are recorded in the store's inbox, deduplicated on their content;
5. per object type with new events, one Airflow asset event (``hubspot://webhooks/invoices``, ...)
   whose extra names the record ids: it schedules the flow's DAG, whose run reads those records
   by id and moves no watermark (docs/BEHAVIOR.md H20).

Every request, accepted or refused, is counted in the store (``mlconn_webhook_requests``) and a
refusal is logged with its reason. The parts that touch Airflow (connection, store, asset events)
are passed in, so the tests run the same app without an api-server.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from airflow_provider_mlconn.hooks.hubspot_webhooks import WebhookSettings, webhook_settings
from airflow_provider_mlconn.hubspot import webhook_connection
from airflow_provider_mlconn.hubspot.webhooks import (
    WEBHOOK_ASSETS,
    Refused,
    WebhookEvent,
    asset_extra,
    parse_events,
    public_uri,
    verify_signature,
)
from airflow_provider_mlconn.sync.store import WebhookInbox

log = logging.getLogger(__name__)

SOURCE = "hubspot"
#: The path under the plugin's ``/mlconn`` prefix.
ROUTE = webhook_connection.RECEIVER_PATH.removeprefix("/mlconn")
URL_PREFIX = "/mlconn"
_ASSET_NAMES = {uri: name for name, uri in WEBHOOK_ASSETS.values()}

#: Emits one asset event: ``emit(name, uri, extra)``; False when no DAG schedules on the asset.
Emit = Callable[[str, str, Mapping[str, Any]], bool]


@dataclass
class Receiver:
    """What a delivery needs: the settings, the inbox and a way to emit asset events."""

    settings: Callable[[], WebhookSettings]
    inbox: Callable[[], WebhookInbox]
    emit: Emit
    clock: Callable[[], float] = time.time

    async def receive(self, request: Request) -> JSONResponse:
        started = time.monotonic()
        try:
            settings = await run_in_threadpool(self.settings)
        except Exception as error:
            log.error("HubSpot webhook: cannot read the connection: %s", error)
            return JSONResponse({"status": "error", "message": "receiver not available"}, status_code=503)
        try:
            body = await _read_body(request, settings.max_body_bytes)
            version = verify_signature(
                headers=request.headers,
                method=request.method,
                uri=public_uri(
                    settings.public_base_url, request.url.path, request.url.query, str(request.url)
                ),
                body=body,
                secrets=settings.secrets,
                now_ms=int(self.clock() * 1000),
                allow_legacy=settings.allow_legacy_signatures,
            )
            events = parse_events(body, portal_id=settings.portal_id)
        except Refused as refused:
            log.warning(
                "HubSpot webhook refused (%s, %d): %s", refused.reason, refused.status, refused.message
            )
            await self._log(
                status=refused.status, outcome=refused.reason, started=started, detail=refused.message
            )
            return JSONResponse(
                {"status": "error", "reason": refused.reason, "message": refused.message},
                status_code=refused.status,
            )
        try:
            answer = await run_in_threadpool(self._record_and_schedule, events)
        except Exception as error:
            # HubSpot retries a 5xx; the events not signalled yet are signalled then.
            log.exception("HubSpot webhook: %d events not recorded or scheduled", len(events))
            await self._log(status=503, outcome="not_recorded", started=started, detail=str(error))
            return JSONResponse({"status": "error", "message": "not recorded; retry"}, status_code=503)
        await self._log(
            status=200,
            outcome="accepted",
            started=started,
            events=len(events),
            new_events=answer["new"],
            duplicates=answer["duplicates"],
            detail=f"signature {version}",
        )
        return JSONResponse({"status": "ok", **answer})

    def _record_and_schedule(self, events: list[WebhookEvent]) -> dict[str, Any]:
        inbox = self.inbox()
        recorded = inbox.record(SOURCE, events)
        by_asset: dict[str, list[WebhookEvent]] = defaultdict(list)
        for event in events:
            if event.dedup_key in recorded.to_signal and event.asset_uri is not None:
                by_asset[event.asset_uri].append(event)
        scheduled: dict[str, int] = {}
        signalled: list[str] = []
        for uri, found in by_asset.items():
            if self.emit(_ASSET_NAMES[uri], uri, asset_extra(found)):
                scheduled[uri] = len({e.object_id for e in found})
                signalled.extend(e.dedup_key for e in found)
            else:
                log.warning(
                    "HubSpot webhook: no DAG schedules on %s (is the flow's DAG deployed?); %d events "
                    "recorded, the flow's schedule reads them",
                    uri,
                    len(found),
                )
        if signalled:
            inbox.mark_signalled(SOURCE, signalled)
        return {
            "received": len(events),
            "new": len(recorded.new),
            "duplicates": recorded.duplicates,
            "scheduled": scheduled,
        }

    async def _log(self, *, status: int, outcome: str, started: float, **counts: Any) -> None:
        try:
            await run_in_threadpool(
                lambda: self.inbox().log_request(
                    SOURCE, status=status, outcome=outcome, seconds=time.monotonic() - started, **counts
                )
            )
        except Exception as error:  # counting must not change the answer
            log.warning("HubSpot webhook: request not counted: %s", error)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, or ``Refused`` past ``limit`` bytes (by Content-Length, else while reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(400, "too_large", f"body of {declared} bytes; the limit is {limit}")
    received = bytearray()
    async for chunk in request.stream():
        received.extend(chunk)
        if len(received) > limit:
            raise Refused(400, "too_large", f"body over {limit} bytes")
    return bytes(received)


def create_app(receiver: Receiver) -> FastAPI:
    """The FastAPI app the plugin mounts under ``/mlconn``."""
    app = FastAPI(
        title="mlconn webhooks",
        description="HubSpot webhook receiver (airflow-provider-mlconn)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_api_route(ROUTE, receiver.receive, methods=["POST"], include_in_schema=False)
    return app


# -- inside Airflow's api-server ---------------------------------------------------------------------


def airflow_settings() -> WebhookSettings:
    """The receiver's connection (conn id from ``[mlconn] hubspot_webhooks_conn_id``), read from
    env vars, secrets backends or the metadata database like the api-server's own routes do."""
    from airflow.configuration import conf

    from airflow_provider_mlconn.operators.common import connection_from_metadata_db

    conn_id = conf.get("mlconn", "hubspot_webhooks_conn_id", fallback=webhook_connection.DEFAULT_CONN_ID)
    return webhook_settings(connection_from_metadata_db(conn_id))


def airflow_inbox() -> WebhookInbox:
    """The store's inbox (the ``mlconn_store`` connection, else SQLite under ``$AIRFLOW_HOME``)."""
    from airflow_provider_mlconn.hooks.mlconn_store import MlconnStoreHook
    from airflow_provider_mlconn.operators.common import connection_from_metadata_db
    from airflow_provider_mlconn.sync.store import STORE_CONN_ID

    return (
        MlconnStoreHook(STORE_CONN_ID, connection=connection_from_metadata_db(STORE_CONN_ID))
        .get_store()
        .webhooks
    )


def emit_asset_event(name: str, uri: str, extra: Mapping[str, Any]) -> bool:
    """One asset event, as ``POST /api/v2/assets/events`` makes it: Airflow's asset manager in a
    metadata-database session (the api-server has one; no user token is involved). It queues a run
    of every DAG scheduled on the asset; queued events coalesce into one run. False: no DAG has
    declared the asset yet."""
    from airflow.assets.manager import asset_manager
    from airflow.serialization.definitions.assets import SerializedAssetUniqueKey
    from airflow.utils.session import create_session

    with create_session() as session:
        event = asset_manager.register_asset_change(
            asset=SerializedAssetUniqueKey(name=name, uri=uri),
            extra=dict(extra),
            source_is_api=True,
            api_user_teams=set(),
            session=session,
        )
    return event is not None


def airflow_app() -> FastAPI:
    return create_app(Receiver(settings=airflow_settings, inbox=airflow_inbox, emit=emit_asset_event))
