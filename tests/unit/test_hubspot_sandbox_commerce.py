"""The HubSpot sandbox's commerce rules: property options, invoice totals with taxes, discounts and fees,
invoice status transitions, payments and refunds, and the edits a salesperson makes in HubSpot."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_mlconn.sandbox.hubspot import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.unit

TOKEN = "pat-na1-commerce"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OBJECTS = "/crm/v3/objects"
PROPERTIES = "/crm/v3/properties"
TOTALS = "hs_subtotal,hs_amount_billed,hs_amount_paid,hs_balance_due,hs_invoice_status,hs_lastmodifieddate"


class Portal:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.buyers = 0

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return self.client.request(method, path, json=body, params=params or None, headers=AUTH)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **params: Any) -> Any:
        response = self.call(method, path, body, **params)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def control(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        response = self.client.request(method, f"/_sandbox/{path}", json=body)
        if status is None:
            assert response.status_code < 300, response.text
        else:
            assert response.status_code == status, response.text
        return response.json() if response.content else None

    def create(self, object_type: str, properties: dict[str, Any], *associations: tuple[str, int]) -> str:
        body: dict[str, Any] = {"properties": properties}
        if associations:
            body["associations"] = [
                {
                    "to": {"id": to_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t}],
                }
                for to_id, t in associations
            ]
        created: dict[str, Any] = self.ok("POST", f"{OBJECTS}/{object_type}", body, 201)
        return str(created["id"])

    def props(self, object_type: str, record_id: str, names: str = TOTALS) -> dict[str, Any]:
        found: dict[str, Any] = self.ok("GET", f"{OBJECTS}/{object_type}/{record_id}", properties=names)
        return dict(found["properties"])

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        self.ok("PUT", f"/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}")

    def status(self, invoice_id: str, status: str) -> Any:
        return self.call(
            "PATCH", f"{OBJECTS}/invoices/{invoice_id}", {"properties": {"hs_invoice_status": status}}
        )

    def invoice(self, *lines: dict[str, Any], status: str = "draft") -> tuple[str, list[str]]:
        """An invoice with a contact and the given line items, moved to ``status`` through the API."""
        self.buyers += 1
        contact = self.create("contacts", {"email": f"buyer{self.buyers}@acme.test"})
        items = [self.create("line_items", line) for line in lines]
        invoice = self.create(
            "invoices", {"hs_currency": "EUR"}, (contact, 177), *((item, 409) for item in items)
        )
        if status != "draft":
            assert self.status(invoice, "open").status_code == 200
        if status not in ("draft", "open"):
            assert self.status(invoice, status).status_code == 200
        return invoice, items


def portal_with(**options: Any) -> Iterator[Portal]:
    options.setdefault("token", TOKEN)
    options.setdefault("search_lag_ms", 0)
    with TestClient(create_app(**options)) as client:
        yield Portal(client)


@pytest.fixture
def portal() -> Iterator[Portal]:
    yield from portal_with()


def enumeration(name: str, options: Any = None, **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "label": name,
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "lineiteminformation",
        **extra,
    }
    if options is not None:
        body["options"] = options
    return body


def options(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"label": f"Account {i}", "value": f"{i:05d}", "hidden": False, **extra} for i in range(count)]


# ------------------------------------------------------------------------------ property options
def test_an_enumeration_without_options_or_an_option_without_hidden_is_refused(portal: Portal) -> None:
    path = f"{PROPERTIES}/line_items"
    no_options = portal.call("POST", path, enumeration("jde_gl_account"))
    assert no_options.status_code == 400 and no_options.json()["category"] == "VALIDATION_ERROR"
    assert "options" in no_options.json()["message"]
    no_hidden = portal.call("POST", path, enumeration("jde_gl_account", [{"label": "A", "value": "a"}]))
    assert no_hidden.status_code == 400
    assert "some of required attributes are not set [hidden]" in no_hidden.json()["message"]
    not_bool = portal.call(
        "POST", path, enumeration("jde_gl_account", [{"label": "A", "value": "a", "hidden": "no"}])
    )
    assert not_bool.status_code == 400
    portal.ok("POST", path, enumeration("jde_gl_account", []), 201)  # present but empty is a list
    batch = portal.call(
        "POST",
        f"{path}/batch/create",
        {"inputs": [enumeration("jde_business_unit", options(2)), enumeration("jde_other")]},
    )
    assert batch.status_code == 207 and batch.json()["numErrors"] == 1


def test_5000_options_of_3000_characters_are_the_most_on_create_and_on_patch(portal: Portal) -> None:
    path = f"{PROPERTIES}/line_items"
    too_many = portal.call("POST", path, enumeration("jde_gl_account", options(5001)))
    assert too_many.status_code == 400 and "at most 5000 options" in too_many.json()["message"]
    long_label = [{"label": "x" * 2990, "value": "v" * 10, "hidden": False, "description": "d"}]
    too_long = portal.call("POST", path, enumeration("jde_gl_account", long_label))
    assert too_long.status_code == 400 and "3000" in too_long.json()["message"]
    created = portal.ok("POST", path, enumeration("jde_gl_account", options(5000)), 201)
    assert len(created["options"]) == 5000
    exact = [{"label": "x" * 2990, "value": "v" * 10, "hidden": True}]
    patched = portal.ok("PATCH", f"{path}/jde_gl_account", {"options": exact})
    assert [o["value"] for o in patched["options"]] == ["v" * 10]  # a PATCH replaces the whole list
    for refused in (options(5001), [{"label": "A", "value": "a"}], long_label, None):
        answer = portal.call("PATCH", f"{path}/jde_gl_account", {"options": refused})
        assert answer.status_code == 400, refused
    assert portal.ok("GET", f"{path}/jde_gl_account")["options"] == patched["options"]


# -------------------------------------------------------------------------------------- totals
def test_invoice_totals_follow_line_items_as_they_change_and_leave(portal: Portal) -> None:
    invoice, (first, second) = portal.invoice(
        {"name": "Pump", "price": "100", "quantity": "2"}, {"name": "Valve", "price": "20", "quantity": "1"}
    )
    before = portal.props("invoices", invoice)
    assert (before["hs_subtotal"], before["hs_amount_billed"], before["hs_balance_due"]) == (
        "220",
        "220",
        "220",
    )
    assert before["hs_amount_paid"] == "0"
    portal.ok("PATCH", f"{OBJECTS}/line_items/{first}", {"properties": {"quantity": "3"}})
    after = portal.props("invoices", invoice)
    assert after["hs_amount_billed"] == "320"
    assert after["hs_lastmodifieddate"] > before["hs_lastmodifieddate"]
    portal.ok("DELETE", f"/crm/v4/objects/invoices/{invoice}/associations/line_items/{second}", status=204)
    assert portal.props("invoices", invoice)["hs_amount_billed"] == "300"
    third = portal.create("line_items", {"price": "5", "quantity": "4"})
    portal.associate("line_items", third, "invoices", invoice)
    assert portal.props("invoices", invoice)["hs_subtotal"] == "320"
    portal.ok("DELETE", f"{OBJECTS}/line_items/{third}", status=204)
    assert portal.props("invoices", invoice)["hs_amount_billed"] == "300"
    written = portal.call("PATCH", f"{OBJECTS}/invoices/{invoice}", {"properties": {"hs_amount_billed": "1"}})
    assert written.status_code == 400 and "READ_ONLY_VALUE" in written.text


def test_totals_apply_line_discounts_then_invoice_discounts_fees_and_taxes_in_that_order(
    portal: Portal,
) -> None:
    product = portal.create("products", {"name": "Pump", "price": "100"})
    discounted = portal.create(
        "line_items", {"hs_product_id": product, "quantity": "2", "hs_discount_percentage": "10"}
    )
    taxed = portal.create(
        "line_items", {"name": "Service", "price": "60", "quantity": "1", "discount": "10", "tax": "5"}
    )
    line = portal.props(
        "line_items",
        taxed,
        "amount,hs_pre_discount_amount,hs_total_discount,hs_tax_amount,hs_post_tax_amount",
    )
    assert (line["amount"], line["hs_pre_discount_amount"], line["hs_total_discount"]) == ("50", "60", "10")
    assert (line["hs_tax_amount"], line["hs_post_tax_amount"]) == ("5", "55")
    discount = portal.create("discounts", {"hs_label": "Loyalty", "hs_type": "FIXED", "hs_value": "30"})
    fee = portal.create("fees", {"hs_label": "Handling", "hs_type": "PERCENT", "hs_value": "10"})
    tax = portal.create("taxes", {"hs_label": "VAT", "hs_type": "PERCENT", "hs_value": "20"})
    invoice = portal.create(
        "invoices",
        {"hs_currency": "EUR"},
        (discounted, 409),
        (taxed, 409),
        (discount, 411),
        (fee, 413),
        (tax, 415),
    )
    # 180 + 50 = 230; - 30 = 200; + 10 % fee = 220; + 20 % tax = 264; + the line's tax 5 = 269
    totals = portal.props("invoices", invoice)
    assert (totals["hs_subtotal"], totals["hs_amount_billed"], totals["hs_balance_due"]) == (
        "230",
        "269",
        "269",
    )
    portal.ok(
        "PATCH", f"{OBJECTS}/discounts/{discount}", {"properties": {"hs_type": "PERCENT", "hs_value": "50"}}
    )
    # 230 - 50 % = 115; + 11.5 fee = 126.5; + 25.3 tax = 151.8; + 5 line tax = 156.8
    assert portal.props("invoices", invoice)["hs_amount_billed"] == "156.8"
    back = portal.ok("GET", f"/crm/v4/objects/discounts/{discount}/associations/invoices")["results"]
    assert back[0]["toObjectId"] == invoice and back[0]["associationTypes"][0]["typeId"] == 412
    assert (
        portal.ok("GET", "/crm/v3/objects/0-86/" + tax, properties="hs_label")["properties"]["hs_label"]
        == "VAT"
    )


def test_discounts_fees_and_taxes_need_a_label_a_type_and_a_value(portal: Portal) -> None:
    missing = portal.call("POST", f"{OBJECTS}/fees", {"properties": {"hs_label": "Fee"}})
    assert missing.status_code == 400 and "hs_type" in missing.text and "hs_value" in missing.text
    wrong = portal.call(
        "POST",
        f"{OBJECTS}/taxes",
        {"properties": {"hs_label": "T", "hs_type": "PERCENTAGE", "hs_value": "5"}},
    )
    assert wrong.status_code == 400 and "INVALID_OPTION" in wrong.text
    negative = portal.call(
        "POST", f"{OBJECTS}/discount", {"properties": {"hs_label": "D", "hs_type": "FIXED", "hs_value": "-5"}}
    )
    assert negative.status_code == 400


def test_a_line_item_tax_rate_sets_its_tax_and_an_unknown_rate_is_refused(portal: Portal) -> None:
    rate = portal.control("POST", "tax-rates", {"name": "NL VAT", "percentage_rate": 21, "label": "VAT 21%"})
    listed = portal.ok("GET", "/tax-rates/v1/tax-rates")["results"]
    assert [r["id"] for r in listed] == [rate["id"]] and listed[0]["percentageRate"] == 21
    assert portal.ok("GET", f"/tax-rates/v1/tax-rates/{rate['id']}")["label"] == "VAT 21%"
    item = portal.create("line_items", {"price": "100", "quantity": "1", "hs_tax_rate_group_id": rate["id"]})
    line = portal.props("line_items", item, "hs_tax_rate,hs_tax_label,hs_tax_amount,hs_post_tax_amount")
    assert (line["hs_tax_rate"], line["hs_tax_label"], line["hs_tax_amount"], line["hs_post_tax_amount"]) == (
        "21",
        "VAT 21%",
        "21",
        "121",
    )
    unknown = portal.call("POST", f"{OBJECTS}/line_items", {"properties": {"hs_tax_rate_group_id": "999"}})
    assert unknown.status_code == 400 and "INVALID_OPTION" in unknown.text


# --------------------------------------------------------------------------------- transitions
def test_an_invoice_moves_draft_open_paid_and_voided_is_final(portal: Portal) -> None:
    invoice, _ = portal.invoice({"price": "10", "quantity": "1"})
    assert portal.status(invoice, "paid").status_code == 400  # a draft is not payable
    assert portal.status(invoice, "open").status_code == 200
    back = portal.status(invoice, "draft")
    assert back.status_code == 400 and "INVALID_INVOICE_STATE" in back.text
    assert portal.status(invoice, "paid").status_code == 200
    refused = portal.status(invoice, "voided")
    assert refused.status_code == 400 and "A paid invoice cannot be voided" in refused.json()["message"]
    voided, _ = portal.invoice({"price": "10", "quantity": "1"})
    assert portal.status(voided, "voided").status_code == 200
    for status in ("draft", "open", "paid"):
        answer = portal.status(voided, status)
        assert answer.status_code == 400 and "voided invoice is final" in answer.text
    assert portal.props("invoices", voided)["hs_balance_due"] == "0"
    created_paid = portal.call(
        "POST", f"{OBJECTS}/invoices", {"properties": {"hs_currency": "EUR", "hs_invoice_status": "paid"}}
    )
    assert created_paid.status_code == 400


def test_a_final_invoice_refuses_hubspot_properties_but_takes_custom_ones(portal: Portal) -> None:
    portal.ok(
        "POST",
        f"{PROPERTIES}/invoices",
        {
            "name": "jde_sync_status",
            "label": "Sync",
            "type": "string",
            "fieldType": "text",
            "groupName": "invoiceinformation",
        },
        201,
    )
    invoice, _ = portal.invoice({"price": "10", "quantity": "1"}, status="paid")
    frozen = portal.call("PATCH", f"{OBJECTS}/invoices/{invoice}", {"properties": {"hs_comments": "late"}})
    assert frozen.status_code == 400 and "cannot change on a paid invoice" in frozen.text
    portal.ok("PATCH", f"{OBJECTS}/invoices/{invoice}", {"properties": {"jde_sync_status": "posted"}})
    assert portal.props("invoices", invoice, "jde_sync_status")["jde_sync_status"] == "posted"
    open_one, _ = portal.invoice({"price": "10", "quantity": "1"}, status="open")
    portal.ok(
        "PATCH", f"{OBJECTS}/invoices/{open_one}", {"properties": {"hs_comments": "editable while unpaid"}}
    )
    portal.control("POST", "payments", {"invoice_id": open_one, "amount": "4"})
    paid_part = portal.call("PATCH", f"{OBJECTS}/invoices/{open_one}", {"properties": {"hs_comments": "no"}})
    assert paid_part.status_code == 400 and "with payments" in paid_part.text
    assert portal.status(open_one, "voided").status_code == 400


def test_only_draft_invoices_can_be_deleted_through_the_api(portal: Portal) -> None:
    draft, _ = portal.invoice({"price": "10", "quantity": "1"})
    opened, _ = portal.invoice({"price": "10", "quantity": "1"}, status="open")
    refused = portal.call("DELETE", f"{OBJECTS}/invoices/{opened}")
    assert refused.status_code == 400 and opened in refused.json()["context"]["ids"]
    batch = portal.call(
        "POST", f"{OBJECTS}/invoices/batch/archive", {"inputs": [{"id": draft}, {"id": opened}]}
    )
    assert batch.status_code == 400
    portal.ok("DELETE", f"{OBJECTS}/invoices/{draft}", status=204)
    assert portal.call("GET", f"{OBJECTS}/invoices/{draft}").status_code == 404


# ------------------------------------------------------------------------------------ payments
def api_payment(portal: Portal, invoice: str, amount: str, status: str = "succeeded") -> str:
    return portal.create(
        "commerce_payments",
        {"hs_initial_amount": amount, "hs_initiated_date": "2026-05-20", "hs_latest_status": status},
        (invoice, 542),
    )


def test_a_part_payment_lowers_the_balance_and_the_payment_that_covers_it_marks_it_paid(
    portal: Portal,
) -> None:
    invoice, _ = portal.invoice({"price": "100", "quantity": "1"}, status="open")
    portal.control("POST", "payments", {"invoice_id": invoice, "amount": "10"})
    part = portal.props("invoices", invoice)
    assert (part["hs_invoice_status"], part["hs_amount_paid"], part["hs_balance_due"]) == ("open", "10", "90")
    portal.control("POST", "payments", {"invoice_id": invoice, "amount": "95"})
    paid = portal.props("invoices", invoice)
    assert (paid["hs_invoice_status"], paid["hs_amount_paid"], paid["hs_balance_due"]) == ("paid", "105", "0")
    refused = portal.control("POST", "payments", {"invoice_id": invoice, "amount": "1"}, status=400)
    assert "open invoices" in refused["message"]


def test_api_payments_associated_with_542_count_towards_the_invoice_by_default(portal: Portal) -> None:
    invoice, _ = portal.invoice({"price": "100", "quantity": "1"}, status="open")
    pending = api_payment(portal, invoice, "100", status="processing")
    assert portal.props("invoices", invoice)["hs_balance_due"] == "100"  # money not received yet
    portal.ok(
        "PATCH", f"{OBJECTS}/commerce_payments/{pending}", {"properties": {"hs_latest_status": "succeeded"}}
    )
    totals = portal.props("invoices", invoice)
    assert (totals["hs_invoice_status"], totals["hs_amount_paid"], totals["hs_balance_due"]) == (
        "paid",
        "100",
        "0",
    )
    payment = portal.props(
        "commerce_payments",
        pending,
        "hs_has_associated_invoice,hs_number_of_associated_invoices,hs_payment_id,hs_payment_creation_method",
    )
    assert (payment["hs_has_associated_invoice"], payment["hs_number_of_associated_invoices"]) == (
        "true",
        "1",
    )
    assert payment["hs_payment_id"] and payment["hs_payment_creation_method"] == "OTHER"


def test_with_the_switch_off_api_payments_leave_the_invoice_alone_but_recorded_ones_count() -> None:
    for portal in portal_with(api_payments_update_invoices=False):
        invoice, _ = portal.invoice({"price": "100", "quantity": "1"}, status="open")
        api_payment(portal, invoice, "100")
        untouched = portal.props("invoices", invoice)
        assert (untouched["hs_invoice_status"], untouched["hs_balance_due"]) == ("open", "100")
        portal.control("POST", "payments", {"invoice_id": invoice, "amount": "30"})
        assert portal.props("invoices", invoice)["hs_balance_due"] == "70"
        assert portal.control("GET", "stats")["settings"]["api_payments_update_invoices"] is False


def test_refunds_set_the_refund_status_and_amount_and_lower_the_amount_paid(portal: Portal) -> None:
    invoice, _ = portal.invoice({"price": "100", "quantity": "1"}, status="open")
    payment = portal.control("POST", "payments", {"invoice_id": invoice, "amount": "100"})
    part = portal.control("POST", f"payments/{payment['id']}/refund", {"amount": "40"})
    assert part["properties"]["hs_latest_status"] == "partially_refunded"
    assert part["properties"]["hs_refunds_amount"] == "40"
    assert part["properties"]["hs_net_amount_after_refunds"] == "60"
    assert part["properties"]["hs_max_refundable_amount_in_portal_currency"] == "60"
    assert part["properties"]["hs_lastmodifieddate"] > payment["properties"]["hs_lastmodifieddate"]
    after = portal.props("invoices", invoice)
    assert (after["hs_invoice_status"], after["hs_amount_paid"], after["hs_balance_due"]) == (
        "paid",
        "60",
        "40",
    )
    portal.control("POST", f"payments/{payment['id']}/refund", {"amount": "61"}, status=400)
    full = portal.control("POST", f"payments/{payment['id']}/refund")
    assert (full["properties"]["hs_latest_status"], full["properties"]["hs_refunds_amount"]) == (
        "refunded",
        "100",
    )
    assert portal.props("invoices", invoice)["hs_amount_paid"] == "0"
    portal.control("POST", f"payments/{payment['id']}/refund", status=400)


# --------------------------------------------------------------------------- salesperson edits
def test_issuing_and_voiding_follow_the_ui_rules_and_move_last_modified(portal: Portal) -> None:
    empty = portal.create("invoices", {"hs_currency": "EUR"})
    refused = portal.control("POST", f"invoices/{empty}/issue", status=400)
    assert "exactly one associated contact" in refused["message"]
    invoice, _ = portal.invoice({"price": "10", "quantity": "1"})
    before = portal.props("invoices", invoice)
    issued = portal.control("POST", f"invoices/{invoice}/issue")
    assert issued["properties"]["hs_invoice_status"] == "open"
    assert issued["properties"]["hs_lastmodifieddate"] > before["hs_lastmodifieddate"]
    portal.control("POST", f"invoices/{invoice}/issue", status=400)
    voided = portal.control("POST", f"invoices/{invoice}/void")
    assert voided["properties"]["hs_invoice_status"] == "voided"
    portal.control("POST", f"invoices/{invoice}/void", status=400)
    paid, _ = portal.invoice({"price": "10", "quantity": "1"}, status="open")
    portal.control("POST", "payments", {"invoice_id": paid, "amount": "10"})
    assert "cannot be voided" in portal.control("POST", f"invoices/{paid}/void", status=400)["message"]


def test_a_salesperson_creates_and_edits_a_product_and_line_items_keep_their_copy(portal: Portal) -> None:
    product = portal.control(
        "POST", "products", {"name": "Pump", "price": "12.5", "sku": "P-1", "description": "Blue"}
    )
    item = portal.create("line_items", {"hs_product_id": product["id"], "quantity": "2"})
    changed = portal.control(
        "PATCH", f"products/{product['id']}", {"name": "Pump II", "price": 15, "description": "Red"}
    )
    assert (changed["properties"]["name"], changed["properties"]["price"]) == ("Pump II", "15")
    assert changed["properties"]["hs_lastmodifieddate"] > product["properties"]["hs_lastmodifieddate"]
    line = portal.props("line_items", item, "name,price,amount,description")
    assert (line["name"], line["price"], line["amount"], line["description"]) == (
        "Pump",
        "12.5",
        "25",
        "Blue",
    )
    portal.control("POST", "products", {"price": "1"}, status=400)
    portal.control("PATCH", f"products/{product['id']}", {"price": "-1"}, status=400)


def test_the_seed_still_holds_paid_part_paid_and_open_invoices_with_consistent_totals() -> None:
    for portal in portal_with(seed=5):
        invoices = portal.control("GET", "objects/invoices")["results"]
        for invoice in invoices:
            p = invoice["properties"]
            billed, paid, due = (
                float(p[n]) for n in ("hs_amount_billed", "hs_amount_paid", "hs_balance_due")
            )
            assert billed > 0 and due == pytest.approx(max(billed - paid, 0))
            assert (p["hs_invoice_status"] == "paid") == (paid >= billed)
        statuses = {i["properties"]["hs_invoice_status"] for i in invoices}
        assert statuses == {"draft", "open", "paid"}
        assert any(
            float(i["properties"]["hs_amount_paid"]) > 0
            for i in invoices
            if i["properties"]["hs_invoice_status"] == "open"
        )
