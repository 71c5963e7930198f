"""Every JDE date and time conversion, in one place.

Three spellings meet here:

- the database: dates as Julian ``CYYDDD`` integers (``(year - 1900) * 1000 + day_of_year``; 2024-01-15
  is ``124015``; ``0`` is a blank date) and times as ``HHMMSS`` integers (``143015``);
- AIS responses: dates as ``"yyyyMMdd"`` strings (``"20240115"``), times (UPMT) as numbers;
- AIS query conditions: dates typed in the *user's* format from ``userInfo.simpleDateFormat``
  (``MM/dd/yyyy`` for MDE, ``dd/MM/yyyy`` for DME).

Audit stamps (UPMJ/UPMT) are written in the enterprise server's local time, not UTC: convert them
with the server's time zone (connection extra ``server_timezone``) into aware datetimes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BLANK_JULIAN = 0
_AIS_DATE = re.compile(r"^\d{8}$")
_JAVA_TO_PYTHON = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"))
DEFAULT_DATE_FORMAT = "MM/dd/yyyy"


def date_to_julian(day: date) -> int:
    """2024-01-15 -> 124015."""
    return (day.year - 1900) * 1000 + day.timetuple().tm_yday


def julian_to_date(cyyddd: int) -> date | None:
    """124015 -> 2024-01-15; 0 (blank) -> None. ValueError for a number that is not CYYDDD."""
    if cyyddd == BLANK_JULIAN:
        return None
    century_year, day_of_year = divmod(int(cyyddd), 1000)
    if cyyddd < 0 or not 1 <= day_of_year <= 366:
        raise ValueError(f"{cyyddd} is not a JDE Julian date (CYYDDD)")
    day = date(1900 + century_year, 1, 1) + timedelta(days=day_of_year - 1)
    if day.year != 1900 + century_year:
        raise ValueError(f"{cyyddd} is not a JDE Julian date: day {day_of_year} is past the year's end")
    return day


def hhmmss_to_time(value: int) -> time:
    """143015 -> 14:30:15. ValueError for a number that is not HHMMSS."""
    hours, rest = divmod(int(value), 10000)
    minutes, seconds = divmod(rest, 100)
    if value < 0 or hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{value} is not a JDE time (HHMMSS)")
    return time(hours, minutes, seconds)


def time_to_hhmmss(moment: time | datetime) -> int:
    """14:30:15 -> 143015 (sub-seconds are dropped, as JDE stores whole seconds)."""
    return moment.hour * 10000 + moment.minute * 100 + moment.second


def parse_ais_date(value: object) -> date | None:
    """An AIS response date (``"20240115"``) -> date; blank/None -> None. Also takes a Julian int."""
    if value is None:
        return None
    if isinstance(value, str | int):
        return _parse_ais_date_once(value)
    return _parse_ais_date(value)


@lru_cache(maxsize=8192)
def _parse_ais_date_once(value: str | int) -> date | None:
    # Rows repeat the same few thousand dates (stamps, effective dates): parse each once.
    return _parse_ais_date(value)


def _parse_ais_date(value: object) -> date | None:
    if isinstance(value, int):
        return julian_to_date(value)
    text = str(value).strip()
    if not text:
        return None
    if not _AIS_DATE.match(text):
        raise ValueError(f"{value!r} is not an AIS date (yyyyMMdd)")
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def format_ais_date(day: date) -> str:
    """2024-01-15 -> ``"20240115"`` (the response spelling)."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _python_pattern(simple_date_format: str) -> str:
    pattern = simple_date_format
    for java, python in _JAVA_TO_PYTHON:
        pattern = pattern.replace(java, python)
    if any(code not in pattern for code in ("%Y", "%m", "%d")):
        raise ValueError(f"unsupported user date format {simple_date_format!r} (need yyyy, MM and dd)")
    return pattern


def format_query_date(day: date, simple_date_format: str = DEFAULT_DATE_FORMAT) -> str:
    """A date as a data-service condition or orchestration input wants it: the user's format."""
    return day.strftime(_python_pattern(simple_date_format))


def parse_query_date(text: str, simple_date_format: str = DEFAULT_DATE_FORMAT) -> date:
    """The inverse of ``format_query_date`` (orchestration outputs such as ``DueDate``)."""
    return datetime.strptime(text.strip(), _python_pattern(simple_date_format)).date()


def server_zone(name: str | None) -> tzinfo:
    """The enterprise server's time zone from an IANA name; UTC when not configured."""
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as America/Chicago") from None


class JdeTimestamp(NamedTuple):
    """A JDE audit stamp: the date (UPMJ, DGJ...) and HHMMSS time (UPMT) in server local time."""

    day: date
    hhmmss: int

    @classmethod
    def from_row(cls, day: object, hhmmss: int | str | None) -> JdeTimestamp | None:
        """From response values (``"20240115"``, ``143015``); None when the date is blank. A missing
        time (batch programs that do not stamp UPMT) counts as midnight."""
        parsed = parse_ais_date(day)
        if parsed is None:
            return None
        return cls(parsed, int(hhmmss or 0))

    @classmethod
    def from_datetime(cls, moment: datetime, zone: tzinfo) -> JdeTimestamp:
        """An aware datetime -> the server-local stamp JDE would write for that instant."""
        if moment.tzinfo is None:
            raise ValueError("a JDE timestamp needs an aware datetime (with tzinfo), not a naive one")
        local = moment.astimezone(zone)
        return cls(local.date(), time_to_hhmmss(local))

    def to_datetime(self, zone: tzinfo) -> datetime:
        """The aware instant of this stamp. In the hour a DST change repeats, the earlier reading
        (``fold=0``) is taken; a stamp inside a skipped hour is read as the instant after it."""
        naive = datetime.combine(self.day, hhmmss_to_time(self.hhmmss))
        return naive.replace(tzinfo=zone).astimezone(timezone.utc).astimezone(zone)

    @property
    def julian(self) -> int:
        return date_to_julian(self.day)

    def __str__(self) -> str:
        return f"{format_ais_date(self.day)} {self.hhmmss:06d}"


def stamp_instant(day: object, hhmmss: int | str | None, zone: str) -> datetime:
    """A JDE date (Julian ``CYYDDD`` or AIS ``"yyyyMMdd"``) and HHMMSS time as a UTC instant.

    ValueError for a blank or impossible value.
    """
    stamp = JdeTimestamp.from_row(day, hhmmss)
    if stamp is None:
        raise ValueError(f"JDE date {day!r} is blank")
    return stamp.to_datetime(ZoneInfo(zone)).astimezone(timezone.utc)


def window_stamps(
    start: datetime | None, end: datetime, zone: str
) -> tuple[JdeTimestamp | None, JdeTimestamp]:
    """A window's bounds as the UPMJ/UPMT pairs JDE writes in the server's ``zone``."""
    server = ZoneInfo(zone)
    return (None if start is None else JdeTimestamp.from_datetime(start, server)), JdeTimestamp.from_datetime(
        end, server
    )


class JdeStampCodec:
    """The watermark codec of JDE streams: audit stamps UPMJ (Julian date) + UPMT (HHMMSS) in the
    enterprise server's local time, shown beside the instant in the watermark Variable and read back
    when a person writes ``{"date": 126122, "time": 83012}`` there."""

    name = "jde"

    def describe(self, moment: datetime, zone: str) -> dict[str, object]:
        stamp = JdeTimestamp.from_datetime(moment, ZoneInfo(zone))
        return {
            "date": stamp.julian,
            "time": stamp.hhmmss,
            "timezone": zone,
            "local": moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S"),
        }

    def read(self, value: Mapping[str, Any], zone: str) -> datetime | None:
        if "date" not in value:
            return None
        return stamp_instant(
            int(value["date"]), int(value.get("time", 0)), str(value.get("timezone") or zone)
        )


#: The codec a JDE stream declares: ``Stream(..., codec=JDE_STAMP)``.
JDE_STAMP = JdeStampCodec()
