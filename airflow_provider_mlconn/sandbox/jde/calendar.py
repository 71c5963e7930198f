"""How the JDE database and the AIS Server spell dates and times (the sandbox's own copy).

The database keeps dates as Julian CYYDDD integers (``(year - 1900) * 1000 + day_of_year``, 0 = blank)
and times as HHMMSS integers; AIS returns dates as ``yyyyMMdd`` strings and reads query dates in the
user's date format. The sandbox keeps its own helpers: it models the server, not our client.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache

BLANK_DATE = 0

# JDE user date-format preferences and the Java pattern AIS reports for each (userInfo.simpleDateFormat).
DATE_FORMATS: dict[str, str] = {"MDE": "MM/dd/yyyy", "DME": "dd/MM/yyyy", "EMD": "yyyy/MM/dd"}
_PYTHON_PATTERNS = {"MM/dd/yyyy": "%m/%d/%Y", "dd/MM/yyyy": "%d/%m/%Y", "yyyy/MM/dd": "%Y/%m/%d"}
_SHAPE = re.compile(r"^\d{1,4}/\d{1,2}/\d{1,4}$")


def to_julian(day: date) -> int:
    return (day.year - 1900) * 1000 + day.toordinal() - _new_year(day.year) + 1


@lru_cache(maxsize=512)
def _new_year(year: int) -> int:
    return date(year, 1, 1).toordinal()


@lru_cache(maxsize=65536)
def ordinal_to_julian(ordinal: int) -> int:
    return to_julian(date.fromordinal(ordinal))


@lru_cache(maxsize=65536)
def from_julian(cyyddd: int) -> date | None:
    if cyyddd == BLANK_DATE:
        return None
    return date(1900 + cyyddd // 1000, 1, 1) + timedelta(days=cyyddd % 1000 - 1)


@lru_cache(maxsize=65536)
def julian_to_ais(cyyddd: int) -> str | None:
    """The ``yyyyMMdd`` string AIS returns for a Julian date; None for a blank (0) date."""
    day = from_julian(cyyddd)
    return None if day is None else f"{day.year:04d}{day.month:02d}{day.day:02d}"


def parse_user_date(text: str, simple_date_format: str) -> int:
    """A date typed in the user's format (``MM/dd/yyyy`` for MDE) -> Julian; ValueError otherwise."""
    text = text.strip()
    if not _SHAPE.match(text):
        raise ValueError(f"{text!r} is not a date in the format {simple_date_format}")
    return to_julian(datetime.strptime(text, _PYTHON_PATTERNS[simple_date_format]).date())


def format_user_date(cyyddd: int, simple_date_format: str) -> str:
    day = from_julian(cyyddd)
    return "" if day is None else day.strftime(_PYTHON_PATTERNS[simple_date_format])


def hhmmss(moment: datetime) -> int:
    return moment.hour * 10000 + moment.minute * 100 + moment.second


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate_day in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate_day)
        except ValueError:
            continue
    raise ValueError(f"cannot add {months} months to {day}")
