"""Watermarks and windows: which changes a run reads, and when the mark may move.

Pure arithmetic on aware datetimes (UTC inside); the Variable text is the only I/O, behind a
two-method protocol so tests use a dict. A stream brings its source's ``TimeCodec`` (JDE's lives in
``jde.dates``), so the Variable also shows the mark the way the source writes it.
Rules (docs/BEHAVIOR.md, section S):

- incremental runs (scheduled, or manual without a range) read
  ``[watermark - overlap, min(data_interval_end, now - safety_lag))``;
- range runs (backfills, manual runs with ``window_start``) read their own range, capped the same
  way, and never move the watermark backwards or over a gap;
- the watermark moves only in the commit step, to the extract's high-water mark, clamped to the
  window end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Protocol

from airflow_provider_mlconn.sync.errors import WatermarkValueError, WindowError

UTC = timezone.utc


class TimeCodec(Protocol):
    """How a source writes its change times, for the watermark Variable a person reads and edits.

    The Variable always holds the instant (``at``); a codec adds the source's own form beside it
    (JDE: the UPMJ/UPMT pair in the server's zone) and reads that form back when a person wrote it.
    """

    @property
    def name(self) -> str:
        """Written as the Variable's ``kind``."""

    def describe(self, moment: datetime, zone: str) -> dict[str, Any]:
        """The source's own form of an instant (JSON-able fields), e.g. ``{"date": 126122, ...}``."""

    def read(self, value: Mapping[str, Any], zone: str) -> datetime | None:
        """The instant a Variable's fields give in the source's form; None when they have none."""


class IsoInstant:
    """ISO 8601 instants (HubSpot's ``hs_lastmodifieddate``): nothing beside ``at``."""

    name = "iso"

    def describe(self, moment: datetime, zone: str) -> dict[str, Any]:
        return {}

    def read(self, value: Mapping[str, Any], zone: str) -> datetime | None:
        return None


ISO_INSTANT = IsoInstant()


class WindowMode(str, Enum):
    INCREMENTAL = "incremental"
    RANGE = "range"


@dataclass(frozen=True)
class Window:
    """The changes one run reads from one stream: ``[start, end)``, aware UTC datetimes.

    ``start`` None means from the beginning. ``source_timezone`` is the zone the source writes its
    change times in (a JDE stream turns the bounds into UPMJ/UPMT pairs with it).
    """

    stream: str
    kind: str
    start: datetime | None
    end: datetime
    mode: WindowMode
    source_timezone: str = "UTC"
    #: The run's options for the flow's extract (params such as ``address_numbers``), not persisted
    #: with the window: they travel in the plan manifest.
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def empty(self) -> bool:
        return self.start is not None and self.start >= self.end

    @property
    def from_beginning(self) -> bool:
        """The window reads everything the source has (a first run or a full resync)."""
        return self.start is None

    @property
    def start_epoch_ms(self) -> int | None:
        return None if self.start is None else int(self.start.timestamp() * 1000)

    @property
    def end_epoch_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    def contains(self, moment: datetime) -> bool:
        moment = _aware(moment, "moment")
        return (self.start is None or moment >= self.start) and moment < self.end

    def to_manifest(self, codec: TimeCodec | None = None) -> dict[str, Any]:
        """JSON for XCom; with a codec, the bounds in the source's own form beside the instants."""
        manifest: dict[str, Any] = {
            "stream": self.stream,
            "kind": self.kind,
            "mode": self.mode.value,
            "start": None if self.start is None else self.start.isoformat(),
            "end": self.end.isoformat(),
            "source_timezone": self.source_timezone,
        }
        if codec is not None:
            manifest["start_in_source"] = (
                None if self.start is None else codec.describe(self.start, self.source_timezone)
            )
            manifest["end_in_source"] = codec.describe(self.end, self.source_timezone)
        return manifest

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> Window:
        return cls(
            stream=manifest["stream"],
            kind=str(manifest["kind"]),
            start=None if manifest["start"] is None else datetime.fromisoformat(manifest["start"]),
            end=datetime.fromisoformat(manifest["end"]),
            mode=WindowMode(manifest["mode"]),
            source_timezone=manifest.get("source_timezone", "UTC"),
        )


@dataclass(frozen=True)
class WindowSettings:
    overlap: timedelta
    safety_lag: timedelta

    def __post_init__(self) -> None:
        if self.overlap < timedelta(0) or self.safety_lag < timedelta(0):
            raise WindowError(
                f"overlap ({self.overlap}) and safety lag ({self.safety_lag}) must not be negative"
            )


def plan_window(
    *,
    stream: str,
    kind: str,
    source_timezone: str = "UTC",
    watermark: datetime | None,
    initial_start: datetime | None,
    settings: WindowSettings,
    now: datetime,
    is_backfill: bool,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    requested_start: datetime | None = None,
    requested_end: datetime | None = None,
    from_beginning: bool = False,
) -> Window:
    """The window of one stream for one run (see the module docstring for the rules).

    ``from_beginning`` (a full resync) reads everything up to ``requested_end`` or the safe end,
    whatever the watermark says.
    """
    now = _aware(now, "now")
    latest_safe = now - settings.safety_lag
    if from_beginning:
        if requested_start is not None:
            raise WindowError("a full resync reads from the beginning; leave window_start empty")
        end = _aware(requested_end, "window_end") if requested_end is not None else latest_safe
        return Window(
            stream=stream,
            kind=kind,
            start=None,
            end=min(end, latest_safe),
            mode=WindowMode.RANGE,
            source_timezone=source_timezone,
        )
    if requested_start is not None or requested_end is not None:
        if requested_start is None:
            raise WindowError("window_end was given without window_start; a range needs its start")
        start = _aware(requested_start, "window_start")
        end = _aware(requested_end, "window_end") if requested_end is not None else latest_safe
        if end <= start:
            raise WindowError(f"window_end {end.isoformat()} must be after window_start {start.isoformat()}")
        mode = WindowMode.RANGE
    elif is_backfill:
        if data_interval_start is None or data_interval_end is None:
            raise WindowError("a backfill run has no data interval; give window_start/window_end")
        start = _aware(data_interval_start, "data_interval_start")
        end = _aware(data_interval_end, "data_interval_end")
        mode = WindowMode.RANGE
    else:
        if watermark is not None:
            start_or_none: datetime | None = _aware(watermark, "watermark") - settings.overlap
        else:
            start_or_none = None if initial_start is None else _aware(initial_start, "initial_start")
        end = _aware(data_interval_end, "data_interval_end") if data_interval_end is not None else now
        return Window(
            stream=stream,
            kind=kind,
            start=start_or_none,
            end=min(end, latest_safe),
            mode=WindowMode.INCREMENTAL,
            source_timezone=source_timezone,
        )
    return Window(
        stream=stream,
        kind=kind,
        start=start,
        end=min(end, latest_safe),
        mode=mode,
        source_timezone=source_timezone,
    )


def next_watermark(current: datetime | None, window: Window, high_water: datetime | None) -> datetime | None:
    """The value the watermark moves to after a successful run, or None to leave it.

    The high-water mark is clamped to the window end (changes after it are read again next time).
    It never moves backwards; a range run moves it only when its range starts at or before the
    current mark (or reads everything), so no changes between the two are skipped.
    """
    if high_water is None or window.empty:
        return None
    candidate = min(_aware(high_water, "high_water"), window.end)
    starts_after_mark = window.start is not None and (current is None or window.start > current)
    if window.mode is WindowMode.RANGE and starts_after_mark:
        return None
    if current is not None and candidate <= current:
        return None
    return candidate


def watermark_variable(flow: str, stream: str) -> str:
    """The Airflow Variable holding a stream's watermark, e.g. ``mlconn_watermark__customers__F0101``."""
    return f"mlconn_watermark__{flow}__{stream}"


def window_settings_variable(flow: str) -> str:
    """The Airflow Variable that overrides a flow's overlap / safety lag (JSON, minutes)."""
    return f"mlconn_window__{flow}"


def encode_watermark(
    moment: datetime, *, codec: TimeCodec, source_timezone: str = "UTC", updated_by: str | None = None
) -> str:
    """The Variable text: readable JSON, the instant plus the source's own form of it."""
    moment = _aware(moment, "watermark").astimezone(UTC)
    value: dict[str, Any] = {"kind": codec.name, "at": moment.isoformat()}
    value.update(codec.describe(moment, source_timezone))
    if updated_by:
        value["updated_by"] = updated_by
    return json.dumps(value)


def decode_watermark(text: str, *, variable: str, codec: TimeCodec, source_timezone: str = "UTC") -> datetime:
    """Read a Variable written by ``encode_watermark`` or by a person.

    Accepts the JSON form (the source's own fields, e.g. JDE's ``date``/``time``, win over ``at``)
    or a bare ISO 8601 instant. Raises WatermarkValueError naming the Variable.
    """
    stripped = text.strip()
    try:
        parsed: Any = json.loads(stripped)
    except json.JSONDecodeError:
        parsed = stripped
    try:
        if isinstance(parsed, str):
            return _parse_instant(parsed, "value")
        if not isinstance(parsed, dict):
            raise WatermarkValueError("expected a JSON object or an ISO 8601 instant")
        in_source = codec.read(parsed, source_timezone)
        if in_source is not None:
            return _aware(in_source, "watermark")
        if "at" in parsed:
            return _parse_instant(str(parsed["at"]), "at")
        raise WatermarkValueError('expected an "at" instant (or the source\'s own fields)')
    except (WatermarkValueError, ValueError, TypeError) as error:
        raise WatermarkValueError(
            f"Variable {variable} holds {text!r}, which is not a watermark: {error}. "
            'Write {"at": "2026-05-01T00:00:00+00:00"} (or {"date": 126121, "time": 0} for JDE), '
            "or delete the Variable to start from the flow's initial start."
        ) from error


def parse_instant(value: str, what: str) -> datetime:
    """An ISO 8601 date or datetime from a person (params, CLI); naive values are UTC."""
    return _parse_instant(value, what)


def _parse_instant(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise WindowError(f"{what} {value!r} is not an ISO 8601 date or datetime") from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise WindowError(f"{what} {moment.isoformat()} has no time zone; the engine only takes aware times")
    return moment.astimezone(UTC)


class VariableAccess(Protocol):
    """The two Variable operations the engine needs (Airflow's Variable in a task, a dict in tests)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...


def resolve_window_settings(
    *,
    flow_overlap: timedelta,
    flow_safety_lag: timedelta,
    variable_text: str | None,
    variable: str,
    overlap_minutes: float | None = None,
    safety_lag_minutes: float | None = None,
) -> WindowSettings:
    """Overlap and safety lag for a run: run params win over the Variable, which wins over the flow."""
    overlap, safety_lag = flow_overlap, flow_safety_lag
    if variable_text:
        try:
            override = json.loads(variable_text)
            if not isinstance(override, dict):
                raise ValueError("not a JSON object")
            if override.get("overlap_minutes") is not None:
                overlap = timedelta(minutes=float(override["overlap_minutes"]))
            if override.get("safety_lag_minutes") is not None:
                safety_lag = timedelta(minutes=float(override["safety_lag_minutes"]))
        except (ValueError, TypeError) as error:
            raise WindowError(
                f"Variable {variable} holds {variable_text!r}: expected JSON like "
                f'{{"overlap_minutes": 10, "safety_lag_minutes": 2}} ({error})'
            ) from error
    if overlap_minutes is not None:
        overlap = timedelta(minutes=float(overlap_minutes))
    if safety_lag_minutes is not None:
        safety_lag = timedelta(minutes=float(safety_lag_minutes))
    return WindowSettings(overlap=overlap, safety_lag=safety_lag)
