"""The tables the sandbox serves: columns (alias, title, kind, size) and primary keys.

Kinds follow the JDE data dictionary: ``str`` (character, ``size`` = length), ``int`` (whole numbers such
as address numbers and HHMMSS times), ``num`` (amounts stored as integers with ``size`` implied
decimals, returned with the decimals applied) and ``date`` (Julian CYYDDD, returned as ``yyyyMMdd``).

Each table has its own audit columns, as in JDE: most stamp the time in UPMT, but the item and sales
tables (F4101's siblings F4106 and F42119) keep it in TDAY, "Time of Day". F4101 itself is served with
UPMT, as the client side of this project reads it today.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    alias: str
    title: str
    kind: str
    size: int = 0


@dataclass(frozen=True)
class TableSchema:
    name: str
    title: str
    primary_key: tuple[str, ...]
    columns: dict[str, Column] = field(default_factory=dict)

    def column(self, alias: str) -> Column:
        return self.columns[alias]

    @property
    def time_column(self) -> str:
        """Where the table keeps the audit time: UPMT, or TDAY for the item price and sales tables."""
        return "TDAY" if "TDAY" in self.columns else "UPMT"

    def blank(self) -> dict[str, object]:
        """A row of blanks: codes padded to their length, free text empty, numbers and dates 0."""
        return {
            c.alias: (" " * c.size if c.size <= 3 else "") if c.kind == "str" else 0
            for c in self.columns.values()
        }


def _s(alias: str, title: str, size: int) -> Column:
    return Column(alias, title, "str", size)


def _i(alias: str, title: str) -> Column:
    return Column(alias, title, "int")


def _n(alias: str, title: str, decimals: int = 2) -> Column:
    return Column(alias, title, "num", decimals)


def _d(alias: str, title: str) -> Column:
    return Column(alias, title, "date")


AUDIT = (
    _s("USER", "User ID", 10),
    _s("PID", "Program ID", 10),
    _d("UPMJ", "Date - Updated"),
    _s("JOBN", "Work Station ID", 10),
    _i("UPMT", "Time - Last Updated"),
)


AUDIT_TIME_OF_DAY = (
    _s("USER", "User ID", 10),
    _s("PID", "Program ID", 10),
    _s("JOBN", "Work Station ID", 10),
    _d("UPMJ", "Date - Updated"),
    _i("TDAY", "Time of Day"),
)


def _table(
    name: str, title: str, key: tuple[str, ...], *columns: Column, audit: tuple[Column, ...] = AUDIT
) -> TableSchema:
    return TableSchema(name, title, key, {c.alias: c for c in (*columns, *audit)})


# F4106's key: the price's whole context (item, branch, location, lot, customer, price groups, grade,
# potency, currency, unit, expiry) and the audit date and time of day
BASE_PRICE_KEY = (
    "ITM", "MCU", "LOCN", "LOTN", "AN8", "IGID", "CGID", "LOTG", "FRMP", "CRCD", "UOM", "EXDJ",
    "UPMJ", "TDAY",
)  # fmt: skip

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        _table(
            "F0101",
            "Address Book Master",
            ("AN8",),
            _i("AN8", "Address Number"),
            _s("ALKY", "Long Address Number", 20),
            _s("TAX", "Tax ID", 20),
            _s("ALPH", "Alpha Name", 40),
            _s("DC", "Description - Compressed", 40),
            _s("MCU", "Business Unit", 12),
            _s("SIC", "Industry Classification", 10),
            _s("LNGP", "Language", 2),
            _s("AT1", "Sch Typ", 3),
            _s("CM", "Credit Message", 2),
            _s("TAXC", "Person/Corporation Code", 1),
            _s("ATR", "Receivables Y/N", 1),
            _s("ATP", "Payables Y/N", 1),
            _s("ATE", "Employee Y/N", 1),
            _s("AC01", "Category Code - Address Book 01", 3),
            _s("AC02", "Category Code - Address Book 02", 3),
            _s("AC03", "Category Code - Address Book 03", 3),
            _s("AC30", "Category Code - Address Book 30", 3),
        ),
        _table(
            "F03012",
            "Customer Master by Line of Business",
            ("AN8", "CO"),
            _i("AN8", "Address Number"),
            _s("CO", "Company", 5),
            _s("ARC", "G/L Offset", 4),
            _s("MCUR", "Business Unit - A/R Default", 12),
            _s("CRCD", "Currency Code - From", 3),
            _s("TXA1", "Tax Rate/Area", 10),
            _s("EXR1", "Tax Expl Code", 2),
            _n("ACL", "Amount - Credit Limit"),
            _s("HDAR", "Hold Invoices", 1),
            _s("TRAR", "Payment Terms - A/R", 3),
            _s("STTO", "Send Statement to", 1),
            _s("RYIN", "Payment Instrument", 1),
            _s("CMGR", "Credit Manager", 10),
            _s("CLMG", "Collection Manager", 10),
            _s("HOLD", "Hold Orders Code", 2),
            _s("AC01", "Category Code - Customer 01", 3),
        ),
        _table(
            "F0111",
            "Address Book - Who's Who",
            ("AN8", "IDLN"),
            _i("AN8", "Address Number"),
            _i("IDLN", "Line Number ID"),
            _i("DSS7", "Display Sequence"),
            _s("MLNM", "Name - Mailing", 40),
            _s("ATTL", "Contact Title", 40),
            _s("SLNM", "Salutation Name", 10),
            _s("ALPH", "Alpha Name", 40),
            _s("DC", "Description - Compressed", 40),
            _s("GNNM", "Name - Given", 25),
            _s("MDNM", "Name - Middle", 25),
            _s("SRNM", "Name - Surname", 25),
            _s("TYC", "Type Code", 1),
            _s("NICK", "Nickname", 40),
            _s("GEND", "Gender", 1),
            _s("ACTIN", "Active Indicator", 1),
            _s("REM1", "Remark 1", 40),
        ),
        _table(
            "F0116",
            "Address by Date",
            ("AN8", "EFTB"),
            _i("AN8", "Address Number"),
            _d("EFTB", "Date - Beginning Effective"),
            _s("ADD1", "Address Line 1", 40),
            _s("ADD2", "Address Line 2", 40),
            _s("ADD3", "Address Line 3", 40),
            _s("ADD4", "Address Line 4", 40),
            _s("ADDZ", "Postal Code", 12),
            _s("CTY1", "City", 25),
            _s("COUN", "County", 25),
            _s("ADDS", "State", 3),
            _s("CTR", "Country", 3),
        ),
        _table(
            "F0115",
            "Address Book - Contact Phone Numbers",
            ("AN8", "IDLN", "RCK7", "CNLN"),
            _i("AN8", "Address Number"),
            _i("IDLN", "Line Number ID"),
            _i("RCK7", "Line Number"),
            _i("CNLN", "Line Number - Contact"),
            _s("PHTP", "Phone Type", 4),
            _s("AR1", "Prefix", 6),
            _s("PH1", "Phone Number", 20),
        ),
        _table(
            "F01151",
            "Electronic Address",
            ("AN8", "IDLN", "RCK7"),
            _i("AN8", "Address Number"),
            _i("IDLN", "Line Number ID"),
            _i("RCK7", "Line Number"),
            _s("ETP", "Electronic Address Type", 4),
            _s("EMAL", "Electronic Address", 256),
            _i("EHIER", "Messaging Indicator"),
            _s("ECLASS", "Classification", 3),
        ),
        _table(
            "F4101",
            "Item Master",
            ("ITM",),
            _i("ITM", "Item Number - Short"),
            _s("LITM", "2nd Item Number", 25),
            _s("AITM", "3rd Item Number", 25),
            _s("DSC1", "Description", 30),
            _s("DSC2", "Description Line 2", 30),
            _s("SRTX", "Search Text", 30),
            _s("STKT", "Stocking Type", 1),
            _s("GLPT", "G/L Class", 4),
            _s("UOM1", "Unit of Measure - Primary", 2),
            _s("SRP1", "Sales Catalog Section", 3),
            _s("PRP1", "Commodity Class", 3),
            _s("LNTY", "Line Type", 2),
        ),
        _table(
            "F0901",
            "Account Master",
            ("AID",),
            _s("AID", "Account ID", 8),
            _s("CO", "Company", 5),
            _s("MCU", "Business Unit", 12),
            _s("OBJ", "Object Account", 6),
            _s("SUB", "Subsidiary", 8),
            _s("DL01", "Description", 30),
            _s("PEC", "Posting Edit", 1),
            _s("LDA", "Account Level of Detail", 1),
        ),
        _table(
            "F0006",
            "Business Unit Master",
            ("MCU",),
            _s("MCU", "Business Unit", 12),
            _s("STYL", "Type Business Unit", 2),
            _s("LDM", "Level of Detail", 1),
            _s("CO", "Company", 5),
            _i("AN8", "Address Number"),
            _s("DL01", "Description", 30),
        ),
        _table(
            "F03B11",
            "Customer Ledger",
            ("DOC", "DCT", "KCO", "SFX"),
            _i("DOC", "Document Number"),
            _s("DCT", "Document Type", 2),
            _s("KCO", "Document Company", 5),
            _s("SFX", "Pay Item", 3),
            _i("AN8", "Address Number"),
            _i("PYR", "Payor Address Number"),
            _d("DIVJ", "Date - Invoice"),
            _d("DGJ", "G/L Date"),
            _d("DDJ", "Date - Net Due"),
            _i("FY", "Fiscal Year"),
            _i("PN", "Period Number"),
            _s("CO", "Company", 5),
            _i("ICU", "Batch Number"),
            _s("ICUT", "Batch Type", 2),
            _d("DICJ", "Batch Date"),
            _s("POST", "G/L Posted Code", 1),
            _s("PST", "Pay Status", 1),
            _n("AG", "Gross Amount"),
            _n("AAP", "Open Amount"),
            _n("ATXA", "Taxable Amount"),
            _n("STAM", "Tax Amount"),
            _s("CRRM", "Currency Mode", 1),
            _s("CRCD", "Currency Code", 3),
            _n("CRR", "Exchange Rate", 7),
            _n("ACR", "Foreign Gross Amount"),
            _n("FAP", "Foreign Open Amount"),
            _s("TXA1", "Tax Rate/Area", 10),
            _s("EXR1", "Tax Expl Code", 2),
            _s("RMK", "Remark", 30),
            _s("VR01", "Reference", 25),
            _s("PO", "Purchase Order", 8),
            _s("MCU", "Business Unit", 12),
            _s("PTC", "Payment Terms", 3),
            _s("AID", "Account ID", 8),
            _s("VOD", "Void Flag", 1),
            _d("VDGJ", "Void Date - For G/L"),
            _i("ODOC", "Original Document No"),
            _s("ODCT", "Original Document Type", 2),
            _s("OKCO", "Original Document Company", 5),
            _s("OSFX", "Original Pay Item", 3),
            _i("PYID", "Payment ID"),
            _i("SDOC", "Sales Document Number"),
            _s("SDCT", "Sales Document Type", 2),
            _s("SKCO", "Sales Document Company", 5),
        ),
        _table(
            "F03B13",
            "Receipts Header",
            ("PYID",),
            _i("PYID", "Payment ID"),
            _s("CKNU", "Receipt Number", 25),
            _i("AN8", "Address Number"),
            _i("PYR", "Payor Address Number"),
            _d("DMTJ", "Date - Receipt"),
            _d("DGJ", "G/L Date"),
            _i("ICU", "Batch Number"),
            _s("ICUT", "Batch Type", 2),
            _n("CKAM", "Amount - Receipt"),
            _n("AAP", "Unapplied Amount"),
            _s("CRRM", "Currency Mode", 1),
            _s("CRCD", "Currency Code", 3),
            _n("FCAM", "Foreign Receipt Amount"),
            _n("FAP", "Foreign Unapplied Amount"),
            _s("GLBA", "G/L Bank Account", 8),
            _s("CO", "Company", 5),
            _s("TYIN", "Type Input Code", 1),
            _s("RMK", "Remark", 30),
            _s("POST", "G/L Posted Code", 1),
            _d("VDGJ", "Void Date - For G/L"),
            _s("VRE", "Void Reason Code", 3),
            _s("NFVD", "NSF/Void Flag", 1),
        ),
        _table(
            "F03B14",
            "Receipts Detail",
            ("PYID", "RC5"),
            _i("PYID", "Payment ID"),
            _i("RC5", "File Line Identifier"),
            _s("CKNU", "Receipt Number", 25),
            _i("DOC", "Document Number"),
            _s("DCT", "Document Type", 2),
            _s("KCO", "Document Company", 5),
            _s("SFX", "Pay Item", 3),
            _i("AN8", "Address Number"),
            _i("PYR", "Payor Address Number"),
            _d("DGJ", "G/L Date"),
            _i("ICU", "Batch Number"),
            _n("PAAP", "Payment Amount"),
            _n("ADSA", "Discount Taken"),
            _n("AWAT", "Write-Off Amount"),
            _s("RSCO", "Write-Off Reason Code", 2),
            _s("CRCD", "Currency Code", 3),
            _s("DCTM", "Matching Document Type", 2),
            _s("RMK", "Remark", 30),
            _s("POST", "G/L Posted Code", 1),
            _d("VDGJ", "Void Date - For G/L"),
            _s("VRE", "Void Reason Code", 3),
            _s("NFVD", "NSF/Void Flag", 1),
        ),
        _table(
            "F0411",
            "Accounts Payable Ledger",
            ("DOC", "DCT", "KCO", "SFX", "SFXE"),
            _i("DOC", "Document Number"),
            _s("DCT", "Document Type", 2),
            _s("KCO", "Document Company", 5),
            _s("SFX", "Pay Item", 3),
            _i("SFXE", "Pay Item Extension Number"),
            _i("AN8", "Address Number"),
            _i("PYE", "Payee Address Number"),
            _d("DIVJ", "Date - Invoice"),
            _d("DGJ", "G/L Date"),
            _d("DDJ", "Date - Net Due"),
            _i("FY", "Fiscal Year"),
            _i("PN", "Period Number"),
            _s("CO", "Company", 5),
            _i("ICU", "Batch Number"),
            _s("ICUT", "Batch Type", 2),
            _d("DICJ", "Batch Date"),
            _s("POST", "G/L Posted Code", 1),
            _s("PST", "Pay Status", 1),
            _n("AG", "Gross Amount"),
            _n("AAP", "Open Amount"),
            _n("ATXA", "Taxable Amount"),
            _n("STAM", "Tax Amount"),
            _s("CRRM", "Currency Mode", 1),
            _s("CRCD", "Currency Code", 3),
            _n("CRR", "Exchange Rate", 7),
            _n("ACR", "Foreign Gross Amount"),
            _n("FAP", "Foreign Open Amount"),
            _s("GLC", "G/L Offset", 4),
            _s("MCU", "Business Unit", 12),
            _s("PTC", "Payment Terms", 3),
            _s("VINV", "Supplier Invoice Number", 25),
            _s("VR01", "Reference", 25),
            _s("RMK", "Remark", 30),
            _s("VOD", "Void Flag", 1),
        ),
        _table(
            "F4106",
            "Item Base Price File",
            BASE_PRICE_KEY,
            _i("ITM", "Item Number - Short"),
            _s("LITM", "2nd Item Number", 25),
            _s("AITM", "3rd Item Number", 25),
            _s("MCU", "Business Unit", 12),
            _s("LOCN", "Location", 20),
            _s("LOTN", "Lot/Serial Number", 30),
            _i("AN8", "Address Number"),
            _i("IGID", "Item Price Group Key ID"),
            _i("CGID", "Customer Price Group Key ID"),
            _s("LOTG", "Lot Grade", 3),
            _i("FRMP", "From Potency"),
            _s("CRCD", "Currency Code", 3),
            _s("UOM", "Unit of Measure", 2),
            _d("EFTJ", "Date - Effective"),
            _d("EXDJ", "Date - Expired"),
            _n("UPRC", "Amount - Price per Unit", 4),
            audit=AUDIT_TIME_OF_DAY,
        ),
        _table(
            "F42119",
            "Sales Order History File",
            ("DOCO", "DCTO", "KCOO", "LNID"),
            _i("DOCO", "Document (Order No Invoice etc.)"),
            _s("DCTO", "Order Type", 2),
            _s("KCOO", "Order Company (Order Number)", 5),
            _n("LNID", "Line Number", 3),
            _s("MCU", "Business Unit", 12),
            _s("CO", "Company", 5),
            _i("AN8", "Address Number"),
            _i("SHAN", "Address Number - Ship To"),
            _d("TRDJ", "Date - Order/Transaction"),
            _d("IVD", "Date - Invoice"),
            _d("DGL", "Date - For G/L (and Voucher)"),
            _i("ITM", "Item Number - Short"),
            _s("LITM", "2nd Item Number", 25),
            _s("DSC1", "Description", 30),
            _s("LNTY", "Line Type", 2),
            _s("UOM", "Unit of Measure as Input", 2),
            _n("UORG", "Units - Order/Transaction Quantity", 0),
            _n("UPRC", "Amount - Price per Unit", 4),
            _n("AEXP", "Amount - Extended Price"),
            _s("CRCD", "Currency Code", 3),
            _s("LTTR", "Status Code - Last", 3),
            _s("NXTR", "Status Code - Next", 3),
            _i("DOC", "Document Number"),
            _s("DCT", "Document Type", 2),
            _s("KCO", "Document Company", 5),
            _s("VR01", "Reference", 25),
            audit=AUDIT_TIME_OF_DAY,
        ),
        _table(
            "F0911",
            "Account Ledger",
            ("KCO", "DCT", "DOC", "DGJ", "JELN", "LT", "EXTL"),
            _s("KCO", "Document Company", 5),
            _s("DCT", "Document Type", 2),
            _i("DOC", "Document Number"),
            _d("DGJ", "G/L Date"),
            _n("JELN", "Journal Entry Line Number", 1),
            _s("LT", "Ledger Type", 2),
            _s("EXTL", "Line Extension Code", 2),
            _i("ICU", "Batch Number"),
            _s("ICUT", "Batch Type", 2),
            _s("CO", "Company", 5),
            _s("AID", "Account ID", 8),
            _s("MCU", "Business Unit", 12),
            _s("OBJ", "Object Account", 6),
            _s("SUB", "Subsidiary", 8),
            _s("ANI", "Account Number Input", 29),
            _n("AA", "Amount"),
            _s("CRCD", "Currency Code", 3),
            _s("EXA", "Explanation - Name Alpha", 30),
            _s("EXR", "Explanation - Remark", 30),
            _s("POST", "G/L Posted Code", 1),
            _i("AN8", "Address Number"),
        ),
    )
}
