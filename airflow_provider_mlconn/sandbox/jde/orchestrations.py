"""The write orchestrations a JDE administrator published for the HubSpot -> JDE flows.

Each takes Generic (flat JSON) inputs, validates them the way the underlying application would
(P03B11 Standard Invoice Entry, P03B102 Standard Receipts Entry, P4101 Item Master), writes the
tables, and returns its published outputs. A business rule that fails raises ``BusinessError``; the
app turns it into the AIS ``ServiceErrorResponse`` (HTTP 500) with ``errorText`` = ``"<code> <title>"``
and ``userDefinedErrorText`` = ``"<input field>: <what is wrong>"`` (the step's custom error message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_mlconn.sandbox.jde.calendar import (
    format_user_date,
    from_julian,
    hhmmss,
    parse_user_date,
    to_julian,
)
from airflow_provider_mlconn.sandbox.jde.seed import COMPANIES, PAYMENT_TERMS, Row, right_justify
from airflow_provider_mlconn.sandbox.jde.store import Store

CURRENCY_DECIMALS = {"USD": 2, "EUR": 2, "CAD": 2, "GBP": 2, "PLN": 2, "NOK": 2, "BGN": 2, "CNY": 2, "JPY": 0}
STOCKING_TYPES = {"S", "N", "O", "P", "M", "K"}
UNITS_OF_MEASURE = {"EA", "BX", "CS", "PL", "KG", "FT", "LB", "DZ", "PR"}
GL_CLASSES = {"IN20", "IN30", "IN40", "IN50"}


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
    username: str
    device: str
    simple_date_format: str
    now: datetime  # server local time


@dataclass(frozen=True)
class Orchestration:
    name: str
    description: str
    inputs: tuple[tuple[str, str], ...]
    run: Callable[[Store, dict[str, Any], Context], dict[str, Any]]


# -- input parsing --------------------------------------------------------------------------------


def _text(inputs: dict[str, Any], field: str, size: int, *, required: bool = False, default: str = "") -> str:
    value = inputs.get(field)
    if value is None or str(value).strip() == "":
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "a value is required")
        return default
    text = str(value).strip()
    if len(text) > size:
        raise BusinessError("5521", "Value Too Long", field, f"{len(text)} characters; at most {size} fit")
    return text


def _number(inputs: dict[str, Any], field: str, *, required: bool = True) -> int | None:
    value = inputs.get(field)
    if value is None or str(value).strip() == "":
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "a value is required")
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise BusinessError("0002", "Invalid Number", field, f"{value!r} is not a whole number") from None


def _amount(inputs: dict[str, Any], field: str, currency: str, *, required: bool = True) -> int | None:
    """An amount as integer hundredths (the database's implied decimals)."""
    value = inputs.get(field)
    if value is None or str(value).strip() == "":
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "a value is required")
        return None
    if isinstance(value, float):
        raise BusinessError("0002", "Invalid Amount", field, "send amounts as decimal strings, not floats")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BusinessError("0002", "Invalid Amount", field, f"{value!r} is not an amount") from None
    decimals = CURRENCY_DECIMALS.get(currency, 2)
    if amount != amount.quantize(Decimal(1).scaleb(-decimals)):
        raise BusinessError(
            "5507", "Too Many Decimals", field, f"{value} has more than {decimals} decimals for {currency}"
        )
    return int(amount.scaleb(2))


def _date(inputs: dict[str, Any], field: str, context: Context, *, required: bool = True) -> int | None:
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


def _list(inputs: dict[str, Any], field: str, *, required: bool) -> list[dict[str, Any]]:
    value = inputs.get(field)
    if value in (None, []):
        if required:
            raise BusinessError("0001", "Required Field Missing", field, "at least one entry is required")
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BusinessError("0002", "Invalid Input", field, "must be a list of objects")
    return value


def money(hundredths: int) -> str:
    return str(Decimal(hundredths).scaleb(-2).quantize(Decimal("0.01")))


def _stamp(row: Row, context: Context, program: str) -> Row:
    row.update(
        USER=context.username[:10],
        PID=program,
        UPMJ=to_julian(context.now.date()),
        JOBN=(context.device or "AIS")[:10],
        UPMT=hhmmss(context.now),
    )
    return row


def _customer(
    store: Store, inputs: dict[str, Any], company_field: str = "Company"
) -> tuple[int, str, Row, Row]:
    an8 = _number(inputs, "CustomerNumber")
    assert an8 is not None
    book = store.table("F0101")
    rows = book.rows_of(an8) if book.has_group(an8) else []
    if not rows:
        raise BusinessError(
            "0037", "Address Number Invalid", "CustomerNumber", f"{an8} is not in the Address Book"
        )
    if rows[0]["AT1"].strip() != "C":
        raise BusinessError(
            "0037",
            "Address Number Invalid",
            "CustomerNumber",
            f"{an8} has search type {rows[0]['AT1'].strip()!r}, not a customer (C)",
        )
    company = _text(inputs, company_field, 5, required=True).zfill(5)
    if company not in COMPANIES:
        raise BusinessError("0010", "Company Invalid", company_field, f"company {company} does not exist")
    master = [r for r in store.table("F03012").rows_of(an8) if r["CO"] == company]
    if not master:
        raise BusinessError(
            "5501",
            "Customer Not Set Up",
            "CustomerNumber",
            f"{an8} has no customer master (F03012) for company {company}",
        )
    return an8, company, rows[0], master[0]


def _account(store: Store, company: str, text: str, field: str) -> Row:
    parts = text.strip().split(".")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise BusinessError(
            "0025", "Account Invalid", field, f"{text!r} is not BU.Object or BU.Object.Subsidiary"
        )
    unit, obj, sub = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    account = store.dataset.account_for(company, unit, obj, sub)
    if account is None:
        raise BusinessError(
            "0025", "Account Invalid", field, f"{text} is not an account of company {company}"
        )
    if account["PEC"].strip():
        raise BusinessError(
            "0026", "Account Not Postable", field, f"{text} has posting edit code {account['PEC']!r}"
        )
    return account


# -- ORCH_55_CreateCustomerInvoice -----------------------------------------------------------------


def _reference_index(store: Store) -> dict[tuple[str, str], tuple[int, str, str]]:
    """(company, VR01) -> invoice key, over every invoice; built on first use, kept up to date."""
    index: dict[tuple[str, str], tuple[int, str, str]] | None = getattr(store, "invoice_references", None)
    if index is None:
        index = {}
        table = store.table("F03B11")
        for row in table.scan(table.group_ids):
            reference = row["VR01"].strip()
            if reference and row["DCT"] == "RI":
                index.setdefault((row["KCO"], reference), (row["DOC"], row["DCT"], row["KCO"]))
        store.invoice_references = index  # type: ignore[attr-defined]
    return index


def create_customer_invoice(store: Store, inputs: dict[str, Any], context: Context) -> dict[str, Any]:
    an8, company, book, master = _customer(store, inputs)
    reference = _text(inputs, "ExternalReference", 25, required=True)
    existing = _reference_index(store).get((company, reference))
    if existing is not None:
        doc, dct, kco = existing
        raise BusinessError(
            "5502",
            "Duplicate Invoice Reference",
            "ExternalReference",
            f"{reference} is already on invoice {doc} {dct} {kco}",
        )
    invoice_date = _date(inputs, "InvoiceDate", context)
    assert invoice_date is not None
    gl_date = _date(inputs, "GLDate", context, required=False) or invoice_date
    terms = master["TRAR"].strip() or "N30"
    due_date = _date(inputs, "DueDate", context, required=False)
    if due_date is None:
        due_date = to_julian(_to_date(invoice_date) + timedelta(days=PAYMENT_TERMS.get(terms, 30)))
    currency = _text(inputs, "CurrencyCode", 3, default=master["CRCD"]).upper()
    if currency not in CURRENCY_DECIMALS:
        raise BusinessError(
            "5506", "Currency Code Invalid", "CurrencyCode", f"{currency} is not a currency code"
        )
    purchase_order = _text(inputs, "PurchaseOrder", 8)
    remark = _text(inputs, "Remark", 30)
    pay_items = _list(inputs, "PayItems", required=True)
    if len(pay_items) > 999:
        raise BusinessError(
            "5508", "Too Many Pay Items", "PayItems", f"{len(pay_items)} pay items; at most 999"
        )
    distribution = _list(inputs, "GLDistribution", required=True)
    grosses, taxes = [], []
    for index, item in enumerate(pay_items):
        try:
            gross = _amount(item, "GrossAmount", currency)
            tax = _amount(item, "TaxAmount", currency, required=False) or 0
            assert gross is not None
            if gross == 0:
                raise BusinessError("5509", "Amount Required", "GrossAmount", "must not be zero")
            _text(item, "Remark", 30)
            _date(item, "DueDate", context, required=False)
        except BusinessError as error:
            raise BusinessError(
                error.code, error.title, f"PayItems[{index}].{error.field}", error.text
            ) from None
        grosses.append(gross)
        taxes.append(tax)
    lines = []
    for index, line in enumerate(distribution):
        try:
            account = _account(store, company, _text(line, "Account", 29, required=True), "Account")
            amount = _amount(line, "Amount", currency)
        except BusinessError as error:
            raise BusinessError(
                error.code, error.title, f"GLDistribution[{index}].{error.field}", error.text
            ) from None
        assert amount is not None
        lines.append((account, amount, str(line.get("Remark") or "")[:30]))
    expected = sum(grosses) - sum(taxes)
    distributed = sum(amount for _, amount, _ in lines)
    if distributed != expected:
        raise BusinessError(
            "5503",
            "Distribution Out of Balance",
            "GLDistribution",
            f"lines total {money(distributed)} but the invoice needs {money(expected)} (gross less tax)",
        )
    doc = store.take_document_number()
    batch = store.take_batch_number()
    foreign = currency != COMPANIES[company][0]
    ar_account = store.dataset.account_for(company, COMPANIES[company][1], "1210")
    rows = []
    for index, (item, gross, tax) in enumerate(zip(pay_items, grosses, taxes, strict=True), start=1):
        item_due = _date(item, "DueDate", context, required=False) or due_date
        rows.append(
            _stamp(
                {
                    "DOC": doc,
                    "DCT": "RI",
                    "KCO": company,
                    "SFX": f"{index:03d}",
                    "AN8": an8,
                    "PYR": an8,
                    "DIVJ": invoice_date,
                    "DGJ": gl_date,
                    "DDJ": item_due,
                    "FY": (gl_date // 1000) % 100,
                    "PN": _to_date(gl_date).month,
                    "CO": company,
                    "ICU": batch,
                    "ICUT": "IB",
                    "DICJ": to_julian(context.now.date()),
                    "POST": " ",
                    "PST": "A",
                    "AG": gross,
                    "AAP": gross,
                    "ATXA": gross - tax if tax else 0,
                    "STAM": tax,
                    "CRRM": "F" if foreign else "D",
                    "CRCD": currency,
                    "CRR": 10_000_000 if foreign else 0,
                    "ACR": gross if foreign else 0,
                    "FAP": gross if foreign else 0,
                    "TXA1": master["TXA1"],
                    "EXR1": master["EXR1"],
                    "RMK": str(item.get("Remark") or remark)[:30],
                    "VR01": reference,
                    "PO": purchase_order,
                    "MCU": right_justify(COMPANIES[company][1]),
                    "PTC": master["TRAR"],
                    "AID": ar_account["AID"] if ar_account else "",
                },
                context,
                "P03B11",
            )
        )
    ledger = store.table("F03B11")
    group = doc // 10
    ledger.replace_group(group, [*(ledger.rows_of(group) if ledger.has_group(group) else []), *rows])
    gl_rows = [
        _stamp(
            {
                "KCO": company,
                "DCT": "RI",
                "DOC": doc,
                "DGJ": gl_date,
                "JELN": number * 10,
                "LT": "AA",
                "EXTL": "  ",
                "ICU": batch,
                "ICUT": "IB",
                "CO": account["CO"],
                "AID": account["AID"],
                "MCU": account["MCU"],
                "OBJ": account["OBJ"],
                "SUB": account["SUB"],
                "ANI": f"{account['MCU'].strip()}.{account['OBJ'].strip()}"
                + (f".{account['SUB'].strip()}" if account["SUB"].strip() else ""),
                "AA": -amount,
                "CRCD": currency,
                "EXA": book["ALPH"][:30],
                "EXR": line_remark or remark,
                "POST": " ",
                "AN8": an8,
            },
            context,
            "P03B11",
        )
        for number, (account, amount, line_remark) in enumerate(lines, start=1)
    ]
    gl = store.table("F0911")
    gl_group = (company, "RI", group)
    gl.replace_group(gl_group, [*(gl.rows_of(gl_group) if gl.has_group(gl_group) else []), *gl_rows])
    _reference_index(store)[(company, reference)] = (doc, "RI", company)
    return {
        "DocumentNumber": str(doc),
        "DocumentType": "RI",
        "DocumentCompany": company,
        "BatchNumber": str(batch),
        "PayItemCount": str(len(rows)),
        "GrossAmount": money(sum(grosses)),
        "DueDate": format_user_date(due_date, context.simple_date_format),
        "ExternalReference": reference,
    }


def _to_date(julian: int) -> date:
    day = from_julian(julian)
    assert day is not None
    return day


# -- ORCH_55_CreateReceipt --------------------------------------------------------------------------


def create_receipt(store: Store, inputs: dict[str, Any], context: Context) -> dict[str, Any]:
    an8, company, _book, master = _customer(store, inputs)
    receipt_number = _text(inputs, "ReceiptNumber", 25, required=True)
    headers = store.table("F03B13")
    known: dict[tuple[int, str], int] = getattr(store, "receipt_numbers", {})
    seeded = headers.rows_of(an8) if headers.has_group(an8) else []
    duplicate = known.get((an8, receipt_number)) or next(
        (r["PYID"] for r in seeded if r["CKNU"].strip() == receipt_number), None
    )
    if duplicate is not None:
        raise BusinessError(
            "5512",
            "Duplicate Receipt Number",
            "ReceiptNumber",
            f"{receipt_number} is already receipt (payment id) {duplicate} of customer {an8}",
        )
    receipt_date = _date(inputs, "ReceiptDate", context)
    assert receipt_date is not None
    gl_date = _date(inputs, "GLDate", context, required=False) or receipt_date
    currency = _text(inputs, "CurrencyCode", 3, default=master["CRCD"]).upper()
    if currency not in CURRENCY_DECIMALS:
        raise BusinessError(
            "5506", "Currency Code Invalid", "CurrencyCode", f"{currency} is not a currency code"
        )
    amount = _amount(inputs, "Amount", currency)
    assert amount is not None
    if amount <= 0:
        raise BusinessError("5509", "Amount Required", "Amount", "a receipt amount must be positive")
    bank_text = _text(inputs, "BankAccount", 29)
    bank = (
        _account(store, company, bank_text, "BankAccount")
        if bank_text
        else store.dataset.account_for(company, COMPANIES[company][1], "1110")
    )
    assert bank is not None
    remark = _text(inputs, "Remark", 30)
    ledger = store.table("F03B11")
    plans: list[tuple[int, Row, int]] = []  # (invoice group, pay item row, amount applied)
    touched_groups: dict[int, list[Row]] = {}
    for index, application in enumerate(_list(inputs, "Applications", required=False)):
        where = f"Applications[{index}]"
        try:
            doc = _number(application, "DocumentNumber")
            dct = _text(application, "DocumentType", 2, default="RI").upper()
            kco = _text(application, "DocumentCompany", 5, default=company).zfill(5)
            pay_item = _text(application, "PayItem", 3)
            applied = _amount(application, "Amount", currency)
        except BusinessError as error:
            raise BusinessError(error.code, error.title, f"{where}.{error.field}", error.text) from None
        assert doc is not None and applied is not None
        group = doc // 10
        if group not in touched_groups:
            touched_groups[group] = [
                dict(r) for r in (ledger.rows_of(group) if ledger.has_group(group) else [])
            ]
        items = [
            r
            for r in touched_groups[group]
            if r["DOC"] == doc
            and r["DCT"] == dct
            and r["KCO"] == kco
            and (not pay_item or r["SFX"] == pay_item.zfill(3))
        ]
        if not items:
            raise BusinessError(
                "5513",
                "Invoice Not Found",
                f"{where}.DocumentNumber",
                f"no invoice {doc} {dct} {kco}" + (f" pay item {pay_item}" if pay_item else ""),
            )
        if items[0]["AN8"] != an8:
            raise BusinessError(
                "5514",
                "Invoice Belongs To Another Customer",
                f"{where}.DocumentNumber",
                f"invoice {doc} {dct} {kco} is for customer {items[0]['AN8']}, not {an8}",
            )
        if items[0]["CRCD"] != currency:
            raise BusinessError(
                "5517",
                "Currency Mismatch",
                f"{where}.DocumentNumber",
                f"invoice {doc} is in {items[0]['CRCD']}, the receipt in {currency}",
            )
        open_total = sum(r["AAP"] for r in items)
        if applied <= 0 or applied > open_total:
            raise BusinessError(
                "5515",
                "Amount Exceeds Open Amount",
                f"{where}.Amount",
                f"{money(applied)} applied but invoice {doc} {dct} {kco} has {money(open_total)} open",
            )
        remaining = applied
        for item in sorted(items, key=lambda r: r["SFX"]):
            if remaining == 0:
                break
            part = min(item["AAP"], remaining) if item["AAP"] > 0 else 0
            if part == 0:
                continue
            item["AAP"] -= part
            if item["CRRM"] == "F":
                item["FAP"] = item["AAP"]
            item["PST"] = "P" if item["AAP"] == 0 else "A"
            _stamp(item, context, "P03B102")
            remaining -= part
            plans.append((group, item, part))
    applied_total = sum(part for _, _, part in plans)
    if applied_total > amount:
        raise BusinessError(
            "5516",
            "Applied More Than Received",
            "Applications",
            f"{money(applied_total)} applied but the receipt is {money(amount)}",
        )
    pyid = store.take_document_number()
    batch = store.take_batch_number()
    foreign = currency != COMPANIES[company][0]
    header = _stamp(
        {
            "PYID": pyid,
            "CKNU": receipt_number,
            "AN8": an8,
            "PYR": an8,
            "DMTJ": receipt_date,
            "DGJ": gl_date,
            "ICU": batch,
            "ICUT": "RB",
            "CKAM": amount,
            "AAP": amount - applied_total,
            "CRRM": "F" if foreign else "D",
            "CRCD": currency,
            "FCAM": amount if foreign else 0,
            "FAP": amount - applied_total if foreign else 0,
            "GLBA": bank["AID"],
            "CO": company,
            "TYIN": "A" if plans else "U",
            "RMK": remark,
            "POST": " ",
        },
        context,
        "P03B102",
    )
    lines = [
        _stamp(
            {
                "PYID": pyid,
                "RC5": number,
                "DOC": item["DOC"],
                "DCT": item["DCT"],
                "KCO": item["KCO"],
                "SFX": item["SFX"],
                "AN8": an8,
                "PYR": an8,
                "DGJ": gl_date,
                "ICU": batch,
                "PAAP": part,
                "ADSA": 0,
                "CRCD": currency,
                "RMK": remark,
                "POST": " ",
            },
            context,
            "P03B102",
        )
        for number, (_group, item, part) in enumerate(plans, start=1)
    ]
    for group, rows in touched_groups.items():
        ledger.replace_group(group, rows)
    receipt_group = pyid // 10
    headers.replace_group(
        receipt_group, [*(headers.rows_of(receipt_group) if headers.has_group(receipt_group) else []), header]
    )
    details = store.table("F03B14")
    details.replace_group(
        receipt_group, [*(details.rows_of(receipt_group) if details.has_group(receipt_group) else []), *lines]
    )
    receivable = store.dataset.account_for(company, COMPANIES[company][1], "1210")
    gl = store.table("F0911")
    gl_group = (company, "RC", receipt_group)
    gl_rows = []
    for number, (account, signed) in enumerate(((bank, amount), (receivable, -amount)), start=1):
        if account is None:
            continue
        gl_rows.append(
            _stamp(
                {
                    "KCO": company,
                    "DCT": "RC",
                    "DOC": pyid,
                    "DGJ": gl_date,
                    "JELN": number * 10,
                    "LT": "AA",
                    "EXTL": "  ",
                    "ICU": batch,
                    "ICUT": "RB",
                    "CO": account["CO"],
                    "AID": account["AID"],
                    "MCU": account["MCU"],
                    "OBJ": account["OBJ"],
                    "SUB": account["SUB"],
                    "ANI": f"{account['MCU'].strip()}.{account['OBJ'].strip()}",
                    "AA": signed,
                    "CRCD": currency,
                    "EXA": receipt_number[:30],
                    "EXR": remark,
                    "POST": " ",
                    "AN8": an8,
                },
                context,
                "P03B102",
            )
        )
    gl.replace_group(gl_group, [*(gl.rows_of(gl_group) if gl.has_group(gl_group) else []), *gl_rows])
    known[(an8, receipt_number)] = pyid
    store.receipt_numbers = known  # type: ignore[attr-defined]
    return {
        "PaymentId": str(pyid),
        "ReceiptNumber": receipt_number,
        "BatchNumber": str(batch),
        "AppliedAmount": money(applied_total),
        "UnappliedAmount": money(amount - applied_total),
        "Applications": [
            {
                "DocumentNumber": str(item["DOC"]),
                "DocumentType": item["DCT"],
                "DocumentCompany": item["KCO"],
                "PayItem": item["SFX"],
                "AmountApplied": money(part),
                "OpenAmount": money(item["AAP"]),
                "PayStatus": item["PST"],
            }
            for _group, item, part in plans
        ],
    }


# -- ORCH_55_UpsertItem -------------------------------------------------------------------------------


def _item_index(store: Store) -> dict[str, int]:
    index: dict[str, int] | None = getattr(store, "item_numbers", None)
    if index is None:
        table = store.table("F4101")
        index = {row["LITM"].strip(): row["ITM"] for row in table.scan(table.group_ids)}
        store.item_numbers = index  # type: ignore[attr-defined]
    return index


ITEM_FIELDS = (
    ("Description", "DSC1", 30),
    ("Description2", "DSC2", 30),
    ("SearchText", "SRTX", 30),
    ("StockingType", "STKT", 1),
    ("UnitOfMeasure", "UOM1", 2),
    ("GLClass", "GLPT", 4),
    ("SalesCategory1", "SRP1", 3),
)


def upsert_item(store: Store, inputs: dict[str, Any], context: Context) -> dict[str, Any]:
    item_number = _text(inputs, "ItemNumber", 25, required=True)
    changes: dict[str, str] = {}
    for field, alias, size in ITEM_FIELDS:
        if inputs.get(field) is not None:
            changes[alias] = _text(inputs, field, size)
    if "STKT" in changes and changes["STKT"].upper() not in STOCKING_TYPES:
        raise BusinessError(
            "5522", "Stocking Type Invalid", "StockingType", f"{changes['STKT']!r} is not in UDC 41/I"
        )
    if "UOM1" in changes and changes["UOM1"].upper() not in UNITS_OF_MEASURE:
        raise BusinessError(
            "5523", "Unit of Measure Invalid", "UnitOfMeasure", f"{changes['UOM1']!r} is not in UDC 00/UM"
        )
    if "GLPT" in changes and changes["GLPT"].upper() not in GL_CLASSES:
        raise BusinessError("5524", "G/L Class Invalid", "GLClass", f"{changes['GLPT']!r} is not in UDC 41/9")
    for alias in ("STKT", "UOM1", "GLPT"):
        if alias in changes:
            changes[alias] = changes[alias].upper()
    index = _item_index(store)
    table = store.table("F4101")
    short = index.get(item_number)
    if short is None:
        if not changes.get("DSC1"):
            raise BusinessError(
                "0001", "Required Field Missing", "Description", "a new item needs a description"
            )
        short = store.next_item_number
        store.next_item_number += 3
        row = _stamp(
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
            },
            context,
            "P4101",
        )
        table.replace_group(short, [row])
        index[item_number] = short
        action = "CREATED"
    else:
        row = dict(table.rows_of(short)[0])
        changed = False
        for alias, value in changes.items():
            stored = value.ljust(4) if alias == "GLPT" else value.ljust(3) if alias == "SRP1" else value
            if row[alias].rstrip() != stored.rstrip():
                row[alias] = stored
                changed = True
        if changed:
            table.replace_group(short, [_stamp(row, context, "P4101")])
        action = "UPDATED" if changed else "UNCHANGED"
    return {"ShortItemNumber": str(short), "ItemNumber": item_number, "Action": action}


ORCHESTRATIONS: dict[str, Orchestration] = {
    o.name: o
    for o in (
        Orchestration(
            "ORCH_55_CreateCustomerInvoice",
            "Create a standard A/R invoice (F03B11 pay items + F0911 G/L distribution); "
            "ExternalReference (VR01) must be unique per company",
            (
                ("CustomerNumber", "Numeric"),
                ("Company", "String"),
                ("InvoiceDate", "Date"),
                ("GLDate", "Date"),
                ("DueDate", "Date"),
                ("CurrencyCode", "String"),
                ("ExternalReference", "String"),
                ("PurchaseOrder", "String"),
                ("Remark", "String"),
                ("PayItems", "Array"),
                ("GLDistribution", "Array"),
            ),
            create_customer_invoice,
        ),
        Orchestration(
            "ORCH_55_CreateReceipt",
            "Create a receipt (F03B13) and apply it to invoices (F03B14); "
            "ReceiptNumber must be unique per customer",
            (
                ("CustomerNumber", "Numeric"),
                ("Company", "String"),
                ("ReceiptNumber", "String"),
                ("ReceiptDate", "Date"),
                ("GLDate", "Date"),
                ("Amount", "Numeric"),
                ("CurrencyCode", "String"),
                ("BankAccount", "String"),
                ("Remark", "String"),
                ("Applications", "Array"),
            ),
            create_receipt,
        ),
        Orchestration(
            "ORCH_55_UpsertItem",
            "Create an item (F4101) or update it, found by its 2nd item number (LITM)",
            (("ItemNumber", "String"), *((field, "String") for field, _, _ in ITEM_FIELDS)),
            upsert_item,
        ),
    )
}
