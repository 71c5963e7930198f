"""``Rejection``: a record cannot be written as it is, and a person must act.

Shared by the pure mappings (``mapping/``) and the sync engine (``sync/``) so neither imports the
other: a mapping returns it for a source it cannot map, a load for a record the target refused for
good. ``reason`` says what is wrong and where, in words a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rejection:
    """The record cannot be written as it is; ``reason`` tells a person what to fix."""

    reason: str
