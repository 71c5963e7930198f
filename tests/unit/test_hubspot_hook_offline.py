"""HubSpotHook logic that needs no server: outcome matching, bisection, retries, error classes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_mlconn.hooks.hubspot import HubSpotHook, _merge_by_key, _upsert_outcomes
from airflow_provider_mlconn.http import RetryPolicy
from airflow_provider_mlconn.hubspot.models import HubSpotRecord, RecordError, WriteStatus
from airflow_provider_mlconn.hubspot.objects import CONTACT_TO_COMPANY_PRIMARY, ObjectType

pytestmark = pytest.mark.unit


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotHook]:
    connection = {
        "conn_type": "hubspot",
        "host": "http://hubspot.invalid",
        "password": "pat-na1-offline-token",
    }
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_OFFLINE", json.dumps(connection))
    hook = HubSpotHook(
        "hubspot_offline", max_workers=1, retry_policy=RetryPolicy(max_attempts=3, initial_wait=0)
    )
    yield hook
    hook.close()


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode() if body is not None else b"<html>bad gateway</html>"
    answer.headers.update(headers or {})
    return answer


class ScriptedSession:
    """Stands in for ``requests.Session``: answers from a function of the request body."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.bodies: list[Any] = []
        self.headers: dict[str, str] = {}

    def request(
        self, method: str, url: str, *, params: Any = None, json: Any = None, timeout: Any = None
    ) -> Any:
        self.bodies.append(json)
        return self.answer(json)

    def close(self) -> None:
        pass


def upsert_answer(body: dict[str, Any], poison: set[str]) -> requests.Response:
    keys = [i["id"] for i in body["inputs"]]
    bad = [k for k in keys if k in poison]
    if bad:
        return response(
            409,
            {
                "status": "error",
                "message": f"Contact already exists. Existing ID: {900 + int(bad[0])}",
                "category": "CONFLICT",
                "correlationId": "x",
            },
        )
    results = [
        {"id": str(5000 + int(k)), "new": True, "properties": {"jde_contact_key": k}, "objectWriteTraceId": k}
        for k in keys
    ]
    return response(200, {"status": "COMPLETE", "results": results})


def test_bisection_isolates_each_refused_record_and_keeps_its_neighbours(hook: HubSpotHook) -> None:
    session = ScriptedSession(lambda body: upsert_answer(body, poison={"13", "77"}))
    hook.__dict__["session"] = session
    outcomes = hook.upsert_records(
        "contacts", {str(i): {"email": f"{i}@x.test"} for i in range(100)}, id_property="jde_contact_key"
    )
    failed = {k: o.error for k, o in outcomes.items() if not o.ok}
    assert set(failed) == {"13", "77"}
    assert failed["13"] is not None and failed["13"].existing_id == "913"
    assert failed["77"] is not None and failed["77"].existing_id == "977"
    assert sum(o.status is WriteStatus.CREATED for o in outcomes.values()) == 98
    assert len(session.bodies) <= 1 + 2 * 2 * 7  # two poison rows, ~2*log2(100) requests each


def test_a_batch_wide_refusal_stops_bisecting_at_the_budget(hook: HubSpotHook) -> None:
    hook.bisect_budget = 6
    session = ScriptedSession(
        lambda body: response(400, {"message": "idProperty is not unique", "category": "VALIDATION_ERROR"})
    )
    hook.__dict__["session"] = session
    outcomes = hook.upsert_records("companies", {str(i): {"name": "x"} for i in range(100)}, id_property="k")
    assert not any(o.ok for o in outcomes.values())
    assert len(session.bodies) == 1 + 6


def test_gateway_errors_are_retried_and_a_spent_retry_budget_fails_records_as_retriable(
    hook: HubSpotHook,
) -> None:
    calls = iter([response(502), response(503, {"message": "down"}), response(504)])
    hook.__dict__["session"] = ScriptedSession(lambda body: next(calls))
    outcomes = hook.upsert_records("companies", {"1": {"name": "x"}}, id_property="k")
    error = outcomes["1"].error
    assert error is not None and error.retriable and not outcomes["1"].ok
    assert hook.metrics.retries == 2 and hook.metrics.count(status=502) == 1


def test_a_validation_error_is_not_retried(hook: HubSpotHook) -> None:
    session = ScriptedSession(lambda body: response(404, {"message": "resource not found"}))
    hook.__dict__["session"] = session
    assert hook.get_record("companies", "1") is None
    assert len(session.bodies) == 1


def test_outcomes_are_matched_by_trace_id_or_value_never_by_position() -> None:
    body = {
        "results": [
            {"id": "11", "new": False, "properties": {"email": "B@x.test"}},
            {"id": "10", "new": True, "properties": {}, "objectWriteTraceId": "a@x.test"},
        ],
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "bad",
                "context": {"objectWriteTraceId": ["c@x.test"]},
                "errors": [{"message": "m", "code": "INVALID"}],
            }
        ],
    }
    outcomes = _upsert_outcomes(body, ["a@x.test", "b@x.test", "c@x.test", "d@x.test"], "email")
    assert outcomes["a@x.test"].record_id == "10" and outcomes["a@x.test"].status is WriteStatus.CREATED
    assert outcomes["b@x.test"].record_id == "11" and outcomes["b@x.test"].status is WriteStatus.UPDATED
    error = outcomes["c@x.test"].error
    assert error is not None and error.code == "INVALID"
    missing = outcomes["d@x.test"].error
    assert missing is not None and missing.category == "MISSING_RESULT"


def test_records_sharing_a_key_merge_and_empty_keys_are_refused() -> None:
    merged = _merge_by_key([(" A@x.test", {"a": 1}), ("a@x.test", {"b": 2, "a": 3})], lowercase=True)
    assert merged == {"a@x.test": {"a": 3, "b": 2}}
    with pytest.raises(ValueError, match="empty key"):
        _merge_by_key({" ": {"a": 1}}, lowercase=False)


def test_property_values_are_sent_as_hubspot_accepts_them() -> None:
    from datetime import date, datetime, timezone
    from decimal import Decimal

    merged = _merge_by_key(
        {
            "1": {
                "price": Decimal("12.50"),
                "day": date(2026, 5, 1),
                "at": datetime(2026, 5, 1, tzinfo=timezone.utc),
                "gone": None,
                "n": 3,
            }
        },
        lowercase=False,
    )
    assert merged["1"] == {
        "price": "12.50",
        "day": "2026-05-01",
        "at": "2026-05-01T00:00:00Z",
        "gone": "",
        "n": 3,
    }
    with pytest.raises(ValueError, match="no time zone"):
        _merge_by_key({"1": {"at": datetime(2026, 5, 1)}}, lowercase=False)
    with pytest.raises(TypeError, match="property 'tags'"):
        _merge_by_key({"1": {"tags": ["a"]}}, lowercase=False)


def test_record_errors_carry_the_existing_contact_id() -> None:
    error = RecordError.from_body(
        {"message": "Contact already exists. Existing ID: 12345", "category": "CONFLICT"}, status=409
    )
    assert error.existing_id == "12345" and error.category == "CONFLICT"


def test_records_normalise_association_keys() -> None:
    record = HubSpotRecord.from_api(
        {
            "id": "1",
            "properties": {"a": None},
            "createdAt": "2026-05-01T10:00:00.000Z",
            "updatedAt": "2026-05-01T10:00:00.000Z",
            "archived": False,
            "associations": {
                "line items": {"results": [{"id": "7", "type": "invoice_to_line_item"}]},
                "companies": {
                    "results": [
                        {"id": "9", "type": "contact_to_company"},
                        {"id": "9", "type": "contact_to_company_unlabeled"},
                    ]
                },
            },
        }
    )
    assert record.associated_ids(ObjectType.LINE_ITEMS) == ["7"]
    assert record.associated_ids(ObjectType.COMPANIES) == ["9"]


def test_association_types_know_their_direction() -> None:
    assert CONTACT_TO_COMPANY_PRIMARY.spec() == {
        "associationCategory": "HUBSPOT_DEFINED",
        "associationTypeId": 1,
    }
    assert (
        ObjectType.parse("0-53") is ObjectType.INVOICES
        and ObjectType.parse("company") is ObjectType.COMPANIES
    )


def test_the_token_stays_out_of_settings_repr_and_connection_errors(hook: HubSpotHook) -> None:
    assert "pat-na1-offline-token" not in repr(hook.settings)

    def refuse(body: Any) -> requests.Response:
        raise requests.ConnectionError("connection refused for Bearer pat-na1-offline-token")

    hook.__dict__["session"] = ScriptedSession(refuse)
    ok, message = hook.test_connection()
    assert not ok and "pat-na1-offline-token" not in message
    assert "cannot reach http://hubspot.invalid (connection refused)" in message
