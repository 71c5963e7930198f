"""In-memory tables over the seeded data, and the data-service query engine.

A table is a sorted list of *groups* (usually an address number) whose rows are generated on demand and
come out in primary-key order. Edits replace a group's rows with an override. A query is compiled once
into a predicate plus the range of groups it can touch (from conditions on the first key column), so
``LIST`` over a hundred address numbers reads a hundred groups, and a cursor that pages through 100,000
rows is a generator that advances one page per call: nothing is re-filtered per page.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_mlconn.sandbox.jde.calendar import add_months, parse_user_date, to_julian
from airflow_provider_mlconn.sandbox.jde.schema import TABLES, Column, TableSchema
from airflow_provider_mlconn.sandbox.jde.seed import (
    ANCHOR,
    NEW_DOCUMENT_START,
    NEW_SALES_ORDER_START,
    SALES_ORDER_BASE,
    Dataset,
    Row,
)

Predicate = Callable[[Row], bool]


class QueryError(ValueError):
    """The request names an unknown column or operator, or a value the column cannot hold."""


class VirtualTable:
    """Rows in primary-key order, generated per group, with edits kept as per-group overrides."""

    def __init__(
        self,
        schema: TableSchema,
        group_ids: list[Any],
        generate: Callable[[Any], list[Row]],
        group_of: Callable[[Any], Any] | None = None,
        *,
        index: Callable[[VirtualTable, CompiledQuery], Iterable[Any] | None] | None = None,
        seeded_dates: tuple[str, ...] = ("UPMJ",),
    ) -> None:
        self.schema = schema
        self.group_ids = group_ids
        self.generate = generate
        self.group_of = group_of  # first key column value -> group id, monotone; None = no seeking
        # JDE's other indexes: the groups a query can touch by columns other than the first key
        # (None from it: the query does not narrow them)
        self.index = index
        # date columns no generated row holds a value after the seed's anchor day in
        self.seeded_dates = tuple(c for c in seeded_dates if c in schema.columns)
        self.overrides: dict[Any, list[Row]] = {}

    def rows_of(self, group: Any) -> list[Row]:
        override = self.overrides.get(group)
        return override if override is not None else self.generate(group)

    def has_group(self, group: Any) -> bool:
        index = bisect.bisect_left(self.group_ids, group)
        return index < len(self.group_ids) and self.group_ids[index] == group

    def replace_group(self, group: Any, rows: list[Row]) -> None:
        key = self.schema.primary_key
        self.overrides[group] = sorted(rows, key=lambda row: tuple(_sort_value(row[c]) for c in key))
        if not self.has_group(group):
            bisect.insort(self.group_ids, group)

    def scan(self, groups: Iterable[Any]) -> Iterator[Row]:
        for group in groups:
            yield from self.rows_of(group)


def _sort_value(value: Any) -> Any:
    return value.rstrip() if isinstance(value, str) else value


class Store:
    """All tables of one sandbox, the next numbers, and the seeded dataset behind them."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        numbers = dataset.address_numbers
        self.tables: dict[str, VirtualTable] = {
            "F0101": VirtualTable(TABLES["F0101"], list(numbers), dataset.f0101, _identity),
            "F03012": VirtualTable(TABLES["F03012"], list(numbers), dataset.f03012, _identity),
            "F0111": VirtualTable(TABLES["F0111"], list(numbers), dataset.f0111, _identity),
            "F0116": VirtualTable(TABLES["F0116"], list(numbers), dataset.f0116, _identity),
            "F0115": VirtualTable(TABLES["F0115"], list(numbers), dataset.f0115, _identity),
            "F01151": VirtualTable(TABLES["F01151"], list(numbers), dataset.f01151, _identity),
            "F4101": VirtualTable(TABLES["F4101"], list(dataset.item_numbers), dataset.f4101, _identity),
            "F0901": VirtualTable(TABLES["F0901"], [0], lambda _: dataset.accounts),
            "F0006": VirtualTable(TABLES["F0006"], [0], lambda _: dataset.business_units),
            "F03B11": VirtualTable(
                TABLES["F03B11"],
                list(numbers),
                dataset.f03b11,
                _tens,
                index=_by_customer,
                seeded_dates=("UPMJ", "DGJ", "DDJ", "DIVJ"),
            ),
            "F03B13": VirtualTable(
                TABLES["F03B13"],
                list(numbers),
                dataset.f03b13,
                _tens,
                index=_by_customer,
                seeded_dates=("UPMJ", "DGJ", "DMTJ"),
            ),
            "F03B14": VirtualTable(
                TABLES["F03B14"],
                list(numbers),
                dataset.f03b14,
                _tens,
                index=_by_customer_or_document,
                seeded_dates=("UPMJ", "DGJ"),
            ),
            "F0411": VirtualTable(TABLES["F0411"], list(numbers), dataset.f0411, _tens),
            "F0911": VirtualTable(
                TABLES["F0911"], dataset.gl_groups(), dataset.f0911, index=_by_journal_document
            ),
            "F4106": VirtualTable(TABLES["F4106"], list(dataset.item_numbers), dataset.f4106, _identity),
            "F42119": VirtualTable(TABLES["F42119"], list(numbers), dataset.f42119, _sales_order_group),
        }
        self.next_address_number = numbers[-1] + 1
        self.next_item_number = (dataset.item_numbers[-1] if dataset.item_numbers else 60_000) + 3
        self.next_document = NEW_DOCUMENT_START
        self.next_sales_order = NEW_SALES_ORDER_START
        self.next_batch = 500_000
        self.next_account_id = max((int(a["AID"]) for a in dataset.accounts), default=100) + 1
        self.seeded_until = to_julian(ANCHOR)
        # lookups the orchestrations build on first use and keep current as they write
        self.invoice_references: dict[tuple[str, str, str], tuple[int, str, str]] | None = None
        self.item_numbers: dict[str, int] | None = None
        self.supplier_invoices: dict[tuple[int, str], tuple[int, str, str]] | None = None
        self._accounts: tuple[list[Row], dict[tuple[str, str, str, str], Row]] = ([], {})

    def select(
        self, table: VirtualTable, compiled: CompiledQuery, order: list[OrderBy] | None = None
    ) -> Iterator[Row]:
        """``select`` knowing that no generated row is stamped after the seed's anchor date."""
        return select(table, compiled, order, seeded_until=self.seeded_until)

    def table(self, name: str) -> VirtualTable:
        try:
            return self.tables[name.upper()]
        except KeyError:
            raise QueryError(f"Table {name} is not available: no such table or view") from None

    def take_document_number(self) -> int:
        self.next_document += 1
        return self.next_document

    def take_batch_number(self) -> int:
        self.next_batch += 1
        return self.next_batch

    def take_sales_order_number(self) -> int:
        self.next_sales_order += 1
        return self.next_sales_order

    def account_for(self, company: str, business_unit: str, obj: str, sub: str = "") -> Row | None:
        """The account as F0901 holds it now (edits through ``/_sandbox/`` included)."""
        rows = self.table("F0901").rows_of(0)
        if self._accounts[0] is not rows:  # every edit replaces the row list
            index = {(r["CO"], r["MCU"].strip(), r["OBJ"].strip(), r["SUB"].strip()): r for r in rows}
            self._accounts = (rows, index)
        return self._accounts[1].get((company, business_unit.strip(), obj.strip(), sub.strip()))

    def append(self, table_name: str, group: Any, rows: list[Row]) -> None:
        """Add rows to a group (a new document's rows beside the customer's or the batch's)."""
        table = self.table(table_name)
        table.replace_group(group, [*(table.rows_of(group) if table.has_group(group) else []), *rows])


def _identity(value: Any) -> Any:
    return value


def _tens(value: Any) -> Any:
    return int(value) // 10


def _sales_order_group(order_number: Any) -> Any:
    return (int(order_number) - SALES_ORDER_BASE) // 10


# Secondary indexes. Seeded ledger rows of a customer sit in the group of its address number (its
# documents and receipts are numbered AN8 * 10 + n); documents and receipts entered later take next
# numbers from NEW_DOCUMENT_START on and sit in groups of their own, all above it.
_NEW_GROUPS = NEW_DOCUMENT_START // 10


def _integral_values(r: Range) -> set[int] | None:
    if r.everything or r.values is None or not all(_integral(v) for v in r.values):
        return None
    return {int(v) for v in r.values}


def _seeded_or_new(table: VirtualTable, seeded: set[int]) -> list[Any]:
    newer = table.group_ids[bisect.bisect_left(table.group_ids, _NEW_GROUPS) :]
    return sorted({*(g for g in seeded if table.has_group(g)), *newer})


def _by_customer(table: VirtualTable, compiled: CompiledQuery) -> list[Any] | None:
    """F03B11/F03B13 by AN8 (JDE's customer index)."""
    customers = _integral_values(compiled.column_range("AN8"))
    return None if customers is None else _seeded_or_new(table, customers)


def _by_customer_or_document(table: VirtualTable, compiled: CompiledQuery) -> list[Any] | None:
    """F03B14 by AN8, or by the document paid (DOC): a seeded line sits with its invoice's customer."""
    found = _by_customer(table, compiled)
    documents = _integral_values(compiled.column_range("DOC"))
    if documents is None:
        return found
    by_document = _seeded_or_new(table, {d // 10 for d in documents})
    return by_document if found is None else sorted(set(found) & set(by_document))


def _by_journal_document(table: VirtualTable, compiled: CompiledQuery) -> list[Any] | None:
    """F0911 by DOC: its groups are (company, document type, DOC // 10)."""
    documents = _integral_values(compiled.column_range("DOC"))
    if documents is None:
        return None
    tens = {d // 10 for d in documents}
    return [group for group in table.group_ids if group[2] in tens]


# -- conditions ----------------------------------------------------------------------------------

STRING_OPERATORS = {"STR_START_WITH", "STR_END_WITH", "STR_CONTAIN", "STR_BLANK", "STR_NOT_BLANK"}
OPERATORS = {
    "EQUAL",
    "NOT_EQUAL",
    "LESS",
    "LESS_EQUAL",
    "GREATER",
    "GREATER_EQUAL",
    "BETWEEN",
    "LIST",
} | STRING_OPERATORS
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQUAL": operator.eq,
    "NOT_EQUAL": operator.ne,
    "LESS": operator.lt,
    "LESS_EQUAL": operator.le,
    "GREATER": operator.gt,
    "GREATER_EQUAL": operator.ge,
}
RELATIVE_DATES = {
    "TODAY": (0, "day"),
    "TODAY_PLUS_DAY": (1, "day"),
    "TODAY_MINUS_DAY": (-1, "day"),
    "TODAY_PLUS_MONTH": (1, "month"),
    "TODAY_MINUS_MONTH": (-1, "month"),
    "TODAY_PLUS_YEAR": (1, "year"),
    "TODAY_MINUS_YEAR": (-1, "year"),
}


@dataclass(frozen=True)
class QueryContext:
    """What a condition value may depend on: the user's date format, login name and today's date."""

    simple_date_format: str
    username: str
    today: date


@dataclass
class Range:
    """Which values of the first key column a query can match: a set of values or an interval."""

    values: set[Any] | None = None
    low: Any = None
    low_open: bool = False
    high: Any = None
    high_open: bool = False
    everything: bool = False

    @classmethod
    def all(cls) -> Range:
        return cls(everything=True)


def _parse_value(column: Column, table: str, value: Any, context: QueryContext) -> Any:
    if not isinstance(value, dict):
        raise QueryError(f"{table}.{column.alias}: each value must be an object with specialValueId/content")
    special = str(value.get("specialValueId", "LITERAL")).upper()
    content = value.get("content", "")
    where = f"{table}.{column.alias}"
    if special == "LOGIN_USER":
        return context.username
    if special in RELATIVE_DATES:
        if column.kind != "date":
            raise QueryError(f"{where}: {special} applies to date columns only")
        sign, unit = RELATIVE_DATES[special]
        try:
            amount = int(str(content).strip() or "0") if special != "TODAY" else 0
        except ValueError:
            raise QueryError(f"{where}: {special} needs a whole number of {unit}s, got {content!r}") from None
        if unit == "day":
            return to_julian(context.today + timedelta(days=sign * amount))
        return to_julian(add_months(context.today, sign * amount * (12 if unit == "year" else 1)))
    if special != "LITERAL":
        raise QueryError(f"{where}: unknown specialValueId {special!r}")
    text = str(content)
    if column.kind == "str":
        return text.rstrip()
    if column.kind == "date":
        try:
            return parse_user_date(text, context.simple_date_format)
        except ValueError:
            raise QueryError(
                f"{where}: {text!r} is not a date in the user's format {context.simple_date_format}"
            ) from None
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise QueryError(f"{where}: {text!r} is not a number") from None
    if column.kind == "num":
        number = number.scaleb(column.size)
    # whole numbers compare as int: the engine compares them against int cells on every row
    return int(number) if number == number.to_integral_value() else number


def compile_condition(
    schema: TableSchema, condition: Any, context: QueryContext
) -> tuple[Predicate, str, str, list[Any]]:
    if not isinstance(condition, dict):
        raise QueryError("each condition must be an object with controlId, operator and value")
    control_id = str(condition.get("controlId", ""))
    table_name, _, alias = control_id.partition(".")
    if table_name.upper() != schema.name or alias.upper() not in schema.columns:
        raise QueryError(
            f"controlId {control_id!r} is not a column of {schema.name} (use {schema.name}.ALIAS)"
        )
    column = schema.columns[alias.upper()]
    op = str(condition.get("operator", "")).upper()
    if op not in OPERATORS:
        raise QueryError(f"{control_id}: unknown operator {op!r}")
    if op in STRING_OPERATORS and column.kind != "str":
        raise QueryError(f"{control_id}: {op} applies to string columns only")
    raw_values = condition.get("value", [])
    if not isinstance(raw_values, list):
        raise QueryError(f"{control_id}: value must be a list")
    values = [_parse_value(column, schema.name, v, context) for v in raw_values]
    name = column.alias
    needed = {"BETWEEN": 2, "STR_BLANK": 0, "STR_NOT_BLANK": 0}.get(op, 1)
    if op == "LIST":
        if not values:
            raise QueryError(f"{control_id}: LIST needs at least one value")
    elif len(values) != needed:
        raise QueryError(f"{control_id}: {op} takes {needed} value(s), got {len(values)}")
    strip = column.kind == "str"

    def cell(row: Row) -> Any:
        value = row[name]
        return value.rstrip() if strip else value

    predicate: Predicate
    if op in _COMPARE:
        compare, target = _COMPARE[op], values[0]

        def predicate(row: Row) -> bool:
            return compare(cell(row), target)
    elif op == "BETWEEN":
        low, high = values

        def predicate(row: Row) -> bool:
            return bool(low <= cell(row) <= high)
    elif op == "LIST":
        allowed = set(values)

        def predicate(row: Row) -> bool:
            return cell(row) in allowed
    elif op == "STR_START_WITH":
        prefix = values[0]

        def predicate(row: Row) -> bool:
            return str(row[name]).startswith(prefix)
    elif op == "STR_END_WITH":
        suffix = values[0]

        def predicate(row: Row) -> bool:
            return str(row[name]).rstrip().endswith(suffix)
    elif op == "STR_CONTAIN":
        part = values[0]

        def predicate(row: Row) -> bool:
            return part in str(row[name])
    elif op == "STR_BLANK":

        def predicate(row: Row) -> bool:
            return not str(row[name]).strip()
    else:

        def predicate(row: Row) -> bool:
            return bool(str(row[name]).strip())

    return predicate, name, op, values


def _condition_range(alias: str, key_column: str, op: str, values: list[Any]) -> Range:
    if alias != key_column:
        return Range.all()
    if op == "EQUAL":
        return Range(values={values[0]})
    if op == "LIST":
        return Range(values=set(values))
    if op == "BETWEEN":
        return Range(low=values[0], high=values[1])
    if op in ("GREATER", "GREATER_EQUAL"):
        return Range(low=values[0], low_open=op == "GREATER")
    if op in ("LESS", "LESS_EQUAL"):
        return Range(high=values[0], high_open=op == "LESS")
    return Range.all()


def _intersect(a: Range, b: Range) -> Range:
    if a.everything:
        return b
    if b.everything:
        return a
    if a.values is not None and b.values is not None:
        return Range(values=a.values & b.values)
    if a.values is not None or b.values is not None:
        values, interval = (a.values, b) if a.values is not None else (b.values, a)
        assert values is not None
        return Range(values={v for v in values if _inside(v, interval)})
    low, low_open = a.low, a.low_open
    if b.low is not None and (low is None or b.low > low or (b.low == low and b.low_open)):
        low, low_open = b.low, b.low_open
    high, high_open = a.high, a.high_open
    if b.high is not None and (high is None or b.high < high or (b.high == high and b.high_open)):
        high, high_open = b.high, b.high_open
    return Range(low=low, low_open=low_open, high=high, high_open=high_open)


def _union(a: Range, b: Range) -> Range:
    if a.everything or b.everything:
        return Range.all()
    if a.values is not None and b.values is not None:
        return Range(values=a.values | b.values)

    def bounds(r: Range) -> tuple[Any, Any]:
        if r.values is not None:
            return (min(r.values), max(r.values)) if r.values else (None, None)
        return r.low, r.high

    (a_low, a_high), (b_low, b_high) = bounds(a), bounds(b)
    if (a.values == set()) or (b.values == set()):
        return b if a.values == set() else a
    low = None if a_low is None or b_low is None else min(a_low, b_low)
    high = None if a_high is None or b_high is None else max(a_high, b_high)
    return Range(low=low, high=high)


def _inside(value: Any, r: Range) -> bool:
    if r.low is not None and (value < r.low or (r.low_open and value == r.low)):
        return False
    return not (r.high is not None and (value > r.high or (r.high_open and value == r.high)))


#: Columns whose possible values a compiled query works out besides the first key column: the audit
#: date (a "changed since" poll reads the edited groups alone) and the columns JDE keeps indexes on
#: for the ledgers (customer, document, dates).
RANGED_COLUMNS = ("UPMJ", "AN8", "DOC", "DGJ", "DDJ", "DIVJ", "DMTJ")


@dataclass
class CompiledQuery:
    predicate: Predicate | None
    key_range: Range
    #: The values each of ``RANGED_COLUMNS`` can take in matching rows (absent: any).
    column_ranges: dict[str, Range] = field(default_factory=dict)

    @property
    def audit_range(self) -> Range:
        """The values UPMJ can take in matching rows."""
        return self.column_range("UPMJ")

    def column_range(self, column: str) -> Range:
        return self.column_ranges.get(column) or Range.all()


def compile_query(schema: TableSchema, query: Any, context: QueryContext) -> CompiledQuery:
    """Compile a data-service ``query`` object: conditions joined by ``matchType``, then each
    ``complexQuery`` entry folded in, left to right, with its ``andOr``."""
    if query is None:
        return CompiledQuery(None, Range.all())
    if not isinstance(query, dict):
        raise QueryError("query must be an object")
    key_column = schema.primary_key[0]
    ranged = [c for c in RANGED_COLUMNS if c in schema.columns]
    match = str(query.get("matchType", "MATCH_ALL")).upper()
    if match not in ("MATCH_ALL", "MATCH_ANY"):
        raise QueryError(f"matchType must be MATCH_ALL or MATCH_ANY, got {match!r}")
    conditions = query.get("condition") or []
    if not isinstance(conditions, list):
        raise QueryError("query.condition must be a list")
    predicates: list[Predicate] = []
    ranges: list[Range] = []
    column_ranges: list[dict[str, Range]] = []
    for condition in conditions:
        predicate, alias, op, values = compile_condition(schema, condition, context)
        predicates.append(predicate)
        ranges.append(_condition_range(alias, key_column, op, values))
        column_ranges.append({c: _condition_range(alias, c, op, values) for c in ranged})
    combined: Predicate | None = None
    key_range: Range | None = None
    by_column: dict[str, Range] | None = None
    if predicates:
        combined = _all(predicates) if match == "MATCH_ALL" else _any(predicates)
        join = _intersect if match == "MATCH_ALL" else _union
        key_range, by_column = ranges[0], column_ranges[0]
        for r, columns in zip(ranges[1:], column_ranges[1:], strict=True):
            key_range = join(key_range, r)
            by_column = {c: join(by_column[c], columns[c]) for c in ranged}
    complex_entries = query.get("complexQuery") or []
    if not isinstance(complex_entries, list):
        raise QueryError("query.complexQuery must be a list")
    for entry in complex_entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("query"), dict):
            raise QueryError("each complexQuery entry needs andOr and query")
        and_or = str(entry.get("andOr", "AND")).upper()
        if and_or not in ("AND", "OR"):
            raise QueryError(f"complexQuery andOr must be AND or OR, got {and_or!r}")
        inner = compile_query(schema, entry["query"], context)
        inner_predicate = inner.predicate or (lambda row: True)
        inner_columns = {c: inner.column_range(c) for c in ranged}
        if combined is None or key_range is None or by_column is None:
            combined, key_range, by_column = inner_predicate, inner.key_range, inner_columns
        else:
            join = _intersect if and_or == "AND" else _union
            combined = (
                _all([combined, inner_predicate]) if and_or == "AND" else _any([combined, inner_predicate])
            )
            key_range = join(key_range, inner.key_range)
            by_column = {c: join(by_column[c], inner_columns[c]) for c in ranged}
    return CompiledQuery(combined, key_range or Range.all(), by_column or {})


def _all(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda row: all(p(row) for p in predicates)


def _any(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda row: any(p(row) for p in predicates)


def candidate_groups(table: VirtualTable, key_range: Range) -> Iterable[Any]:
    """The groups that can hold rows in ``key_range``, in order, without touching the others."""
    if table.group_of is None or key_range.everything:
        return table.group_ids
    group_of = table.group_of
    if key_range.values is not None:
        groups = sorted({group_of(int(v)) for v in key_range.values if _integral(v)})
        return [g for g in groups if table.has_group(g)]
    start, stop = 0, len(table.group_ids)
    if key_range.low is not None and _integral(key_range.low):
        start = bisect.bisect_left(table.group_ids, group_of(int(key_range.low)))
    if key_range.high is not None and _integral(key_range.high):
        stop = bisect.bisect_right(table.group_ids, group_of(int(key_range.high)))
    return itertools.islice(table.group_ids, start, stop)


def _integral(value: Any) -> bool:
    return isinstance(value, int | Decimal) and value == int(value)


@dataclass(frozen=True)
class OrderBy:
    column: str
    descending: bool


def parse_order_by(schema: TableSchema, entries: Any) -> list[OrderBy]:
    if entries in (None, []):
        return []
    if not isinstance(entries, list):
        raise QueryError("orderBy must be a list of {column, direction}")
    order = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise QueryError("orderBy entries must be objects with column and direction")
        table_name, _, alias = str(entry.get("column", "")).partition(".")
        if table_name.upper() != schema.name or alias.upper() not in schema.columns:
            raise QueryError(f"orderBy column {entry.get('column')!r} is not a column of {schema.name}")
        direction = str(entry.get("direction", "ASC")).upper()
        if direction not in ("ASC", "DESC"):
            raise QueryError(f"orderBy direction must be ASC or DESC, got {direction!r}")
        order.append(OrderBy(alias.upper(), direction == "DESC"))
    return order


def _only_after(r: Range, day: int) -> bool:
    """Whether every value in ``r`` is later than ``day``."""
    if r.everything:
        return False
    if r.values is not None:
        return bool(r.values) and min(r.values) > day
    return r.low is not None and (r.low > day or (r.low == day and r.low_open))


def select(
    table: VirtualTable, compiled: CompiledQuery, order: list[OrderBy] | None = None, *, seeded_until: int = 0
) -> Iterator[Row]:
    """Matching rows as a lazy iterator, in primary-key order unless ``order`` asks otherwise.

    No generated row is stamped after ``seeded_until`` (Julian), so a query that only wants rows
    changed later ("changed since" polls) reads the edited groups alone."""
    groups: Iterable[Any] = candidate_groups(table, compiled.key_range)
    indexed = table.index(table, compiled) if table.index is not None else None
    if indexed is not None:
        allowed = set(indexed)
        groups = [group for group in groups if group in allowed]
    if seeded_until and any(
        _only_after(compiled.column_range(column), seeded_until) for column in table.seeded_dates
    ):
        groups = [group for group in groups if group in table.overrides]
    rows: Iterator[Row] = table.scan(groups)
    if compiled.predicate is not None:
        rows = filter(compiled.predicate, rows)
    key = table.schema.primary_key
    natural = all(not o.descending for o in order or []) and [o.column for o in order or []] == list(
        key[: len(order or [])]
    )
    if natural:
        return rows
    materialized = list(rows)
    for entry in reversed(order or []):
        materialized.sort(key=_sort_key(entry.column), reverse=entry.descending)
    return iter(materialized)


def _sort_key(column: str) -> Callable[[Row], Any]:
    def key(row: Row) -> Any:
        return _sort_value(row[column])

    return key


@dataclass
class Cursor:
    """An open data-service result set (the state behind a ``next`` link)."""

    stack_id: int
    state_id: int
    rid: str
    table: str
    columns: list[str]
    rows: Iterator[Row]
    page_size: int | None
    grid_id: int
    last_used: float
    pending: list[Row] = field(default_factory=list)

    def take(self, page_size: int | None) -> tuple[list[Row], bool]:
        """The next page and whether more rows follow (one row of look-ahead decides)."""
        limit = page_size
        page = self.pending
        self.pending = []
        if limit is None:
            page.extend(self.rows)
            return page, False
        page.extend(itertools.islice(self.rows, limit + 1 - len(page)))
        if len(page) > limit:
            self.pending = page[limit:]
            return page[:limit], True
        return page, False
