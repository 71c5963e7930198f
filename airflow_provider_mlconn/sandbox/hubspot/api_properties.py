"""Properties v3 (and 2026-03): definitions, enumeration options, unique-value properties, groups.

hubspot.md §6: create needs name, label, type, fieldType, groupName; ``hasUniqueValue`` is set at
creation only and at most 10 custom properties per object may have it; PATCH ``options`` replaces them.
Options (hubspot-commerce.md §3.3): an enumeration needs ``options`` [spec: "required for enumerated
properties"]; each option needs ``label``, ``value`` and ``hidden`` [spec ``OptionInput``]; at most 5,000
options, each at most 3,000 characters of label + value + description [doc, KB].
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

from airflow_provider_mlconn.sandbox.hubspot.catalog import ObjectTypeDef, Option, PropertyDef
from airflow_provider_mlconn.sandbox.hubspot.errors import (
    HubSpotError,
    InputError,
    bad_request,
    validation_detail,
)
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal, PropertyGroup
from airflow_provider_mlconn.sandbox.hubspot.wire import (
    batch_body,
    inputs_of,
    json_response,
    kind_named,
    no_content,
    now_iso,
    portal_of,
    query_bool,
    read_json,
)

PREFIXES = ("/crm/v3/properties", "/crm/properties/2026-03")
MAX_UNIQUE_PER_OBJECT = 10
MAX_OPTIONS = 5_000
MAX_OPTION_CHARS = 3_000
BATCH_LIMIT = 100
TYPES = {"string", "number", "date", "datetime", "enumeration", "bool", "phone_number"}
FIELD_TYPES_BY_TYPE = {
    "string": {"text", "textarea", "file", "html", "phonenumber"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox"},
    "phone_number": {"phonenumber", "text"},
}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def router() -> APIRouter:
    routes = APIRouter()
    for prefix in PREFIXES:
        base = f"{prefix}/{{object_type}}"
        routes.add_api_route(f"{base}/groups", list_groups, methods=["GET"])
        routes.add_api_route(f"{base}/groups", create_group, methods=["POST"])
        routes.add_api_route(f"{base}/groups/{{group_name}}", get_group, methods=["GET"])
        routes.add_api_route(f"{base}/groups/{{group_name}}", update_group, methods=["PATCH"])
        routes.add_api_route(f"{base}/groups/{{group_name}}", archive_group, methods=["DELETE"])
        routes.add_api_route(f"{base}/batch/create", batch_create, methods=["POST"])
        routes.add_api_route(f"{base}/batch/read", batch_read, methods=["POST"])
        routes.add_api_route(f"{base}/batch/archive", batch_archive, methods=["POST"])
        routes.add_api_route(base, list_properties, methods=["GET"])
        routes.add_api_route(base, create_property, methods=["POST"])
        routes.add_api_route(f"{base}/{{property_name}}", get_property, methods=["GET"])
        routes.add_api_route(f"{base}/{{property_name}}", update_property, methods=["PATCH"])
        routes.add_api_route(f"{base}/{{property_name}}", archive_property, methods=["DELETE"])
    return routes


def _missing_property(kind: ObjectTypeDef, name: str) -> HubSpotError:
    return HubSpotError(
        404,
        f"Unable to find property {name} for object type {kind.type_id}",
        category="OBJECT_NOT_FOUND",
        context={"propertyName": [name]},
    )


def _options(raw: Any) -> tuple[Option, ...]:
    """The options of a create or a PATCH (which replaces the whole list), or HubSpot's 400."""
    if not isinstance(raw, list):
        raise bad_request("options must be a list of {label, value, hidden, displayOrder, description}.")
    if len(raw) > MAX_OPTIONS:
        raise bad_request(
            f"A property can have at most {MAX_OPTIONS} options; {len(raw)} were given.",
            errors=[validation_detail("TOO_MANY_OPTIONS", f"{len(raw)} options > {MAX_OPTIONS}")],
            context={"options": [str(len(raw))]},
        )
    options = [_option(i, entry) for i, entry in enumerate(raw)]
    values = [o.value for o in options]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise bad_request(
            f"Option values must be unique; repeated: {duplicates[:10]}.", context={"value": duplicates[:10]}
        )
    return tuple(options)


def _option(position: int, entry: Any) -> Option:
    if not isinstance(entry, dict):
        raise bad_request(f"Option {position} must be an object with label, value and hidden.")
    # HubSpot names missing required fields the way its JSON binding reports them [I].
    missing = [name for name in ("hidden", "label", "value") if entry.get(name) is None]
    if missing:
        raise bad_request(
            "Invalid input JSON: Cannot build OptionInput, some of required attributes are not set "
            f"[{', '.join(missing)}]",
            context={"options": [str(position)], "missingFields": missing},
        )
    if not isinstance(entry["hidden"], bool):
        raise bad_request(f"Option {position}: hidden must be true or false, got {entry['hidden']!r}.")
    label, value = str(entry["label"]), str(entry["value"])
    description = str(entry.get("description") or "")
    if not label or not value:
        raise bad_request(f"Option {position} needs a non-empty label and value.")
    size = len(label) + len(value) + len(description)
    if size > MAX_OPTION_CHARS:
        raise bad_request(
            f"Option {position} ({value[:40]!r}) has {size} characters of label, value and description; "
            f"the most an option may have is {MAX_OPTION_CHARS}.",
            errors=[validation_detail("OPTION_TOO_LONG", f"{size} characters > {MAX_OPTION_CHARS}")],
            context={"options": [str(position)]},
        )
    try:
        display_order = int(entry.get("displayOrder", position))
    except (TypeError, ValueError):
        raise bad_request(f"Option {position}: displayOrder must be an integer.") from None
    return Option(label, value, display_order, entry["hidden"], description)


def _creation_options(kind_of_value: str, body: dict[str, Any]) -> tuple[Option, ...]:
    if body.get("options") is None:
        if kind_of_value == "enumeration":
            raise bad_request(
                "Invalid input JSON: options are required for enumeration properties (use [] for none yet).",
                context={"missingFields": ["options"]},
            )
        return ()
    return _options(body["options"])


def _new_property(portal: Portal, kind: ObjectTypeDef, body: Any) -> PropertyDef:
    """A definition built from a PropertyCreate body, or the HubSpot error refusing it."""
    if not isinstance(body, dict):
        raise bad_request("Invalid input JSON: a property is an object.")
    missing = [f for f in ("name", "label", "type", "fieldType", "groupName") if not body.get(f)]
    if missing:
        raise bad_request(
            f"Missing required fields: {', '.join(missing)}", context={"missingFields": missing}
        )
    name, kind_of_value, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
    if not _NAME.match(name):
        raise bad_request(
            f"Property name {name!r} is invalid: use lower-case letters, digits and underscores, "
            "starting with a letter."
        )
    if kind_of_value not in TYPES:
        raise bad_request(f"type {kind_of_value!r} is not one of {', '.join(sorted(TYPES))}.")
    if field_type not in FIELD_TYPES_BY_TYPE[kind_of_value]:
        raise bad_request(
            f"fieldType {field_type!r} is not valid for type {kind_of_value!r}; use one of "
            f"{', '.join(sorted(FIELD_TYPES_BY_TYPE[kind_of_value]))}."
        )
    group = str(body["groupName"])
    group_def = portal.groups[kind.name].get(group)
    if group_def is None or group_def.archived:
        raise bad_request(f"Property group {group!r} does not exist for {kind.name}.")
    if name in portal.properties[kind.name]:
        raise HubSpotError(409, f"Property named '{name}' already exists.", category="OBJECT_ALREADY_EXISTS")
    unique = bool(body.get("hasUniqueValue", False))
    if unique and portal.unique_count(kind) >= MAX_UNIQUE_PER_OBJECT:
        raise bad_request(
            f"{kind.name} already has {MAX_UNIQUE_PER_OBJECT} unique value properties, the most allowed."
        )
    stamp = now_iso()
    return PropertyDef(
        name=name,
        label=str(body["label"]),
        type=kind_of_value,
        field_type=field_type,
        group=group,
        unique=unique,
        options=_creation_options(kind_of_value, body),
        hubspot_defined=False,
        description=str(body.get("description") or ""),
        display_order=int(body.get("displayOrder", -1)),
        hidden=bool(body.get("hidden", False)),
        form_field=bool(body.get("formField", False)),
        created_at=stamp,
        updated_at=stamp,
    )


async def list_properties(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    defs = portal_of(request).property_defs(kind, archived=query_bool(request, "archived"))
    return json_response({"results": [p.as_json() for p in defs]})


async def create_property(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    body = await read_json(request)
    with portal.lock:
        prop = _new_property(portal, kind, body)
        portal.add_property(kind, prop)
    return json_response(prop.as_json(), status=201)


def _existing(portal: Portal, kind: ObjectTypeDef, name: str, *, archived: bool = False) -> PropertyDef:
    prop = portal.properties[kind.name].get(name)
    if prop is None or prop.archived != archived:
        raise _missing_property(kind, name)
    return prop


async def get_property(request: Request, object_type: str, property_name: str) -> Response:
    kind = kind_named(object_type)
    prop = _existing(portal_of(request), kind, property_name, archived=query_bool(request, "archived"))
    return json_response(prop.as_json())


async def update_property(request: Request, object_type: str, property_name: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("Invalid input JSON: a property update is an object.")
    with portal.lock:
        prop = _existing(portal, kind, property_name)
        if prop.hubspot_defined:
            raise bad_request(f"{property_name} is a HubSpot-defined property; its definition is read-only.")
        changes: dict[str, Any] = {"updated_at": now_iso()}
        if "label" in body:
            changes["label"] = str(body["label"])
        if "description" in body:
            changes["description"] = str(body["description"] or "")
        if "groupName" in body:
            group = portal.groups[kind.name].get(str(body["groupName"]))
            if group is None or group.archived:
                raise bad_request(f"Property group {body['groupName']!r} does not exist for {kind.name}.")
            changes["group"] = group.name
        if "options" in body:
            changes["options"] = _options(body["options"])  # replaces the list [inf]
        if "displayOrder" in body:
            changes["display_order"] = int(body["displayOrder"])
        if "hidden" in body:
            changes["hidden"] = bool(body["hidden"])
        if "formField" in body:
            changes["form_field"] = bool(body["formField"])
        updated = replace(prop, **changes)
        portal.add_property(kind, updated)
    return json_response(updated.as_json())


async def archive_property(request: Request, object_type: str, property_name: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    with portal.lock:
        prop = _existing(portal, kind, property_name)
        if prop.hubspot_defined:
            raise bad_request(f"{property_name} is a HubSpot-defined property and cannot be archived.")
        portal.add_property(kind, _archived(prop))
    return no_content()


def _archived(prop: PropertyDef) -> PropertyDef:
    stamp = now_iso()
    return replace(prop, archived=True, archived_at=stamp, updated_at=stamp)


async def batch_create(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    started = now_iso()
    raw = inputs_of(await read_json(request), limit=BATCH_LIMIT)
    results, errors = [], []
    with portal.lock:
        for entry in raw:
            try:
                prop = _new_property(portal, kind, entry)
            except HubSpotError as error:
                errors.append(InputError(error.category or "VALIDATION_ERROR", error.message).as_json())
                continue
            portal.add_property(kind, prop)
            results.append(prop.as_json())
    return json_response(batch_body(results, errors, started), status=207 if errors else 201)


async def batch_read(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    started = now_iso()
    body = await read_json(request)
    archived = bool(body.get("archived", False)) if isinstance(body, dict) else False
    results, missing = [], []
    for entry in inputs_of(body, limit=BATCH_LIMIT):
        name = str(entry.get("name")) if isinstance(entry, dict) else ""
        prop = portal.properties[kind.name].get(name)
        if prop is None or prop.archived != archived:
            missing.append(name)
        else:
            results.append(prop.as_json())
    errors = (
        [
            InputError(
                "OBJECT_NOT_FOUND",
                f"Unable to find properties {', '.join(missing)} for object type {kind.type_id}",
                context={"propertyName": missing},
            ).as_json()
        ]
        if missing
        else []
    )
    return json_response(batch_body(results, errors, started), status=207 if errors else 200)


async def batch_archive(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    with portal.lock:
        for entry in inputs_of(await read_json(request), limit=BATCH_LIMIT):
            name = str(entry.get("name")) if isinstance(entry, dict) else ""
            prop = portal.properties[kind.name].get(name)
            if prop is not None and not prop.hubspot_defined and not prop.archived:
                portal.add_property(kind, _archived(prop))
    return no_content()


# ------------------------------------------------------------------------------------ groups
async def list_groups(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    groups = [g.as_json() for g in portal_of(request).groups[kind.name].values() if not g.archived]
    return json_response({"results": groups})


def _group(portal: Portal, kind: ObjectTypeDef, name: str) -> PropertyGroup:
    group = portal.groups[kind.name].get(name)
    if group is None or group.archived:
        raise HubSpotError(
            404,
            f"Unable to find property group {name} for object type {kind.type_id}",
            category="OBJECT_NOT_FOUND",
            context={"groupName": [name]},
        )
    return group


async def create_group(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
        raise bad_request("A property group needs a name and a label.")
    name = str(body["name"])
    if not _NAME.match(name):
        raise bad_request(
            f"Property group name {name!r} is invalid: use lower-case letters, digits, underscores."
        )
    with portal.lock:
        existing = portal.groups[kind.name].get(name)
        if existing is not None and not existing.archived:
            raise HubSpotError(
                409, f"Property group '{name}' already exists.", category="OBJECT_ALREADY_EXISTS"
            )
        group = PropertyGroup(name, str(body["label"]), int(body.get("displayOrder", -1)))
        portal.groups[kind.name][name] = group
    return json_response(group.as_json(), status=201)


async def get_group(request: Request, object_type: str, group_name: str) -> Response:
    kind = kind_named(object_type)
    return json_response(_group(portal_of(request), kind, group_name).as_json())


async def update_group(request: Request, object_type: str, group_name: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("Invalid input JSON: a group update is an object.")
    with portal.lock:
        group = _group(portal, kind, group_name)
        if "label" in body:
            group.label = str(body["label"])
        if "displayOrder" in body:
            group.display_order = int(body["displayOrder"])
    return json_response(group.as_json())


async def archive_group(request: Request, object_type: str, group_name: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    with portal.lock:
        _group(portal, kind, group_name).archived = True
    return no_content()
