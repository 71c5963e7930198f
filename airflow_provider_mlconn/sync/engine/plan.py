"""Plan: each stream's window for a run, from its watermark Variable and the run's kind."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_mlconn.sync.engine.manifests import PlanManifest, RunInfo
from airflow_provider_mlconn.sync.errors import WindowError
from airflow_provider_mlconn.sync.flow import Flow
from airflow_provider_mlconn.sync.watermarks import (
    VariableAccess,
    decode_watermark,
    parse_instant,
    plan_window,
    resolve_window_settings,
    watermark_variable,
    window_settings_variable,
)

log = logging.getLogger(__name__)


def full_read_variable(flow: str) -> str:
    """The Airflow Variable holding when a flow last read everything (ISO instant)."""
    return f"mlconn_last_full_read__{flow}"


def plan_windows(
    flow: Flow,
    run: RunInfo,
    variables: VariableAccess,
    *,
    now: datetime,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    overlap_minutes: float | None = None,
    safety_lag_minutes: float | None = None,
    full_resync: bool = False,
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> PlanManifest:
    """Each stream's window for this run, from its watermark Variable and the run's kind.

    ``full_resync`` reads every stream from the beginning (a scheduled run does too when the
    flow's ``full_resync_every`` has passed since the last full read); ``dry_run`` makes the run
    map only; ``options`` reach each stream's extract as ``window.options``.
    """
    settings_variable = window_settings_variable(flow.name)
    settings_text = variables.get(settings_variable)
    settings = resolve_window_settings(
        flow_overlap=flow.overlap,
        flow_safety_lag=flow.safety_lag,
        variable_text=settings_text,
        variable=settings_variable,
        overlap_minutes=overlap_minutes,
        safety_lag_minutes=safety_lag_minutes,
    )
    reason = None
    if full_resync:
        reason = "asked for by the run's params"
    elif run.is_scheduled and window_start is None and window_end is None and not options:
        reason = _periodic_full_read_due(flow, variables, settings_text, settings_variable, now)
        full_resync = reason is not None
    windows: dict[str, dict[str, Any]] = {}
    marks: dict[str, str | None] = {}
    for stream in flow.streams:
        zone = stream.resolve_timezone()
        watermark = read_watermark(flow, stream.name, variables, zone)
        window = plan_window(
            stream=stream.name,
            kind=stream.codec.name,
            source_timezone=zone,
            watermark=watermark,
            initial_start=stream.initial_start,
            settings=settings,
            now=now,
            is_backfill=run.is_backfill,
            data_interval_start=run.data_interval_start,
            data_interval_end=None if run.reads_to_now else run.data_interval_end,
            requested_start=window_start,
            requested_end=window_end,
            from_beginning=full_resync,
        )
        windows[stream.name] = window.to_manifest(stream.codec)
        marks[stream.name] = None if watermark is None else watermark.isoformat()
    return PlanManifest(
        run_key=run.ref(flow).run_key,
        flow=flow.name,
        windows=windows,
        watermarks=marks,
        overlap_minutes=settings.overlap.total_seconds() / 60,
        safety_lag_minutes=settings.safety_lag.total_seconds() / 60,
        full_resync=full_resync,
        full_resync_reason=reason,
        dry_run=dry_run,
        options=dict(options or {}),
    )


def read_watermark(flow: Flow, stream_name: str, variables: VariableAccess, zone: str) -> datetime | None:
    stream = flow.stream(stream_name)
    name = watermark_variable(flow.name, stream.name)
    text = variables.get(name)
    if not text:
        return None
    return decode_watermark(text, variable=name, codec=stream.codec, source_timezone=zone)


def _periodic_full_read_due(
    flow: Flow, variables: VariableAccess, settings_text: str | None, settings_variable: str, now: datetime
) -> str | None:
    """Why a scheduled run reads everything again now, or None (not due, or switched off)."""
    every = flow.full_resync_every
    if settings_text:
        try:
            override = json.loads(settings_text).get("full_resync_every_days")
        except (ValueError, AttributeError) as error:
            raise WindowError(f"Variable {settings_variable} holds {settings_text!r}: {error}") from error
        if override is not None:
            every = timedelta(days=float(override)) if float(override) > 0 else None
    if every is None:
        return None
    if not any(variables.get(watermark_variable(flow.name, s.name)) for s in flow.streams):
        return None  # a first run reads everything anyway
    text = variables.get(full_read_variable(flow.name))
    if not text:
        return f"periodic full read every {every}; none recorded yet"
    last = parse_instant(text, full_read_variable(flow.name))
    if now - last < every:
        return None
    return f"periodic full read every {every}; the last was at {last.isoformat()}"
