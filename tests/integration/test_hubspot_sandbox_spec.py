"""Responses of the sandbox's commerce and property endpoints validate against HubSpot's official specs.

The specs are read at test time from ``<repo>/../shared/reference/hubspot-openapi`` (reference data that
is not part of the project, by licence); without that folder (a CI clone) the tests skip. Like the shared
conformance tool, ``null`` property values are tolerated (HubSpot returns them; the spec says string) and
``date-time`` strings must be ISO-8601 with a time zone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests

from tests.support.hubspot import REPO_ROOT, SandboxControl

SPEC_DIR = REPO_ROOT.parent / "shared" / "reference" / "hubspot-openapi"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SPEC_DIR.is_dir(), reason=f"{SPEC_DIR} is not here (CI clone)"),
]

Sandbox = Callable[..., SandboxControl]
FORMATS = jsonschema.FormatChecker(formats=())
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


@FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


@cache
def spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPEC_DIR / name).read_text())
    return loaded


def json_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema's null type."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    nullable = node.get("nullable") is True
    converted = {k: json_schema(v) for k, v in node.items() if not (nullable and k == "nullable")}
    return {"anyOf": [converted, {"type": "null"}]} if nullable else converted


def operation(name: str, method: str, path: str) -> dict[str, Any]:
    """The spec operation whose path template matches ``path`` (literal segments win over parameters)."""
    candidates = []
    for template, operations in spec(name)["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            candidates.append((template.count("{"), template))
    assert candidates, f"{method} {path} is not an operation of {name}"
    found: dict[str, Any] = spec(name)["paths"][min(candidates)[1]][method.lower()]
    return found


def without_null_properties(body: Any) -> Any:
    if isinstance(body, list):
        return [without_null_properties(item) for item in body]
    if not isinstance(body, dict):
        return body
    return {
        key: (
            {k: v for k, v in value.items() if v is not None}
            if key == "properties" and isinstance(value, dict)
            else without_null_properties(value)
        )
        for key, value in body.items()
    }


def conforms(name: str, response: requests.Response, status: int) -> Any:
    """Assert the status, that the spec declares it (or ``default`` for an error), and the body's schema."""
    assert response.status_code == status, response.text
    request = response.request
    assert request.method is not None and request.url is not None
    responses = operation(name, request.method, urlsplit(request.url).path)["responses"]
    declared = responses.get(str(status))
    if declared is None:
        assert status >= 400 and "default" in responses, f"{status} is not declared: {list(responses)}"
        schema: dict[str, Any] = {"$ref": "#/components/schemas/Error"}
    elif "content" not in (declared or {}):
        assert not response.content
        return None
    else:
        schema = declared["content"]["application/json"]["schema"]
    document = {"allOf": [json_schema(schema)], "components": json_schema(spec(name)["components"])}
    body = response.json()
    errors = sorted(
        jsonschema.Draft7Validator(document, format_checker=FORMATS).iter_errors(
            without_null_properties(body)
        ),
        key=str,
    )
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])
    return body


def association(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def test_property_option_responses_and_refusals_conform_to_the_properties_spec(
    hubspot_sandbox: Sandbox,
) -> None:
    sandbox = hubspot_sandbox()
    name = "crm-properties-v3.json"
    options = [{"label": f"GL {i}", "value": f"1.{i}", "hidden": False, "displayOrder": i} for i in range(3)]
    body = {
        "name": "jde_gl_account",
        "label": "GL account",
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "lineiteminformation",
        "options": options,
    }
    conforms(name, sandbox.api("POST", "/crm/v3/properties/line_items", body), 201)
    patched = conforms(
        name,
        sandbox.api("PATCH", "/crm/v3/properties/line_items/jde_gl_account", {"options": options[:1]}),
        200,
    )
    assert len(patched["options"]) == 1
    conforms(name, sandbox.api("GET", "/crm/v3/properties/line_items/jde_gl_account"), 200)
    conforms(name, sandbox.api("GET", "/crm/v3/properties/invoices"), 200)
    too_many = [{"label": str(i), "value": str(i), "hidden": False} for i in range(5001)]
    refused = {**body, "name": "jde_business_unit", "options": too_many}
    conforms(name, sandbox.api("POST", "/crm/v3/properties/line_items", refused), 400)
    no_hidden = {"options": [{"label": "A", "value": "a"}]}
    conforms(name, sandbox.api("PATCH", "/crm/v3/properties/line_items/jde_gl_account", no_hidden), 400)
    batch = {"inputs": [{**body, "name": "jde_other", "options": None}, {**body, "name": "jde_ok"}]}
    conforms(name, sandbox.api("POST", "/crm/v3/properties/line_items/batch/create", batch), 207)


def test_products_line_items_invoices_and_payments_conform_to_their_specs(hubspot_sandbox: Sandbox) -> None:
    sandbox = hubspot_sandbox()
    products, line_items = "crm-products-v3.json", "crm-line-items-v3.json"
    invoices, payments = "crm-invoices-v3.json", "crm-commerce-payments-v3.json"
    product = conforms(
        products,
        sandbox.api("POST", "/crm/v3/objects/products", {"properties": {"name": "Pump", "price": "100"}}),
        201,
    )
    conforms(
        products,
        sandbox.api("PATCH", f"/crm/v3/objects/products/{product['id']}", {"properties": {"price": "120"}}),
        200,
    )
    conforms(products, sandbox.api("GET", f"/crm/v3/objects/products/{product['id']}"), 200)
    item = conforms(
        line_items,
        sandbox.api(
            "POST",
            "/crm/v3/objects/line_items",
            {"properties": {"hs_product_id": product["id"], "quantity": 2, "hs_discount_percentage": 10}},
        ),
        201,
    )
    computed = "amount,hs_total_discount,hs_tax_amount,hs_post_tax_amount,hs_pre_discount_amount"
    conforms(
        line_items, sandbox.api("GET", f"/crm/v3/objects/line_items/{item['id']}", properties=computed), 200
    )
    read = {
        "inputs": [{"id": item["id"]}, {"id": "999"}],
        "properties": ["amount"],
        "propertiesWithHistory": [],
    }
    conforms(line_items, sandbox.api("POST", "/crm/v3/objects/line_items/batch/read", read), 207)
    contact = sandbox.api(
        "POST", "/crm/v3/objects/contacts", {"properties": {"email": "spec@acme.test"}}
    ).json()
    invoice = conforms(
        invoices,
        sandbox.api(
            "POST",
            "/crm/v3/objects/invoices",
            {
                "properties": {"hs_currency": "EUR"},
                "associations": [association(item["id"], 409), association(contact["id"], 177)],
            },
        ),
        201,
    )
    invoice_path = f"/crm/v3/objects/invoices/{invoice['id']}"
    totals = "hs_subtotal,hs_amount_billed,hs_amount_paid,hs_balance_due,hs_invoice_status"
    read_back = conforms(
        invoices, sandbox.api("GET", invoice_path, properties=totals, associations="line_items,contacts"), 200
    )
    assert read_back["properties"]["hs_amount_billed"] == "216"
    conforms(invoices, sandbox.api("PATCH", invoice_path, {"properties": {"hs_invoice_status": "open"}}), 200)
    conforms(
        invoices, sandbox.api("PATCH", invoice_path, {"properties": {"hs_invoice_status": "draft"}}), 400
    )
    conforms(invoices, sandbox.api("PATCH", invoice_path, {"properties": {"hs_balance_due": "0"}}), 400)
    conforms(invoices, sandbox.api("DELETE", invoice_path), 400)
    search = {"filterGroups": [], "properties": totals.split(","), "limit": 10}
    conforms(invoices, sandbox.api("POST", "/crm/v3/objects/invoices/search", search), 200)
    conforms(invoices, sandbox.api("GET", "/crm/v3/objects/invoices", properties=totals), 200)
    payment = conforms(
        payments,
        sandbox.api(
            "POST",
            "/crm/v3/objects/commerce_payments",
            {
                "properties": {
                    "hs_initial_amount": "216",
                    "hs_initiated_date": "2026-05-20",
                    "hs_latest_status": "succeeded",
                },
                "associations": [association(invoice["id"], 542)],
            },
        ),
        201,
    )
    payment_path = f"/crm/v3/objects/commerce_payments/{payment['id']}"
    conforms(payments, sandbox.api("PATCH", payment_path, {"properties": {"hs_refunds_amount": "16"}}), 200)
    fields = (
        "hs_net_amount,hs_net_amount_after_refunds,hs_has_associated_invoice,hs_number_of_associated_invoices"
    )
    conforms(payments, sandbox.api("GET", payment_path, properties=fields, associations="invoices"), 200)
    assert (
        conforms(invoices, sandbox.api("GET", invoice_path, properties=totals), 200)["properties"][
            "hs_balance_due"
        ]
        == "16"
    )
    conforms(
        payments,
        sandbox.api("POST", "/crm/v3/objects/commerce_payments/search", {"filterGroups": [], "limit": 5}),
        200,
    )
    dated = f"/crm/objects/2026-03/invoices/{invoice['id']}"
    conforms(
        "date-versioned-2026-03/crm-invoices-2026-03.json", sandbox.api("GET", dated, properties=totals), 200
    )


@pytest.mark.parametrize(("object_type", "type_id"), [("discounts", 411), ("fees", 413), ("taxes", 415)])
def test_discounts_fees_and_taxes_conform_to_the_generic_objects_spec(
    hubspot_sandbox: Sandbox, object_type: str, type_id: int
) -> None:
    sandbox = hubspot_sandbox()
    name = "crm-objects-v3.json"
    invoice = sandbox.api("POST", "/crm/v3/objects/invoices", {"properties": {"hs_currency": "EUR"}}).json()
    created = conforms(
        name,
        sandbox.api(
            "POST",
            f"/crm/v3/objects/{object_type}",
            {
                "properties": {
                    "hs_label": "Ten percent",
                    "hs_type": "PERCENT",
                    "hs_value": "10",
                    "hs_sort_order": 1,
                }
            },
        ),
        201,
    )
    path = f"/crm/v3/objects/{object_type}/{created['id']}"
    conforms(name, sandbox.api("PATCH", path, {"properties": {"hs_value": "12.5"}}), 200)
    conforms(name, sandbox.api("GET", path, properties="hs_label,hs_type,hs_value,hs_sort_order"), 200)
    conforms(
        name, sandbox.api("POST", f"/crm/v3/objects/{object_type}", {"properties": {"hs_label": "x"}}), 400
    )
    linked = sandbox.api(
        "PUT",
        f"/crm/v4/objects/invoices/{invoice['id']}/associations/{object_type}/{created['id']}",
        [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    )
    assert linked.status_code == 201, linked.text
    conforms(
        name, sandbox.api("GET", f"/crm/v3/objects/invoices/{invoice['id']}", associations=object_type), 200
    )
    conforms(name, sandbox.api("GET", f"/crm/v3/objects/{object_type}", limit=5), 200)


def test_the_spec_folder_is_the_one_the_conformance_tool_reads() -> None:
    assert (SPEC_DIR / "INDEX.md").exists() and Path(SPEC_DIR / "crm-invoices-v3.json").exists()
