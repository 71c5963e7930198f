"""Data-service queries built from typed helpers, never from hand-written dicts at call sites.

    from airflow_provider_mlconn.jde import query as q
    customers = q.all_of(q.in_list("F0101.AT1", ["C"]), q.changed_since("F0101", since, until))

Each helper checks that the column exists and that the value suits it (a ``date`` for a date column,
an ``int`` for a number column...), so a wrong filter fails where it is written, not on the server.
Conditions render to the AIS wire format with the user's date format (``to_wire(date_format)``).
Composition follows AIS ``complexQuery``: a query's conditions are joined by its match type, then each
nested query is folded in, left to right, with its ``andOr``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from airflow_provider_mlconn.jde.dates import DEFAULT_DATE_FORMAT, JdeTimestamp, format_query_date
from airflow_provider_mlconn.jde.tables import ColumnSpec, TableSpec, column, table


class Operator(str, Enum):
    EQUAL = "EQUAL"
    NOT_EQUAL = "NOT_EQUAL"
    LESS = "LESS"
    LESS_EQUAL = "LESS_EQUAL"
    GREATER = "GREATER"
    GREATER_EQUAL = "GREATER_EQUAL"
    BETWEEN = "BETWEEN"
    LIST = "LIST"
    STR_START_WITH = "STR_START_WITH"
    STR_END_WITH = "STR_END_WITH"
    STR_CONTAIN = "STR_CONTAIN"
    STR_BLANK = "STR_BLANK"
    STR_NOT_BLANK = "STR_NOT_BLANK"


@dataclass(frozen=True)
class RelativeDate:
    """A date the server computes: ``TODAY``, or ``TODAY_MINUS_DAY`` with ``offset`` 5 = five days ago."""

    special_value_id: Literal[
        "TODAY",
        "TODAY_PLUS_DAY",
        "TODAY_MINUS_DAY",
        "TODAY_PLUS_MONTH",
        "TODAY_MINUS_MONTH",
        "TODAY_PLUS_YEAR",
        "TODAY_MINUS_YEAR",
    ]
    offset: int = 0


Value = str | int | Decimal | date | RelativeDate
ColumnRef = str | ColumnSpec


def _column(ref: ColumnRef) -> ColumnSpec:
    return ref if isinstance(ref, ColumnSpec) else column(ref)


def _check(spec: ColumnSpec, value: Value) -> Value:
    where = spec.control_id
    if spec.kind == "date":
        if isinstance(value, datetime):
            raise TypeError(f"{where} is a date column: pass a date, not a datetime")
        if not isinstance(value, date | RelativeDate):
            raise TypeError(
                f"{where} is a date column: pass a date or RelativeDate, not {type(value).__name__}"
            )
    elif isinstance(value, RelativeDate):
        raise TypeError(f"{where} is not a date column: RelativeDate does not apply")
    elif spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{where} holds whole numbers: pass an int, not {type(value).__name__}")
    elif spec.kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise TypeError(f"{where} holds amounts: pass a Decimal or int, not {type(value).__name__}")
    elif not isinstance(value, str):
        raise TypeError(f"{where} is a character column: pass a str, not {type(value).__name__}")
    return value


def _wire_value(value: Value, date_format: str) -> dict[str, str]:
    if isinstance(value, RelativeDate):
        return {"specialValueId": value.special_value_id, "content": str(value.offset)}
    if isinstance(value, date):
        return {"specialValueId": "LITERAL", "content": format_query_date(value, date_format)}
    return {"specialValueId": "LITERAL", "content": str(value)}


@dataclass(frozen=True)
class Condition:
    column: ColumnSpec
    operator: Operator
    values: tuple[Value, ...] = ()

    def to_wire(self, date_format: str = DEFAULT_DATE_FORMAT) -> dict[str, Any]:
        return {
            "controlId": self.column.control_id,
            "operator": self.operator.value,
            "value": [_wire_value(v, date_format) for v in self.values],
        }

    @property
    def table(self) -> str:
        return self.column.table


@dataclass(frozen=True)
class Query:
    """Conditions joined by ``match_all`` (AND) or not (OR), then nested queries folded in."""

    conditions: tuple[Condition, ...] = ()
    match_all: bool = True
    nested: tuple[tuple[Literal["AND", "OR"], Query], ...] = ()

    def to_wire(self, date_format: str = DEFAULT_DATE_FORMAT, *, top: bool = True) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "matchType": "MATCH_ALL" if self.match_all else "MATCH_ANY",
            "condition": [c.to_wire(date_format) for c in self.conditions],
        }
        if self.nested:
            wire["complexQuery"] = [
                {"andOr": and_or, "query": q.to_wire(date_format, top=False)} for and_or, q in self.nested
            ]
        if top:
            wire = {"autoFind": True, **wire, "autoClear": False}
        return wire

    def tables(self) -> set[str]:
        names = {c.table for c in self.conditions}
        for _, q in self.nested:
            names |= q.tables()
        return names

    def __and__(self, other: Query | Condition) -> Query:
        return all_of(self, other)

    def __or__(self, other: Query | Condition) -> Query:
        return any_of(self, other)


def _join(parts: Sequence[Query | Condition], *, match_all: bool) -> Query:
    if not parts:
        raise ValueError("all_of/any_of need at least one condition or query")
    conditions = tuple(p for p in parts if isinstance(p, Condition))
    and_or: Literal["AND", "OR"] = "AND" if match_all else "OR"
    nested = tuple((and_or, p) for p in parts if isinstance(p, Query))
    return Query(conditions, match_all, nested)


def all_of(*parts: Query | Condition) -> Query:
    """Every part must hold (AND)."""
    return _join(parts, match_all=True)


def any_of(*parts: Query | Condition) -> Query:
    """At least one part must hold (OR)."""
    return _join(parts, match_all=False)


def _compare(ref: ColumnRef, operator: Operator, value: Value) -> Condition:
    spec = _column(ref)
    return Condition(spec, operator, (_check(spec, value),))


def eq(ref: ColumnRef, value: Value) -> Condition:
    return _compare(ref, Operator.EQUAL, value)


def ne(ref: ColumnRef, value: Value) -> Condition:
    return _compare(ref, Operator.NOT_EQUAL, value)


def gt(ref: ColumnRef, value: Value) -> Condition:
    return _compare(ref, Operator.GREATER, value)


def ge(ref: ColumnRef, value: Value) -> Condition:
    return _compare(ref, Operator.GREATER_EQUAL, value)


def lt(ref: ColumnRef, value: Value) -> Condition:
    return _compare(ref, Operator.LESS, value)


def le(ref: ColumnRef, value: Value) -> Condition:
    return _compare(ref, Operator.LESS_EQUAL, value)


def between(ref: ColumnRef, low: Value, high: Value) -> Condition:
    """``low <= column <= high`` (both ends included, as AIS BETWEEN)."""
    spec = _column(ref)
    return Condition(spec, Operator.BETWEEN, (_check(spec, low), _check(spec, high)))


def in_list(ref: ColumnRef, values: Iterable[Value]) -> Condition:
    """``column IN (values)``; keep lists short (see ``in_chunks``)."""
    spec = _column(ref)
    checked = tuple(_check(spec, v) for v in values)
    if not checked:
        raise ValueError(f"in_list({spec.control_id}) needs at least one value")
    return Condition(spec, Operator.LIST, checked)


def in_chunks(ref: ColumnRef, values: Iterable[Value], size: int = 100) -> Iterator[Condition]:
    """``LIST`` conditions over ``values`` in chunks of ``size`` (duplicates dropped, order kept), so a
    request body stays small however many keys a sync has to look up."""
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), size):
        yield in_list(ref, unique[start : start + size])


def _string(ref: ColumnRef, operator: Operator, *values: str) -> Condition:
    spec = _column(ref)
    if spec.kind != "str":
        raise TypeError(f"{operator.value} applies to character columns; {spec.control_id} is {spec.kind}")
    return Condition(spec, operator, tuple(_check(spec, v) for v in values))


def starts_with(ref: ColumnRef, prefix: str) -> Condition:
    return _string(ref, Operator.STR_START_WITH, prefix)


def ends_with(ref: ColumnRef, suffix: str) -> Condition:
    return _string(ref, Operator.STR_END_WITH, suffix)


def contains(ref: ColumnRef, part: str) -> Condition:
    return _string(ref, Operator.STR_CONTAIN, part)


def is_blank(ref: ColumnRef) -> Condition:
    return _string(ref, Operator.STR_BLANK)


def is_not_blank(ref: ColumnRef) -> Condition:
    return _string(ref, Operator.STR_NOT_BLANK)


def _table(ref: str | TableSpec) -> TableSpec:
    return ref if isinstance(ref, TableSpec) else table(ref)


def changed_since(
    table_ref: str | TableSpec,
    since: JdeTimestamp,
    until: JdeTimestamp | None = None,
    *,
    date_column: str = "UPMJ",
    time_column: str | None = None,
) -> Query:
    """Rows stamped at or after ``since`` (and before ``until``, if given), by the table's own audit
    columns: ``(UPMJ > d) OR (UPMJ = d AND UPMT >= t)`` [AND ``(UPMJ < d2) OR (UPMJ = d2 AND UPMT < t2)``].
    The time column is the table's (UPMT, or TDAY where the table keeps it there) unless named.

    Both stamps are server-local (see ``JdeTimestamp.from_datetime``). The window is half-open,
    ``[since, until)``, so consecutive windows neither overlap nor leave a gap.
    """
    spec = _table(table_ref)
    day, time_of_day = spec.column(date_column), spec.column(time_column or spec.audit_time)
    lower = any_of(gt(day, since.day), all_of(eq(day, since.day), ge(time_of_day, since.hhmmss)))
    if until is None:
        return lower
    if until < since:
        raise ValueError(f"window end {until} is before its start {since}")
    upper = any_of(lt(day, until.day), all_of(eq(day, until.day), lt(time_of_day, until.hhmmss)))
    return all_of(lower, upper)


def key_after(table_ref: str | TableSpec, last_key: Sequence[Any] | Mapping[str, Any]) -> Query:
    """Rows whose primary key sorts after ``last_key`` (key values in primary-key order, or a mapping
    alias -> value): ``k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...``. Resumes a paged read without a cursor."""
    spec = _table(table_ref)
    keys = spec.key_columns
    values = [last_key[c.alias] for c in keys] if isinstance(last_key, Mapping) else list(last_key)
    if len(values) != len(keys):
        raise ValueError(f"{spec.name} key is {spec.primary_key}; got {len(values)} value(s)")
    branches: list[Query | Condition] = []
    for index, key_column in enumerate(keys):
        equal = [eq(c, v) for c, v in zip(keys[:index], values[:index], strict=True)]
        greater = gt(key_column, values[index])
        branches.append(all_of(*equal, greater) if equal else greater)
    return any_of(*branches)


@dataclass(frozen=True)
class OrderBy:
    column: ColumnSpec
    descending: bool = False

    def to_wire(self) -> dict[str, str]:
        return {"column": self.column.control_id, "direction": "DESC" if self.descending else "ASC"}


def by_primary_key(table_ref: str | TableSpec) -> tuple[OrderBy, ...]:
    return tuple(OrderBy(c) for c in _table(table_ref).key_columns)


def data_request(
    table_ref: str | TableSpec,
    *,
    columns: Sequence[str] | None = None,
    query: Query | Condition | None = None,
    page_size: int | None = 100,
    order_by: Sequence[OrderBy] = (),
    count: bool = False,
    next_page: bool = True,
    date_format: str = DEFAULT_DATE_FORMAT,
) -> dict[str, Any]:
    """The body of ``POST /v2/dataservice`` (BROWSE, or COUNT with ``count``). ``page_size`` None asks
    for every row in one response (``"No Max"``)."""
    spec = _table(table_ref)
    if isinstance(query, Condition):
        query = all_of(query)
    if query is not None and query.tables() - {spec.name}:
        raise ValueError(f"a {spec.name} query names columns of {sorted(query.tables() - {spec.name})}")
    body: dict[str, Any] = {
        "targetName": spec.name,
        "targetType": "table",
        "dataServiceType": "COUNT" if count else "BROWSE",
        "outputType": "GRID_DATA",
        "aliasNaming": True,
    }
    if query is not None:
        body["query"] = query.to_wire(date_format)
    if count:
        return body
    if columns:
        body["returnControlIDs"] = "|".join(spec.column(c).control_id for c in columns)
    if page_size is not None and page_size < 1:
        raise ValueError("page_size must be >= 1 (or None for no maximum)")
    body["maxPageSize"] = "No Max" if page_size is None else str(page_size)
    if next_page:
        body["enableNextPageProcessing"] = True
        body["nextPageTimeInterval"] = "1000"
    if order_by:
        body["aggregation"] = {"orderBy": [o.to_wire() for o in order_by]}
    return body
