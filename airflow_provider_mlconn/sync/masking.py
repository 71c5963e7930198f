"""Personal data out of logs, notes and asset events: e-mail addresses, phone numbers and names.

Task logs, DAG run notes and asset events are read by everyone with access to Airflow and are not
encrypted; the store is (``mlconn audit`` shows its values whole to whoever holds the key). A value
is masked by the name of its field (``email``, ``phone``, ``firstname``, ``name`` ...); free text
(a rejection's reason) by what it quotes: e-mail addresses, and values in single quotes, which is
how the mappings quote what they read (``e-mail 'otto.berg(at)example' is not a valid address``).
"""

from __future__ import annotations

import re
from typing import Any

#: Field names (the last part of a dotted path) that hold personal data.
PERSONAL_FIELD = re.compile(r"(e-?mail|phone|mobile|fax|name|surname|given)", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: A value in single quotes; an apostrophe inside a word ("Who's Who") opens or closes nothing.
_QUOTED = re.compile(r"(?<!\w)'([^'\n]{1,200})'(?!\w)")


def is_personal(field: str) -> bool:
    return bool(PERSONAL_FIELD.search(field.rsplit(".", 1)[-1]))


def mask_text(value: str) -> str:
    """``otto.berg@example.com`` -> ``o***@e***``; ``+49 40 123456`` -> ``***56``; ``Otto`` -> ``O***``."""
    text = value.strip()
    if not text:
        return value
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain[:1]}***"
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 6 and len(digits) >= len(text) // 2:
        return f"***{digits[-2:]}"
    return f"{text[:1]}***"


def mask_value(field: str, value: Any) -> Any:
    """``value`` as it may be shown in a log: masked when ``field`` holds personal data."""
    if not is_personal(field) or value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, int | float):
        return mask_text(str(value))
    return "***"


def mask_reason(text: str) -> str:
    """A reason with the e-mail addresses and single-quoted values it quotes masked (a quoted sign
    or code of one or two characters, such as ``'@'``, names nobody and stays)."""
    masked = _QUOTED.sub(
        lambda match: match.group(0) if len(match.group(1)) <= 2 else f"'{mask_text(match.group(1))}'", text
    )
    return _EMAIL.sub(lambda match: mask_text(match.group(0)), masked)
