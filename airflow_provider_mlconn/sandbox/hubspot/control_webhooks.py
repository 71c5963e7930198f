"""``/_sandbox/webhooks``: webhook subscriptions (not HubSpot's API: HubSpot configures them in the app's
settings). Delivery follows HubSpot's semantics (webhooks.py).

- ``POST   webhooks``                 ``{target_url, client_secret, event_types: ["object.creation",
                                      "object.propertyChange", "object.deletion", "object.associationChange",
                                      "contact.creation", ...], object_types: ["invoices", ...],
                                      property_names: [...], app_id, signature_version: "v1"|"v2",
                                      active}`` -> 201 the subscription (without its secret)
- ``GET    webhooks``                 ``{"results": [...]}`` with the delivery counters
- ``GET    webhooks/{id}``            one subscription
- ``DELETE webhooks/{id}``            204; its undelivered events are dropped
- ``GET    webhooks/deliveries``      the last POSTs: subscription, attempt, events, outcome (status or error)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from airflow_provider_mlconn.sandbox.hubspot.control import body_of
from airflow_provider_mlconn.sandbox.hubspot.errors import bad_request, not_found
from airflow_provider_mlconn.sandbox.hubspot.wire import json_response, no_content

if TYPE_CHECKING:
    from airflow_provider_mlconn.sandbox.hubspot.webhooks import WebhookSender


def router() -> APIRouter:
    routes = APIRouter(prefix="/_sandbox/webhooks")
    routes.add_api_route("", create_subscription, methods=["POST"])
    routes.add_api_route("", list_subscriptions, methods=["GET"])
    routes.add_api_route("/deliveries", deliveries, methods=["GET"])
    routes.add_api_route("/{subscription_id}", get_subscription, methods=["GET"])
    routes.add_api_route("/{subscription_id}", delete_subscription, methods=["DELETE"])
    return routes


def _sender(request: Request) -> WebhookSender:
    sender: WebhookSender = request.app.state.sandbox.webhooks
    return sender


def _id(subscription_id: str) -> int:
    if not subscription_id.isdigit():
        raise not_found()
    return int(subscription_id)


async def create_subscription(request: Request) -> Response:
    sender = _sender(request)
    try:
        subscription = sender.subscribe(await body_of(request))
    except ValueError as problem:
        raise bad_request(str(problem)) from None
    return json_response(subscription.as_json(), status=201)


async def list_subscriptions(request: Request) -> Response:
    sender = _sender(request)
    with sender.cond:
        results = [s.as_json() for s in sender.subscriptions.values()]
        counters = sender.stats.as_json()
    return json_response({"results": results, "stats": {**counters, **sender.pending()}})


async def get_subscription(request: Request, subscription_id: str) -> Response:
    subscription = _sender(request).subscriptions.get(_id(subscription_id))
    if subscription is None:
        raise not_found()
    return json_response(subscription.as_json())


async def delete_subscription(request: Request, subscription_id: str) -> Response:
    if not _sender(request).unsubscribe(_id(subscription_id)):
        raise not_found()
    return no_content()


async def deliveries(request: Request) -> Response:
    sender = _sender(request)
    with sender.cond:
        log = list(sender.stats.log)
    return json_response({"results": log})
