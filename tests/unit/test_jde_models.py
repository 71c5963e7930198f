"""Typed JDE rows: wire cleaning, keys and audit stamps; models agree with the table specs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from airflow_provider_mlconn.jde.dates import JdeTimestamp
from airflow_provider_mlconn.jde.models import MODELS, AddressBookRow, AddressByDateRow, CustomerLedgerRow
from airflow_provider_mlconn.jde.tables import TABLES

pytestmark = pytest.mark.unit


def test_every_table_has_a_model_whose_aliases_are_its_columns() -> None:
    assert set(MODELS) == set(TABLES)
    for name, model in MODELS.items():
        aliases = {field.alias for field in model.model_fields.values()}
        assert aliases == set(TABLES[name].columns), name


def test_a_row_loses_blank_padding_and_its_dates_become_dates() -> None:
    row = AddressBookRow.model_validate(
        {
            "AN8": 4242,
            "ALPH": "Acme Supply   ",
            "AT1": "C  ",
            "MCU": "         M30",
            "UPMJ": "20240115",
            "UPMT": 143015,
        }
    )
    assert (row.alpha_name, row.search_type, row.business_unit) == ("Acme Supply", "C", "M30")
    assert row.updated_date == date(2024, 1, 15)
    assert row.key() == (4242,)
    assert row.updated() == JdeTimestamp(date(2024, 1, 15), 143015)
    updated = row.updated_at(ZoneInfo("America/Chicago"))
    assert updated is not None and updated.isoformat() == "2024-01-15T14:30:15-06:00"


def test_response_keys_with_the_table_prefix_are_accepted() -> None:
    row = AddressBookRow.model_validate({"F0101_AN8": 1, "F0101_ALPH": "X"})
    assert (row.address_number, row.alpha_name) == (1, "X")


def test_amounts_are_decimals_and_blank_dates_are_none() -> None:
    row = CustomerLedgerRow.model_validate(
        {
            "DOC": 1,
            "DCT": "RI",
            "KCO": "00001",
            "SFX": "001",
            "AG": Decimal("1250.10"),
            "AAP": 0.1,
            "DDJ": None,
        }
    )
    assert row.gross_amount == Decimal("1250.10")
    assert row.open_amount == Decimal("0.1")
    assert row.due_date is None
    assert row.key() == (1, "RI", "00001", "001")


def test_key_columns_are_required() -> None:
    with pytest.raises(ValidationError, match="AN8"):
        AddressBookRow.model_validate({"ALPH": "no key"})
    with pytest.raises(ValidationError):
        AddressByDateRow.model_validate({"AN8": 1, "EFTB": None})
