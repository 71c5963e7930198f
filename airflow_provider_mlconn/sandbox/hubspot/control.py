"""``/_sandbox/``: not part of HubSpot. Stats, reset, settings, and edits made "inside HubSpot".

No auth and no rate limits here: tests and benchmarks drive the portal through it.

- ``GET  stats``                         requests per path and status, 429s per policy, faults, record counts
- ``POST reset``  ``{"seed": N|null}``   empty the portal (re-seeded with the start-up seed unless given)
- ``GET|POST settings``                  rate_limit, search_rate_limit, daily_limit, latency_ms, fault_rate,
                                         search_lag_ms, webhook_batch_delay_ms, webhook_backoff_scale,
                                         webhook_max_retries, webhook_timeout_s
- ``POST storm``  ``{"seconds": S}``     every API call answers 429 TEN_SECONDLY_ROLLING for S seconds
- ``POST burst``  ``{"requests": N}``    another app on the portal uses N slots of the current 10 s window
- ``GET  objects/{type}``                every record (``?archived=true`` for the archived ones)
- ``POST objects/{type}``                a salesperson creates a record: ``{properties, associations:
                                         [{to_id, type_id}], at}``
- ``POST objects/{type}/generate``       ``{count, properties, at}``: many records, ``{n}`` in values numbered
- ``PATCH objects/{type}/{id}``          a salesperson changes a record: ``{properties, at}``
- ``DELETE objects/{type}/{id}``         a salesperson deletes a record
- ``POST invoices``                      ``{currency, status, contact_id, company_id, lines: [{product_id|sku,
                                         quantity, price, discount, hs_discount_percentage, tax,
                                         hs_tax_rate_group_id}], at}``: an invoice with line items
- ``POST invoices/{id}/issue``           ``{at}``: draft -> open (one contact and a line item needed)
- ``POST invoices/{id}/void``            ``{at}``: draft or unpaid open -> voided
- ``POST payments``                      ``{invoice_id, amount, status, method, reference, at}``: "Record
                                         payment" on an open invoice (part, whole or more than the balance)
- ``POST payments/{id}/refund``          ``{amount, at}``: a full (no amount) or partial refund
- ``POST products``                      ``{name, price, description, sku, properties, at}``
- ``PATCH products/{id}``                the same fields, changed
- ``POST tax-rates``                     ``{name, percentage_rate, label, active}``: an account tax rate
- ``/_sandbox/webhooks``                 subscriptions: see control_webhooks.py
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from airflow_provider_mlconn.sandbox.hubspot.catalog import (
    COMMERCE_PAYMENTS,
    COMPANIES,
    CONTACTS,
    INVOICES,
    PRODUCTS,
    ObjectTypeDef,
)
from airflow_provider_mlconn.sandbox.hubspot.edits import (
    associations_of,
    create_invoice,
    issue_invoice,
    product_properties,
    record_payment,
    refund_payment,
    tax_rate,
    void_invoice,
    when,
    write,
)
from airflow_provider_mlconn.sandbox.hubspot.errors import bad_request, not_found
from airflow_provider_mlconn.sandbox.hubspot.portal import PreparedWrite, Record, WriteInput
from airflow_provider_mlconn.sandbox.hubspot.values import ValueProblem, normalize
from airflow_provider_mlconn.sandbox.hubspot.views import record_json
from airflow_provider_mlconn.sandbox.hubspot.wire import json_response, kind_named, no_content, query_bool

if TYPE_CHECKING:
    from airflow_provider_mlconn.sandbox.hubspot.app import HubSpotSandbox

SETTINGS = (
    "rate_limit",
    "search_rate_limit",
    "daily_limit",
    "latency_ms",
    "fault_rate",
    "search_lag_ms",
    "webhook_batch_delay_ms",
    "webhook_backoff_scale",
    "webhook_max_retries",
    "webhook_timeout_s",
)
GENERATE_MAX = 200_000


def router() -> APIRouter:
    routes = APIRouter(prefix="/_sandbox")
    routes.add_api_route("/stats", stats, methods=["GET"])
    routes.add_api_route("/reset", reset, methods=["POST"])
    routes.add_api_route("/settings", get_settings, methods=["GET"])
    routes.add_api_route("/settings", change_settings, methods=["POST"])
    routes.add_api_route("/storm", storm, methods=["POST"])
    routes.add_api_route("/burst", burst, methods=["POST"])
    routes.add_api_route("/objects/{object_type}/generate", generate, methods=["POST"])
    routes.add_api_route("/objects/{object_type}", list_all, methods=["GET"])
    routes.add_api_route("/objects/{object_type}", create, methods=["POST"])
    routes.add_api_route("/objects/{object_type}/{object_id}", change, methods=["PATCH"])
    routes.add_api_route("/objects/{object_type}/{object_id}", delete, methods=["DELETE"])
    routes.add_api_route("/invoices", invoice, methods=["POST"])
    routes.add_api_route("/invoices/{invoice_id}/issue", issue, methods=["POST"])
    routes.add_api_route("/invoices/{invoice_id}/void", void, methods=["POST"])
    routes.add_api_route("/payments", payment, methods=["POST"])
    routes.add_api_route("/payments/{payment_id}/refund", refund, methods=["POST"])
    routes.add_api_route("/products", create_product, methods=["POST"])
    routes.add_api_route("/products/{product_id}", change_product, methods=["PATCH"])
    routes.add_api_route("/tax-rates", create_tax_rate, methods=["POST"])
    return routes


def _sandbox(request: Request) -> HubSpotSandbox:
    sandbox: HubSpotSandbox = request.app.state.sandbox
    return sandbox


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as error:
        raise bad_request(f"Invalid JSON: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return body


def _full(sandbox: HubSpotSandbox, record: Record) -> dict[str, Any]:
    return record_json(sandbox.portal, record, sorted(record.properties))


async def stats(request: Request) -> Response:
    sandbox = _sandbox(request)
    body = sandbox.stats.as_json()
    body.update(
        {
            "records": sandbox.portal.counts(),
            "associations": sandbox.portal.association_count(),
            "daily_used": sandbox.limits.daily.used,
            "peak_requests_in_10s": sandbox.limits.burst.peak,
            "tokens_issued": 0,  # private app tokens are static: nothing is ever issued
            "settings": sandbox.settings.public(),
            "seeded": sandbox.seeded,
            "webhooks": {**sandbox.webhooks.stats.as_json(), **sandbox.webhooks.pending()},
        }
    )
    return json_response(body)


async def reset(request: Request) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    seed = body.get("seed", sandbox.settings.seed)
    sandbox.reset(seed=seed)
    return json_response({"reset": True, "seeded": sandbox.seeded})


async def get_settings(request: Request) -> Response:
    return json_response(_sandbox(request).settings.public())


async def change_settings(request: Request) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    unknown = sorted(set(body) - set(SETTINGS))
    if unknown:
        raise bad_request(f"Unknown settings {unknown}; known: {list(SETTINGS)}.")
    sandbox.configure(**body)
    return json_response(sandbox.settings.public())


async def storm(request: Request) -> Response:
    sandbox = _sandbox(request)
    seconds = float((await body_of(request)).get("seconds", 5))
    sandbox.limits.storm_until = time.monotonic() + seconds
    return json_response({"storm_seconds": seconds})


async def burst(request: Request) -> Response:
    sandbox = _sandbox(request)
    count = int((await body_of(request)).get("requests", sandbox.settings.rate_limit))
    sandbox.limits.burst.fill(count)
    return json_response({"used": count, "remaining": sandbox.limits.burst.remaining()})


async def list_all(request: Request, object_type: str) -> Response:
    sandbox = _sandbox(request)
    kind = kind_named(object_type)
    source = sandbox.portal.archived if query_bool(request, "archived") else sandbox.portal.records
    with sandbox.portal.lock:
        records = list(source[kind.name].values())
    return json_response({"total": len(records), "results": [_full(sandbox, r) for r in records]})


async def create(request: Request, object_type: str) -> Response:
    sandbox = _sandbox(request)
    kind = kind_named(object_type)
    body = await body_of(request)
    portal = sandbox.portal
    with portal.lock:
        links = associations_of(portal, kind, body.get("associations"))
        record = write(
            portal, kind, body.get("properties") or {}, at_ms=when(body.get("at")), associations=links
        )
    return json_response(_full(sandbox, record), status=201)


async def generate(request: Request, object_type: str) -> Response:
    """Many records in one go, all changed at the same instant (the hardest case for windowed reads)."""
    sandbox = _sandbox(request)
    kind = kind_named(object_type)
    body = await body_of(request)
    count = int(body.get("count", 0))
    if not 0 < count <= GENERATE_MAX:
        raise bad_request(f"count must be between 1 and {GENERATE_MAX}.")
    template = body.get("properties") or {}
    portal = sandbox.portal
    stamp = when(body.get("at"))
    with portal.lock:
        first = portal.next_id
        writes = []
        for n in range(count):
            values: dict[str, str | None] = {}
            for name, raw in template.items():
                prop = portal.property(kind, name)
                if prop is None:
                    raise bad_request(f'Property "{name}" does not exist on {kind.name}.')
                try:
                    values[name] = normalize(prop, str(raw).replace("{n}", str(n)))
                except ValueProblem as problem:
                    raise bad_request(f"{name}: {problem.message}") from None
            writes.append(PreparedWrite(WriteInput({}), values))
        conflict = portal.conflicts(kind, writes)
        if conflict is not None:
            raise conflict
        results = portal.commit(kind, writes, at_ms=stamp)
    return json_response(
        {
            "created": len(results),
            "first_id": str(first),
            "last_id": results[-1].record.id if results else None,
        }
    )


async def change(request: Request, object_type: str, object_id: str) -> Response:
    sandbox = _sandbox(request)
    kind = kind_named(object_type)
    body = await body_of(request)
    portal = sandbox.portal
    with portal.lock:
        target = portal.get(kind, object_id)
        if target is None:
            raise not_found()
        links = associations_of(portal, kind, body.get("associations"))
        record = write(
            portal,
            kind,
            body.get("properties") or {},
            target=target,
            at_ms=when(body.get("at")),
            associations=links,
        )
    return json_response(_full(sandbox, record))


async def delete(request: Request, object_type: str, object_id: str) -> Response:
    sandbox = _sandbox(request)
    if not sandbox.portal.archive(kind_named(object_type), object_id):
        raise not_found()
    return no_content()


def _optional(sandbox: HubSpotSandbox, kind: ObjectTypeDef, record_id: Any) -> Record | None:
    if record_id is None:
        return None
    record = sandbox.portal.get(kind, str(record_id))
    if record is None:
        raise bad_request(f"{kind.label} {record_id} does not exist.")
    return record


async def invoice(request: Request) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        raise bad_request("lines must be a non-empty list of {product_id|sku, quantity, price}.")
    record, items = create_invoice(
        sandbox.portal,
        currency=str(body.get("currency", "EUR")),
        lines=lines,
        status=str(body.get("status", "open")),
        contact=_optional(sandbox, CONTACTS, body.get("contact_id")),
        company=_optional(sandbox, COMPANIES, body.get("company_id")),
        at_ms=when(body.get("at")),
    )
    return json_response(
        {"invoice": _full(sandbox, record), "line_items": [_full(sandbox, i) for i in items]}, status=201
    )


async def payment(request: Request) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    target = _optional(sandbox, INVOICES, body.get("invoice_id"))
    if target is None or body.get("amount") is None:
        raise bad_request("A payment needs an invoice_id and an amount.")
    record = record_payment(
        sandbox.portal,
        target,
        amount=body["amount"],
        status=str(body.get("status", "succeeded")),
        method=str(body.get("method", "wire_transfer")),
        reference=body.get("reference"),
        at_ms=when(body.get("at")),
    )
    return json_response(_full(sandbox, record), status=201)


def _existing(sandbox: HubSpotSandbox, kind: ObjectTypeDef, record_id: str) -> Record:
    record = sandbox.portal.get(kind, record_id)
    if record is None:
        raise not_found()
    return record


async def issue(request: Request, invoice_id: str) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    record = issue_invoice(
        sandbox.portal, _existing(sandbox, INVOICES, invoice_id), at_ms=when(body.get("at"))
    )
    return json_response(_full(sandbox, record))


async def void(request: Request, invoice_id: str) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    record = void_invoice(
        sandbox.portal, _existing(sandbox, INVOICES, invoice_id), at_ms=when(body.get("at"))
    )
    return json_response(_full(sandbox, record))


async def refund(request: Request, payment_id: str) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    record = refund_payment(
        sandbox.portal,
        _existing(sandbox, COMMERCE_PAYMENTS, payment_id),
        amount=body.get("amount"),
        at_ms=when(body.get("at")),
    )
    return json_response(_full(sandbox, record))


async def create_product(request: Request) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    properties = product_properties(body)
    if not properties.get("name"):
        raise bad_request("A product needs a name.")
    record = write(sandbox.portal, PRODUCTS, properties, at_ms=when(body.get("at")))
    return json_response(_full(sandbox, record), status=201)


async def change_product(request: Request, product_id: str) -> Response:
    sandbox = _sandbox(request)
    body = await body_of(request)
    target = _existing(sandbox, PRODUCTS, product_id)
    record = write(
        sandbox.portal, PRODUCTS, product_properties(body), target=target, at_ms=when(body.get("at"))
    )
    return json_response(_full(sandbox, record))


async def create_tax_rate(request: Request) -> Response:
    sandbox = _sandbox(request)
    rate = tax_rate(sandbox.portal, await body_of(request))
    return json_response(rate.as_json(), status=201)
