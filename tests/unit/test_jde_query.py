"""Typed data-service conditions and their AIS wire format."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from airflow_provider_mlconn.jde import query as q
from airflow_provider_mlconn.jde.dates import JdeTimestamp

pytestmark = pytest.mark.unit


def test_a_condition_renders_table_dot_alias_and_literal_values() -> None:
    assert q.eq("F0101.AT1", "C").to_wire() == {
        "controlId": "F0101.AT1",
        "operator": "EQUAL",
        "value": [{"specialValueId": "LITERAL", "content": "C"}],
    }


def test_dates_in_conditions_use_the_users_format() -> None:
    wire = q.ge("F0101.UPMJ", date(2024, 1, 15)).to_wire("dd/MM/yyyy")
    assert wire["value"] == [{"specialValueId": "LITERAL", "content": "15/01/2024"}]


def test_relative_dates_use_the_special_value_id_with_the_offset_as_content() -> None:
    wire = q.ge("F0101.UPMJ", q.RelativeDate("TODAY_MINUS_DAY", 5)).to_wire()
    assert wire["value"] == [{"specialValueId": "TODAY_MINUS_DAY", "content": "5"}]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: q.eq("F0101.AN8", "4242"), "pass an int"),
        (lambda: q.eq("F0101.UPMJ", "01/15/2024"), "date column"),
        (lambda: q.eq("F0101.ALPH", 42), "character column"),
        (lambda: q.eq("F03B11.AG", 1.5), "Decimal"),  # type: ignore[arg-type]
        (lambda: q.starts_with("F0101.AN8", "4"), "character columns"),
        (lambda: q.eq("F0101.NOPE", "x"), "has no column"),
        (lambda: q.eq("F9999.AN8", 1), "unknown JDE table"),
        (lambda: q.eq("AN8", 1), "TABLE.ALIAS"),
        (lambda: q.in_list("F0101.AN8", []), "at least one value"),
    ],
)
def test_a_wrong_filter_fails_where_it_is_written(build: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        build()  # type: ignore[operator]


def test_all_of_and_any_of_nest_as_complex_queries() -> None:
    wire = q.all_of(q.eq("F0101.AT1", "C"), q.any_of(q.eq("F0101.AN8", 1), q.eq("F0101.AN8", 2))).to_wire()
    assert wire["matchType"] == "MATCH_ALL"
    assert [c["controlId"] for c in wire["condition"]] == ["F0101.AT1"]
    (nested,) = wire["complexQuery"]
    assert nested["andOr"] == "AND"
    assert nested["query"]["matchType"] == "MATCH_ANY"
    assert len(nested["query"]["condition"]) == 2
    assert "autoFind" in wire and "autoFind" not in nested["query"]


def test_changed_since_is_a_half_open_window_on_date_and_time() -> None:
    since = JdeTimestamp(date(2024, 1, 15), 143015)
    until = JdeTimestamp(date(2024, 1, 16), 80000)
    wire = q.changed_since("F0111", since, until).to_wire()
    lower, upper = (entry["query"] for entry in wire["complexQuery"])
    assert lower["matchType"] == "MATCH_ANY"
    assert lower["condition"][0] == q.gt("F0111.UPMJ", date(2024, 1, 15)).to_wire()
    same_day = lower["complexQuery"][0]["query"]
    assert [c["operator"] for c in same_day["condition"]] == ["EQUAL", "GREATER_EQUAL"]
    assert same_day["condition"][1]["value"][0]["content"] == "143015"
    assert upper["condition"][0]["operator"] == "LESS"
    assert [c["operator"] for c in upper["complexQuery"][0]["query"]["condition"]] == ["EQUAL", "LESS"]


def test_changed_since_refuses_a_window_that_ends_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before its start"):
        q.changed_since("F0101", JdeTimestamp(date(2024, 1, 2), 0), JdeTimestamp(date(2024, 1, 1), 0))


def test_key_after_expands_a_composite_key_into_or_branches() -> None:
    wire = q.key_after("F0111", (4242, 3)).to_wire()
    assert wire["matchType"] == "MATCH_ANY"
    assert wire["condition"] == [q.gt("F0111.AN8", 4242).to_wire()]
    branch = wire["complexQuery"][0]["query"]
    assert [(c["controlId"], c["operator"]) for c in branch["condition"]] == [
        ("F0111.AN8", "EQUAL"),
        ("F0111.IDLN", "GREATER"),
    ]
    with pytest.raises(ValueError, match="key is"):
        q.key_after("F0111", (4242,))


def test_in_chunks_splits_long_lists_and_drops_duplicates() -> None:
    chunks = list(q.in_chunks("F0111.AN8", [*range(250), 3, 4], size=100))
    assert [len(c.values) for c in chunks] == [100, 100, 50]
    assert [v for c in chunks for v in c.values] == list(range(250))


def test_data_request_carries_paging_sort_and_string_page_size() -> None:
    body = q.data_request(
        "F0101",
        columns=["AN8", "ALPH"],
        query=q.eq("F0101.AT1", "C"),
        page_size=500,
        order_by=q.by_primary_key("F0101"),
    )
    assert body["maxPageSize"] == "500"
    assert body["enableNextPageProcessing"] is True
    assert body["returnControlIDs"] == "F0101.AN8|F0101.ALPH"
    assert body["aggregation"] == {"orderBy": [{"column": "F0101.AN8", "direction": "ASC"}]}
    assert q.data_request("F0101", page_size=None)["maxPageSize"] == "No Max"
    assert q.data_request("F0101", count=True)["dataServiceType"] == "COUNT"


def test_data_request_refuses_conditions_on_another_table() -> None:
    with pytest.raises(ValueError, match="names columns of"):
        q.data_request("F0101", query=q.eq("F0111.AN8", 1))


def test_amount_conditions_take_decimals() -> None:
    assert q.gt("F03B11.AAP", Decimal("0.00")).to_wire()["value"][0]["content"] == "0.00"
