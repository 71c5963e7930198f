"""Reference data, pure: JDE accounts and business units -> HubSpot property options; JDE items <->
HubSpot products.

- An account becomes an option of the line-item property ``jde_gl_account``: value
  ``BU.Object[.Subsidiary]`` (JDE's own account-number form, business unit without its padding),
  label ``"M30.4110 - Sales Revenue"``. A business unit becomes an option of ``jde_business_unit``:
  value the MCU, label ``"M30 - Distribution Center"``. An account that may not be posted to
  (F0901.PEC not blank) is an option all the same, hidden: line items that carry it keep a valid
  value, and nobody picks it again.
- An item (F4101, with its base price from F4106) becomes a product's properties; a product becomes
  the inputs of the item orchestration. Which side owns which field is a setting (``FieldOwners``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_provider_mlconn.jde.models import AccountRow, BasePriceRow, BusinessUnitRow, ItemRow
from airflow_provider_mlconn.rejection import Rejection

#: HubSpot's limits on an enumeration property [doc, KB "Property field types", 2023]:
#: 5,000 options, 3,000 characters per option (label + value + description).
MAX_OPTIONS = 5000
MAX_OPTION_CHARACTERS = 3000


class OptionLimitExceeded(Exception):
    """More options than HubSpot keeps on one property: a setting must narrow the set. Not a
    ``ValueError`` on purpose: the run fails (a truncated list would silently drop accounts)."""


# -- accounts and business units -----------------------------------------------------------------


class AccountFilter(BaseModel):
    """Which JDE accounts become options: object-account ranges and companies sales may post to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Inclusive (low, high) object-account ranges, compared as JDE stores OBJ (text).
    object_ranges: tuple[tuple[str, str], ...] = (("4000", "4999"),)
    #: Companies (F0901.CO / F0006.CO); empty: every company.
    companies: tuple[str, ...] = ()

    @field_validator("companies")
    @classmethod
    def _padded(cls, companies: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(company.strip().zfill(5) for company in companies)

    def covers_account(self, account: AccountRow) -> bool:
        objects = account.object_account.strip()
        in_range = any(low <= objects <= high for low, high in self.object_ranges)
        return in_range and self.covers_company(account.company)

    def covers_company(self, company: str) -> bool:
        return not self.companies or company.strip().zfill(5) in self.companies


def account_value(account: AccountRow) -> str:
    """``M30.4110`` or ``M30.4110.WEB``: JDE's BU.Object.Subsidiary, without blank padding."""
    parts = [account.business_unit.strip(), account.object_account.strip()]
    if account.subsidiary.strip():
        parts.append(account.subsidiary.strip())
    return ".".join(parts)


def is_postable(account: AccountRow) -> bool:
    """F0901.PEC blank: the account takes postings (N non-posting, I inactive, ... do not)."""
    return not account.posting_edit.strip()


def account_options(accounts: Iterable[AccountRow], account_filter: AccountFilter) -> list[dict[str, Any]]:
    """The options of ``jde_gl_account`` for the accounts the filter covers, in account order;
    those that cannot be posted to are hidden. OptionLimitExceeded past HubSpot's limit."""
    chosen = sorted(
        (a for a in accounts if account_filter.covers_account(a)),
        key=lambda a: (a.business_unit.strip(), a.object_account.strip(), a.subsidiary.strip()),
    )
    options = [
        _option(
            account_value(a),
            f"{account_value(a)} - {a.description.strip()}" if a.description.strip() else account_value(a),
            hidden=not is_postable(a),
            order=index,
        )
        for index, a in enumerate(chosen)
    ]
    return _within_limits(
        options,
        what="jde_gl_account",
        narrow="the object-account ranges ('object_ranges') or the companies ('companies')",
    )


def business_unit_options(
    units: Iterable[BusinessUnitRow], account_filter: AccountFilter
) -> list[dict[str, Any]]:
    """The options of ``jde_business_unit``: every business unit of the covered companies."""
    chosen = sorted(
        (u for u in units if account_filter.covers_company(u.company)), key=lambda u: u.business_unit.strip()
    )
    options = [
        _option(
            u.business_unit.strip(),
            f"{u.business_unit.strip()} - {u.description.strip()}"
            if u.description.strip()
            else u.business_unit.strip(),
            hidden=False,
            order=index,
        )
        for index, u in enumerate(chosen)
    ]
    return _within_limits(options, what="jde_business_unit", narrow="the companies ('companies')")


def merge_options(
    wanted: Sequence[Mapping[str, Any]], existing: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The options to send: what JDE has now, then every option HubSpot has that JDE no longer
    lists, kept hidden (a line item may carry it; a PATCH replaces the whole list)."""
    values = {str(option["value"]) for option in wanted}
    merged = [dict(option) for option in wanted]
    for option in existing:
        if str(option.get("value")) not in values:
            merged.append(
                _option(
                    str(option.get("value")),
                    str(option.get("label") or option.get("value")),
                    hidden=True,
                    order=len(merged),
                )
            )
    return merged


def same_options(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]]) -> bool:
    """Equal as HubSpot shows them: values with their labels and hidden flags, whatever the order."""

    def shown(options: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, bool]]:
        return {str(o.get("value")): (str(o.get("label")), bool(o.get("hidden"))) for o in options}

    return shown(left) == shown(right)


def _option(value: str, label: str, *, hidden: bool, order: int) -> dict[str, Any]:
    return {"label": label, "value": value, "hidden": hidden, "displayOrder": order, "description": ""}


def _within_limits(options: list[dict[str, Any]], *, what: str, narrow: str) -> list[dict[str, Any]]:
    if len(options) > MAX_OPTIONS:
        raise OptionLimitExceeded(
            f"{what}: {len(options):,} JDE values pass the filter, HubSpot keeps at most {MAX_OPTIONS:,} "
            f"options per property. Narrow {narrow} in the Variable mlconn_gl_accounts; nothing was sent "
            "(a cut list would drop accounts without a word)."
        )
    for option in options:
        size = len(option["label"]) + len(option["value"]) + len(option["description"])
        if size > MAX_OPTION_CHARACTERS:
            raise OptionLimitExceeded(
                f"{what}: option {option['value']!r} is {size} characters, HubSpot allows "
                f"{MAX_OPTION_CHARACTERS}"
            )
    return options


# -- items and products -----------------------------------------------------------------------------

#: Product fields the sync maps, with the JDE field behind each (for settings and messages).
PRODUCT_FIELDS = {
    "name": "F4101.DSC1",
    "description": "F4101.DSC2",
    "hs_sku": "F4101.LITM",
    "price": "F4106.UPRC",
    "jde_stocking_type": "F4101.STKT",
    "jde_unit_of_measure": "F4101.UOM1",
    "jde_gl_class": "F4101.GLPT",
}
#: Fields HubSpot may own: they travel HubSpot -> JDE through the item orchestration.
HUBSPOT_OWNABLE = ("name", "description")
#: Item orchestration input for each field HubSpot may own, with JDE's length.
_ITEM_INPUTS = {"name": ("description", 30), "description": ("description_2", 30)}


class FieldOwners(BaseModel):
    """Which product fields HubSpot owns (default: none, JDE owns every field it sends)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hubspot: tuple[str, ...] = ()

    @field_validator("hubspot")
    @classmethod
    def _ownable(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [name for name in fields if name not in HUBSPOT_OWNABLE]
        if wrong:
            raise ValueError(
                f"HubSpot cannot own {wrong}: only {list(HUBSPOT_OWNABLE)} can travel to JDE (the item "
                "number, price, stocking type, unit of measure and G/L class are JDE's)"
            )
        return fields

    def jde_owned(self) -> tuple[str, ...]:
        return tuple(name for name in PRODUCT_FIELDS if name not in self.hubspot)


class ItemSnapshot(BaseModel):
    """What JDE holds of one item: its F4101 row and its F4106 base prices."""

    model_config = ConfigDict(frozen=True)

    item: ItemRow
    prices: list[BasePriceRow] = Field(default_factory=list)


def base_price(prices: Iterable[BasePriceRow], *, currency: str, as_of: date) -> Decimal | None:
    """The item's base price in effect on ``as_of`` in ``currency``: all branches (MCU blank), no
    customer or group, the latest effective date wins. None when JDE has none."""
    candidates = [
        p
        for p in prices
        if p.in_effect(as_of)
        and p.currency.strip() == currency
        and not p.business_unit.strip()
        and p.address_number == 0
        and p.item_price_group == 0
        and p.customer_price_group == 0
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.effective_date or date.min).unit_price


def _price_text(price: Decimal) -> str:
    """HubSpot stores numbers as text without trailing zeros (``12.50`` -> ``12.5``)."""
    text = format(price.normalize(), "f")
    return text


def product_properties(
    snapshot: ItemSnapshot, *, owners: FieldOwners, currency: str, as_of: date
) -> dict[str, Any] | Rejection:
    """A JDE item -> the product properties the sync writes (JDE-owned fields and the keys).

    The price is sent only when JDE has a base price in effect (else HubSpot's stays). The
    fingerprint (``jde_sync_fingerprint``) lets the HubSpot -> JDE direction tell a person's edit of
    a JDE-owned field from our own write.
    """
    item = snapshot.item
    number = item.item_number.strip()
    if not number:
        return Rejection(
            f"item {item.short_item_number}: F4101.LITM (2nd item number) is blank; HubSpot keys "
            "products on it"
        )
    name = item.description.strip()
    if not name:
        return Rejection(f"item {number}: F4101.DSC1 (description) is blank; HubSpot needs a product name")
    values: dict[str, str] = {
        "name": name,
        "description": item.description_2.strip(),
        "hs_sku": number,
        "jde_stocking_type": item.stocking_type.strip(),
        "jde_unit_of_measure": item.unit_of_measure.strip(),
        "jde_gl_class": item.gl_class.strip(),
    }
    price = base_price(snapshot.prices, currency=currency, as_of=as_of)
    if price is not None:
        values["price"] = _price_text(price)
    owned = {name: value for name, value in values.items() if name in owners.jde_owned()}
    return {
        "properties": {
            **owned,
            "jde_item_number": number,
            "jde_short_item_number": str(item.short_item_number),
            "jde_sync_status": "synced",
            "jde_sync_message": "",
            "jde_sync_fingerprint": fingerprint(owned),
        }
    }


def fingerprint(values: Mapping[str, Any]) -> str:
    """A short, stable digest per JDE-owned value we wrote, with the field's name
    (``name=1a2b3c4d;price=5e6f7a8b``), so the HubSpot -> JDE direction can tell which of them a
    person changed since without keeping the values themselves. A field we did not write (a price
    JDE lacks) is not part of it."""
    return ";".join(f"{name}={_short_hash(values[name])}" for name in sorted(values))


def _short_hash(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:8]


def product_edits(properties: Mapping[str, Any]) -> dict[str, str]:
    """The JDE-owned fields of a product the sync wrote that a person changed in HubSpot since
    (field -> what HubSpot holds now); empty when none did, or when the sync never wrote it."""
    written = str(properties.get("jde_sync_fingerprint") or "")
    changed: dict[str, str] = {}
    for part in filter(None, written.split(";")):
        name, _, digest = part.partition("=")
        now = str(properties.get(name) or "")
        if _short_hash(now) != digest:
            changed[name] = now
    return changed


class ItemDefaults(BaseModel):
    """What a product created in HubSpot becomes in JDE where HubSpot says nothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stocking_type: str = Field("S", min_length=1, max_length=1)
    unit_of_measure: str = Field("EA", min_length=1, max_length=2)
    gl_class: str = Field("IN30", max_length=4)


def new_item_number(properties: Mapping[str, Any], product_id: str) -> str:
    """The 2nd item number (LITM, 25) of a product created in HubSpot: its SKU when it has one that
    fits, else ``HS`` + its HubSpot id."""
    sku = str(properties.get("hs_sku") or "").strip().upper()
    if sku and len(sku) <= 25 and sku.isprintable():
        return sku
    return f"HS{product_id}"[:25]


def new_item_inputs(
    properties: Mapping[str, Any], *, item_number: str, defaults: ItemDefaults
) -> dict[str, Any] | Rejection:
    """A product created in HubSpot -> the item orchestration's inputs (names cut to JDE's 30)."""
    name = str(properties.get("name") or "").strip()
    if not name:
        return Rejection("the product has no name; JDE needs a description (F4101.DSC1)")
    return {
        "item_number": item_number,
        "description": name[:30],
        "description_2": str(properties.get("description") or "").strip()[:30] or None,
        "search_text": item_number[:30],
        "stocking_type": defaults.stocking_type,
        "unit_of_measure": defaults.unit_of_measure,
        "gl_class": defaults.gl_class,
    }


def hubspot_owned_inputs(properties: Mapping[str, Any], owners: FieldOwners) -> dict[str, Any]:
    """The item orchestration inputs for the fields HubSpot owns (name -> Description...)."""
    inputs: dict[str, Any] = {}
    for field_name in owners.hubspot:
        input_name, size = _ITEM_INPUTS[field_name]
        inputs[input_name] = str(properties.get(field_name) or "").strip()[:size]
    return inputs


def item_row_after_write(inputs: Mapping[str, Any], short_item_number: int) -> dict[str, Any]:
    """The F4101 row JDE holds after the item orchestration wrote ``inputs`` to a new item (what the
    JDE -> HubSpot direction will read back)."""
    return {
        "ITM": short_item_number,
        "LITM": inputs["item_number"],
        "DSC1": inputs.get("description") or "",
        "DSC2": inputs.get("description_2") or "",
        "SRTX": inputs.get("search_text") or "",
        "STKT": inputs.get("stocking_type") or "",
        "UOM1": inputs.get("unit_of_measure") or "",
        "GLPT": inputs.get("gl_class") or "",
    }
