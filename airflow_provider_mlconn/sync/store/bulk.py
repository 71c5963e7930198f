"""Many rows in one statement: plain tuples through the driver's ``executemany``.

SQLAlchemy Core spends 6-10 µs of Python on every row of an ``executemany`` (a parameter dict per
row, bind processing, compiled-parameter bookkeeping), and the store writes several rows per record
and step (the record, its event, its id map entry). The hot writes come here instead: one SQL text
per call built from the table's own columns, values converted once per distinct value by the
column type's own bind processor (the store's UTC datetimes), then handed to the driver as tuples.
PostgreSQL engines run ``executemany`` as batched statements (psycopg2 ``execute_batch``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.errors import StoreConfigurationError

Row = tuple[Any, ...]


def placeholder(connection: Connection) -> str:
    """The driver's positional parameter marker."""
    style = connection.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise StoreConfigurationError(f"the store's bulk writes do not support the {style!r} parameter style")


def insert_rows(
    connection: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    bound: bool = False,
) -> None:
    """``INSERT INTO table (columns) VALUES (...)`` once per row of ``rows`` (tuples in column order).

    ``bound``: every value is in the driver's form already (times through ``bound_value``), so the
    rows go to the driver as they are."""
    if not rows:
        return
    marker = placeholder(connection)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    connection.exec_driver_sql(
        sql, rows if bound else _driver_rows(connection, [table.c[name] for name in columns], rows)
    )


def bound_value(connection: Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` in the driver's form for ``column``: what the column type's bind processor makes of
    it (a step's one time stamp, converted once for all its rows)."""
    bind = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    return value if bind is None or value is None else bind(value)


def upsert_rows(
    connection: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    conflict: Sequence[str],
    update: Sequence[str],
    only_if: str = "",
    bound: bool = False,
) -> None:
    """``INSERT ... ON CONFLICT (conflict) DO UPDATE SET update = excluded.update [WHERE only_if]``
    once per row (SQLite and PostgreSQL spell it alike); ``only_if`` may compare the table's
    current row with ``excluded``."""
    if not rows:
        return
    marker = placeholder(connection)
    assignments = ", ".join(f"{name} = excluded.{name}" for name in update)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {assignments}"
        + (f" WHERE {only_if}" if only_if else "")
    )
    connection.exec_driver_sql(
        sql, rows if bound else _driver_rows(connection, [table.c[name] for name in columns], rows)
    )


def update_rows(
    connection: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    key: str = "id",
    also: str | None = None,
    cleared: Sequence[str] = (),
    bound: bool = False,
) -> int:
    """``UPDATE table SET columns, cleared = NULL WHERE key = ? [AND also = ?]`` once per row: each
    row holds the columns' values, then the key (then ``also``'s value). Returns the rows changed,
    where the driver counts them (``dialect.supports_sane_multi_rowcount``). ``bound`` as for
    ``insert_rows``."""
    if not rows:
        return 0
    marker = placeholder(connection)
    assignments = ", ".join(
        [*(f"{name} = {marker}" for name in columns), *(f"{name} = NULL" for name in cleared)]
    )
    condition = f"{key} = {marker}" + (f" AND {also} = {marker}" if also else "")
    sql = f"UPDATE {table.name} SET {assignments} WHERE {condition}"
    types = [table.c[name] for name in (*columns, key, *([also] if also else []))]
    result = connection.exec_driver_sql(sql, rows if bound else _driver_rows(connection, types, rows))
    return int(result.rowcount)


def _driver_rows(connection: Connection, columns: Sequence[sa.Column[Any]], rows: Sequence[Row]) -> list[Row]:
    dialect = connection.dialect
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, column in enumerate(columns):
        # The dialect's own form of the type (SQLite keeps datetimes as text in SQLAlchemy's format).
        bind = column.type.dialect_impl(dialect).bind_processor(dialect)
        if bind is not None:
            processors.append((index, bind))
    if not processors:
        return list(rows)
    # A step stamps every row with the same time: convert each distinct value once.
    converted: dict[tuple[int, Any], Any] = {}
    result: list[Row] = []
    for row in rows:
        values = list(row)
        for index, convert in processors:
            value = values[index]
            if value is None:
                continue
            cache_key = (index, value)
            found = converted.get(cache_key)
            if found is None:
                found = converted[cache_key] = convert(value)
            values[index] = found
        result.append(tuple(values))
    return result
