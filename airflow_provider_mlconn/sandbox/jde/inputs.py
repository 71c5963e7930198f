"""What every write shares: the business error, who writes and when, and the input checks.

Orchestrations read Generic (flat JSON) inputs and refuse what the underlying JDE application would
refuse, with ``BusinessError``; the ``/_sandbox/`` edits reuse the same checks and writers through a
``Context`` of their own (a person's user id, the SANDBOX work station).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_mlconn.sandbox.jde.calendar import from_julian, hhmmss, parse_user_date, to_julian
from airflow_provider_mlconn.sandbox.jde.schema import TABLES
from airflow_provider_mlconn.sandbox.jde.seed import COMPANIES, Row
from airflow_provider_mlconn.sandbox.jde.store import Store

CURRENCY_DECIMALS = {"USD": 2, "EUR": 2, "CAD": 2, "GBP": 2, "PLN": 2, "NOK": 2, "BGN": 2, "CNY": 2, "JPY": 0}


class BusinessError(Exception):
    """A JDE business rule refused the input: ``code``/``title`` as JDE names the error, ``field`` the
    orchestration input it concerns."""

    def __init__(self, code: str, title: str, field: str, text: str) -> None:
        super().__init__(f"{field}: {text}")
        self.code = code
        self.title = title
        self.field = field
        self.text = text


@dataclass(frozen=True)
class Context:
    """Who writes, when, and how the server is configured for this call."""

    username: str
    device: str
    simple_date_format: str
    now: datetime  # server local time
    duplicate_check: bool = True  # the administrator's duplicate reference check
    on_stamp: Callable[[str, Row], None] | None = None  # told of every row written

    def stamp(self, table: str, row: Row, program: str) -> Row:
        """Audit columns as the JDE program sets them: user, program, work station, date and time."""
        row.update(
            {
                "USER": self.username[:10],
                "PID": program,
                "UPMJ": to_julian(self.now.date()),
                "JOBN": (self.device or "AIS")[:10],
                TABLES[table].time_column: hhmmss(self.now),
            }
        )
        if self.on_stamp is not None:
            self.on_stamp(table, row)
        return row

    @property
    def today(self) -> int:
        return to_julian(self.now.date())


@contextmanager
def within(prefix: str) -> Iterator[None]:
    """Errors raised inside name their field under ``prefix`` (``PayItems[0].GrossAmount``)."""
    try:
        yield
    except BusinessError as error:
        raise BusinessError(error.code, error.title, f"{prefix}.{error.field}", error.text) from None


def text(inputs: dict[str, Any], field: str, size: int, *, required: bool = False, default: str = "") -> str:
    value = inputs.get(field)
    if value is None or str(value).strip() == "":
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "a value is required")
        return default
    result = str(value).strip()
    if len(result) > size:
        raise BusinessError("5521", "Value Too Long", field, f"{len(result)} characters; at most {size} fit")
    return result


def number(inputs: dict[str, Any], field: str, *, required: bool = True) -> int | None:
    value = inputs.get(field)
    if value is None or str(value).strip() == "":
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "a value is required")
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise BusinessError("0002", "Invalid Number", field, f"{value!r} is not a whole number") from None


def amount(inputs: dict[str, Any], field: str, currency: str, *, required: bool = True) -> int | None:
    """An amount as integer hundredths (the database's implied decimals)."""
    value = inputs.get(field)
    if value is None or str(value).strip() == "":
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "a value is required")
        return None
    if isinstance(value, float):
        raise BusinessError("0002", "Invalid Amount", field, "send amounts as decimal strings, not floats")
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        raise BusinessError("0002", "Invalid Amount", field, f"{value!r} is not an amount") from None
    decimals = CURRENCY_DECIMALS.get(currency, 2)
    if parsed != parsed.quantize(Decimal(1).scaleb(-decimals)):
        raise BusinessError(
            "5507", "Too Many Decimals", field, f"{value} has more than {decimals} decimals for {currency}"
        )
    return int(parsed.scaleb(2))


def positive_amount(inputs: dict[str, Any], field: str, currency: str) -> int:
    value = amount(inputs, field, currency)
    assert value is not None
    if value == 0:
        raise BusinessError("5509", "Amount Required", field, "must not be zero")
    if value < 0:
        raise BusinessError("5510", "Amount Must Be Positive", field, f"{money(value)} is negative")
    return value


def julian(inputs: dict[str, Any], field: str, context: Context, *, required: bool = True) -> int | None:
    value = inputs.get(field)
    if value is None or str(value).strip() == "":
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "a value is required")
        return None
    try:
        return parse_user_date(str(value), context.simple_date_format)
    except ValueError:
        raise BusinessError(
            "0003",
            "Invalid Date",
            field,
            f"{value!r} is not a date in the format {context.simple_date_format}",
        ) from None


def entries(inputs: dict[str, Any], field: str, *, required: bool) -> list[dict[str, Any]]:
    value = inputs.get(field)
    if value in (None, []):
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "at least one entry is required")
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BusinessError("0002", "Invalid Input", field, "must be a list of objects")
    return value


def record(inputs: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = inputs.get(field)
    if value in (None, {}, ""):
        return None
    if not isinstance(value, dict):
        raise BusinessError("0002", "Invalid Input", field, "must be an object")
    return value


def currency_code(inputs: dict[str, Any], default: str) -> str:
    code = text(inputs, "CurrencyCode", 3, default=default).upper()
    if code not in CURRENCY_DECIMALS:
        raise BusinessError("5506", "Currency Code Invalid", "CurrencyCode", f"{code} is not a currency code")
    return code


def money(hundredths: int) -> str:
    return str(Decimal(hundredths).scaleb(-2).quantize(Decimal("0.01")))


def to_date(day: int) -> date:
    result = from_julian(day)
    assert result is not None
    return result


def address_book_row(store: Store, an8: int) -> Row | None:
    book = store.table("F0101")
    rows = book.rows_of(an8) if book.has_group(an8) else []
    return rows[0] if rows else None


def company_code(inputs: dict[str, Any], field: str = "Company") -> str:
    company = text(inputs, field, 5, required=True).zfill(5)
    if company not in COMPANIES:
        raise BusinessError("0010", "Company Invalid", field, f"company {company} does not exist")
    return company


def customer(
    store: Store, inputs: dict[str, Any], company_field: str = "Company"
) -> tuple[int, str, Row, Row]:
    """(AN8, company, F0101 row, F03012 row) of the input's customer, as P03B11 checks it."""
    an8 = number(inputs, "CustomerNumber")
    assert an8 is not None
    book = address_book_row(store, an8)
    if book is None:
        raise BusinessError(
            "0037", "Address Number Invalid", "CustomerNumber", f"{an8} is not in the Address Book"
        )
    if book["AT1"].strip() != "C":
        raise BusinessError(
            "0037",
            "Address Number Invalid",
            "CustomerNumber",
            f"{an8} has search type {book['AT1'].strip()!r}, not a customer (C)",
        )
    company = company_code(inputs, company_field)
    master = [r for r in store.table("F03012").rows_of(an8) if r["CO"] == company]
    if not master:
        raise BusinessError(
            "5501",
            "Customer Not Set Up",
            "CustomerNumber",
            f"{an8} has no customer master (F03012) for company {company}",
        )
    return an8, company, book, master[0]


def supplier(store: Store, inputs: dict[str, Any]) -> tuple[int, Row]:
    """(AN8, F0101 row) of the input's supplier (search type V), as P0411 checks it."""
    an8 = number(inputs, "SupplierNumber")
    assert an8 is not None
    book = address_book_row(store, an8)
    if book is None:
        raise BusinessError(
            "0037", "Address Number Invalid", "SupplierNumber", f"{an8} is not in the Address Book"
        )
    if book["AT1"].strip() != "V":
        raise BusinessError(
            "0037",
            "Address Number Invalid",
            "SupplierNumber",
            f"{an8} has search type {book['AT1'].strip()!r}, not a supplier (V)",
        )
    return an8, book


def account(store: Store, company: str, number_text: str, field: str) -> Row:
    """A postable account of ``company`` from ``BU.Object[.Subsidiary]``."""
    parts = number_text.strip().split(".")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise BusinessError(
            "0025", "Account Invalid", field, f"{number_text!r} is not BU.Object or BU.Object.Subsidiary"
        )
    unit, obj, sub = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    found = store.account_for(company, unit, obj, sub)
    if found is None:
        raise BusinessError(
            "0025", "Account Invalid", field, f"{number_text} is not an account of company {company}"
        )
    if found["PEC"].strip():
        raise BusinessError(
            "0026", "Account Not Postable", field, f"{number_text} has posting edit code {found['PEC']!r}"
        )
    return found


def account_number(row: Row) -> str:
    """``BU.Object[.Subsidiary]``, how F0911.ANI spells an account."""
    number_text = f"{row['MCU'].strip()}.{row['OBJ'].strip()}"
    return number_text + (f".{row['SUB'].strip()}" if row["SUB"].strip() else "")


def distribution(
    store: Store, inputs: dict[str, Any], company: str, currency: str
) -> list[tuple[Row, int, str]]:
    """``GLDistribution`` as (account, amount, remark) lines."""
    lines = []
    for index, line in enumerate(entries(inputs, "GLDistribution", required=True)):
        with within(f"GLDistribution[{index}]"):
            found = account(store, company, text(line, "Account", 29, required=True), "Account")
            value = amount(line, "Amount", currency)
        assert value is not None
        lines.append((found, value, str(line.get("Remark") or "")[:30]))  # cut, as the grid does
    return lines
