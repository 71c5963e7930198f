"""Property values as HubSpot stores them: always strings, with each type's input rules.

hubspot.md §2.2: inputs may be JSON numbers/booleans, outputs are strings; ``""`` clears a value;
dates take ``YYYY-MM-DD`` or midnight-UTC epoch ms, datetimes ISO-8601 or epoch ms.
"""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_mlconn.sandbox.hubspot.catalog import PropertyDef

_DAY_MS = 86_400_000
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DIGITS = re.compile(r"^-?\d+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    """Epoch ms as HubSpot writes instants: ``2026-05-01T10:00:00.000Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


#: HubSpot's text property values hold up to 65,536 characters through the CRM API (the KB's
#: "Property field types" page; ../shared/reference/hubspot-commerce.md section 2). The error code for
#: a longer one is not documented; the sandbox answers the 400 its other value errors use.
MAX_TEXT_LENGTH = 65_536


class ValueProblem(ValueError):
    """A value a property refuses; ``code`` is HubSpot's error code (INVALID_INTEGER, INVALID_OPTION, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_instant_ms(value: Any) -> int | None:
    """Epoch ms from epoch ms (number or digits), ISO-8601 (UTC unless it says otherwise) or a date."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DIGITS.match(text):
        return int(text)
    if _ISO_DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def parse_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def format_number(number: Decimal) -> str:
    """``12.50`` -> ``12.5``, ``2.0`` -> ``2``: one spelling per value ([inf] HubSpot normalises numbers)."""
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _text_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return format_number(Decimal(str(value)))
    return None


def normalize(prop: PropertyDef, value: Any, *, current: str | None = None) -> str | None:
    """The stored string for ``value`` written to ``prop``, None to clear; raises ValueProblem."""
    if value is None or value == "":
        return None
    if prop.type == "number":
        number = parse_number(value)
        if number is None or not number.is_finite():
            raise ValueProblem("INVALID_INTEGER", f"{value!r} was not a valid number.")
        return format_number(number)
    if prop.type == "bool":
        text = _text_of(value)
        if text is None or text.lower() not in ("true", "false"):
            raise ValueProblem("INVALID_BOOLEAN", f"{value!r} was not a valid boolean.")
        return text.lower()
    if prop.type == "datetime":
        ms = parse_instant_ms(value)
        if ms is None:
            raise ValueProblem("INVALID_DATE", f"{value!r} was not a valid datetime (ISO-8601 or epoch ms).")
        return iso(ms)
    if prop.type == "date":
        ms = parse_instant_ms(value)
        if ms is None or ms % _DAY_MS:
            raise ValueProblem(
                "INVALID_DATE",
                f"{value!r} is not a valid date; use YYYY-MM-DD or epoch ms at midnight UTC.",
            )
        return iso(ms)[:10]
    text = _text_of(value)
    if text is None:
        raise ValueProblem("INVALID_PROPERTY_VALUE", f"{value!r} is not a valid {prop.type} value.")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueProblem(
            "INVALID_PROPERTY_VALUE",
            f"{prop.name} is {len(text):,} characters long; "
            f"a property value holds at most {MAX_TEXT_LENGTH:,}.",
        )
    if prop.type == "enumeration":
        return _enumeration(prop, text, current)
    if prop.name == "email" or prop.name.endswith("_email"):
        return text.strip().lower()
    return text


def _enumeration(prop: PropertyDef, text: str, current: str | None) -> str:
    allowed = prop.option_values()
    if prop.field_type != "checkbox":
        if text not in allowed:
            raise ValueProblem(
                "INVALID_OPTION",
                f"{text} was not one of the allowed options: {', '.join(sorted(allowed))}",
            )
        return text
    # Multi-checkbox: ';'-separated; a leading ';' appends to what is there (hubspot.md §2.2).
    appending = text.startswith(";")
    chosen = [v for v in text.split(";") if v]
    bad = [v for v in chosen if v not in allowed]
    if bad:
        raise ValueProblem("INVALID_OPTION", f"{bad[0]} was not one of the allowed options")
    if appending and current:
        chosen = [*current.split(";"), *(v for v in chosen if v not in current.split(";"))]
    return ";".join(chosen)


def sort_key(prop: PropertyDef | None, value: str | None) -> tuple[int, Any]:
    """Comparable key for filtering and sorting: numbers and instants numerically, text case-insensitively.

    Numbers compare as floats: exact for ids and epoch ms, close enough for amounts in a filter.
    """
    if value is None:
        return (0, 0)
    if prop is not None and prop.type == "number":
        number = parse_number(value)
        return (1, float(number)) if number is not None else (2, value.lower())
    if prop is not None and prop.type in ("datetime", "date"):
        ms = parse_instant_ms(value)
        return (1, float(ms)) if ms is not None else (2, value.lower())
    if prop is not None and prop.type == "enumeration":
        return (2, value)
    return (2, value.lower())
