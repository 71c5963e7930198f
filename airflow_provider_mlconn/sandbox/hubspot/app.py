"""The HubSpot sandbox application: a portal, its limits, its webhooks, and the routes that serve the
real paths."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_mlconn.sandbox.hubspot import (
    api_associations,
    api_objects,
    api_properties,
    api_tax_rates,
    control,
    control_webhooks,
)
from airflow_provider_mlconn.sandbox.hubspot.errors import HubSpotError
from airflow_provider_mlconn.sandbox.hubspot.gateway import Gateway, Settings, Stats
from airflow_provider_mlconn.sandbox.hubspot.limits import RateLimits
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal
from airflow_provider_mlconn.sandbox.hubspot.seed import seed_portal
from airflow_provider_mlconn.sandbox.hubspot.webhooks import WebhookSender
from airflow_provider_mlconn.sandbox.hubspot.wire import json_response


class HubSpotSandbox:
    """Everything one sandboxed portal holds; ``app.state.sandbox`` in the FastAPI app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.portal = Portal(
            search_lag_ms=settings.search_lag_ms,
            api_payments_update_invoices=settings.api_payments_update_invoices,
        )
        self.limits = RateLimits(
            per_10s=settings.rate_limit, search_per_s=settings.search_rate_limit, daily=settings.daily_limit
        )
        self.stats = Stats()
        self.webhooks = WebhookSender(self.portal, settings, seed=settings.seed)
        self.seeded: dict[str, Any] = {}
        self.reset(seed=settings.seed)

    def reset(self, *, seed: int | None) -> None:
        """An empty portal (seeded if ``seed``): records, limits, stats and webhook subscriptions."""
        self.webhooks.reset()
        with self.portal.lock:
            self.portal.reset()
            self.limits.reset()
            self.stats.clear()
            # Seeded records are indexed at once: they predate the test, so no search lag applies.
            lag, self.portal.search_lag_ms = self.portal.search_lag_ms, 0
            try:
                self.seeded = seed_portal(self.portal, seed) if seed is not None else {}
            finally:
                self.portal.search_lag_ms = lag

    def configure(self, **changes: Any) -> None:
        """Change limits, latency, faults or search lag while running."""
        for name, value in changes.items():
            kind = type(getattr(self.settings, name))
            setattr(self.settings, name, kind(value))
        self.limits.burst.limit = self.settings.rate_limit
        self.limits.search.limit = self.settings.search_rate_limit
        self.limits.daily.limit = self.settings.daily_limit
        self.portal.search_lag_ms = self.settings.search_lag_ms

    def close(self) -> None:
        """Stop the webhook sender (the server stopping does it too)."""
        self.webhooks.stop()


def _correlation_id(request: Request) -> str:
    state = request.scope.get("state") or {}
    return str(state.get("correlation_id") or uuid.uuid4())


async def _hubspot_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HubSpotError)
    return json_response(error.body(_correlation_id(request)), status=error.status, headers=error.headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    body = {
        "status": "error",
        "message": f"{request.method} {request.url.path} is not an operation of this API ({error.detail}).",
        "correlationId": _correlation_id(request),
        "category": "OBJECT_NOT_FOUND" if error.status_code == 404 else "VALIDATION_ERROR",
    }
    return json_response(body, status=error.status_code)


def create_app(
    *,
    token: str = Settings.token,
    rate_limit: int = Settings.rate_limit,
    search_rate_limit: int = Settings.search_rate_limit,
    daily_limit: int = Settings.daily_limit,
    latency_ms: float = Settings.latency_ms,
    fault_rate: float = Settings.fault_rate,
    search_lag_ms: int = Settings.search_lag_ms,
    seed: int | None = None,
    api_payments_update_invoices: bool = Settings.api_payments_update_invoices,
    webhook_batch_delay_ms: int = Settings.webhook_batch_delay_ms,
    webhook_backoff_scale: float = Settings.webhook_backoff_scale,
    webhook_max_retries: int = Settings.webhook_max_retries,
    webhook_timeout_s: float = Settings.webhook_timeout_s,
) -> FastAPI:
    """A HubSpot portal behind the real paths. Defaults are those of ``mlconn-sandbox hubspot``.

    ``api_payments_update_invoices``: payments recorded through the API (``commerce_payments`` + 542)
    count towards their invoice's amount paid, balance and ``paid`` status (HubSpot leaves it open).
    ``webhook_*``: delivery of ``/_sandbox/webhooks`` subscriptions (docs/BEHAVIOR.md H19).
    """
    if not 0 <= fault_rate < 1:
        raise ValueError(f"fault_rate must be in [0, 1), got {fault_rate}")
    if rate_limit < 1 or search_rate_limit < 1 or daily_limit < 1:
        raise ValueError("rate limits must be at least 1")
    if webhook_batch_delay_ms < 0 or webhook_backoff_scale < 0 or webhook_max_retries < 0:
        raise ValueError("webhook delay, backoff scale and retries must not be negative")
    if webhook_timeout_s <= 0:
        raise ValueError(f"webhook_timeout_s must be positive, got {webhook_timeout_s}")
    settings = Settings(
        token=token,
        rate_limit=rate_limit,
        search_rate_limit=search_rate_limit,
        daily_limit=daily_limit,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        search_lag_ms=search_lag_ms,
        seed=seed,
        api_payments_update_invoices=api_payments_update_invoices,
        webhook_batch_delay_ms=webhook_batch_delay_ms,
        webhook_backoff_scale=webhook_backoff_scale,
        webhook_max_retries=webhook_max_retries,
        webhook_timeout_s=webhook_timeout_s,
    )
    sandbox = HubSpotSandbox(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Servers that run the lifespan (uvicorn's default, TestClient as a context) stop the webhook
        # sender here; the runner's servers (lifespan off) stop it when their event loop shuts down.
        yield
        sandbox.close()

    app = FastAPI(
        title="HubSpot CRM API sandbox",
        description="A local, in-memory stand-in for api.hubapi.com (mlconn).",
        docs_url="/_sandbox/docs",
        redoc_url=None,
        openapi_url="/_sandbox/openapi.json",
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    app.add_exception_handler(HubSpotError, _hubspot_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for module in (api_objects, api_associations, api_properties, api_tax_rates, control, control_webhooks):
        app.include_router(module.router())
    app.add_middleware(Gateway, settings=settings, limits=sandbox.limits, stats=sandbox.stats)
    return app
