"""The JDE tables the sync reads and writes, as queries need them: columns (JDE alias, business name,
kind) and primary keys, derived from the row models (``jde.models``), where each table is declared.

Kinds: ``str`` (character, may come back blank-padded), ``int`` (address numbers, HHMMSS times, batch
numbers), ``decimal`` (amounts, returned by AIS with decimals applied) and ``date`` (Julian in the
database, ``yyyyMMdd`` in responses). The primary key is what the hook sorts by and resumes after
when a paging cursor is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, cast

from airflow_provider_mlconn.jde.models import MODELS, JdeRow

ColumnKind = Literal["str", "int", "decimal", "date"]


@dataclass(frozen=True)
class ColumnSpec:
    table: str
    alias: str
    name: str
    kind: ColumnKind

    @property
    def control_id(self) -> str:
        """``F0101.AN8``: how requests name the column."""
        return f"{self.table}.{self.alias}"

    @property
    def response_key(self) -> str:
        """``F0101_AN8``: how responses name it."""
        return f"{self.table}_{self.alias}"


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    primary_key: tuple[str, ...]
    columns: dict[str, ColumnSpec] = field(default_factory=dict)

    @property
    def audit_time(self) -> str:
        """The column holding the audit time beside UPMJ: UPMT, or TDAY on the tables that use it."""
        return "TDAY" if "TDAY" in self.columns else "UPMT"

    def column(self, alias: str) -> ColumnSpec:
        try:
            return self.columns[alias.upper()]
        except KeyError:
            raise ValueError(
                f"{self.name} has no column {alias!r}; known: {', '.join(self.columns)}"
            ) from None

    @property
    def key_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(self.columns[alias] for alias in self.primary_key)


def _spec(model: type[JdeRow]) -> TableSpec:
    kinds, names = model.column_kinds(), model.field_names()
    columns = {
        alias: ColumnSpec(model.table, alias, names[alias], cast(ColumnKind, kind))
        for alias, kind in kinds.items()
    }
    return TableSpec(model.table, model.table_title, model.primary_key, columns)


#: The tables the sync reads, derived from their one declaration: the row models in ``jde.models``.
TABLES: dict[str, TableSpec] = {name: _spec(model) for name, model in MODELS.items()}


def table(name: str) -> TableSpec:
    """The spec of ``name`` (``"F0101"``); ValueError naming the known tables otherwise."""
    try:
        return TABLES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown JDE table {name!r}; known: {', '.join(TABLES)}") from None


def column(control_id: str) -> ColumnSpec:
    """``"F0101.AN8"`` -> its spec; ValueError for a malformed or unknown id."""
    table_name, dot, alias = control_id.partition(".")
    if not dot or not alias:
        raise ValueError(f"{control_id!r} is not a column id; write TABLE.ALIAS, e.g. F0101.AN8")
    return table(table_name).column(alias)
