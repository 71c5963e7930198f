"""Associations v4 (and the 2026-03 and v3 spellings): default and labelled, single and batch.

hubspot.md §4: type ids are directional; a default association reports both directions; a labelled
create replaces the pair's label set; removing the unlabeled default removes the whole pair.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from airflow_provider_mlconn.sandbox.hubspot.catalog import (
    ASSOCIATION_BY_ID,
    AssociationTypeDef,
    ObjectTypeDef,
    association_types_between,
    default_association,
)
from airflow_provider_mlconn.sandbox.hubspot.errors import InputError, bad_request, not_found
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal, Record
from airflow_provider_mlconn.sandbox.hubspot.views import property_names, record_json
from airflow_provider_mlconn.sandbox.hubspot.wire import (
    batch_body,
    decode_cursor,
    encode_cursor,
    inputs_of,
    json_response,
    kind_named,
    no_content,
    now_iso,
    portal_of,
    read_json,
)

BATCH_CREATE_LIMIT = 2000
BATCH_READ_LIMIT = 1000
PAGE_LIMIT = 500
V4_BATCH = ("/crm/v4/associations", "/crm/associations/2026-03")
V4_OBJECTS = ("/crm/v4/objects", "/crm/objects/2026-03")


def router() -> APIRouter:
    routes = APIRouter()
    for prefix in V4_BATCH:
        base = f"{prefix}/{{from_type}}/{{to_type}}"
        routes.add_api_route(f"{base}/batch/create", batch_create, methods=["POST"])
        routes.add_api_route(f"{base}/batch/associate/default", batch_associate_default, methods=["POST"])
        routes.add_api_route(f"{base}/batch/read", batch_read, methods=["POST"])
        routes.add_api_route(f"{base}/batch/archive", batch_archive, methods=["POST"])
        routes.add_api_route(f"{base}/batch/labels/archive", batch_archive_labels, methods=["POST"])
        routes.add_api_route(f"{base}/labels", labels, methods=["GET"])
    for prefix in V4_OBJECTS:
        base = f"{prefix}/{{from_type}}/{{from_id}}/associations"
        routes.add_api_route(f"{base}/default/{{to_type}}/{{to_id}}", put_default, methods=["PUT"])
        routes.add_api_route(f"{base}/{{to_type}}/{{to_id}}", put_labelled, methods=["PUT"])
        routes.add_api_route(f"{base}/{{to_type}}/{{to_id}}", delete_pair, methods=["DELETE"])
        routes.add_api_route(f"{base}/{{to_type}}", read_one, methods=["GET"])
    v3 = "/crm/v3/associations/{from_type}/{to_type}/batch"
    routes.add_api_route(f"{v3}/create", v3_batch_create, methods=["POST"])
    routes.add_api_route(f"{v3}/read", v3_batch_read, methods=["POST"])
    routes.add_api_route(f"{v3}/archive", batch_archive, methods=["POST"])
    routes.add_api_route(
        "/crm/v3/objects/{from_type}/{from_id}/associations/{to_type}/{to_id}/{type_name}",
        v3_put,
        methods=["PUT"],
    )
    return routes


def _kinds(from_type: str, to_type: str) -> tuple[ObjectTypeDef, ObjectTypeDef]:
    return kind_named(from_type), kind_named(to_type)


def _spec_types(a: ObjectTypeDef, b: ObjectTypeDef, specs: Any) -> list[AssociationTypeDef]:
    """Association specs of a request, each a HUBSPOT_DEFINED type from a to b (else the call is a 400)."""
    if not isinstance(specs, list) or not specs:
        raise bad_request("types must be a non-empty list of {associationCategory, associationTypeId}.")
    types = []
    for spec in specs:
        try:
            type_id = int(spec.get("associationTypeId"))
        except (AttributeError, TypeError, ValueError):
            raise bad_request(f"Invalid association spec {spec!r}.") from None
        assoc = ASSOCIATION_BY_ID.get(type_id)
        if assoc is None or spec.get("associationCategory") != "HUBSPOT_DEFINED":
            raise bad_request(
                f"Association type {spec.get('associationCategory')}/{type_id} does not exist.",
                context={"associationTypeId": [str(type_id)]},
            )
        if (assoc.from_type, assoc.to_type) != (a.name, b.name):
            expected = kind_named(assoc.from_type)
            raise bad_request(
                f"invalid from object type {a.type_id} for associations to be created. "
                f"expected: {expected.type_id}",
                context={"associationTypeId": [str(type_id)]},
            )
        types.append(assoc)
    return types


def _pair_ids(entry: Any) -> tuple[str, str]:
    try:
        return str(entry["from"]["id"]), str(entry["to"]["id"])
    except (KeyError, TypeError):
        raise bad_request("Each input needs from.id and to.id.") from None


def _records(
    portal: Portal, a: ObjectTypeDef, b: ObjectTypeDef, from_id: str, to_id: str
) -> tuple[Record, Record] | InputError:
    first, second = portal.get(a, from_id), portal.get(b, to_id)
    if first is None:
        return InputError(
            "OBJECT_NOT_FOUND", f"{a.label} {from_id} does not exist.", context={"fromObjectId": [from_id]}
        )
    if second is None:
        return InputError(
            "OBJECT_NOT_FOUND", f"{b.label} {to_id} does not exist.", context={"toObjectId": [to_id]}
        )
    return first, second


def _labels_between(
    a: ObjectTypeDef, b: ObjectTypeDef, first: Record, second: Record, portal: Portal
) -> dict[str, Any]:
    labels = sorted(
        {ASSOCIATION_BY_ID[t].label or "" for t in portal.link_types(first, second) if t in ASSOCIATION_BY_ID}
        - {""}
    )
    return {
        "fromObjectTypeId": a.type_id,
        "fromObjectId": first.id,
        "toObjectTypeId": b.type_id,
        "toObjectId": second.id,
        "labels": labels,
    }


async def batch_create(request: Request, from_type: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    started = now_iso()
    raw = inputs_of(await read_json(request), limit=BATCH_CREATE_LIMIT)
    results, errors = [], []
    with portal.lock:
        planned = []
        for entry in raw:
            from_id, to_id = _pair_ids(entry)
            types = _spec_types(a, b, entry.get("types"))
            found = _records(portal, a, b, from_id, to_id)
            if isinstance(found, InputError):
                errors.append(found.as_json())
            else:
                planned.append((found, types))
        for (first, second), types in planned:
            portal.associate(first, second, types, replace_labels=True)
            results.append(_labels_between(a, b, first, second, portal))
    return json_response(batch_body(results, errors, started), status=207 if errors else 201)


def _default_type(a: ObjectTypeDef, b: ObjectTypeDef) -> AssociationTypeDef:
    assoc = default_association(a.name, b.name)
    if assoc is None:
        raise bad_request(f"There is no default association from {a.name} to {b.name}.")
    return assoc


def _both_directions(assoc: AssociationTypeDef, first: Record, second: Record) -> list[dict[str, Any]]:
    return [
        {
            "from": {"id": first.id},
            "to": {"id": second.id},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": assoc.type_id},
        },
        {
            "from": {"id": second.id},
            "to": {"id": first.id},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": assoc.reverse_type_id,
            },
        },
    ]


async def batch_associate_default(request: Request, from_type: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    assoc = _default_type(a, b)
    portal = portal_of(request)
    started = now_iso()
    raw = inputs_of(await read_json(request), limit=BATCH_CREATE_LIMIT)
    results: list[dict[str, Any]] = []
    errors = []
    with portal.lock:
        for entry in raw:
            found = _records(portal, a, b, *_pair_ids(entry))
            if isinstance(found, InputError):
                errors.append(found.as_json())
                continue
            portal.associate(*found, [assoc], replace_labels=False)
            results.extend(_both_directions(assoc, *found))
    # The spec declares only 200 for this call; failed pairs ride along in ``errors`` [inf].
    return json_response(batch_body(results, errors, started))


def _associated(portal: Portal, record: Record, b: ObjectTypeDef) -> list[dict[str, Any]]:
    items = []
    for other_id, type_ids in sorted(portal.linked(record, b), key=lambda pair: int(pair[0])):
        kinds = [
            {"category": "HUBSPOT_DEFINED", "typeId": t, "label": ASSOCIATION_BY_ID[t].label}
            for t in sorted(type_ids)
            if t in ASSOCIATION_BY_ID
        ]
        if kinds:
            items.append({"toObjectId": other_id, "associationTypes": kinds})
    return items


def _none_associated(a: ObjectTypeDef, b: ObjectTypeDef, from_id: str) -> dict[str, Any]:
    """A batch read's error for an id without associations (or without a record) [inf]."""
    return InputError(
        "OBJECT_NOT_FOUND",
        f"No {b.singular} is associated with {a.singular} {from_id}.",
        context={"fromObjectId": [from_id]},
    ).as_json()


def _page(
    items: list[dict[str, Any]], after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    start = decode_cursor(after) if after else 0
    page = items[start : start + limit]
    following = start + limit
    return page, encode_cursor(str(following)) if following < len(items) else None


async def batch_read(request: Request, from_type: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    started = now_iso()
    raw = inputs_of(await read_json(request), limit=BATCH_READ_LIMIT)
    results, errors = [], []
    with portal.lock:
        for entry in raw:
            if not isinstance(entry, dict) or entry.get("id") in (None, ""):
                raise bad_request("Each input needs an id.")
            from_id = str(entry["id"])
            record = portal.get(a, from_id)
            items = _associated(portal, record, b) if record else []
            if not items:
                errors.append(_none_associated(a, b, from_id))
                continue
            page, cursor = _page(items, entry.get("after"), PAGE_LIMIT)
            result: dict[str, Any] = {"from": {"id": from_id}, "to": page}
            if cursor:
                result["paging"] = {"next": {"after": cursor, "link": f"?after={cursor}"}}
            results.append(result)
    return json_response(batch_body(results, errors, started), status=207 if errors else 200)


async def batch_archive(request: Request, from_type: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    raw = inputs_of(await read_json(request), limit=BATCH_CREATE_LIMIT)
    with portal.lock:
        for entry in raw:
            try:
                from_id = str(entry["from"]["id"])
                targets = entry["to"] if isinstance(entry["to"], list) else [entry["to"]]
                to_ids = [str(t["id"]) for t in targets]
            except (KeyError, TypeError):
                raise bad_request("Each input needs from.id and to[].id.") from None
            first = portal.get(a, from_id)
            for to_id in to_ids:
                second = portal.get(b, to_id)
                if first is not None and second is not None:
                    portal.unlink(first, second)
    return no_content()


async def batch_archive_labels(request: Request, from_type: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    raw = inputs_of(await read_json(request), limit=BATCH_CREATE_LIMIT)
    with portal.lock:
        for entry in raw:
            types = _spec_types(a, b, entry.get("types"))
            found = _records(portal, a, b, *_pair_ids(entry))
            if not isinstance(found, InputError):
                portal.remove_types(*found, types)
    return no_content()


async def labels(request: Request, from_type: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    results = [
        {"category": "HUBSPOT_DEFINED", "typeId": t.type_id, "label": t.label}
        for t in association_types_between(a.name, b.name)
    ]
    return json_response({"results": results})


def _one_pair(request: Request, from_type: str, from_id: str, to_type: str, to_id: str) -> tuple[Any, ...]:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    first, second = portal.get(a, from_id), portal.get(b, to_id)
    if first is None or second is None:
        raise not_found()
    return a, b, portal, first, second


async def put_default(request: Request, from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
    a, b, portal, first, second = _one_pair(request, from_type, from_id, to_type, to_id)
    started = now_iso()
    assoc = _default_type(a, b)
    portal.associate(first, second, [assoc], replace_labels=False)
    return json_response(batch_body(_both_directions(assoc, first, second), [], started))


async def put_labelled(request: Request, from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
    a, b, portal, first, second = _one_pair(request, from_type, from_id, to_type, to_id)
    types = _spec_types(a, b, await read_json(request))
    portal.associate(first, second, types, replace_labels=True)
    return json_response(_labels_between(a, b, first, second, portal), status=201)


async def delete_pair(request: Request, from_type: str, from_id: str, to_type: str, to_id: str) -> Response:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    first, second = portal.get(a, from_id), portal.get(b, to_id)
    if first is not None and second is not None:
        portal.unlink(first, second)
    return no_content()


async def read_one(request: Request, from_type: str, from_id: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    record = portal.get(a, from_id)
    items = _associated(portal, record, b) if record else []
    try:
        limit = max(1, min(int(request.query_params.get("limit", PAGE_LIMIT)), PAGE_LIMIT))
    except ValueError:
        raise bad_request("limit must be an integer.") from None
    page, cursor = _page(items, request.query_params.get("after"), limit)
    body: dict[str, Any] = {"results": page}
    if cursor:
        body["paging"] = {"next": {"after": cursor, "link": f"?after={cursor}"}}
    return json_response(body)


def _v3_type(a: ObjectTypeDef, b: ObjectTypeDef, name: Any) -> AssociationTypeDef:
    for assoc in association_types_between(a.name, b.name):
        if str(name) in (assoc.name, str(assoc.type_id)):
            return assoc
    raise bad_request(f"{name!r} is not an association type from {a.name} to {b.name}.")


async def v3_batch_create(request: Request, from_type: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    started = now_iso()
    raw = inputs_of(await read_json(request), limit=BATCH_CREATE_LIMIT)
    results, errors = [], []
    with portal.lock:
        for entry in raw:
            assoc = _v3_type(a, b, entry.get("type") if isinstance(entry, dict) else None)
            found = _records(portal, a, b, *_pair_ids(entry))
            if isinstance(found, InputError):
                errors.append(found.as_json())
                continue
            portal.associate(*found, [assoc], replace_labels=False)
            results.append({"from": {"id": found[0].id}, "to": {"id": found[1].id}, "type": assoc.name})
    return json_response(batch_body(results, errors, started), status=207 if errors else 201)


async def v3_batch_read(request: Request, from_type: str, to_type: str) -> Response:
    a, b = _kinds(from_type, to_type)
    portal = portal_of(request)
    started = now_iso()
    raw = inputs_of(await read_json(request), limit=BATCH_READ_LIMIT)
    results, errors = [], []
    with portal.lock:
        for entry in raw:
            from_id = str(entry.get("id")) if isinstance(entry, dict) else ""
            record = portal.get(a, from_id)
            linked = portal.linked(record, b) if record else []
            to = [
                {"id": other_id, "type": ASSOCIATION_BY_ID[t].name}
                for other_id, type_ids in linked
                for t in sorted(type_ids)
                if t in ASSOCIATION_BY_ID
            ]
            if not to:
                errors.append(_none_associated(a, b, from_id))
                continue
            results.append({"from": {"id": from_id}, "to": to})
    return json_response(batch_body(results, errors, started), status=207 if errors else 200)


async def v3_put(
    request: Request, *, from_type: str, from_id: str, to_type: str, to_id: str, type_name: str
) -> Response:
    a, b, portal, first, second = _one_pair(request, from_type, from_id, to_type, to_id)
    portal.associate(first, second, [_v3_type(a, b, type_name)], replace_labels=False)
    fresh = portal.get(a, first.id) or first
    return json_response(record_json(portal, fresh, property_names(a, None), associations=[b]))
