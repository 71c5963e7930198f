"""The JDE tables the sync reads and writes: columns (JDE alias, business name, kind) and primary keys.

Kinds: ``str`` (character, may come back blank-padded), ``int`` (address numbers, HHMMSS times, batch
numbers), ``decimal`` (amounts, returned by AIS with decimals applied) and ``date`` (Julian in the
database, ``yyyyMMdd`` in responses). The primary key is what the hook sorts by and resumes after
when a paging cursor is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, cast

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


_AUDIT = (
    ("USER", "user_id", "str"),
    ("PID", "program_id", "str"),
    ("UPMJ", "updated_date", "date"),
    ("JOBN", "workstation_id", "str"),
    ("UPMT", "updated_time", "int"),
)


def _spec(name: str, title: str, key: tuple[str, ...], *columns: tuple[str, str, str]) -> TableSpec:
    specs = {
        alias: ColumnSpec(name, alias, business, cast(ColumnKind, kind))
        for alias, business, kind in (*columns, *_AUDIT)
    }
    return TableSpec(name, title, key, specs)


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "F0101",
            "Address Book Master",
            ("AN8",),
            ("AN8", "address_number", "int"),
            ("ALKY", "long_address_number", "str"),
            ("TAX", "tax_id", "str"),
            ("ALPH", "alpha_name", "str"),
            ("DC", "compressed_name", "str"),
            ("MCU", "business_unit", "str"),
            ("SIC", "industry_class", "str"),
            ("LNGP", "language", "str"),
            ("AT1", "search_type", "str"),
            ("CM", "credit_message", "str"),
            ("TAXC", "person_corporation", "str"),
            ("ATR", "is_receivable", "str"),
            ("ATP", "is_payable", "str"),
            ("ATE", "is_employee", "str"),
            ("AC01", "category_code_01", "str"),
            ("AC02", "category_code_02", "str"),
            ("AC03", "category_code_03", "str"),
            ("AC30", "category_code_30", "str"),
        ),
        _spec(
            "F03012",
            "Customer Master by Line of Business",
            ("AN8", "CO"),
            ("AN8", "address_number", "int"),
            ("CO", "company", "str"),
            ("ARC", "gl_offset", "str"),
            ("MCUR", "ar_business_unit", "str"),
            ("CRCD", "currency", "str"),
            ("TXA1", "tax_area", "str"),
            ("EXR1", "tax_explanation", "str"),
            ("ACL", "credit_limit", "decimal"),
            ("HDAR", "hold_invoices", "str"),
            ("TRAR", "payment_terms", "str"),
            ("STTO", "statement_to", "str"),
            ("RYIN", "payment_instrument", "str"),
            ("CMGR", "credit_manager", "str"),
            ("CLMG", "collection_manager", "str"),
            ("HOLD", "order_hold_code", "str"),
            ("AC01", "category_code_01", "str"),
        ),
        _spec(
            "F0111",
            "Address Book - Who's Who",
            ("AN8", "IDLN"),
            ("AN8", "address_number", "int"),
            ("IDLN", "line_number", "int"),
            ("DSS7", "display_sequence", "int"),
            ("MLNM", "mailing_name", "str"),
            ("ATTL", "title", "str"),
            ("SLNM", "salutation", "str"),
            ("ALPH", "alpha_name", "str"),
            ("DC", "compressed_name", "str"),
            ("GNNM", "given_name", "str"),
            ("MDNM", "middle_name", "str"),
            ("SRNM", "surname", "str"),
            ("TYC", "contact_type", "str"),
            ("NICK", "nickname", "str"),
            ("GEND", "gender", "str"),
            ("ACTIN", "active", "str"),
            ("REM1", "remark", "str"),
        ),
        _spec(
            "F0116",
            "Address by Date",
            ("AN8", "EFTB"),
            ("AN8", "address_number", "int"),
            ("EFTB", "effective_date", "date"),
            ("ADD1", "line_1", "str"),
            ("ADD2", "line_2", "str"),
            ("ADD3", "line_3", "str"),
            ("ADD4", "line_4", "str"),
            ("ADDZ", "postal_code", "str"),
            ("CTY1", "city", "str"),
            ("COUN", "county", "str"),
            ("ADDS", "state", "str"),
            ("CTR", "country", "str"),
        ),
        _spec(
            "F0115",
            "Address Book - Contact Phone Numbers",
            ("AN8", "IDLN", "RCK7", "CNLN"),
            ("AN8", "address_number", "int"),
            ("IDLN", "line_number", "int"),
            ("RCK7", "phone_line", "int"),
            ("CNLN", "contact_line", "int"),
            ("PHTP", "phone_type", "str"),
            ("AR1", "area_code", "str"),
            ("PH1", "phone_number", "str"),
        ),
        _spec(
            "F01151",
            "Electronic Address",
            ("AN8", "IDLN", "RCK7"),
            ("AN8", "address_number", "int"),
            ("IDLN", "line_number", "int"),
            ("RCK7", "email_line", "int"),
            ("ETP", "address_type", "str"),
            ("EMAL", "electronic_address", "str"),
            ("EHIER", "messaging_indicator", "int"),
            ("ECLASS", "classification", "str"),
        ),
        _spec(
            "F4101",
            "Item Master",
            ("ITM",),
            ("ITM", "short_item_number", "int"),
            ("LITM", "item_number", "str"),
            ("AITM", "third_item_number", "str"),
            ("DSC1", "description", "str"),
            ("DSC2", "description_2", "str"),
            ("SRTX", "search_text", "str"),
            ("STKT", "stocking_type", "str"),
            ("GLPT", "gl_class", "str"),
            ("UOM1", "unit_of_measure", "str"),
            ("SRP1", "sales_category_1", "str"),
            ("PRP1", "commodity_class", "str"),
            ("LNTY", "line_type", "str"),
        ),
        _spec(
            "F0901",
            "Account Master",
            ("AID",),
            ("AID", "account_id", "str"),
            ("CO", "company", "str"),
            ("MCU", "business_unit", "str"),
            ("OBJ", "object_account", "str"),
            ("SUB", "subsidiary", "str"),
            ("DL01", "description", "str"),
            ("PEC", "posting_edit", "str"),
            ("LDA", "level_of_detail", "str"),
        ),
        _spec(
            "F0006",
            "Business Unit Master",
            ("MCU",),
            ("MCU", "business_unit", "str"),
            ("STYL", "unit_type", "str"),
            ("LDM", "level_of_detail", "str"),
            ("CO", "company", "str"),
            ("AN8", "address_number", "int"),
            ("DL01", "description", "str"),
        ),
        _spec(
            "F03B11",
            "Customer Ledger",
            ("DOC", "DCT", "KCO", "SFX"),
            ("DOC", "document_number", "int"),
            ("DCT", "document_type", "str"),
            ("KCO", "document_company", "str"),
            ("SFX", "pay_item", "str"),
            ("AN8", "address_number", "int"),
            ("PYR", "payor", "int"),
            ("DIVJ", "invoice_date", "date"),
            ("DGJ", "gl_date", "date"),
            ("DDJ", "due_date", "date"),
            ("FY", "fiscal_year", "int"),
            ("PN", "period", "int"),
            ("CO", "company", "str"),
            ("ICU", "batch_number", "int"),
            ("ICUT", "batch_type", "str"),
            ("DICJ", "batch_date", "date"),
            ("POST", "posted_code", "str"),
            ("PST", "pay_status", "str"),
            ("AG", "gross_amount", "decimal"),
            ("AAP", "open_amount", "decimal"),
            ("ATXA", "taxable_amount", "decimal"),
            ("STAM", "tax_amount", "decimal"),
            ("CRRM", "currency_mode", "str"),
            ("CRCD", "currency", "str"),
            ("CRR", "exchange_rate", "decimal"),
            ("ACR", "foreign_gross_amount", "decimal"),
            ("FAP", "foreign_open_amount", "decimal"),
            ("TXA1", "tax_area", "str"),
            ("EXR1", "tax_explanation", "str"),
            ("RMK", "remark", "str"),
            ("VR01", "reference", "str"),
            ("PO", "purchase_order", "str"),
            ("MCU", "business_unit", "str"),
            ("PTC", "payment_terms", "str"),
            ("AID", "account_id", "str"),
        ),
        _spec(
            "F03B13",
            "Receipts Header",
            ("PYID",),
            ("PYID", "payment_id", "int"),
            ("CKNU", "receipt_number", "str"),
            ("AN8", "address_number", "int"),
            ("PYR", "payor", "int"),
            ("DMTJ", "receipt_date", "date"),
            ("DGJ", "gl_date", "date"),
            ("ICU", "batch_number", "int"),
            ("ICUT", "batch_type", "str"),
            ("CKAM", "receipt_amount", "decimal"),
            ("AAP", "unapplied_amount", "decimal"),
            ("CRRM", "currency_mode", "str"),
            ("CRCD", "currency", "str"),
            ("FCAM", "foreign_receipt_amount", "decimal"),
            ("FAP", "foreign_unapplied_amount", "decimal"),
            ("GLBA", "bank_account_id", "str"),
            ("CO", "company", "str"),
            ("TYIN", "input_type", "str"),
            ("RMK", "remark", "str"),
            ("POST", "posted_code", "str"),
        ),
        _spec(
            "F03B14",
            "Receipts Detail",
            ("PYID", "RC5"),
            ("PYID", "payment_id", "int"),
            ("RC5", "line_number", "int"),
            ("DOC", "document_number", "int"),
            ("DCT", "document_type", "str"),
            ("KCO", "document_company", "str"),
            ("SFX", "pay_item", "str"),
            ("AN8", "address_number", "int"),
            ("PYR", "payor", "int"),
            ("DGJ", "gl_date", "date"),
            ("ICU", "batch_number", "int"),
            ("PAAP", "amount_applied", "decimal"),
            ("ADSA", "discount_taken", "decimal"),
            ("CRCD", "currency", "str"),
            ("RMK", "remark", "str"),
            ("POST", "posted_code", "str"),
        ),
        _spec(
            "F0911",
            "Account Ledger",
            ("KCO", "DCT", "DOC", "DGJ", "JELN", "LT", "EXTL"),
            ("KCO", "document_company", "str"),
            ("DCT", "document_type", "str"),
            ("DOC", "document_number", "int"),
            ("DGJ", "gl_date", "date"),
            ("JELN", "line_number", "decimal"),
            ("LT", "ledger_type", "str"),
            ("EXTL", "line_extension", "str"),
            ("ICU", "batch_number", "int"),
            ("ICUT", "batch_type", "str"),
            ("CO", "company", "str"),
            ("AID", "account_id", "str"),
            ("MCU", "business_unit", "str"),
            ("OBJ", "object_account", "str"),
            ("SUB", "subsidiary", "str"),
            ("ANI", "account_number", "str"),
            ("AA", "amount", "decimal"),
            ("CRCD", "currency", "str"),
            ("EXA", "explanation", "str"),
            ("EXR", "remark", "str"),
            ("POST", "posted_code", "str"),
            ("AN8", "address_number", "int"),
        ),
    )
}


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
