"""The HubSpot sandbox behaves like HubSpot where clients get it wrong (driven in-process, no sockets)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_mlconn.sandbox.hubspot import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.unit

TOKEN = "pat-na1-unit"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COMPANIES = "/crm/v3/objects/companies"
CONTACTS = "/crm/v3/objects/contacts"


class Portal:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return self.client.request(method, path, json=body, params=params or None, headers=AUTH)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **params: Any) -> Any:
        response = self.call(method, path, body, **params)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, f"/_sandbox/{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def unique_property(self, object_type: str, name: str) -> None:
        group = "companyinformation" if object_type == "companies" else "contactinformation"
        self.ok(
            "POST",
            f"/crm/v3/properties/{object_type}",
            {
                "name": name,
                "label": name,
                "type": "string",
                "fieldType": "text",
                "groupName": group,
                "hasUniqueValue": True,
            },
            status=201,
        )


def portal_with(**options: Any) -> Iterator[Portal]:
    options.setdefault("token", TOKEN)
    options.setdefault("search_lag_ms", 0)
    with TestClient(create_app(**options)) as client:
        yield Portal(client)


@pytest.fixture
def portal() -> Iterator[Portal]:
    yield from portal_with()


def upsert_inputs(
    keys: list[str], prop: str = "jde_key", traced: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "idProperty": prop,
                "id": key,
                "properties": {"name": f"Company {key}", **extra},
                **({"objectWriteTraceId": f"t-{key}"} if traced else {}),
            }
            for key in keys
        ]
    }


# ------------------------------------------------------------------------------- auth and errors
def test_a_call_without_or_with_a_wrong_token_is_401_with_a_hubspot_error_body(portal: Portal) -> None:
    for headers in ({}, {"Authorization": "Bearer pat-na1-wrong"}):
        response = portal.client.get(COMPANIES, headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
        assert body["correlationId"] and body["message"]
        assert "X-HubSpot-RateLimit-Remaining" not in response.headers


def test_a_numeric_unknown_id_is_hubspots_terse_404_and_a_non_numeric_one_names_the_problem(
    portal: Portal,
) -> None:
    terse = portal.call("GET", f"{COMPANIES}/999999999").json()
    assert terse["message"] == "resource not found" and "category" not in terse
    wordy = portal.call("GET", f"{COMPANIES}/abc")
    assert wordy.status_code == 404
    assert wordy.json()["category"] == "OBJECT_NOT_FOUND"
    assert "usually numeric" in wordy.json()["message"]


def test_malformed_json_is_a_400_validation_error(portal: Portal) -> None:
    response = portal.client.post(f"{COMPANIES}/batch/read", content=b'{"inputs": [', headers=AUTH)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


# ------------------------------------------------------------------------------- records and batches
def test_ids_and_property_values_come_back_as_strings_with_the_right_last_modified_name(
    portal: Portal,
) -> None:
    company = portal.ok("POST", COMPANIES, {"properties": {"name": "Acme", "numberofemployees": 17}}, 201)
    contact = portal.ok("POST", CONTACTS, {"properties": {"email": "Ana@Acme.test"}}, 201)
    assert isinstance(company["id"], str) and company["properties"]["numberofemployees"] == "17"
    assert "hs_lastmodifieddate" in company["properties"]
    assert "lastmodifieddate" in contact["properties"] and "hs_lastmodifieddate" not in contact["properties"]
    assert contact["properties"]["email"] == "ana@acme.test"


def test_a_contact_with_an_existing_email_is_a_409_naming_the_existing_id(portal: Portal) -> None:
    first = portal.ok("POST", CONTACTS, {"properties": {"email": "ana@acme.test"}}, 201)
    response = portal.call("POST", CONTACTS, {"properties": {"email": "ANA@acme.test"}})
    assert response.status_code == 409
    assert response.json()["message"] == f"Contact already exists. Existing ID: {first['id']}"
    assert response.json()["category"] == "CONFLICT"


def test_more_than_100_inputs_and_duplicate_ids_are_rejected_whole(portal: Portal) -> None:
    portal.unique_property("companies", "jde_key")
    too_many = portal.call("POST", f"{COMPANIES}/batch/upsert", upsert_inputs([str(i) for i in range(101)]))
    assert too_many.status_code == 400
    duplicate = portal.call("POST", f"{COMPANIES}/batch/upsert", upsert_inputs(["7", "8", "7"]))
    assert duplicate.status_code == 400
    assert "Duplicate IDs found in batch input: [7]" in duplicate.json()["message"]
    assert portal.control("GET", "stats")["records"]["companies"] == 0


def test_upsert_creates_then_updates_and_reports_the_new_flag(portal: Portal) -> None:
    portal.unique_property("companies", "jde_key")
    first = portal.ok("POST", f"{COMPANIES}/batch/upsert", upsert_inputs(["1", "2"]))
    again = portal.ok("POST", f"{COMPANIES}/batch/upsert", upsert_inputs(["1", "2"], city="Utrecht"))
    assert [r["new"] for r in first["results"]] == [True, True]
    assert [r["new"] for r in again["results"]] == [False, False]
    assert {r["id"] for r in first["results"]} == {r["id"] for r in again["results"]}
    assert {r["properties"]["jde_key"] for r in again["results"]} == {"1", "2"}


def test_upsert_on_a_property_without_unique_values_is_refused(portal: Portal) -> None:
    response = portal.call("POST", f"{COMPANIES}/batch/upsert", upsert_inputs(["1"], prop="city"))
    assert response.status_code == 400
    assert "unique" in response.json()["message"]


def test_one_invalid_input_fails_alone_with_207_when_every_input_is_traced(portal: Portal) -> None:
    portal.unique_property("companies", "jde_key")
    body = upsert_inputs(["1", "2", "3"])
    body["inputs"][1]["properties"]["numberofemployees"] = "many"
    response = portal.call("POST", f"{COMPANIES}/batch/upsert", body)
    assert response.status_code == 207
    answer = response.json()
    assert answer["numErrors"] == 1 and len(answer["results"]) == 2
    error = answer["errors"][0]
    assert error["context"]["objectWriteTraceId"] == ["t-2"]
    assert error["category"] == "VALIDATION_ERROR" and error["errors"][0]["code"] == "INVALID_INTEGER"
    assert set(error) >= {"status", "category", "message", "errors", "context", "links"}


def test_without_trace_ids_one_invalid_input_fails_the_whole_batch(portal: Portal) -> None:
    portal.unique_property("companies", "jde_key")
    body = upsert_inputs(["1", "2"], traced=False)
    body["inputs"][0]["properties"]["no_such_property"] = "x"
    response = portal.call("POST", f"{COMPANIES}/batch/upsert", body)
    assert response.status_code == 400
    assert "PROPERTY_DOESNT_EXIST" in response.json()["message"]
    assert portal.control("GET", "stats")["records"]["companies"] == 0


def test_an_email_clash_in_a_contact_upsert_fails_the_whole_batch_with_409(portal: Portal) -> None:
    portal.unique_property("contacts", "jde_contact_key")
    taken = portal.ok("POST", CONTACTS, {"properties": {"email": "taken@acme.test"}}, 201)
    inputs = [
        {
            "idProperty": "jde_contact_key",
            "id": f"k{i}",
            "objectWriteTraceId": f"k{i}",
            "properties": {"email": f"p{i}@acme.test" if i != 2 else "taken@acme.test"},
        }
        for i in range(4)
    ]
    response = portal.call("POST", f"{CONTACTS}/batch/upsert", {"inputs": inputs})
    assert response.status_code == 409
    assert f"Existing ID: {taken['id']}" in response.json()["message"]
    assert portal.control("GET", "stats")["records"]["contacts"] == 1


def test_batch_read_reports_unknown_ids_in_a_207_error(portal: Portal) -> None:
    company = portal.ok("POST", COMPANIES, {"properties": {"name": "Acme"}}, 201)
    answer = portal.call(
        "POST",
        f"{COMPANIES}/batch/read",
        {
            "inputs": [{"id": company["id"]}, {"id": "424242"}],
            "properties": ["name"],
            "propertiesWithHistory": [],
        },
    )
    assert answer.status_code == 207
    assert answer.json()["errors"][0]["context"]["ids"] == ["424242"]
    assert "COMPANY objects" in answer.json()["errors"][0]["message"]


def test_reads_by_unique_value_and_list_paging_with_opaque_cursors(portal: Portal) -> None:
    created = [portal.ok("POST", COMPANIES, {"properties": {"name": f"C{i}"}}, 201)["id"] for i in range(5)]
    seen, after = [], None
    while True:
        page = portal.ok("GET", COMPANIES, limit=2, **({"after": after} if after else {}))
        seen += [r["id"] for r in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
        assert not after.isdigit()
    assert seen == created
    portal.ok("POST", CONTACTS, {"properties": {"email": "ana@acme.test"}}, 201)
    found = portal.ok("GET", f"{CONTACTS}/ana@acme.test", idProperty="email")
    assert found["properties"]["email"] == "ana@acme.test"


def test_archived_records_leave_search_and_lists_and_free_their_email(portal: Portal) -> None:
    contact = portal.ok("POST", CONTACTS, {"properties": {"email": "gone@acme.test"}}, 201)
    portal.ok("DELETE", f"{CONTACTS}/{contact['id']}", status=204)
    assert portal.ok("GET", CONTACTS)["results"] == []
    archived = portal.ok("GET", CONTACTS, archived="true")["results"]
    assert archived[0]["archived"] is True and archived[0]["archivedAt"]
    portal.ok("POST", CONTACTS, {"properties": {"email": "gone@acme.test"}}, 201)


# ---------------------------------------------------------------------------------- commerce rules
def test_a_draft_invoice_needs_a_currency_and_opening_needs_one_contact_and_line_items(
    portal: Portal,
) -> None:
    refused = portal.call("POST", "/crm/v3/objects/invoices", {"properties": {}})
    assert refused.status_code == 400 and "hs_currency" in refused.json()["message"]
    invoice = portal.ok("POST", "/crm/v3/objects/invoices", {"properties": {"hs_currency": "EUR"}}, 201)
    assert invoice["properties"].get("hs_invoice_status", "draft") == "draft"
    opening = portal.call(
        "PATCH", f"/crm/v3/objects/invoices/{invoice['id']}", {"properties": {"hs_invoice_status": "open"}}
    )
    assert opening.status_code == 400 and "INVALID_INVOICE_STATE" in opening.text
    contact = portal.ok("POST", CONTACTS, {"properties": {"email": "buyer@acme.test"}}, 201)
    item = portal.ok(
        "POST", "/crm/v3/objects/line_items", {"properties": {"quantity": 2, "price": "10"}}, 201
    )
    for target, type_id in ((contact["id"], 177), (item["id"], 409)):
        kind = "contacts" if type_id == 177 else "line_items"
        portal.ok(
            "PUT",
            f"/crm/v4/objects/invoices/{invoice['id']}/associations/{kind}/{target}",
            [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            201,
        )
    portal.ok(
        "PATCH", f"/crm/v3/objects/invoices/{invoice['id']}", {"properties": {"hs_invoice_status": "open"}}
    )


def test_a_line_item_from_a_product_inherits_its_values_and_computes_its_amount(portal: Portal) -> None:
    product = portal.ok(
        "POST",
        "/crm/v3/objects/products",
        {"properties": {"name": "Pump", "price": 12.5, "hs_sku": "P-1"}},
        201,
    )
    item = portal.ok(
        "POST",
        "/crm/v3/objects/line_items",
        {"properties": {"hs_product_id": product["id"], "quantity": "3"}},
        201,
    )
    read = portal.ok(
        "GET", f"/crm/v3/objects/line_items/{item['id']}", properties="name,hs_sku,price,amount,hs_product_id"
    )
    assert read["properties"] == {
        **read["properties"],
        "name": "Pump",
        "hs_sku": "P-1",
        "price": "12.5",
        "amount": "37.5",
        "hs_product_id": product["id"],
    }
    written = portal.call(
        "PATCH", f"/crm/v3/objects/line_items/{item['id']}", {"properties": {"amount": "1"}}
    )
    assert written.status_code == 400 and "READ_ONLY_VALUE" in written.text


def test_a_payment_needs_its_amount_and_date_and_refuses_processor_fields(portal: Portal) -> None:
    path = "/crm/v3/objects/commerce_payments"
    missing = portal.call("POST", path, {"properties": {"hs_currency_code": "EUR"}})
    assert missing.status_code == 400 and "hs_initial_amount" in missing.text
    read_only = portal.call(
        "POST",
        path,
        {
            "properties": {
                "hs_initial_amount": "5",
                "hs_initiated_date": "2026-05-20T00:00:00Z",
                "hs_payment_id": "x",
            }
        },
    )
    assert read_only.status_code == 400 and "READ_ONLY_VALUE" in read_only.text
    payment = portal.ok(
        "POST", path, {"properties": {"hs_initial_amount": "5", "hs_initiated_date": "2026-05-20"}}, 201
    )
    read = portal.ok("GET", f"{path}/{payment['id']}", properties="hs_latest_status,hs_initiated_date")
    assert read["properties"]["hs_latest_status"] == "processing"
    assert read["properties"]["hs_initiated_date"] == "2026-05-20T00:00:00.000Z"


# ---------------------------------------------------------------------------------------- search
def test_search_filters_sorts_pages_and_reports_the_total(portal: Portal) -> None:
    for i in range(25):
        portal.ok(
            "POST", COMPANIES, {"properties": {"name": f"Company {i:02d}", "numberofemployees": i}}, 201
        )
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "numberofemployees", "operator": "GTE", "value": "5"}]}
        ],
        "sorts": [{"propertyName": "numberofemployees", "direction": "DESCENDING"}],
        "properties": ["numberofemployees"],
        "limit": 10,
        "after": "0",
    }
    first = portal.ok("POST", f"{COMPANIES}/search", body)
    assert first["total"] == 20 and first["paging"]["next"]["after"] == "10"
    assert [r["properties"]["numberofemployees"] for r in first["results"]][:3] == ["24", "23", "22"]
    last = portal.ok("POST", f"{COMPANIES}/search", {**body, "after": "10"})
    assert len(last["results"]) == 10 and "paging" not in last


def test_search_refuses_limits_beyond_200_and_paging_past_10000(portal: Portal) -> None:
    assert portal.call("POST", f"{COMPANIES}/search", {"limit": 201}).status_code == 400
    assert portal.call("POST", f"{COMPANIES}/search", {"limit": 10, "after": "10000"}).status_code == 400
    groups = [{"filters": [{"propertyName": "name", "operator": "HAS_PROPERTY"}]}] * 6
    assert portal.call("POST", f"{COMPANIES}/search", {"filterGroups": groups}).status_code == 400


def test_search_hands_out_the_cursor_at_the_cap_which_then_fails(portal: Portal) -> None:
    portal.control("POST", "objects/companies/generate", {"count": 10_050, "properties": {"name": "G{n}"}})
    page = portal.ok("POST", f"{COMPANIES}/search", {"limit": 200, "after": "9800"})
    assert page["total"] == 10_050 and page["paging"]["next"]["after"] == "10000"
    assert portal.call("POST", f"{COMPANIES}/search", {"limit": 200, "after": "10000"}).status_code == 400


def test_in_filters_expect_lower_case_strings(portal: Portal) -> None:
    portal.ok("POST", COMPANIES, {"properties": {"name": "ACME Ltd", "city": "Rotterdam"}}, 201)

    def found(values: list[str]) -> int:
        body = {"filterGroups": [{"filters": [{"propertyName": "city", "operator": "IN", "values": values}]}]}
        total: int = portal.ok("POST", f"{COMPANIES}/search", body)["total"]
        return total

    assert found(["rotterdam"]) == 1
    assert found(["Rotterdam"]) == 0


def test_filtering_contacts_on_hs_lastmodifieddate_matches_nothing(portal: Portal) -> None:
    portal.ok("POST", CONTACTS, {"properties": {"email": "ana@acme.test"}}, 201)
    for name, expected in (("hs_lastmodifieddate", 0), ("lastmodifieddate", 1)):
        body = {"filterGroups": [{"filters": [{"propertyName": name, "operator": "GTE", "value": "0"}]}]}
        assert portal.ok("POST", f"{CONTACTS}/search", body)["total"] == expected


def test_search_results_lag_writes_by_the_configured_delay() -> None:
    for portal in portal_with(search_lag_ms=300):
        portal.ok("POST", COMPANIES, {"properties": {"name": "Late"}}, 201)
        assert portal.ok("POST", f"{COMPANIES}/search", {})["total"] == 0
        time.sleep(0.4)
        assert portal.ok("POST", f"{COMPANIES}/search", {})["total"] == 1


# ----------------------------------------------------------------------------------- rate limits
def test_every_response_carries_rate_limit_headers_and_the_11th_call_of_10_is_refused() -> None:
    for portal in portal_with(rate_limit=10):
        responses = [portal.call("GET", COMPANIES) for _ in range(11)]
        assert [r.status_code for r in responses] == [200] * 10 + [429]
        assert responses[0].headers["X-HubSpot-RateLimit-Max"] == "10"
        assert responses[0].headers["X-HubSpot-RateLimit-Remaining"] == "9"
        assert responses[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert "X-HubSpot-RateLimit-Daily-Remaining" in responses[0].headers
        refused = responses[-1].json()
        assert refused["policyName"] == "TEN_SECONDLY_ROLLING" and refused["errorType"] == "RATE_LIMIT"
        assert portal.control("GET", "stats")["rate_limited_by_policy"] == {"TEN_SECONDLY_ROLLING": 1}


def test_search_has_its_own_secondly_limit_without_headers() -> None:
    for portal in portal_with(search_rate_limit=2):
        answers = [portal.call("POST", f"{COMPANIES}/search", {}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json()["policyName"] == "SECONDLY"
        assert all("X-HubSpot-RateLimit-Max" not in a.headers for a in answers)
        assert portal.call("GET", COMPANIES).status_code == 200


def test_the_daily_limit_answers_429_daily() -> None:
    for portal in portal_with(daily_limit=2):
        statuses = [portal.call("GET", COMPANIES).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert portal.call("GET", COMPANIES).json()["policyName"] == "DAILY"


# ---------------------------------------------------------------------------------- associations
def test_default_associations_report_both_directions_and_labels_replace(portal: Portal) -> None:
    company = portal.ok("POST", COMPANIES, {"properties": {"name": "Acme"}}, 201)["id"]
    contact = portal.ok("POST", CONTACTS, {"properties": {"email": "ana@acme.test"}}, 201)["id"]
    pair = {"from": {"id": contact}, "to": {"id": company}}
    default = portal.ok(
        "POST", "/crm/v4/associations/contacts/companies/batch/associate/default", {"inputs": [pair]}
    )
    assert {r["associationSpec"]["associationTypeId"] for r in default["results"]} == {279, 280}
    primary = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]
    created = portal.ok(
        "POST",
        "/crm/v4/associations/contacts/companies/batch/create",
        {"inputs": [{**pair, "types": primary}]},
        201,
    )
    assert created["results"][0]["labels"] == ["Primary"]
    read = portal.ok("GET", f"/crm/v4/objects/companies/{company}/associations/contacts")
    assert {t["typeId"] for t in read["results"][0]["associationTypes"]} == {2, 280}
    record = portal.ok("GET", f"{CONTACTS}/{contact}", associations="companies")
    assert {a["type"] for a in record["associations"]["companies"]["results"]} == {
        "contact_to_company",
        "contact_to_company_unlabeled",
    }
    unlabeled = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]
    portal.ok(
        "POST",
        "/crm/v4/associations/contacts/companies/batch/labels/archive",
        {"inputs": [{**pair, "types": unlabeled}]},
        204,
    )
    assert portal.ok("GET", f"/crm/v4/objects/companies/{company}/associations/contacts")["results"] == []


def test_a_wrong_direction_type_id_is_refused_and_a_missing_record_fails_alone(portal: Portal) -> None:
    company = portal.ok("POST", COMPANIES, {"properties": {"name": "Acme"}}, 201)["id"]
    contact = portal.ok("POST", CONTACTS, {"properties": {"email": "ana@acme.test"}}, 201)["id"]
    reverse = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 280}]
    wrong = portal.call(
        "POST",
        "/crm/v4/associations/contacts/companies/batch/create",
        {"inputs": [{"from": {"id": contact}, "to": {"id": company}, "types": reverse}]},
    )
    assert wrong.status_code == 400 and "invalid from object type 0-1" in wrong.json()["message"]
    forward = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]
    mixed = portal.call(
        "POST",
        "/crm/v4/associations/contacts/companies/batch/create",
        {
            "inputs": [
                {"from": {"id": contact}, "to": {"id": company}, "types": forward},
                {"from": {"id": contact}, "to": {"id": "5"}, "types": forward},
            ]
        },
    )
    assert mixed.status_code == 207
    assert mixed.json()["errors"][0]["context"] == {"toObjectId": ["5"]}


def test_a_contact_keeps_one_primary_company(portal: Portal) -> None:
    contact = portal.ok("POST", CONTACTS, {"properties": {"email": "ana@acme.test"}}, 201)["id"]
    primary = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]
    companies = [portal.ok("POST", COMPANIES, {"properties": {"name": n}}, 201)["id"] for n in ("A", "B")]
    for company in companies:
        portal.ok("PUT", f"/crm/v4/objects/contacts/{contact}/associations/companies/{company}", primary, 201)
    read = portal.ok(
        "POST", "/crm/v4/associations/contacts/companies/batch/read", {"inputs": [{"id": contact}]}
    )
    types = {t["toObjectId"]: {k["typeId"] for k in t["associationTypes"]} for t in read["results"][0]["to"]}
    assert types == {companies[0]: {279}, companies[1]: {1, 279}}


# ------------------------------------------------------------------------------------ properties
def test_properties_enforce_unique_values_options_and_a_single_creation(portal: Portal) -> None:
    portal.unique_property("companies", "jde_key")
    again = portal.call(
        "POST",
        "/crm/v3/properties/companies",
        {
            "name": "jde_key",
            "label": "x",
            "type": "string",
            "fieldType": "text",
            "groupName": "companyinformation",
        },
    )
    assert again.status_code == 409
    portal.ok("POST", COMPANIES, {"properties": {"name": "A", "jde_key": "1"}}, 201)
    clash = portal.call("POST", COMPANIES, {"properties": {"name": "B", "jde_key": "1"}})
    assert clash.status_code == 400 and "unique" in clash.json()["message"]
    portal.ok(
        "POST",
        "/crm/v3/properties/companies",
        {
            "name": "tier",
            "label": "Tier",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "companyinformation",
            "options": [{"label": "Gold", "value": "gold", "hidden": False}],
        },
        201,
    )
    bad = portal.call("POST", COMPANIES, {"properties": {"name": "C", "tier": "silver"}})
    assert bad.status_code == 400 and "INVALID_OPTION" in bad.text
    portal.ok(
        "PATCH",
        "/crm/v3/properties/companies/tier",
        {"options": [{"label": "Silver", "value": "silver", "hidden": False}]},
    )
    portal.ok("POST", COMPANIES, {"properties": {"name": "C", "tier": "silver"}}, 201)


def test_a_unique_property_cannot_be_added_past_ten_per_object(portal: Portal) -> None:
    for i in range(10):
        portal.unique_property("companies", f"key_{i}")
    response = portal.call(
        "POST",
        "/crm/v3/properties/companies",
        {
            "name": "key_10",
            "label": "x",
            "type": "string",
            "fieldType": "text",
            "groupName": "companyinformation",
            "hasUniqueValue": True,
        },
    )
    assert response.status_code == 400


# ---------------------------------------------------------------------------- seed and control API
def test_the_seed_holds_invoices_with_line_items_products_and_payments() -> None:
    for portal in portal_with(seed=7):
        stats = portal.control("GET", "stats")
        assert stats["records"]["invoices"] == 12 and stats["records"]["products"] == 12
        invoices = portal.control("GET", "objects/invoices")["results"]
        assert {i["properties"]["hs_invoice_status"] for i in invoices} == {"draft", "open", "paid"}
        assert {i["properties"]["hs_currency"] for i in invoices} == {"EUR", "USD"}
        invoice = next(i for i in invoices if i["properties"]["hs_invoice_status"] == "paid")
        items = portal.ok("GET", f"/crm/v4/objects/invoices/{invoice['id']}/associations/line_items")[
            "results"
        ]
        assert items and all(t["associationTypes"][0]["typeId"] == 409 for t in items)
        item = portal.ok(
            "GET", f"/crm/v3/objects/line_items/{items[0]['toObjectId']}", properties="hs_sku,hs_product_id"
        )
        assert item["properties"]["hs_sku"].startswith("SKU-")
        payments = portal.ok(
            "GET", f"/crm/v4/objects/invoices/{invoice['id']}/associations/commerce_payments"
        )
        payment_id = payments["results"][0]["toObjectId"]
        back = portal.ok("GET", f"/crm/v4/objects/commerce_payments/{payment_id}/associations/invoices")
        assert back["results"][0]["associationTypes"][0]["typeId"] == 542
        for other in portal_with(seed=7):  # the same seed, the same portal (dates follow the clock)
            assert summary(other.control("GET", "objects/invoices")["results"]) == summary(invoices)


def summary(invoices: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    fields = ("hs_invoice_status", "hs_currency", "hs_amount_billed", "hs_balance_due", "hs_number")
    return [(i["id"], *(i["properties"][f] for f in fields)) for i in invoices]


def test_a_salesperson_edit_bumps_last_modified_and_reset_restores_the_seed() -> None:
    for portal in portal_with(seed=3):
        invoice = portal.control("GET", "objects/invoices")["results"][0]
        changed = portal.control(
            "PATCH",
            f"objects/invoices/{invoice['id']}",
            {"properties": {"hs_comments": "called the customer"}},
        )
        assert changed["properties"]["hs_lastmodifieddate"] > invoice["properties"]["hs_lastmodifieddate"]
        made = portal.control(
            "POST",
            "invoices",
            {"currency": "USD", "status": "open", "lines": [{"sku": "SKU-1001", "quantity": 2}]},
        )
        assert (
            made["invoice"]["properties"]["hs_amount_billed"] == made["line_items"][0]["properties"]["amount"]
        )
        paid = portal.control(
            "POST",
            "payments",
            {
                "invoice_id": made["invoice"]["id"],
                "amount": made["invoice"]["properties"]["hs_amount_billed"],
            },
        )
        assert paid["properties"]["hs_latest_status"] == "succeeded"
        invoice_now = portal.ok(
            "GET",
            f"/crm/v3/objects/invoices/{made['invoice']['id']}",
            properties="hs_invoice_status,hs_balance_due",
        )
        assert invoice_now["properties"]["hs_invoice_status"] == "paid"
        assert invoice_now["properties"]["hs_balance_due"] == "0"
        portal.control("POST", "reset")
        assert portal.control("GET", "stats")["records"]["invoices"] == 12


def test_fault_injection_answers_gateway_errors_with_html() -> None:
    for portal in portal_with(fault_rate=0.5, seed=1):
        statuses = [portal.call("GET", COMPANIES).status_code for _ in range(40)]
        faults = [s for s in statuses if s != 200]
        assert faults and set(faults) <= {502, 504}
        assert portal.control("GET", "stats")["faults"] == len(faults)


def test_the_sandbox_imports_nothing_from_the_client_side_of_the_package() -> None:
    import ast
    from pathlib import Path

    import airflow_provider_mlconn.sandbox.hubspot as package

    outside = []
    for source in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            outside += [
                f"{source.name}: {n}"
                for n in names
                if n.startswith("airflow_provider_mlconn")
                and not n.startswith("airflow_provider_mlconn.sandbox")
            ]
    assert outside == []
