"""CRM objects v3 (and 2026-03): list, read, create, update, archive, the batch calls and search."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request, Response

from airflow_provider_mlconn.sandbox.hubspot.catalog import (
    ASSOCIATION_BY_ID,
    INVOICES,
    ObjectTypeDef,
    resolve_object_type,
)
from airflow_provider_mlconn.sandbox.hubspot.errors import HubSpotError, InputError, bad_request, not_found
from airflow_provider_mlconn.sandbox.hubspot.portal import (
    Portal,
    PreparedWrite,
    Record,
    WriteInput,
    WriteResult,
)
from airflow_provider_mlconn.sandbox.hubspot.search import search
from airflow_provider_mlconn.sandbox.hubspot.views import property_names, record_json
from airflow_provider_mlconn.sandbox.hubspot.wire import (
    batch_body,
    decode_cursor,
    encode_cursor,
    inputs_of,
    is_numeric,
    json_response,
    kind_named,
    no_content,
    now_iso,
    portal_of,
    query_bool,
    query_list,
    read_json,
)

BATCH_LIMIT = 100
LIST_LIMIT_MAX = 100
PREFIXES = ("/crm/v3/objects", "/crm/objects/2026-03")


def router() -> APIRouter:
    routes = APIRouter()
    for prefix in PREFIXES:
        routes.add_api_route(f"{prefix}/{{object_type}}/search", search_objects, methods=["POST"])
        routes.add_api_route(f"{prefix}/{{object_type}}/batch/{{action}}", batch, methods=["POST"])
        routes.add_api_route(f"{prefix}/{{object_type}}", list_objects, methods=["GET"])
        routes.add_api_route(f"{prefix}/{{object_type}}", create_object, methods=["POST"])
        routes.add_api_route(f"{prefix}/{{object_type}}/{{object_id}}", get_object, methods=["GET"])
        routes.add_api_route(f"{prefix}/{{object_type}}/{{object_id}}", update_object, methods=["PATCH"])
        routes.add_api_route(f"{prefix}/{{object_type}}/{{object_id}}", archive_object, methods=["DELETE"])
    return routes


# ---------------------------------------------------------------------------------- reads
async def list_objects(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    try:
        limit = int(request.query_params.get("limit", "10"))
    except ValueError:
        raise bad_request("limit must be an integer.") from None
    limit = max(1, min(limit, LIST_LIMIT_MAX))  # [inf] larger limits are capped, not refused
    after = request.query_params.get("after")
    start_after = decode_cursor(after) - 1 if after else 0
    names = property_names(kind, query_list(request, "properties"))
    history = query_list(request, "propertiesWithHistory")
    associations = _association_kinds(query_list(request, "associations"))
    page: list[Record] = []
    following: Record | None = None
    for record in portal.iter_after(kind, start_after, archived=query_bool(request, "archived")):
        if len(page) == limit:
            following = record
            break
        page.append(record)
    body: dict[str, Any] = {
        "results": [record_json(portal, r, names, history=history, associations=associations) for r in page]
    }
    if following is not None:
        cursor = encode_cursor(following.id)
        body["paging"] = {"next": {"after": cursor, "link": f"?after={cursor}"}}
    return json_response(body)


async def get_object(request: Request, object_type: str, object_id: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    record = _find(
        portal, kind, object_id, request.query_params.get("idProperty"), query_bool(request, "archived")
    )
    names = property_names(kind, query_list(request, "properties"))
    body = record_json(
        portal,
        record,
        names,
        history=query_list(request, "propertiesWithHistory"),
        associations=_association_kinds(query_list(request, "associations")),
    )
    return json_response(body)


def _find(
    portal: Portal, kind: ObjectTypeDef, object_id: str, id_property: str | None, archived: bool
) -> Record:
    if id_property:
        found = portal.find_by(kind, id_property, object_id)
    elif not is_numeric(object_id):
        raise HubSpotError(
            404,
            "Object not found.  objectId are usually numeric.",
            category="OBJECT_NOT_FOUND",
            context={"id": [object_id]},
        )
    else:
        found = portal.get(kind, object_id, archived=archived)
    if found is None:
        raise not_found()
    return found


def _association_kinds(names: list[str]) -> list[ObjectTypeDef]:
    kinds = []
    for name in names:
        kind = resolve_object_type(name)
        if kind is not None:  # unknown names are ignored, like unknown properties
            kinds.append(kind)
    return kinds


async def search_objects(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    return json_response(search(portal_of(request), kind, await read_json(request)))


# --------------------------------------------------------------------------------- writes
async def _object_body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("Invalid input JSON: expected an object with properties.")
    return body


async def create_object(request: Request, object_type: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    body = await _object_body(request)
    with portal.lock:
        item = WriteInput(body.get("properties"), associations=_inline_associations(portal, kind, body))
        results, _ = _write(portal, kind, [item], partial=False)
    result = results[0]
    return json_response(record_json(portal, result.record, result.written), status=201)


async def update_object(request: Request, object_type: str, object_id: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    body = await _object_body(request)
    with portal.lock:
        target = _find(portal, kind, object_id, request.query_params.get("idProperty"), False)
        results, _ = _write(portal, kind, [WriteInput(body.get("properties"), target=target)], partial=False)
    result = results[0]
    return json_response(record_json(portal, result.record, result.written))


async def archive_object(request: Request, object_type: str, object_id: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    with portal.lock:
        _refuse_final_invoices(portal, kind, [object_id])
        portal.archive(kind, object_id)
    return no_content()


def _refuse_final_invoices(portal: Portal, kind: ObjectTypeDef, ids: list[str]) -> None:
    """The API deletes draft invoices only; open ones only where an account setting allows it, which
    this portal does not [doc: hubspot-commerce.md §1.1; the setting's default is I]."""
    if kind is not INVOICES:
        return
    final = []
    for record_id in ids:
        invoice = portal.get(kind, record_id)
        if invoice is not None and invoice.properties.get("hs_invoice_status", "draft") != "draft":
            final.append(record_id)
    if final:
        raise bad_request(
            f"Only draft invoices can be deleted; not draft: {', '.join(final)}. Void an invoice instead.",
            context={"ids": final},
        )


def _inline_associations(
    portal: Portal, kind: ObjectTypeDef, body: dict[str, Any]
) -> list[tuple[Any, Record]]:
    """``associations`` of a create, checked: a type id from the new record's side and an existing target."""
    specs = body.get("associations") or []
    if not isinstance(specs, list):
        raise bad_request("associations must be a list.")
    resolved = []
    for spec in specs:
        target_id = (spec.get("to") or {}).get("id") if isinstance(spec, dict) else None
        types = spec.get("types") if isinstance(spec, dict) else None
        if target_id is None or not isinstance(types, list) or not types:
            raise bad_request("Each association needs to.id and a non-empty types list.")
        for type_spec in types:
            assoc = ASSOCIATION_BY_ID.get(_type_id(type_spec))
            if assoc is None or (type_spec.get("associationCategory") != "HUBSPOT_DEFINED"):
                raise bad_request(f"Association type {type_spec} does not exist.")
            if assoc.from_type != kind.name:
                expected = kind_named(assoc.from_type)
                raise bad_request(
                    f"invalid from object type {kind.type_id} for associations to be created. "
                    f"expected: {expected.type_id}"
                )
            target = portal.get(kind_named(assoc.to_type), str(target_id))
            if target is None:
                raise bad_request(
                    f"One or more associations are invalid: {kind_named(assoc.to_type).label} {target_id} "
                    "does not exist.",
                    context={"toObjectId": [str(target_id)]},
                )
            resolved.append((assoc, target))
    return resolved


def _type_id(spec: Any) -> int:
    try:
        return int(spec.get("associationTypeId"))
    except (AttributeError, TypeError, ValueError):
        return -1


def _write(
    portal: Portal, kind: ObjectTypeDef, items: list[WriteInput], *, partial: bool
) -> tuple[list[WriteResult], list[InputError]]:
    """Validate all, then write all valid ones; a refused input fails the request unless ``partial``."""
    prepared: list[PreparedWrite] = []
    errors: list[InputError] = []
    for item in items:
        outcome = portal.prepare(kind, item)
        if isinstance(outcome, InputError):
            errors.append(outcome)
        else:
            prepared.append(outcome)
    if errors and not partial:
        raise HubSpotError.from_input_error(400, errors[0])
    conflict = portal.conflicts(kind, prepared)
    if conflict is not None:
        raise conflict
    return portal.commit(kind, prepared), errors


def _traced(raw_inputs: list[Any]) -> bool:
    """Per-input (207) results need a unique objectWriteTraceId on every input [doc]."""
    traces = [i.get("objectWriteTraceId") if isinstance(i, dict) else None for i in raw_inputs]
    return bool(traces) and all(isinstance(t, str) and t for t in traces) and len(set(traces)) == len(traces)


async def batch(request: Request, object_type: str, action: str) -> Response:
    kind = kind_named(object_type)
    portal = portal_of(request)
    started = now_iso()
    body = await read_json(request)
    handlers = {
        "create": _batch_create,
        "update": _batch_update,
        "upsert": _batch_upsert,
        "read": _batch_read,
        "archive": _batch_archive,
    }
    handler = handlers.get(action)
    if handler is None:
        raise HubSpotError(404, f"Unknown batch action {action!r}.", category="OBJECT_NOT_FOUND")
    with portal.lock:
        return handler(request, portal, kind, body, started)


def _write_response(
    portal: Portal,
    results: list[WriteResult],
    errors: list[InputError],
    started: str,
    *,
    ok_status: int,
    upsert: bool = False,
) -> Response:
    rendered = []
    for result in results:
        extra: dict[str, Any] = {}
        if upsert:
            extra["new"] = result.created
        if result.trace_id is not None:
            extra["objectWriteTraceId"] = result.trace_id
        rendered.append(record_json(portal, result.record, result.written, extra=extra))
    status = 207 if errors else ok_status
    return json_response(batch_body(rendered, [e.as_json() for e in errors], started), status=status)


def _batch_create(request: Request, portal: Portal, kind: ObjectTypeDef, body: Any, started: str) -> Response:
    raw = inputs_of(body, limit=BATCH_LIMIT)
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise bad_request("Each input must be an object with properties.")
        items.append(
            WriteInput(
                entry.get("properties"),
                trace_id=entry.get("objectWriteTraceId"),
                associations=_inline_associations(portal, kind, entry),
            )
        )
    results, errors = _write(portal, kind, items, partial=_traced(raw))
    return _write_response(portal, results, errors, started, ok_status=201)


def _ids_of(raw: list[Any]) -> list[str]:
    ids = []
    for entry in raw:
        if not isinstance(entry, dict) or entry.get("id") in (None, ""):
            raise bad_request("Each input needs an id.")
        ids.append(str(entry["id"]))
    return ids


def _reject_duplicates(ids: list[str]) -> None:
    counts = Counter(ids)
    unique = [record_id for record_id, n in counts.items() if n > 1]
    if unique:
        raise bad_request(
            f"Duplicate IDs found in batch input: [{', '.join(unique)}]. IDs must be unique",
            context={"ids": unique},
        )


def _missing(kind: ObjectTypeDef, ids: list[str], trace_id: str | None = None) -> InputError:
    context = {"ids": ids}
    if trace_id is not None:
        context["objectWriteTraceId"] = [trace_id]
    return InputError(
        "OBJECT_NOT_FOUND",
        f"Could not get some {kind.label} objects, they may be deleted or not exist. "
        "Check that ids are valid.",
        context=context,
    )


def _batch_update(request: Request, portal: Portal, kind: ObjectTypeDef, body: Any, started: str) -> Response:
    raw = inputs_of(body, limit=BATCH_LIMIT)
    ids = _ids_of(raw)
    _reject_duplicates(ids)
    items, missing = [], []
    for entry, record_id in zip(raw, ids, strict=True):
        id_property = entry.get("idProperty")
        target = portal.find_by(kind, id_property, record_id) if id_property else portal.get(kind, record_id)
        if target is None:
            missing.append(_missing(kind, [record_id], entry.get("objectWriteTraceId")))
            continue
        items.append(
            WriteInput(entry.get("properties"), target=target, trace_id=entry.get("objectWriteTraceId"))
        )
    results, errors = _write(portal, kind, items, partial=_traced(raw))
    return _write_response(portal, results, [*errors, *missing], started, ok_status=200)


def _batch_upsert(request: Request, portal: Portal, kind: ObjectTypeDef, body: Any, started: str) -> Response:
    raw = inputs_of(body, limit=BATCH_LIMIT)
    ids = _ids_of(raw)
    id_properties = [entry.get("idProperty") or "hs_object_id" for entry in raw]
    for name in set(id_properties):
        prop = portal.property(kind, name)
        if name != "hs_object_id" and (prop is None or not prop.unique):
            raise bad_request(
                f"{name} is not a unique identifier property of {kind.name}; upsert needs a property "
                "with hasUniqueValue=true.",
                context={"idProperty": [name]},
            )
    values = [v.lower() if p == "email" else v for v, p in zip(ids, id_properties, strict=True)]
    _reject_duplicates(values)
    items, missing = [], []
    for entry, value, id_property in zip(raw, values, id_properties, strict=True):
        target = portal.find_by(kind, id_property, value)
        trace_id = entry.get("objectWriteTraceId")
        if target is None and id_property == "hs_object_id":
            missing.append(_missing(kind, [value], trace_id))
            continue
        items.append(
            WriteInput(
                entry.get("properties"),
                target=target,
                set_unique=None if target else (id_property, value),
                trace_id=trace_id,
                id_context=value,
                id_property=id_property,
            )
        )
    # "Partial upserts are not supported when using email as the idProperty" [doc].
    partial = _traced(raw) and "email" not in id_properties
    results, errors = _write(portal, kind, items, partial=partial)
    return _write_response(portal, results, [*errors, *missing], started, ok_status=200, upsert=True)


def _batch_read(request: Request, portal: Portal, kind: ObjectTypeDef, body: Any, started: str) -> Response:
    raw = inputs_of(body, limit=BATCH_LIMIT)
    ids = _ids_of(raw)
    id_property = body.get("idProperty")
    archived = query_bool(request, "archived")
    names = property_names(kind, body.get("properties") or None)
    history = body.get("propertiesWithHistory") or []
    found, missing = [], []
    for record_id in dict.fromkeys(ids):
        record = (
            portal.find_by(kind, id_property, record_id)
            if id_property
            else portal.get(kind, record_id, archived=archived)
        )
        if record is None:
            missing.append(record_id)
        else:
            found.append(record_json(portal, record, names, history=history))
    errors = [_missing(kind, missing).as_json()] if missing else []
    return json_response(batch_body(found, errors, started), status=207 if errors else 200)


def _batch_archive(
    request: Request, portal: Portal, kind: ObjectTypeDef, body: Any, started: str
) -> Response:
    ids = _ids_of(inputs_of(body, limit=BATCH_LIMIT))
    _refuse_final_invoices(portal, kind, ids)
    for record_id in ids:
        portal.archive(kind, record_id)
    return no_content()
