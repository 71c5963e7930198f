"""Typed rows of the JDE tables, parsed from data-service rows.

Fields carry business names with the JDE alias as their pydantic alias, so a row from the hook
(``{"AN8": 4242, "ALPH": "Acme  ", "UPMJ": "20240115", ...}``, or with ``F0101_`` prefixes) validates
directly: ``AddressBookRow.model_validate(row)``. On the way in, strings lose JDE's blank padding
(both ends: business units are right-justified), ``yyyyMMdd`` dates become ``date`` (blank -> None),
and amounts become ``Decimal``. Columns a query did not return take their defaults; key columns are
required. The models know the tables' shape only; what a value means for HubSpot is mapping's job.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from airflow_provider_mlconn.jde.dates import JdeTimestamp, parse_ais_date

Cleaner = Callable[[Any], Any] | None


def _text(value: Any) -> str:
    return str(value).strip()


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


_CLEANERS_BY_KIND: dict[str, Cleaner] = {
    "str": _text,
    "date": parse_ais_date,
    "decimal": _decimal,
    "int": None,
}


def _alias(table_name: str, key: Any) -> Any:
    prefix = f"{table_name}_"
    return key[len(prefix) :] if isinstance(key, str) and key.startswith(prefix) else key


class JdeRow(BaseModel):
    """Common behaviour of the table models: wire-value cleaning, key and audit stamp.

    A model is the one declaration of its table: its name (``table``), title, primary key and, as
    fields, its columns (the JDE alias as pydantic alias, the kind from the annotation).
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    table: ClassVar[str]
    table_title: ClassVar[str]
    primary_key: ClassVar[tuple[str, ...]]

    @classmethod
    def wire_cleaners(cls) -> dict[str, tuple[str, Cleaner]]:
        """Wire key (``AN8`` or ``F0101_AN8``) -> (alias, how its value is cleaned): worked out once
        per model, not for every value of every row (rows are validated by the hundred thousand)."""
        cached: dict[str, tuple[str, Cleaner]] | None = cls.__dict__.get("_cleaners")
        if cached is None:
            cached = {}
            for alias, kind in cls.column_kinds().items():
                entry = (alias, _CLEANERS_BY_KIND[kind])
                cached[alias] = cached[f"{cls.table}_{alias}"] = entry
            type.__setattr__(cls, "_cleaners", cached)
        return cached

    @classmethod
    def column_kinds(cls) -> dict[str, str]:
        """Alias -> kind (``str``, ``int``, ``decimal``, ``date``), from the fields' annotations."""
        cached: dict[str, str] | None = cls.__dict__.get("_kinds")
        if cached is None:
            cached = {}
            for field in cls.model_fields.values():
                annotation = field.annotation
                if annotation is Decimal:
                    kind = "decimal"
                elif annotation is int:
                    kind = "int"
                elif annotation is str:
                    kind = "str"
                elif date in getattr(annotation, "__args__", (annotation,)):
                    kind = "date"
                else:
                    raise TypeError(f"{cls.__name__}.{field.alias}: no JDE column kind for {annotation!r}")
                cached[str(field.alias)] = kind
            type.__setattr__(cls, "_kinds", cached)
        return cached

    @classmethod
    def field_names(cls) -> dict[str, str]:
        """Alias -> business name (the field's name)."""
        return {str(field.alias): name for name, field in cls.model_fields.items()}

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        cleaners = cls.wire_cleaners()
        cleaned: dict[str, Any] = {}
        for key, value in data.items():
            found = cleaners.get(key)
            if found is None:
                cleaned[_alias(cls.table, key)] = value
                continue
            alias, clean = found
            if value is None or clean is None:
                cleaned[alias] = value
            elif clean is _text and value.__class__ is str:
                cleaned[alias] = value.strip()  # most values: no function call for them
            else:
                cleaned[alias] = clean(value)
        return cleaned

    def key(self) -> tuple[Any, ...]:
        """The primary-key values, in key order."""
        names = self.field_names()
        return tuple(getattr(self, names[alias]) for alias in self.primary_key)

    def updated(self) -> JdeTimestamp | None:
        """The row's audit stamp (UPMJ/UPMT, server local time); None when UPMJ is blank."""
        day: date | None = getattr(self, "updated_date", None)
        return None if day is None else JdeTimestamp(day, int(getattr(self, "updated_time", 0) or 0))

    def updated_at(self, zone: tzinfo) -> datetime | None:
        """The audit stamp as an aware datetime, read in the server's time zone ``zone``."""
        stamp = self.updated()
        return None if stamp is None else stamp.to_datetime(zone)


class AuditedRow(JdeRow):
    """The audit stamp every JDE table carries (declared once): who changed the row, with which
    program and workstation, and when (UPMJ date, UPMT time, server local)."""

    user_id: str = Field("", alias="USER")
    program_id: str = Field("", alias="PID")
    updated_date: date | None = Field(None, alias="UPMJ")
    workstation_id: str = Field("", alias="JOBN")
    updated_time: int = Field(0, alias="UPMT")


class TimeOfDayAuditedRow(JdeRow):
    """The audit stamp of the tables that keep its time in TDAY (F4106, F42119)."""

    user_id: str = Field("", alias="USER")
    program_id: str = Field("", alias="PID")
    updated_date: date | None = Field(None, alias="UPMJ")
    workstation_id: str = Field("", alias="JOBN")
    updated_time: int = Field(0, alias="TDAY")


class AddressBookRow(AuditedRow):
    """F0101 Address Book Master: one row, keyed by AN8."""

    table: ClassVar[str] = "F0101"
    table_title: ClassVar[str] = "Address Book Master"
    primary_key: ClassVar[tuple[str, ...]] = ("AN8",)

    address_number: int = Field(alias="AN8")
    long_address_number: str = Field("", alias="ALKY")
    tax_id: str = Field("", alias="TAX")
    alpha_name: str = Field("", alias="ALPH")
    compressed_name: str = Field("", alias="DC")
    business_unit: str = Field("", alias="MCU")
    industry_class: str = Field("", alias="SIC")
    language: str = Field("", alias="LNGP")
    search_type: str = Field("", alias="AT1")
    credit_message: str = Field("", alias="CM")
    person_corporation: str = Field("", alias="TAXC")
    is_receivable: str = Field("", alias="ATR")
    is_payable: str = Field("", alias="ATP")
    is_employee: str = Field("", alias="ATE")
    category_code_01: str = Field("", alias="AC01")
    category_code_02: str = Field("", alias="AC02")
    category_code_03: str = Field("", alias="AC03")
    category_code_30: str = Field("", alias="AC30")


class CustomerMasterRow(AuditedRow):
    """F03012 Customer Master by Line of Business: one row, keyed by AN8, CO."""

    table: ClassVar[str] = "F03012"
    table_title: ClassVar[str] = "Customer Master by Line of Business"
    primary_key: ClassVar[tuple[str, ...]] = ("AN8", "CO")

    address_number: int = Field(alias="AN8")
    company: str = Field(alias="CO")
    gl_offset: str = Field("", alias="ARC")
    ar_business_unit: str = Field("", alias="MCUR")
    currency: str = Field("", alias="CRCD")
    tax_area: str = Field("", alias="TXA1")
    tax_explanation: str = Field("", alias="EXR1")
    credit_limit: Decimal = Field(Decimal(0), alias="ACL")
    hold_invoices: str = Field("", alias="HDAR")
    payment_terms: str = Field("", alias="TRAR")
    statement_to: str = Field("", alias="STTO")
    payment_instrument: str = Field("", alias="RYIN")
    credit_manager: str = Field("", alias="CMGR")
    collection_manager: str = Field("", alias="CLMG")
    order_hold_code: str = Field("", alias="HOLD")
    category_code_01: str = Field("", alias="AC01")


class WhosWhoRow(AuditedRow):
    """F0111 Address Book - Who's Who: one row, keyed by AN8, IDLN."""

    table: ClassVar[str] = "F0111"
    table_title: ClassVar[str] = "Address Book - Who's Who"
    primary_key: ClassVar[tuple[str, ...]] = ("AN8", "IDLN")

    address_number: int = Field(alias="AN8")
    line_number: int = Field(alias="IDLN")
    display_sequence: int = Field(0, alias="DSS7")
    mailing_name: str = Field("", alias="MLNM")
    title: str = Field("", alias="ATTL")
    salutation: str = Field("", alias="SLNM")
    alpha_name: str = Field("", alias="ALPH")
    compressed_name: str = Field("", alias="DC")
    given_name: str = Field("", alias="GNNM")
    middle_name: str = Field("", alias="MDNM")
    surname: str = Field("", alias="SRNM")
    contact_type: str = Field("", alias="TYC")
    nickname: str = Field("", alias="NICK")
    gender: str = Field("", alias="GEND")
    active: str = Field("", alias="ACTIN")
    remark: str = Field("", alias="REM1")


class AddressByDateRow(AuditedRow):
    """F0116 Address by Date: one row, keyed by AN8, EFTB."""

    table: ClassVar[str] = "F0116"
    table_title: ClassVar[str] = "Address by Date"
    primary_key: ClassVar[tuple[str, ...]] = ("AN8", "EFTB")

    address_number: int = Field(alias="AN8")
    effective_date: date = Field(alias="EFTB")
    line_1: str = Field("", alias="ADD1")
    line_2: str = Field("", alias="ADD2")
    line_3: str = Field("", alias="ADD3")
    line_4: str = Field("", alias="ADD4")
    postal_code: str = Field("", alias="ADDZ")
    city: str = Field("", alias="CTY1")
    county: str = Field("", alias="COUN")
    state: str = Field("", alias="ADDS")
    country: str = Field("", alias="CTR")


class PhoneRow(AuditedRow):
    """F0115 Address Book - Contact Phone Numbers: one row, keyed by AN8, IDLN, RCK7, CNLN."""

    table: ClassVar[str] = "F0115"
    table_title: ClassVar[str] = "Address Book - Contact Phone Numbers"
    primary_key: ClassVar[tuple[str, ...]] = ("AN8", "IDLN", "RCK7", "CNLN")

    address_number: int = Field(alias="AN8")
    line_number: int = Field(alias="IDLN")
    phone_line: int = Field(alias="RCK7")
    contact_line: int = Field(alias="CNLN")
    phone_type: str = Field("", alias="PHTP")
    area_code: str = Field("", alias="AR1")
    phone_number: str = Field("", alias="PH1")


class ElectronicAddressRow(AuditedRow):
    """F01151 Electronic Address: one row, keyed by AN8, IDLN, RCK7."""

    table: ClassVar[str] = "F01151"
    table_title: ClassVar[str] = "Electronic Address"
    primary_key: ClassVar[tuple[str, ...]] = ("AN8", "IDLN", "RCK7")

    address_number: int = Field(alias="AN8")
    line_number: int = Field(alias="IDLN")
    email_line: int = Field(alias="RCK7")
    address_type: str = Field("", alias="ETP")
    electronic_address: str = Field("", alias="EMAL")
    messaging_indicator: int = Field(0, alias="EHIER")
    classification: str = Field("", alias="ECLASS")


class ItemRow(AuditedRow):
    """F4101 Item Master: one row, keyed by ITM."""

    table: ClassVar[str] = "F4101"
    table_title: ClassVar[str] = "Item Master"
    primary_key: ClassVar[tuple[str, ...]] = ("ITM",)

    short_item_number: int = Field(alias="ITM")
    item_number: str = Field("", alias="LITM")
    third_item_number: str = Field("", alias="AITM")
    description: str = Field("", alias="DSC1")
    description_2: str = Field("", alias="DSC2")
    search_text: str = Field("", alias="SRTX")
    stocking_type: str = Field("", alias="STKT")
    gl_class: str = Field("", alias="GLPT")
    unit_of_measure: str = Field("", alias="UOM1")
    sales_category_1: str = Field("", alias="SRP1")
    commodity_class: str = Field("", alias="PRP1")
    line_type: str = Field("", alias="LNTY")


class AccountRow(AuditedRow):
    """F0901 Account Master: one row, keyed by AID."""

    table: ClassVar[str] = "F0901"
    table_title: ClassVar[str] = "Account Master"
    primary_key: ClassVar[tuple[str, ...]] = ("AID",)

    account_id: str = Field(alias="AID")
    company: str = Field("", alias="CO")
    business_unit: str = Field("", alias="MCU")
    object_account: str = Field("", alias="OBJ")
    subsidiary: str = Field("", alias="SUB")
    description: str = Field("", alias="DL01")
    posting_edit: str = Field("", alias="PEC")
    level_of_detail: str = Field("", alias="LDA")


class BusinessUnitRow(AuditedRow):
    """F0006 Business Unit Master: one row, keyed by MCU."""

    table: ClassVar[str] = "F0006"
    table_title: ClassVar[str] = "Business Unit Master"
    primary_key: ClassVar[tuple[str, ...]] = ("MCU",)

    business_unit: str = Field(alias="MCU")
    unit_type: str = Field("", alias="STYL")
    level_of_detail: str = Field("", alias="LDM")
    company: str = Field("", alias="CO")
    address_number: int = Field(0, alias="AN8")
    description: str = Field("", alias="DL01")


class CustomerLedgerRow(AuditedRow):
    """F03B11 Customer Ledger: one row, keyed by DOC, DCT, KCO, SFX."""

    table: ClassVar[str] = "F03B11"
    table_title: ClassVar[str] = "Customer Ledger"
    primary_key: ClassVar[tuple[str, ...]] = ("DOC", "DCT", "KCO", "SFX")

    document_number: int = Field(alias="DOC")
    document_type: str = Field(alias="DCT")
    document_company: str = Field(alias="KCO")
    pay_item: str = Field(alias="SFX")
    address_number: int = Field(0, alias="AN8")
    payor: int = Field(0, alias="PYR")
    invoice_date: date | None = Field(None, alias="DIVJ")
    gl_date: date | None = Field(None, alias="DGJ")
    due_date: date | None = Field(None, alias="DDJ")
    fiscal_year: int = Field(0, alias="FY")
    period: int = Field(0, alias="PN")
    company: str = Field("", alias="CO")
    batch_number: int = Field(0, alias="ICU")
    batch_type: str = Field("", alias="ICUT")
    batch_date: date | None = Field(None, alias="DICJ")
    posted_code: str = Field("", alias="POST")
    pay_status: str = Field("", alias="PST")
    gross_amount: Decimal = Field(Decimal(0), alias="AG")
    open_amount: Decimal = Field(Decimal(0), alias="AAP")
    taxable_amount: Decimal = Field(Decimal(0), alias="ATXA")
    tax_amount: Decimal = Field(Decimal(0), alias="STAM")
    currency_mode: str = Field("", alias="CRRM")
    currency: str = Field("", alias="CRCD")
    exchange_rate: Decimal = Field(Decimal(0), alias="CRR")
    foreign_gross_amount: Decimal = Field(Decimal(0), alias="ACR")
    foreign_open_amount: Decimal = Field(Decimal(0), alias="FAP")
    tax_area: str = Field("", alias="TXA1")
    tax_explanation: str = Field("", alias="EXR1")
    remark: str = Field("", alias="RMK")
    reference: str = Field("", alias="VR01")
    purchase_order: str = Field("", alias="PO")
    business_unit: str = Field("", alias="MCU")
    payment_terms: str = Field("", alias="PTC")
    account_id: str = Field("", alias="AID")
    void_flag: str = Field("", alias="VOD")
    void_gl_date: date | None = Field(None, alias="VDGJ")
    original_document_number: int = Field(0, alias="ODOC")
    original_document_type: str = Field("", alias="ODCT")
    original_document_company: str = Field("", alias="OKCO")
    original_pay_item: str = Field("", alias="OSFX")
    payment_id: int = Field(0, alias="PYID")
    sales_order_number: int = Field(0, alias="SDOC")
    sales_order_type: str = Field("", alias="SDCT")
    sales_order_company: str = Field("", alias="SKCO")


class ReceiptHeaderRow(AuditedRow):
    """F03B13 Receipts Header: one row, keyed by PYID."""

    table: ClassVar[str] = "F03B13"
    table_title: ClassVar[str] = "Receipts Header"
    primary_key: ClassVar[tuple[str, ...]] = ("PYID",)

    payment_id: int = Field(alias="PYID")
    receipt_number: str = Field("", alias="CKNU")
    address_number: int = Field(0, alias="AN8")
    payor: int = Field(0, alias="PYR")
    receipt_date: date | None = Field(None, alias="DMTJ")
    gl_date: date | None = Field(None, alias="DGJ")
    batch_number: int = Field(0, alias="ICU")
    batch_type: str = Field("", alias="ICUT")
    receipt_amount: Decimal = Field(Decimal(0), alias="CKAM")
    unapplied_amount: Decimal = Field(Decimal(0), alias="AAP")
    currency_mode: str = Field("", alias="CRRM")
    currency: str = Field("", alias="CRCD")
    foreign_receipt_amount: Decimal = Field(Decimal(0), alias="FCAM")
    foreign_unapplied_amount: Decimal = Field(Decimal(0), alias="FAP")
    bank_account_id: str = Field("", alias="GLBA")
    company: str = Field("", alias="CO")
    input_type: str = Field("", alias="TYIN")
    remark: str = Field("", alias="RMK")
    posted_code: str = Field("", alias="POST")
    void_gl_date: date | None = Field(None, alias="VDGJ")
    void_reason: str = Field("", alias="VRE")


class ReceiptDetailRow(AuditedRow):
    """F03B14 Receipts Detail: one row, keyed by PYID, RC5."""

    table: ClassVar[str] = "F03B14"
    table_title: ClassVar[str] = "Receipts Detail"
    primary_key: ClassVar[tuple[str, ...]] = ("PYID", "RC5")

    payment_id: int = Field(alias="PYID")
    line_number: int = Field(alias="RC5")
    document_number: int = Field(0, alias="DOC")
    document_type: str = Field("", alias="DCT")
    document_company: str = Field("", alias="KCO")
    pay_item: str = Field("", alias="SFX")
    address_number: int = Field(0, alias="AN8")
    payor: int = Field(0, alias="PYR")
    gl_date: date | None = Field(None, alias="DGJ")
    batch_number: int = Field(0, alias="ICU")
    receipt_number: str = Field("", alias="CKNU")
    amount_applied: Decimal = Field(Decimal(0), alias="PAAP")
    discount_taken: Decimal = Field(Decimal(0), alias="ADSA")
    write_off_amount: Decimal = Field(Decimal(0), alias="AWAT")
    write_off_reason: str = Field("", alias="RSCO")
    currency: str = Field("", alias="CRCD")
    remark: str = Field("", alias="RMK")
    posted_code: str = Field("", alias="POST")
    matching_type: str = Field("", alias="CTL")
    #: RC a receipt, RS a zero receipt netting a credit memo, RU unapplied cash, RO a void's reversal
    matching_document_type: str = Field("", alias="DCTM")
    void_gl_date: date | None = Field(None, alias="VDGJ")
    void_reason: str = Field("", alias="VRE")
    void_flag: str = Field("", alias="NFVD")


class AccountLedgerRow(AuditedRow):
    """F0911 Account Ledger: one row, keyed by KCO, DCT, DOC, DGJ, JELN, LT, EXTL."""

    table: ClassVar[str] = "F0911"
    table_title: ClassVar[str] = "Account Ledger"
    primary_key: ClassVar[tuple[str, ...]] = ("KCO", "DCT", "DOC", "DGJ", "JELN", "LT", "EXTL")

    document_company: str = Field(alias="KCO")
    document_type: str = Field(alias="DCT")
    document_number: int = Field(alias="DOC")
    gl_date: date = Field(alias="DGJ")
    line_number: Decimal = Field(alias="JELN")
    ledger_type: str = Field(alias="LT")
    line_extension: str = Field(alias="EXTL")
    batch_number: int = Field(0, alias="ICU")
    batch_type: str = Field("", alias="ICUT")
    company: str = Field("", alias="CO")
    account_id: str = Field("", alias="AID")
    business_unit: str = Field("", alias="MCU")
    object_account: str = Field("", alias="OBJ")
    subsidiary: str = Field("", alias="SUB")
    account_number: str = Field("", alias="ANI")
    amount: Decimal = Field(Decimal(0), alias="AA")
    currency: str = Field("", alias="CRCD")
    explanation: str = Field("", alias="EXA")
    remark: str = Field("", alias="EXR")
    posted_code: str = Field("", alias="POST")
    address_number: int = Field(0, alias="AN8")


class BasePriceRow(TimeOfDayAuditedRow):
    """F4106 Item Base Price File: one price of an item, in effect from EFTJ to EXDJ (inclusive)."""

    table: ClassVar[str] = "F4106"
    table_title: ClassVar[str] = "Item Base Price File"
    primary_key: ClassVar[tuple[str, ...]] = (
        "ITM",
        "MCU",
        "LOCN",
        "LOTN",
        "AN8",
        "IGID",
        "CGID",
        "LOTG",
        "FRMP",
        "CRCD",
        "UOM",
        "EXDJ",
        "UPMJ",
        "TDAY",
    )

    short_item_number: int = Field(alias="ITM")
    item_number: str = Field("", alias="LITM")
    business_unit: str = Field("", alias="MCU")
    location: str = Field("", alias="LOCN")
    lot: str = Field("", alias="LOTN")
    address_number: int = Field(0, alias="AN8")
    item_price_group: int = Field(0, alias="IGID")
    customer_price_group: int = Field(0, alias="CGID")
    currency: str = Field("", alias="CRCD")
    unit_of_measure: str = Field("", alias="UOM")
    effective_date: date | None = Field(None, alias="EFTJ")
    expiry_date: date | None = Field(None, alias="EXDJ")
    unit_price: Decimal = Field(Decimal(0), alias="UPRC")

    third_item_number: str = Field("", alias="AITM")
    lot_grade: str = Field("", alias="LOTG")
    from_potency: int = Field(0, alias="FRMP")

    def in_effect(self, day: date) -> bool:
        return (self.effective_date is None or self.effective_date <= day) and (
            self.expiry_date is None or day <= self.expiry_date
        )


class SalesOrderLineRow(TimeOfDayAuditedRow):
    """F42119 Sales Order History: one billed line, linked to its invoice by DOC/DCT/KCO."""

    table: ClassVar[str] = "F42119"
    table_title: ClassVar[str] = "Sales Order History File"
    primary_key: ClassVar[tuple[str, ...]] = ("DOCO", "DCTO", "KCOO", "LNID")

    order_number: int = Field(alias="DOCO")
    order_type: str = Field(alias="DCTO")
    order_company: str = Field(alias="KCOO")
    line_number: Decimal = Field(alias="LNID")
    business_unit: str = Field("", alias="MCU")
    address_number: int = Field(0, alias="AN8")
    invoice_date: date | None = Field(None, alias="IVD")
    short_item_number: int = Field(0, alias="ITM")
    item_number: str = Field("", alias="LITM")
    description: str = Field("", alias="DSC1")
    unit_of_measure: str = Field("", alias="UOM")
    quantity: Decimal = Field(Decimal(0), alias="UORG")
    unit_price: Decimal = Field(Decimal(0), alias="UPRC")
    extended_price: Decimal = Field(Decimal(0), alias="AEXP")
    currency: str = Field("", alias="CRCD")
    document_number: int = Field(0, alias="DOC")
    document_type: str = Field("", alias="DCT")
    document_company: str = Field("", alias="KCO")
    company: str = Field("", alias="CO")
    ship_to: int = Field(0, alias="SHAN")
    order_date: date | None = Field(None, alias="TRDJ")
    gl_date: date | None = Field(None, alias="DGL")
    line_type: str = Field("", alias="LNTY")
    last_status: str = Field("", alias="LTTR")
    next_status: str = Field("", alias="NXTR")
    reference: str = Field("", alias="VR01")


class VoucherRow(AuditedRow):
    """F0411 Accounts Payable Ledger: one pay item of a supplier voucher."""

    table: ClassVar[str] = "F0411"
    table_title: ClassVar[str] = "Accounts Payable Ledger"
    primary_key: ClassVar[tuple[str, ...]] = ("DOC", "DCT", "KCO", "SFX", "SFXE")

    document_number: int = Field(alias="DOC")
    document_type: str = Field(alias="DCT")
    document_company: str = Field(alias="KCO")
    pay_item: str = Field(alias="SFX")
    pay_item_extension: int = Field(0, alias="SFXE")
    address_number: int = Field(0, alias="AN8")
    invoice_date: date | None = Field(None, alias="DIVJ")
    gl_date: date | None = Field(None, alias="DGJ")
    due_date: date | None = Field(None, alias="DDJ")
    company: str = Field("", alias="CO")
    batch_number: int = Field(0, alias="ICU")
    pay_status: str = Field("", alias="PST")
    gross_amount: Decimal = Field(Decimal(0), alias="AG")
    open_amount: Decimal = Field(Decimal(0), alias="AAP")
    tax_amount: Decimal = Field(Decimal(0), alias="STAM")
    currency: str = Field("", alias="CRCD")
    supplier_invoice_number: str = Field("", alias="VINV")
    reference: str = Field("", alias="VR01")
    remark: str = Field("", alias="RMK")
    void_flag: str = Field("", alias="VOD")


#: Every table the sync reads, by name: the one declaration of its columns (``jde.tables`` derives
#: the query specs from it).
MODELS: dict[str, type[JdeRow]] = {
    m.table: m
    for m in (
        AddressBookRow,
        CustomerMasterRow,
        WhosWhoRow,
        AddressByDateRow,
        PhoneRow,
        ElectronicAddressRow,
        ItemRow,
        AccountRow,
        BusinessUnitRow,
        CustomerLedgerRow,
        ReceiptHeaderRow,
        ReceiptDetailRow,
        AccountLedgerRow,
        BasePriceRow,
        SalesOrderLineRow,
        VoucherRow,
    )
}
