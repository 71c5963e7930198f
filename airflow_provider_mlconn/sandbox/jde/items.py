"""Item master (F4101, P4101) and base prices (F4106, P4106) as a person or an orchestration keeps them.

A base price row holds a price per unit (UPRC, 4 implied decimals) for an item, a currency and a
unit of measure, for all branches (MCU blank) or one, from EFTJ to EXDJ. A new price does not
overwrite the old one: P4106 ends the row in effect the day before and adds a row from that day on.
"""

from __future__ import annotations

from datetime import timedelta

from airflow_provider_mlconn.sandbox.jde.calendar import to_julian
from airflow_provider_mlconn.sandbox.jde.inputs import BusinessError, Context, to_date
from airflow_provider_mlconn.sandbox.jde.schema import TABLES
from airflow_provider_mlconn.sandbox.jde.seed import OPEN_ENDED, Row, right_justify
from airflow_provider_mlconn.sandbox.jde.store import Store

STOCKING_TYPES = {"S", "N", "O", "P", "M", "K"}
UNITS_OF_MEASURE = {"EA", "BX", "CS", "PL", "KG", "FT", "LB", "DZ", "PR"}
GL_CLASSES = {"IN20", "IN30", "IN40", "IN50"}
PRICE_DECIMALS = 4  # F4106.UPRC is stored with 4 implied decimals


def item_index(store: Store) -> dict[str, int]:
    """2nd item number (LITM) -> short item number (ITM); built on first use, kept current."""
    if store.item_numbers is None:
        table = store.table("F4101")
        store.item_numbers = {row["LITM"].strip(): row["ITM"] for row in table.scan(table.group_ids)}
    return store.item_numbers


def check_codes(changes: dict[str, str], names: dict[str, str]) -> None:
    """Refuse stocking types, units of measure and G/L classes not in their UDC tables; ``names``
    maps the column to the input that carried it."""
    checks = (
        ("STKT", STOCKING_TYPES, "5522", "Stocking Type Invalid", "41/I"),
        ("UOM1", UNITS_OF_MEASURE, "5523", "Unit of Measure Invalid", "00/UM"),
        ("GLPT", GL_CLASSES, "5524", "G/L Class Invalid", "41/9"),
    )
    for alias, allowed, code, title, udc in checks:
        if alias in changes:
            changes[alias] = changes[alias].upper()
            if changes[alias] not in allowed:
                raise BusinessError(code, title, names[alias], f"{changes[alias]!r} is not in UDC {udc}")


def add_item(store: Store, context: Context, item_number: str, changes: dict[str, str]) -> Row:
    """A new F4101 row with the next short item number."""
    short = store.next_item_number
    store.next_item_number += 3
    row = TABLES["F4101"].blank()
    row.update(
        {
            "ITM": short,
            "LITM": item_number,
            "AITM": "",
            "DSC1": changes.get("DSC1", ""),
            "DSC2": changes.get("DSC2", ""),
            "SRTX": changes.get("SRTX", changes.get("DSC1", "").upper()[:30]),
            "STKT": changes.get("STKT", "S"),
            "GLPT": changes.get("GLPT", "IN30").ljust(4),
            "UOM1": changes.get("UOM1", "EA"),
            "SRP1": changes.get("SRP1", "").ljust(3),
            "PRP1": "   ",
            "LNTY": "S ",
        }
    )
    store.table("F4101").replace_group(short, [context.stamp("F4101", row, "P4101")])
    item_index(store)[item_number] = short
    return row


def set_base_price(
    store: Store,
    context: Context,
    *,
    item: Row,
    price: int,
    currency: str,
    unit_of_measure: str,
    business_unit: str,
    effective: int,
) -> list[Row]:
    """Give ``item`` a base price from ``effective`` on (P4106); return the rows written."""
    table = store.table("F4106")
    itm = item["ITM"]
    rows = [dict(r) for r in table.rows_of(itm)] if table.has_group(itm) else []
    mcu = right_justify(business_unit)
    same = [
        r
        for r in rows
        if r["MCU"].strip() == business_unit.strip() and r["CRCD"] == currency and r["UOM"] == unit_of_measure
    ]
    written: list[Row] = []
    existing = next((r for r in same if r["EFTJ"] == effective), None)
    if existing is not None:  # the same start date: the price is corrected in place
        existing["UPRC"] = price
        written.append(context.stamp("F4106", existing, "P4106"))
    else:
        in_effect = next((r for r in same if r["EFTJ"] < effective <= r["EXDJ"]), None)
        later = [r["EFTJ"] for r in same if r["EFTJ"] > effective]
        until = to_julian(to_date(min(later)) - timedelta(days=1)) if later else to_julian(OPEN_ENDED)
        if in_effect is not None:
            until = in_effect["EXDJ"]
            in_effect["EXDJ"] = to_julian(to_date(effective) - timedelta(days=1))
            written.append(context.stamp("F4106", in_effect, "P4106"))
        row = TABLES["F4106"].blank()
        row.update(
            {
                "ITM": itm, "LITM": item["LITM"], "AITM": item["AITM"], "MCU": mcu, "CRCD": currency,
                "UOM": unit_of_measure, "EFTJ": effective, "EXDJ": until, "UPRC": price,
            }
        )  # fmt: skip
        row.update(LOCN="", LOTN="")
        written.append(context.stamp("F4106", row, "P4106"))
        rows.append(row)
    table.replace_group(itm, rows)
    return written


def price_in_effect(
    store: Store, itm: int, *, currency: str, unit_of_measure: str, day: int, business_unit: str = ""
) -> Row | None:
    """The base price row in effect on ``day``: the branch's own, else the all-branches row."""
    table = store.table("F4106")
    rows = table.rows_of(itm) if table.has_group(itm) else []
    for unit in dict.fromkeys((business_unit.strip(), "")):
        for row in rows:
            if (
                row["MCU"].strip() == unit
                and (row["CRCD"], row["UOM"]) == (currency, unit_of_measure)
                and row["EFTJ"] <= day <= row["EXDJ"]
            ):
                return row
    return None
