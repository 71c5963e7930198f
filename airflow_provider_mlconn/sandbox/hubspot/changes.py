"""What changed in the portal, as webhooks report it: creations, property changes, deletions and
association changes, each with the source HubSpot names in ``changeSource``.

The portal hands every change to one observer (the webhook sender) while it holds its lock; the
observer only queues it. Who made a change travels in a context variable: the gateway marks API calls,
everything else (``/_sandbox/`` edits, the seed) counts as a person in HubSpot's UI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from airflow_provider_mlconn.sandbox.hubspot.catalog import ASSOCIATION_BY_ID, ObjectTypeDef

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


def write_changes(
    kind: ObjectTypeDef,
    record_id: str,
    before: Mapping[str, str] | None,
    after: Mapping[str, str],
    stamp: int,
) -> list[Change]:
    """A creation (``before`` None), then one property change per value that changed: a creation reports
    the values it set too [I]. HubSpot's bookkeeping properties never change "by themselves" (the
    last-modified date cannot be subscribed to [doc])."""
    source = CHANGE_SOURCE.get()
    changes = [Change(CREATION, kind.name, record_id, stamp, source)] if before is None else []
    old = before or {}
    quiet = {"hs_object_id", "createdate", kind.last_modified}
    for name in sorted(set(old) | set(after)):
        if name not in quiet and old.get(name) != after.get(name):
            value = after.get(name, "")
            changes.append(Change(PROPERTY_CHANGE, kind.name, record_id, stamp, source, name, value))
    return changes


def link_change(a: tuple[str, str], b: tuple[str, str], type_id: int, *, removed: bool, stamp: int) -> Change:
    """An association type between ``a`` and ``b`` (seen from ``a``) came or went."""
    assoc = ASSOCIATION_BY_ID.get(type_id)
    return Change(
        ASSOCIATION_CHANGE,
        a[0],
        a[1],
        stamp,
        CHANGE_SOURCE.get(),
        to_type=b[0],
        to_id=b[1],
        association_type_id=type_id,
        association_removed=removed,
        primary=assoc is not None and assoc.label == "Primary",
    )
