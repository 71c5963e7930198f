"""``POST /crm/v3/objects/{t}/search``: filter groups, one sort, integer-offset paging, the 10,000 cap.

hubspot.md §3: groups are OR-ed, filters in a group AND-ed (max 5 groups, 6 filters per group, 18
in all); ``limit`` up to 200; ``after`` is an offset; paging past 10,000 results is a 400; string
values compare case-insensitively except enumerations, and IN/NOT_IN expect lower-case strings.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from typing import Any

from airflow_provider_mlconn.sandbox.hubspot.catalog import ObjectTypeDef, PropertyDef, resolve_object_type
from airflow_provider_mlconn.sandbox.hubspot.errors import bad_request
from airflow_provider_mlconn.sandbox.hubspot.portal import Portal, Record
from airflow_provider_mlconn.sandbox.hubspot.values import sort_key
from airflow_provider_mlconn.sandbox.hubspot.views import property_names, record_json

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
RESULT_CAP = 10_000
MAX_QUERY_LENGTH = 3000
SEARCH_CACHE_SIZE = 16
OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
_TOKEN_SPLIT = re.compile(r"[^\w@.*-]+")

Predicate = Callable[[Record], bool]


def search(portal: Portal, kind: ObjectTypeDef, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("Invalid input JSON: a search request is an object.")
    predicate = _filter_groups(portal, kind, body.get("filterGroups") or [])
    query = body.get("query")
    if query is not None:
        if not isinstance(query, str) or len(query) > MAX_QUERY_LENGTH:
            raise bad_request(f"query must be a string of at most {MAX_QUERY_LENGTH} characters.")
        predicate = _with_query(portal, kind, predicate, query)
    limit = _int(body.get("limit"), DEFAULT_LIMIT, "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
    offset = _int(body.get("after"), 0, "after")
    if offset < 0:
        raise bad_request(f"after must not be negative, got {offset}.")
    if offset >= RESULT_CAP:
        raise bad_request(
            f"The search API returns at most {RESULT_CAP} results for a query; after={offset} is beyond it. "
            "Narrow the query instead of paging further.",
            context={"after": [str(offset)]},
        )
    matches = _matches(portal, kind, body, predicate)
    page = matches[offset : min(offset + limit, RESULT_CAP)]
    requested = body.get("properties")
    if requested is not None and not (
        isinstance(requested, list) and all(isinstance(p, str) for p in requested)
    ):
        raise bad_request("properties must be a list of property names.")
    names = property_names(kind, requested)
    response: dict[str, Any] = {
        "total": len(matches),
        "results": [record_json(portal, record, names) for record in page],
    }
    following = offset + len(page)
    if page and following < len(matches):
        # HubSpot hands out the next offset even when it lies past the cap; asking for it is the 400.
        response["paging"] = {"next": {"after": str(following), "link": f"?after={following}"}}
    return response


def _matches(portal: Portal, kind: ObjectTypeDef, body: dict[str, Any], predicate: Predicate) -> list[Record]:
    """The sorted matches of a query, cached while the index is unchanged (paging re-asks the same query)."""
    version, records = portal.searchable(kind)
    query = [kind.name, body.get("filterGroups"), body.get("sorts"), body.get("query")]
    cache_key = json.dumps(query, sort_keys=True, default=str)
    with portal.lock:
        cached = portal.search_cache.get(cache_key)
    if cached is not None and cached[0] == version:
        return cached[1]
    matches = [record for record in records if predicate(record)]
    _sort(portal, kind, matches, body.get("sorts") or [])
    with portal.lock:
        if len(portal.search_cache) >= SEARCH_CACHE_SIZE:
            portal.search_cache.pop(next(iter(portal.search_cache)))
        portal.search_cache[cache_key] = (version, matches)
    return matches


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be an integer, got {value!r}.") from None


def _filter_groups(portal: Portal, kind: ObjectTypeDef, groups: Any) -> Predicate:
    if not isinstance(groups, list):
        raise bad_request("filterGroups must be a list.")
    if len(groups) > MAX_GROUPS:
        raise bad_request(f"Too many filter groups: {len(groups)} (at most {MAX_GROUPS}).")
    compiled: list[list[Predicate]] = []
    total = 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise bad_request("Each filter group needs a list of filters.")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise bad_request(
                f"Too many filters in a group: {len(filters)} (at most {MAX_FILTERS_PER_GROUP})."
            )
        total += len(filters)
        compiled.append([_filter(portal, kind, f) for f in filters])
    if total > MAX_FILTERS:
        raise bad_request(f"Too many filters: {total} (at most {MAX_FILTERS} across all groups).")
    if not compiled:
        return lambda record: True
    return lambda record: any(all(test(record) for test in group) for group in compiled)


def _filter(portal: Portal, kind: ObjectTypeDef, spec: Any) -> Predicate:
    if not isinstance(spec, dict) or not isinstance(spec.get("propertyName"), str):
        raise bad_request("Each filter needs a propertyName and an operator.")
    name: str = spec["propertyName"]
    operator = spec.get("operator")
    if operator not in OPERATORS:
        raise bad_request(f"Unknown filter operator {operator!r}; use one of {', '.join(sorted(OPERATORS))}.")
    if name.startswith("associations."):
        return _association_filter(portal, name.split(".", 1)[1], operator, spec)
    prop = portal.property(kind, name)

    def key(record: Record) -> tuple[int, Any]:
        return record.key(prop, name)

    if operator == "HAS_PROPERTY":
        return lambda record: name in record.properties
    if operator == "NOT_HAS_PROPERTY":
        return lambda record: name not in record.properties
    if operator in ("IN", "NOT_IN"):
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise bad_request(f"{operator} needs a non-empty list of values for {name}.")
        wanted = {_in_key(prop, str(v)) for v in values}
        if operator == "IN":
            return lambda record: _stored_in_key(prop, record.properties.get(name)) in wanted
        return lambda record: _stored_in_key(prop, record.properties.get(name)) not in wanted
    if "value" not in spec:
        raise bad_request(f"{operator} needs a value for {name}.")
    raw = str(spec["value"]).lower() if isinstance(spec["value"], bool) else str(spec["value"])
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        contains = _token_matcher(raw)
        if operator == "CONTAINS_TOKEN":
            return lambda record: contains(record.properties.get(name))
        return lambda record: not contains(record.properties.get(name))
    target = sort_key(prop, raw)
    if operator == "EQ":
        return lambda record: key(record) == target
    if operator == "NEQ":
        return lambda record: key(record) != target
    if operator == "BETWEEN":
        if "highValue" not in spec:
            raise bad_request(f"BETWEEN needs a highValue for {name}.")
        high = sort_key(prop, str(spec["highValue"]))
        return lambda record: key(record)[0] != 0 and target <= key(record) <= high
    compare = {
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }[operator]
    return lambda record: key(record)[0] != 0 and compare(key(record), target)


def _in_key(prop: PropertyDef | None, value: str) -> tuple[int, Any]:
    # Values are compared as given: HubSpot expects lower-case strings in IN lists [doc].
    if prop is not None and prop.type in ("number", "datetime", "date"):
        return sort_key(prop, value)
    return (2, value)


def _stored_in_key(prop: PropertyDef | None, value: str | None) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if prop is not None and prop.type in ("number", "datetime", "date"):
        return sort_key(prop, value)
    if prop is not None and prop.type == "enumeration":
        return (2, value)
    return (2, value.lower())


def _token_matcher(pattern: str) -> Callable[[str | None], bool]:
    wanted = pattern.lower()

    def contains(value: str | None) -> bool:
        if not value:
            return False
        text = value.lower()
        if "*" in wanted:
            return fnmatch.fnmatchcase(text, wanted) or any(
                fnmatch.fnmatchcase(token, wanted) for token in _TOKEN_SPLIT.split(text)
            )
        return text == wanted or wanted in _TOKEN_SPLIT.split(text)

    return contains


def _association_filter(portal: Portal, type_name: str, operator: str, spec: dict[str, Any]) -> Predicate:
    other = resolve_object_type(type_name)
    if other is None:
        raise bad_request(f"Unknown object type in associations.{type_name}.")
    if operator == "EQ":
        ids = {str(spec.get("value"))}
    elif operator == "IN" and isinstance(spec.get("values"), list):
        ids = {str(v) for v in spec["values"]}
    else:
        raise bad_request(f"associations.{type_name} supports EQ and IN only.")
    return lambda record: any(oid in ids for oid, _ in portal.linked(record, other))


def _with_query(portal: Portal, kind: ObjectTypeDef, predicate: Predicate, query: str) -> Predicate:
    tokens = [t for t in _TOKEN_SPLIT.split(query.lower()) if t]
    matchers = [_token_matcher(t if "*" in t else f"*{t}*") for t in tokens]

    def matches(record: Record) -> bool:
        texts = [record.properties.get(name) for name in kind.searchable]
        return all(any(match(text) for text in texts) for match in matchers)

    return lambda record: predicate(record) and matches(record)


def _sort(portal: Portal, kind: ObjectTypeDef, records: list[Record], sorts: Any) -> None:
    """One sort rule (object or ``"-name"`` string); creation order otherwise; ties by id.

    ``records`` arrive in id order (the index keeps it), and Python's sort is stable.
    """
    if not isinstance(sorts, list):
        raise bad_request("sorts must be a list.")
    if not sorts:
        return
    if len(sorts) > 1:
        raise bad_request("The search API supports one sort rule.")
    rule = sorts[0]
    if isinstance(rule, str):
        descending, name = rule.startswith("-"), rule.lstrip("-")
    elif isinstance(rule, dict) and isinstance(rule.get("propertyName"), str):
        name = rule["propertyName"]
        direction = str(rule.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise bad_request(f"Sort direction must be ASCENDING or DESCENDING, got {direction}.")
        descending = direction == "DESCENDING"
    else:
        raise bad_request("A sort is a property name or {propertyName, direction}.")
    if name == "hs_object_id":
        if descending:
            records.reverse()
        return
    prop = portal.property(kind, name)
    records.sort(key=lambda record: record.key(prop, name), reverse=descending)
