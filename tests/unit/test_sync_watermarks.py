"""Window arithmetic and watermark values: overlap, safety lag, ranges, and when the mark may move."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_mlconn.jde.dates import JDE_STAMP, JdeTimestamp, stamp_instant, window_stamps
from airflow_provider_mlconn.sync.errors import WatermarkValueError, WindowError
from airflow_provider_mlconn.sync.watermarks import (
    ISO_INSTANT,
    Window,
    WindowMode,
    WindowSettings,
    decode_watermark,
    encode_watermark,
    next_watermark,
    plan_window,
    resolve_window_settings,
    watermark_variable,
)

pytestmark = pytest.mark.unit

UTC = timezone.utc
NOW = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
SETTINGS = WindowSettings(overlap=timedelta(minutes=10), safety_lag=timedelta(minutes=2))


def plan(**overrides):
    arguments = {
        "stream": "F0101",
        "kind": ISO_INSTANT.name,
        "watermark": None,
        "initial_start": None,
        "settings": SETTINGS,
        "now": NOW,
        "is_backfill": False,
        "data_interval_start": None,
        "data_interval_end": None,
    }
    arguments.update(overrides)
    return plan_window(**arguments)


def test_scheduled_window_starts_overlap_before_the_watermark_and_ends_at_the_interval_end():
    window = plan(
        watermark=datetime(2026, 5, 2, 9, 0, tzinfo=UTC),
        data_interval_start=datetime(2026, 5, 2, 10, 0, tzinfo=UTC),
        data_interval_end=datetime(2026, 5, 2, 11, 0, tzinfo=UTC),
    )
    assert window.mode is WindowMode.INCREMENTAL
    assert window.start == datetime(2026, 5, 2, 8, 50, tzinfo=UTC)
    assert window.end == datetime(2026, 5, 2, 11, 0, tzinfo=UTC)


def test_window_end_stays_a_safety_lag_behind_now_when_the_interval_reaches_now():
    window = plan(watermark=datetime(2026, 5, 2, 11, 0, tzinfo=UTC), data_interval_end=NOW)
    assert window.end == NOW - timedelta(minutes=2)


def test_manual_run_without_interval_reads_up_to_now_minus_lag():
    window = plan(watermark=datetime(2026, 5, 2, 11, 0, tzinfo=UTC))
    assert window.end == NOW - timedelta(minutes=2)


def test_first_run_without_watermark_starts_at_the_stream_initial_start_or_the_beginning():
    assert plan().start is None
    initial = datetime(2025, 1, 1, tzinfo=UTC)
    assert plan(initial_start=initial).start == initial


def test_backfill_reads_its_data_interval_without_overlap():
    window = plan(
        watermark=datetime(2026, 5, 2, 11, 0, tzinfo=UTC),
        is_backfill=True,
        data_interval_start=datetime(2026, 4, 1, tzinfo=UTC),
        data_interval_end=datetime(2026, 4, 2, tzinfo=UTC),
    )
    assert (window.mode, window.start, window.end) == (
        WindowMode.RANGE,
        datetime(2026, 4, 1, tzinfo=UTC),
        datetime(2026, 4, 2, tzinfo=UTC),
    )


def test_manual_range_wins_over_the_watermark_and_is_capped_by_the_lag():
    window = plan(
        watermark=datetime(2026, 5, 2, 11, 0, tzinfo=UTC),
        requested_start=datetime(2026, 5, 1, tzinfo=UTC),
        requested_end=datetime(2026, 5, 3, tzinfo=UTC),
    )
    assert window.mode is WindowMode.RANGE
    assert window.start == datetime(2026, 5, 1, tzinfo=UTC)
    assert window.end == NOW - timedelta(minutes=2)


def test_range_whose_end_is_not_after_its_start_is_refused_with_both_values():
    with pytest.raises(WindowError, match=r"window_end .* must be after window_start"):
        plan(requested_start=datetime(2026, 5, 2, tzinfo=UTC), requested_end=datetime(2026, 5, 1, tzinfo=UTC))
    with pytest.raises(WindowError, match="without window_start"):
        plan(requested_end=datetime(2026, 5, 1, tzinfo=UTC))


def test_watermark_after_the_interval_end_gives_an_empty_window():
    window = plan(
        watermark=datetime(2026, 5, 2, 11, 30, tzinfo=UTC),
        data_interval_end=datetime(2026, 5, 2, 11, 0, tzinfo=UTC),
    )
    assert window.empty


def test_naive_times_are_refused():
    with pytest.raises(WindowError, match="no time zone"):
        plan(now=datetime(2026, 5, 2, 12, 0))


def incremental(start, end):
    return Window("s", ISO_INSTANT.name, start, end, WindowMode.INCREMENTAL)


def ranged(start, end):
    return Window("s", ISO_INSTANT.name, start, end, WindowMode.RANGE)


H = [datetime(2026, 5, 2, hour, tzinfo=UTC) for hour in range(24)]


def test_watermark_moves_forward_to_the_high_water_mark():
    assert next_watermark(H[9], incremental(H[8], H[11]), H[10]) == H[10]


def test_high_water_mark_is_clamped_to_the_window_end():
    assert next_watermark(H[9], incremental(H[8], H[11]), H[13]) == H[11]


def test_watermark_never_moves_backwards():
    assert next_watermark(H[10], incremental(H[9], H[11]), H[9]) is None
    assert next_watermark(H[10], ranged(H[1], H[5]), H[4]) is None


def test_backfill_of_the_past_never_moves_the_watermark_back():
    assert next_watermark(H[12], ranged(H[2], H[4]), H[3]) is None


def test_range_starting_after_the_watermark_leaves_it_to_avoid_skipping_the_gap():
    assert next_watermark(H[5], ranged(H[8], H[11]), H[10]) is None
    assert next_watermark(None, ranged(H[8], H[11]), H[10]) is None


def test_range_covering_the_watermark_moves_it_forward():
    assert next_watermark(H[5], ranged(H[4], H[11]), H[10]) == H[10]


def test_no_change_seen_leaves_the_watermark():
    assert next_watermark(H[5], incremental(H[4], H[11]), None) is None


def test_jde_julian_date_and_time_round_trip_in_the_server_time_zone():
    stamp = JdeTimestamp.from_datetime(datetime(2024, 1, 15, 14, 30, 15, tzinfo=UTC), UTC)
    assert (stamp.julian, stamp.hhmmss) == (124015, 143015)
    chicago = stamp_instant(126122, 83012, "America/Chicago")
    assert chicago == datetime(2026, 5, 2, 13, 30, 12, tzinfo=UTC)
    assert stamp_instant("20260502", 83012, "America/Chicago") == chicago
    _, back = window_stamps(None, chicago, "America/Chicago")
    assert (back.julian, back.hhmmss) == (126122, 83012)


@pytest.mark.parametrize(("date", "time"), [(0, 0), (126367, 0), (126001, 246000), (126001, 126100)])
def test_impossible_jde_values_are_refused(date, time):
    with pytest.raises(ValueError):
        stamp_instant(date, time, "UTC")
    with pytest.raises(WatermarkValueError):
        decode_watermark(json.dumps({"date": date, "time": time}), variable="v", codec=JDE_STAMP)


def test_jde_window_gives_upmj_upmt_bounds():
    window = Window(
        "F0101",
        JDE_STAMP.name,
        datetime(2026, 5, 2, 13, 0, tzinfo=UTC),
        datetime(2026, 5, 2, 14, 0, tzinfo=UTC),
        WindowMode.INCREMENTAL,
        "America/Chicago",
    )
    manifest = window.to_manifest(JDE_STAMP)
    assert (manifest["start_in_source"]["date"], manifest["start_in_source"]["time"]) == (126122, 80000)
    start, end = window_stamps(window.start, window.end, window.source_timezone)
    assert (end.julian, end.hhmmss) == (126122, 90000)
    assert str(start) == "20260502 080000"
    assert window.contains(stamp_instant(126122, 85959, window.source_timezone))
    assert not window.contains(stamp_instant(126122, 90000, window.source_timezone))
    assert Window.from_manifest(manifest) == window


def test_jde_watermark_variable_is_readable_json_with_the_pair():
    text = encode_watermark(
        datetime(2026, 5, 2, 13, 30, 12, tzinfo=UTC),
        codec=JDE_STAMP,
        source_timezone="America/Chicago",
        updated_by="dag/run",
    )
    value = json.loads(text)
    assert value["kind"] == "jde"
    assert value["date"] == 126122
    assert value["time"] == 83012
    assert value["local"] == "2026-05-02 08:30:12"
    decoded = decode_watermark(text, variable="v", codec=JDE_STAMP, source_timezone="UTC")
    assert decoded == datetime(2026, 5, 2, 13, 30, 12, tzinfo=UTC)


def test_a_person_may_write_the_watermark_as_a_pair_or_a_bare_instant():
    assert decode_watermark('{"date": 126122, "time": 0}', variable="v", codec=JDE_STAMP) == datetime(
        2026, 5, 2, tzinfo=UTC
    )
    assert decode_watermark("2026-05-02T08:30:12Z", variable="v", codec=ISO_INSTANT) == datetime(
        2026, 5, 2, 8, 30, 12, tzinfo=UTC
    )


def test_unreadable_watermark_names_the_variable_and_the_expected_form():
    name = watermark_variable("customers", "F0101")
    assert name == "mlconn_watermark__customers__F0101"
    with pytest.raises(
        WatermarkValueError, match=r"mlconn_watermark__customers__F0101 holds 'yesterday'.*Write"
    ):
        decode_watermark("yesterday", variable=name, codec=ISO_INSTANT)


def test_window_overrides_run_params_win_over_the_variable_which_wins_over_the_flow():
    flow_default = {"flow_overlap": timedelta(minutes=10), "flow_safety_lag": timedelta(minutes=2)}
    assert resolve_window_settings(**flow_default, variable_text=None, variable="v") == WindowSettings(
        timedelta(minutes=10), timedelta(minutes=2)
    )
    from_variable = resolve_window_settings(
        **flow_default, variable_text='{"overlap_minutes": 30}', variable="v"
    )
    assert from_variable == WindowSettings(timedelta(minutes=30), timedelta(minutes=2))
    from_params = resolve_window_settings(
        **flow_default,
        variable_text='{"overlap_minutes": 30}',
        variable="v",
        overlap_minutes=1,
        safety_lag_minutes=0,
    )
    assert from_params == WindowSettings(timedelta(minutes=1), timedelta(0))
    with pytest.raises(WindowError, match="Variable v holds"):
        resolve_window_settings(**flow_default, variable_text="[1]", variable="v")
