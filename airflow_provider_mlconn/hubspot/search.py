"""Reading every record changed in a time window through HubSpot search, which never returns more than
10,000 results for one query (hubspot.md §3).

The window ``[start, end)`` is walked in slices ordered by ``hs_object_id``: each slice asks for ids
above the last one seen, so a slice ends before its 10,000th result and the next one continues from
there. That works however many records share one modification instant, which splitting by time alone
cannot do. Offsets that come back twice or go backwards stop the walk instead of looping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlconn.hubspot.objects import ObjectType

SEARCH_PAGE_SIZE = 200
SEARCH_RESULT_CAP = 10_000
MAX_FILTERS_PER_GROUP = 6
WINDOW_FILTERS = 3  # last-modified >= start, < end, and the id tiebreak


class PagingCursorError(RuntimeError):
    """A list or search repeated a paging cursor, or ids came out of order: stop instead of looping."""


def next_cursor(page: Mapping[str, Any]) -> str | None:
    """``paging.next.after`` of a list, search or association answer; None on the last page."""
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return None if after is None else str(after)


def epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; search windows need aware datetimes (UTC)")
    return int(moment.astimezone(timezone.utc).timestamp() * 1000)


def window_request(
    object_type: ObjectType,
    *,
    start_ms: int,
    end_ms: int,
    after_id: int | None,
    offset: int,
    properties: Sequence[str],
    extra_filters: Sequence[Mapping[str, Any]] = (),
    page_size: int = SEARCH_PAGE_SIZE,
) -> dict[str, Any]:
    """One search request of a window slice (a ``PublicObjectSearchRequest``)."""
    modified = object_type.last_modified_property
    filters: list[dict[str, Any]] = [
        {"propertyName": modified, "operator": "GTE", "value": str(start_ms)},
        {"propertyName": modified, "operator": "LT", "value": str(end_ms)},
    ]
    if after_id is not None:
        filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)})
    filters.extend(dict(f) for f in extra_filters)
    wanted = list(dict.fromkeys([*properties, "hs_object_id", modified]))
    return {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": wanted,
        "limit": page_size,
        "after": str(offset),
    }


def iter_window(
    fetch: Callable[[dict[str, Any]], dict[str, Any]],
    object_type: ObjectType,
    *,
    start_ms: int,
    end_ms: int,
    properties: Sequence[str] = (),
    extra_filters: Sequence[Mapping[str, Any]] = (),
    page_size: int = SEARCH_PAGE_SIZE,
    result_cap: int = SEARCH_RESULT_CAP,
) -> Iterator[dict[str, Any]]:
    """Yield each raw record modified in ``[start_ms, end_ms)`` once, in ``hs_object_id`` order.

    ``fetch`` sends one search request body and returns the parsed response. No request ever asks
    for results past ``result_cap``.
    """
    if start_ms >= end_ms:
        return
    if len(extra_filters) > MAX_FILTERS_PER_GROUP - WINDOW_FILTERS:
        raise ValueError(
            f"at most {MAX_FILTERS_PER_GROUP - WINDOW_FILTERS} extra filters fit a window search"
        )
    after_id: int | None = None
    while True:
        offset = 0
        offsets_seen = {0}
        slice_last = after_id
        while True:
            body = window_request(
                object_type,
                start_ms=start_ms,
                end_ms=end_ms,
                after_id=after_id,
                offset=offset,
                properties=properties,
                extra_filters=extra_filters,
                page_size=page_size,
            )
            page = fetch(body)
            results = page.get("results") or []
            for record in results:
                record_id = int(record["id"])
                if slice_last is not None and record_id <= slice_last:
                    raise PagingCursorError(
                        f"search returned id {record_id} after {slice_last} although sorted by hs_object_id"
                    )
                slice_last = record_id
                yield record
            following = next_cursor(page)
            if following is None or not results:
                return
            next_offset = int(following)
            if next_offset in offsets_seen or next_offset <= offset:
                raise PagingCursorError(f"search paging cursor {following!r} repeated after offset {offset}")
            offsets_seen.add(next_offset)
            if next_offset + page_size > result_cap:
                break  # the next page would reach past the cap: continue from the last id instead
            offset = next_offset
        if slice_last == after_id:
            raise PagingCursorError(f"a search slice after id {after_id} made no progress")
        after_id = slice_last
