"""Tax rates v1 (read-only): the account's tax rates, whose ids line items hold in ``hs_tax_rate_group_id``.

hubspot-commerce.md §3.2: ``GET /tax-rates/v1/tax-rates[/{taxRateId}]`` -> ``{name, percentageRate, label,
active, id, createdAt, updatedAt}``. The list's envelope (``results``) is [I]. Rates are set up in
HubSpot's settings: here through ``POST /_sandbox/tax-rates``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_provider_mlconn.sandbox.hubspot.errors import not_found
from airflow_provider_mlconn.sandbox.hubspot.wire import json_response, portal_of

PREFIX = "/tax-rates/v1/tax-rates"


def router() -> APIRouter:
    routes = APIRouter()
    routes.add_api_route(PREFIX, list_tax_rates, methods=["GET"])
    routes.add_api_route(f"{PREFIX}/{{tax_rate_id}}", get_tax_rate, methods=["GET"])
    return routes


async def list_tax_rates(request: Request) -> Response:
    portal = portal_of(request)
    with portal.lock:
        rates = [rate.as_json() for rate in portal.tax_rates.values()]
    return json_response({"results": rates})


async def get_tax_rate(request: Request, tax_rate_id: str) -> Response:
    rate = portal_of(request).tax_rates.get(tax_rate_id)
    if rate is None:
        raise not_found()
    return json_response(rate.as_json())
