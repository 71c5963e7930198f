"""What changed in the portal, as webhooks report it: creations, property changes, deletions and
association changes, each with the source HubSpot names in ``changeSource``.

The portal hands every change to one observer (the webhook sender) while it holds its lock; the
observer only queues it. Who made a change travels in a context variable: the gateway marks API calls,
everything else (``/_sandbox/`` edits, the seed) counts as a person in HubSpot's UI.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

API = "API"
CRM_UI = "CRM_UI"

CHANGE_SOURCE: ContextVar[str] = ContextVar("hubspot_sandbox_change_source", default=CRM_UI)

CREATION = "creation"
PROPERTY_CHANGE = "propertyChange"
DELETION = "deletion"
ASSOCIATION_CHANGE = "associationChange"


@dataclass(frozen=True)
class Change:
    """One change of one record; association changes are reported from the ``object_type`` side."""

    action: str  # CREATION, PROPERTY_CHANGE, DELETION or ASSOCIATION_CHANGE
    object_type: str  # plural API name, e.g. "invoices"
    object_id: str
    occurred_ms: int
    source: str
    property_name: str | None = None
    property_value: str | None = None
    to_type: str | None = None
    to_id: str | None = None
    association_type_id: int | None = None
    association_removed: bool = False
    primary: bool = False


Observer = Callable[[Change], None]
