"""Records as the API returns them (``SimplePublicObject`` and friends)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow_provider_mlconn.sandbox.hubspot.catalog import ASSOCIATION_BY_ID, ObjectTypeDef
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal, Record
from airflow_provider_mlconn.sandbox.hubspot.values import iso


def property_names(kind: ObjectTypeDef, requested: Iterable[str] | None) -> list[str]:
    """The properties a read returns: those requested (or the type's defaults) plus the system three."""
    names = list(requested) if requested else list(kind.default_properties)
    return list(dict.fromkeys([*names, "hs_object_id", "createdate", kind.last_modified]))


def record_json(
    portal: Portal,
    record: Record,
    names: list[str],
    *,
    history: Iterable[str] = (),
    associations: Iterable[ObjectTypeDef] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A record with ``names`` (known ones without a value come back as null [inf]; unknown ones omitted)."""
    values = record.properties
    properties = {
        name: values.get(name) for name in names if name in values or portal.property(record.kind, name)
    }
    body: dict[str, Any] = {
        "id": record.id,
        "properties": properties,
        "createdAt": iso(record.created_ms),
        "updatedAt": iso(record.updated_ms),
        "archived": record.archived_ms is not None,
    }
    if record.archived_ms is not None:
        body["archivedAt"] = iso(record.archived_ms)
    with_history = {
        name: [{"value": values[name], "timestamp": iso(record.updated_ms), "sourceType": "API"}]
        for name in history
        if name in values
    }
    if with_history:
        body["propertiesWithHistory"] = with_history
    linked: dict[str, Any] = {}
    for to_kind in associations:
        results = [
            {"id": other_id, "type": ASSOCIATION_BY_ID[type_id].name}
            for other_id, type_ids in portal.linked(record, to_kind)
            for type_id in sorted(type_ids)
            if type_id in ASSOCIATION_BY_ID
        ]
        if results:
            linked[to_kind.association_key] = {"results": results}
    if linked:
        body["associations"] = linked
    if extra:
        body.update(extra)
    return body
