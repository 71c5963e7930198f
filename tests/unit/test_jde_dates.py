"""Julian CYYDDD, HHMMSS, AIS yyyyMMdd and user-format dates, and server-local audit stamps."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_mlconn.jde.dates import (
    JdeTimestamp,
    date_to_julian,
    format_ais_date,
    format_query_date,
    hhmmss_to_time,
    julian_to_date,
    parse_ais_date,
    parse_query_date,
    server_zone,
    time_to_hhmmss,
)

pytestmark = pytest.mark.unit
CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("day", "julian"),
    [
        (date(2024, 1, 15), 124015),
        (date(1999, 12, 31), 99365),
        (date(2024, 12, 31), 124366),
        (date(2000, 1, 1), 100001),
    ],
)
def test_julian_round_trips_the_documented_cyyddd_form(day: date, julian: int) -> None:
    assert date_to_julian(day) == julian
    assert julian_to_date(julian) == day


def test_every_day_of_three_decades_round_trips_through_julian() -> None:
    day = date(1995, 1, 1)
    while day < date(2026, 1, 1):
        assert julian_to_date(date_to_julian(day)) == day
        day += timedelta(days=1)


def test_blank_julian_is_none_and_impossible_days_are_refused() -> None:
    assert julian_to_date(0) is None
    with pytest.raises(ValueError, match="CYYDDD"):
        julian_to_date(124400)
    with pytest.raises(ValueError, match="past the year's end"):
        julian_to_date(123366)  # 2023 has 365 days


def test_hhmmss_converts_both_ways_and_refuses_nonsense() -> None:
    assert hhmmss_to_time(143015).isoformat() == "14:30:15"
    assert hhmmss_to_time(0).isoformat() == "00:00:00"
    assert time_to_hhmmss(datetime(2024, 1, 15, 9, 5, 7, 999)) == 90507
    with pytest.raises(ValueError, match="HHMMSS"):
        hhmmss_to_time(126000)


def test_ais_response_dates_are_yyyymmdd_strings_and_blank_is_none() -> None:
    assert parse_ais_date("20240115") == date(2024, 1, 15)
    assert parse_ais_date(None) is None
    assert parse_ais_date("") is None
    assert parse_ais_date(124015) == date(2024, 1, 15)
    assert format_ais_date(date(2024, 1, 5)) == "20240105"
    with pytest.raises(ValueError, match="yyyyMMdd"):
        parse_ais_date("2024-01-15")


@pytest.mark.parametrize(
    ("pattern", "text"),
    [("MM/dd/yyyy", "01/15/2024"), ("dd/MM/yyyy", "15/01/2024"), ("yyyy/MM/dd", "2024/01/15")],
)
def test_query_dates_follow_the_users_simple_date_format(pattern: str, text: str) -> None:
    assert format_query_date(date(2024, 1, 15), pattern) == text
    assert parse_query_date(text, pattern) == date(2024, 1, 15)


def test_an_unknown_user_date_format_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="unsupported user date format"):
        format_query_date(date(2024, 1, 15), "dd.MMM")


def test_audit_stamp_is_read_in_the_server_zone_not_utc() -> None:
    stamp = JdeTimestamp.from_row("20240115", 143015)
    assert stamp is not None
    moment = stamp.to_datetime(CHICAGO)
    assert moment.utcoffset() == timedelta(hours=-6)
    assert moment.astimezone(timezone.utc) == datetime(2024, 1, 15, 20, 30, 15, tzinfo=timezone.utc)


def test_an_aware_instant_becomes_the_stamp_the_server_would_write() -> None:
    instant = datetime(2024, 7, 1, 3, 0, 0, tzinfo=timezone.utc)  # 22:00 the day before in Chicago (CDT)
    assert JdeTimestamp.from_datetime(instant, CHICAGO) == JdeTimestamp(date(2024, 6, 30), 220000)
    with pytest.raises(ValueError, match="aware"):
        JdeTimestamp.from_datetime(datetime(2024, 7, 1), CHICAGO)


def test_stamps_across_a_dst_change_keep_their_order() -> None:
    before = JdeTimestamp(date(2024, 11, 3), 12959).to_datetime(CHICAGO)  # 01:29:59, first (CDT) reading
    after = JdeTimestamp(date(2024, 11, 3), 23000).to_datetime(CHICAGO)
    assert before < after
    assert JdeTimestamp.from_datetime(before, CHICAGO) == JdeTimestamp(date(2024, 11, 3), 12959)


def test_missing_upmt_counts_as_midnight_and_blank_upmj_as_no_stamp() -> None:
    assert JdeTimestamp.from_row("20240115", None) == JdeTimestamp(date(2024, 1, 15), 0)
    assert JdeTimestamp.from_row(None, 143015) is None


def test_server_zone_defaults_to_utc_and_refuses_unknown_names() -> None:
    assert server_zone(None) == timezone.utc
    assert server_zone("America/Chicago") == CHICAGO
    with pytest.raises(ValueError, match="IANA"):
        server_zone("Mars/Olympus")
