"""Walking a search window in id slices: every record once, never a request past the 10,000 cap."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.hubspot.search import PagingCursorError, iter_window, window_request

pytestmark = pytest.mark.unit


class FakeSearch:
    """HubSpot search over ``records`` ({id: last-modified ms}) with its cap and integer offsets."""

    def __init__(self, records: dict[int, int], cap: int = 10_000) -> None:
        self.records = records
        self.cap = cap
        self.requests: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(body)
        offset, limit = int(body["after"]), body["limit"]
        assert offset + limit <= self.cap, "asked past the result cap"
        matches = sorted(i for i, modified in self.records.items() if self._match(body, i, modified))
        page = matches[offset : offset + limit]
        answer: dict[str, Any] = {"total": len(matches), "results": [{"id": str(i)} for i in page]}
        if offset + len(page) < len(matches):
            answer["paging"] = {"next": {"after": str(offset + len(page))}}
        return answer

    @staticmethod
    def _match(body: dict[str, Any], record_id: int, modified: int) -> bool:
        for f in body["filterGroups"][0]["filters"]:
            value = record_id if f["propertyName"] == "hs_object_id" else modified
            limit = int(f["value"])
            if not {"GTE": value >= limit, "LT": value < limit, "GT": value > limit}[f["operator"]]:
                return False
        return True


def test_a_window_larger_than_the_cap_with_one_shared_instant_returns_each_record_once() -> None:
    search = FakeSearch({i: 5_000 for i in range(1, 25_001)} | {30_000: 4_000, 30_001: 9_000})
    ids = [int(r["id"]) for r in iter_window(search, ObjectType.COMPANIES, start_ms=5_000, end_ms=9_000)]
    assert ids == list(range(1, 25_001))
    assert len(search.requests) == 125  # 200 per page, no page spent on the restarts


def test_a_small_page_size_and_cap_restart_from_the_last_id() -> None:
    search = FakeSearch({i: 10 for i in range(1, 48)}, cap=20)
    ids = [
        r["id"]
        for r in iter_window(search, ObjectType.DEALS, start_ms=0, end_ms=100, page_size=5, result_cap=20)
    ]
    assert ids == [str(i) for i in range(1, 48)]
    assert {
        b["filterGroups"][0]["filters"][-1]["value"]
        for b in search.requests
        if len(b["filterGroups"][0]["filters"]) == 3
    } == {"20", "40"}


def test_a_repeated_cursor_stops_the_walk() -> None:
    def stuck(body: dict[str, Any]) -> dict[str, Any]:
        return {"results": [{"id": "1"}], "paging": {"next": {"after": "0"}}}

    with pytest.raises(PagingCursorError):
        list(iter_window(stuck, ObjectType.COMPANIES, start_ms=0, end_ms=1))


def test_ids_out_of_order_stop_the_walk() -> None:
    pages = iter(
        [
            {"results": [{"id": "5"}, {"id": "6"}], "paging": {"next": {"after": "2"}}},
            {"results": [{"id": "6"}]},
        ]
    )
    with pytest.raises(PagingCursorError):
        list(iter_window(lambda body: next(pages), ObjectType.COMPANIES, start_ms=0, end_ms=1))


def test_contacts_windows_filter_on_lastmodifieddate_and_others_on_hs_lastmodifieddate() -> None:
    for kind, name in (
        (ObjectType.CONTACTS, "lastmodifieddate"),
        (ObjectType.INVOICES, "hs_lastmodifieddate"),
    ):
        body = window_request(kind, start_ms=1, end_ms=2, after_id=None, offset=0, properties=["x"])
        assert [f["propertyName"] for f in body["filterGroups"][0]["filters"]] == [name, name]
        assert body["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        assert body["properties"] == ["x", "hs_object_id", name] and body["limit"] == 200


def test_an_empty_window_sends_nothing_and_too_many_filters_are_refused() -> None:
    search = FakeSearch({})
    assert list(iter_window(search, ObjectType.COMPANIES, start_ms=5, end_ms=5)) == []
    assert search.requests == []
    extra = [{"propertyName": "a", "operator": "HAS_PROPERTY"}] * 4
    with pytest.raises(ValueError):
        list(iter_window(search, ObjectType.COMPANIES, start_ms=0, end_ms=1, extra_filters=extra))
