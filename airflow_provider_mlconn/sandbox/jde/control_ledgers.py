"""``/_sandbox/`` edits of the chart of accounts, items, prices and the ledgers: what a person does at a
JDE screen, so the GL-account, item and A/R status flows can be tested incrementally.

Like the edits in ``control``, each stamps what it writes with now in the server's zone (UPMJ and
UPMT, or TDAY for F4106/F42119), USER from the body and the program a person would use (P0901
accounts, P0006 business units, P4101 items, P4106 prices, P03B102 receipts, P03B11 credit memos,
R42800 Sales Update), and answers ``{"touched": [...]}``. Documents take DOC, PYID and DOCO from the
same next numbers as the orchestrations. A refused edit answers 404 (unknown key), 409 (key exists)
or 422 (a JDE rule, with the error code the orchestrations use) and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from airflow_provider_mlconn.sandbox.jde import postings
from airflow_provider_mlconn.sandbox.jde.calendar import julian_to_ais, to_julian
from airflow_provider_mlconn.sandbox.jde.control import Edit
from airflow_provider_mlconn.sandbox.jde.inputs import (
    CURRENCY_DECIMALS,
    BusinessError,
    account,
    money,
    to_date,
)
from airflow_provider_mlconn.sandbox.jde.items import (
    PRICE_DECIMALS,
    add_item,
    check_codes,
    item_index,
    price_in_effect,
    set_base_price,
)
from airflow_provider_mlconn.sandbox.jde.postings import Application, PayItem
from airflow_provider_mlconn.sandbox.jde.schema import TABLES
from airflow_provider_mlconn.sandbox.jde.seed import (
    COMPANIES,
    PAYMENT_TERMS,
    SALES_ORDER_BASE,
    Row,
    pad,
    right_justify,
)

router = APIRouter(prefix="/_sandbox")

POSTING_EDIT_CODES = {" ", "B", "I", "K", "L", "M", "N", "P", "S", "U", "X"}  # UDC H00/PE
COMPANY_ADDRESS = {"00001": 1, "00200": 200}


@contextmanager
def refused_as_422() -> Iterator[None]:
    """A JDE rule the screen enforces answers 422 with the code and the field."""
    try:
        yield
    except BusinessError as error:
        raise HTTPException(422, f"{error.code} {error.title}: {error.field}: {error.text}") from None


# -- accounts and business units (P0901, P0006) --------------------------------------------------------


class NewAccount(BaseModel):
    company: str = "00001"
    business_unit: str = Field(max_length=12)
    object_account: str = Field(min_length=1, max_length=6)
    subsidiary: str = Field("", max_length=8)
    description: str = Field(max_length=30)
    posting_edit: str = Field(" ", max_length=1, description="UDC H00/PE; blank = postable")
    level_of_detail: str = Field("7", min_length=1, max_length=1)
    user: str = "JDEUSER"


class AccountChange(BaseModel):
    description: str | None = Field(None, max_length=30)
    posting_edit: str | None = Field(None, max_length=1, description="N or I locks, blank unlocks")
    user: str = "JDEUSER"


class NewBusinessUnit(BaseModel):
    business_unit: str = Field(min_length=1, max_length=12)
    description: str = Field(max_length=30)
    company: str = "00001"
    type: str = Field("", max_length=2, description="F0006.STYL, e.g. WH")
    level_of_detail: str = Field("3", min_length=1, max_length=1)
    user: str = "JDEUSER"


class BusinessUnitChange(BaseModel):
    description: str | None = Field(None, max_length=30)
    type: str | None = Field(None, max_length=2)
    user: str = "JDEUSER"


def _posting_edit(code: str) -> str:
    code = (code or " ").upper()
    if code not in POSTING_EDIT_CODES:
        raise HTTPException(422, f"posting edit code {code!r} is not in UDC H00/PE")
    return code


@router.post("/accounts", status_code=201)
async def add_account(request: Request, body: NewAccount) -> dict[str, Any]:
    """A new account (F0901) as P0901 adds it: the next AID; (MCU, OBJ, SUB) must be new and the
    business unit must belong to the company."""
    edit = Edit(request, body.user)
    store = edit.sandbox.store
    company = body.company.zfill(5)
    units = {r["MCU"].strip(): r for r in edit.rows("F0006", 0)}
    unit = units.get(body.business_unit.strip())
    if unit is None:
        raise HTTPException(404, f"business unit {body.business_unit} is not in F0006")
    if unit["CO"] != company:
        raise HTTPException(422, f"business unit {body.business_unit} belongs to company {unit['CO']}")
    if store.account_for(company, body.business_unit, body.object_account, body.subsidiary) is not None:
        raise HTTPException(
            409, f"account {body.business_unit}.{body.object_account}.{body.subsidiary} exists".rstrip(".")
        )
    aid = f"{store.next_account_id:08d}"
    store.next_account_id += 1
    row = TABLES["F0901"].blank()
    row.update(
        {
            "AID": aid, "CO": company, "MCU": right_justify(body.business_unit.strip()),
            "OBJ": body.object_account.strip().ljust(6), "SUB": body.subsidiary.strip().ljust(8),
            "DL01": body.description, "PEC": _posting_edit(body.posting_edit), "LDA": body.level_of_detail,
        }
    )  # fmt: skip
    edit.save("F0901", 0, [*edit.rows("F0901", 0), edit.stamp("F0901", row, "P0901")])
    return edit.result(account_id=aid)


@router.patch("/accounts/{account_id}")
async def change_account(request: Request, account_id: str, body: AccountChange) -> dict[str, Any]:
    """Rename an account (DL01) or lock/unlock it (PEC: N non-posting, I inactive, blank postable)."""
    edit = Edit(request, body.user)
    accounts = edit.rows("F0901", 0)
    row = next((r for r in accounts if r["AID"] == account_id.zfill(8)), None)
    if row is None:
        raise HTTPException(404, f"no account with account id {account_id}")
    if body.description is not None:
        row["DL01"] = body.description
    if body.posting_edit is not None:
        row["PEC"] = _posting_edit(body.posting_edit)
    edit.stamp("F0901", row, "P0901")
    edit.save("F0901", 0, accounts)
    return edit.result(account_id=row["AID"])


@router.post("/business-units", status_code=201)
async def add_business_unit(request: Request, body: NewBusinessUnit) -> dict[str, Any]:
    """A new business unit (F0006) as P0006 adds it."""
    edit = Edit(request, body.user)
    company = body.company.zfill(5)
    if company not in COMPANIES:
        raise HTTPException(422, f"company {company} does not exist (known: {sorted(COMPANIES)})")
    units = edit.rows("F0006", 0)
    if any(r["MCU"].strip() == body.business_unit.strip() for r in units):
        raise HTTPException(409, f"business unit {body.business_unit} exists")
    row = TABLES["F0006"].blank()
    row.update(
        {
            "MCU": right_justify(body.business_unit.strip()), "STYL": pad(body.type, 2),
            "LDM": body.level_of_detail, "CO": company, "AN8": COMPANY_ADDRESS.get(company, 0),
            "DL01": body.description,
        }
    )  # fmt: skip
    edit.save("F0006", 0, [*units, edit.stamp("F0006", row, "P0006")])
    return edit.result(business_unit=body.business_unit.strip())


@router.patch("/business-units/{business_unit}")
async def change_business_unit(
    request: Request, business_unit: str, body: BusinessUnitChange
) -> dict[str, Any]:
    """Rename a business unit (DL01) or change its type (STYL)."""
    edit = Edit(request, body.user)
    units = edit.rows("F0006", 0)
    row = next((r for r in units if r["MCU"].strip() == business_unit.strip()), None)
    if row is None:
        raise HTTPException(404, f"business unit {business_unit} is not in F0006")
    if body.description is not None:
        row["DL01"] = body.description
    if body.type is not None:
        row["STYL"] = pad(body.type, 2)
    edit.stamp("F0006", row, "P0006")
    edit.save("F0006", 0, units)
    return edit.result(business_unit=business_unit.strip())


# -- items and prices (P4101, P4106) --------------------------------------------------------------------


class PriceIn(BaseModel):
    price: Decimal = Field(gt=0, description="per unit; at most 4 decimals (F4106.UPRC)")
    currency: str = Field("USD", min_length=3, max_length=3)
    unit_of_measure: str | None = Field(None, max_length=2, description="default: the item's primary UOM")
    business_unit: str = Field("", max_length=12, description="blank: all branches")
    effective_date: date | None = Field(None, description="default: today")
    user: str = "JDEUSER"


class NewItem(BaseModel):
    item_number: str = Field(min_length=1, max_length=25, description="2nd item number (LITM)")
    description: str = Field(min_length=1, max_length=30)
    description2: str = Field("", max_length=30)
    search_text: str | None = Field(None, max_length=30)
    stocking_type: str = Field("S", max_length=1)
    unit_of_measure: str = Field("EA", max_length=2)
    gl_class: str = Field("IN30", max_length=4)
    price: Decimal | None = Field(None, gt=0, description="a base price for all branches, from today")
    currency: str = Field("USD", min_length=3, max_length=3)
    user: str = "JDEUSER"


def _price(value: Decimal) -> int:
    if value != value.quantize(Decimal(1).scaleb(-PRICE_DECIMALS)):
        raise HTTPException(422, f"price {value} has more than {PRICE_DECIMALS} decimals")
    return int(value.scaleb(PRICE_DECIMALS))


def _currency(code: str) -> str:
    if code.upper() not in CURRENCY_DECIMALS:
        raise HTTPException(422, f"{code} is not a currency code")
    return code.upper()


@router.post("/items", status_code=201)
async def add_item_with_price(request: Request, body: NewItem) -> dict[str, Any]:
    """A new item (F4101, next short item number) and, with ``price``, its base price (F4106)."""
    edit = Edit(request, body.user)
    store = edit.sandbox.store
    if body.item_number.strip() in item_index(store):
        raise HTTPException(409, f"item {body.item_number} exists")
    changes = {
        "DSC1": body.description, "DSC2": body.description2, "STKT": body.stocking_type,
        "UOM1": body.unit_of_measure, "GLPT": body.gl_class,
    }  # fmt: skip
    if body.search_text is not None:
        changes["SRTX"] = body.search_text
    names = {"STKT": "stocking_type", "UOM1": "unit_of_measure", "GLPT": "gl_class"}
    with refused_as_422():
        check_codes(changes, names)
    price = _price(body.price) if body.price is not None else None
    currency = _currency(body.currency)
    item = add_item(store, edit.context, body.item_number.strip(), changes)
    if price is not None:
        set_base_price(
            store, edit.context, item=item, price=price, currency=currency, unit_of_measure=item["UOM1"],
            business_unit="", effective=edit.context.today,
        )  # fmt: skip
    return edit.result(short_item_number=item["ITM"])


@router.post("/items/{short_item_number}/prices")
async def set_item_price(request: Request, short_item_number: int, body: PriceIn) -> dict[str, Any]:
    """A new base price from ``effective_date`` on (P4106): the row in effect then ends the day
    before; a row starting that very day is corrected in place."""
    edit = Edit(request, body.user)
    items = edit.rows("F4101", short_item_number)
    if not items:
        raise HTTPException(404, f"no item with short item number {short_item_number}")
    unit_of_measure = (body.unit_of_measure or items[0]["UOM1"]).upper()
    effective = to_julian(body.effective_date) if body.effective_date else edit.context.today
    set_base_price(
        edit.sandbox.store, edit.context, item=items[0], price=_price(body.price),
        currency=_currency(body.currency), unit_of_measure=unit_of_measure,
        business_unit=body.business_unit.strip(), effective=effective,
    )  # fmt: skip
    return edit.result(short_item_number=short_item_number, effective_date=julian_to_ais(effective))


# -- accounting (P03B102, P03B11, R42800) --------------------------------------------------------------


class DocumentIn(BaseModel):
    document_number: int
    document_type: str = Field("RI", max_length=2)
    document_company: str | None = None


class ApplicationIn(DocumentIn):
    pay_item: str = Field("", max_length=3)
    amount: Decimal | None = Field(None, description="default: what the document has open (less write_off)")
    write_off: Decimal = Field(Decimal(0), ge=0, description="closed without payment (F03B14.AWAT)")
    write_off_reason: str = Field("", max_length=2, description="F03B14.RSCO, e.g. BD (bad debt)")


class NewReceipt(BaseModel):
    customer: int
    receipt_number: str = Field(min_length=1, max_length=25)
    applications: list[ApplicationIn] = Field(min_length=1)
    amount: Decimal | None = Field(None, description="default: the sum applied")
    company: str | None = Field(None, description="default: the first invoice's company")
    receipt_date: date | None = None
    gl_date: date | None = None
    remark: str = Field("", max_length=30)
    user: str = "JDEUSER"


class NewCreditMemo(BaseModel):
    customer: int
    invoice: DocumentIn
    amount: Decimal = Field(gt=0, description="positive; stored negative")
    tax: Decimal = Field(Decimal(0), ge=0)
    account: str | None = Field(None, description="BU.Object[.Sub]; default: the company's BU.4900")
    reference: str = Field("", max_length=25)
    remark: str = Field("", max_length=30)
    memo_date: date | None = None
    apply: bool = Field(True, description="net it against the invoice on a zero-amount receipt")
    user: str = "JDEUSER"


class SalesLineIn(BaseModel):
    item: str = Field(description="2nd item number (LITM) or short item number")
    quantity: int = Field(gt=0)
    unit_price: Decimal | None = Field(None, gt=0, description="default: the base price in effect")


class NewSalesInvoice(BaseModel):
    customer: int
    lines: list[SalesLineIn] = Field(min_length=1)
    company: str | None = Field(None, description="default: the customer's first company")
    invoice_date: date | None = None
    reference: str = Field("", max_length=25, description="F03B11/F42119.VR01")
    user: str = "JDEUSER"


def _hundredths(value: Decimal, currency: str) -> int:
    decimals = CURRENCY_DECIMALS[currency]
    if value != value.quantize(Decimal(1).scaleb(-decimals)):
        raise HTTPException(422, f"{value} has more than {decimals} decimals for {currency}")
    return int(value.scaleb(2))


def _customer_master(edit: Edit, an8: int, company: str | None) -> tuple[Row, Row]:
    book = edit.rows("F0101", an8)
    if not book or book[0]["AT1"].strip() != "C":
        raise HTTPException(404, f"address number {an8} is not a customer")
    masters = edit.rows("F03012", an8)
    master = next((m for m in masters if company is None or m["CO"] == company.zfill(5)), None)
    if master is None:
        raise HTTPException(422, f"5501 Customer Not Set Up: {an8} has no customer master for {company}")
    return book[0], master


def _document(edit: Edit, an8: int, document: DocumentIn) -> list[Row]:
    """The document's pay items; without a document company, looked for in the customer's companies."""
    companies = [document.document_company.zfill(5)] if document.document_company else []
    companies += [m["CO"] for m in edit.rows("F03012", an8)]
    dct = document.document_type.upper()
    for kco in dict.fromkeys(companies):
        rows = postings.document_rows(edit.sandbox.store, document.document_number, dct, kco)
        if rows:
            if rows[0]["AN8"] != an8:
                raise HTTPException(
                    422, f"5514 document {document.document_number} belongs to customer {rows[0]['AN8']}"
                )
            return rows
    raise HTTPException(404, f"customer {an8} has no document {document.document_number} {dct}")


@router.post("/receipts", status_code=201)
async def key_receipt(request: Request, body: NewReceipt) -> dict[str, Any]:
    """A receipt keyed in P03B102 for invoices: F03B13/F03B14, the invoices' open amount and pay
    status (F03B11), unapplied cash as an RU document, and the journal entry (F0911)."""
    edit = Edit(request, body.user)
    _customer_master(edit, body.customer, body.company)
    documents = [_document(edit, body.customer, application) for application in body.applications]
    company = (body.company or documents[0][0]["KCO"]).zfill(5)
    _customer_master(edit, body.customer, company)
    currency = documents[0][0]["CRCD"]
    applications = []
    for index, (application, rows) in enumerate(zip(body.applications, documents, strict=True)):
        pay_item = application.pay_item.zfill(3) if application.pay_item else ""
        open_amount = sum(r["AAP"] for r in rows if not pay_item or r["SFX"] == pay_item)
        write_off = _hundredths(application.write_off, currency)
        value = (
            _hundredths(application.amount, currency)
            if application.amount is not None
            else open_amount - write_off
        )
        applications.append(
            Application(
                rows[0]["DOC"],
                rows[0]["DCT"],
                rows[0]["KCO"],
                pay_item,
                value,
                f"applications[{index}]",
                write_off=write_off,
                write_off_reason=application.write_off_reason.upper(),
            )
        )
    received = (
        _hundredths(body.amount, currency) if body.amount is not None else sum(a.amount for a in applications)
    )
    today = edit.context.today
    receipt_date = to_julian(body.receipt_date) if body.receipt_date else today
    bank = edit.sandbox.store.account_for(company, COMPANIES[company][1], "1110")
    assert bank is not None
    with refused_as_422():
        receipt = postings.post_receipt(
            edit.sandbox.store, edit.context, an8=body.customer, company=company,
            receipt_number=body.receipt_number, receipt_date=receipt_date,
            gl_date=to_julian(body.gl_date) if body.gl_date else receipt_date, amount=received,
            currency=currency, bank=bank, remark=body.remark, applications=applications, program="P03B102",
        )  # fmt: skip
    extra: dict[str, Any] = {"payment_id": receipt.header["PYID"]}
    if receipt.unapplied_document is not None:
        extra["unapplied_document_number"] = receipt.unapplied_document["DOC"]
    return edit.result(**extra)


class VoidIn(BaseModel):
    void_date: date | None = Field(None, description="default: today")
    reason: str = Field("", max_length=3, description="void reason code (UDC 03B/VR)")
    user: str = "JDEUSER"


@router.post("/receipts/{payment_id}/void")
async def void_keyed_receipt(request: Request, payment_id: int, body: VoidIn) -> dict[str, Any]:
    """Void a receipt in P03B102 (a receipt keyed twice, a bounced cheque): its lines reversed, the
    invoices it paid open again, its unapplied cash voided, its journal entry reversed."""
    edit = Edit(request, body.user)
    header = postings.receipt_header(edit.sandbox.store, payment_id)
    if header is None:
        raise HTTPException(404, f"no receipt with payment id {payment_id}")
    with refused_as_422():
        voided = postings.void_receipt(
            edit.sandbox.store, edit.context, header=header,
            void_date=to_julian(body.void_date) if body.void_date else edit.context.today,
            reason=(body.reason or "DUP").upper(), field_name="payment_id", program="P03B102",
        )  # fmt: skip
    return edit.result(payment_id=payment_id, reopened=[row["DOC"] for row in voided.reopened])


class InvoiceLineIn(BaseModel):
    amount: Decimal = Field(ge=0, description="revenue of the line, in the customer's currency")
    account: str | None = Field(None, description="BU.Object[.Sub]; default: the company's BU.4110")
    remark: str = Field("", max_length=30, description="F0911.EXR")


class NewInvoice(BaseModel):
    customer: int
    lines: list[InvoiceLineIn] = Field(min_length=1)
    tax: Decimal = Field(Decimal(0), ge=0)
    company: str | None = Field(None, description="default: the customer's first company")
    invoice_date: date | None = None
    due_date: date | None = Field(None, description="default: invoice date + the customer's terms")
    reference: str = Field("", max_length=25, description="F03B11.VR01")
    purchase_order: str = Field("", max_length=8)
    remark: str = Field("", max_length=30)
    user: str = "JDEUSER"


@router.post("/invoices", status_code=201)
async def enter_invoice(request: Request, body: NewInvoice) -> dict[str, Any]:
    """A standard invoice entered in P03B11 (no sales order): one RI pay item for the lines plus tax
    (F03B11, next DOC, due by the customer's terms) and a revenue line per line (F0911, credit)."""
    edit = Edit(request, body.user)
    store = edit.sandbox.store
    book, master = _customer_master(edit, body.customer, body.company)
    company, currency = master["CO"], master["CRCD"]
    with refused_as_422():
        accounts = [
            account(
                store, company, line.account or f"{COMPANIES[company][1]}.4110", f"lines[{index}].account"
            )
            for index, line in enumerate(body.lines)
        ]
    amounts = [_hundredths(line.amount, currency) for line in body.lines]
    tax = _hundredths(body.tax, currency)
    day = to_julian(body.invoice_date) if body.invoice_date else edit.context.today
    terms = master["TRAR"].strip() or "N30"
    due = (
        to_julian(body.due_date)
        if body.due_date
        else to_julian(to_date(day) + timedelta(days=PAYMENT_TERMS.get(terms, 30)))
    )
    doc, batch = store.take_document_number(), store.take_batch_number()
    postings.ar_document(
        store, edit.context, doc=doc, dct="RI", company=company, an8=body.customer, master=master,
        pay_items=[PayItem(sum(amounts) + tax, tax, due, "")], invoice_date=day, gl_date=day,
        currency=currency, reference=body.reference, purchase_order=body.purchase_order,
        remark=body.remark, batch=batch, program="P03B11",
    )  # fmt: skip
    revenue = [
        (target, -amount, line.remark)
        for target, amount, line in zip(accounts, amounts, body.lines, strict=True)
    ]
    postings.journal(
        store, edit.context, company=company, dct="RI", doc=doc, gl_date=day, batch=batch, batch_type="IB",
        lines=revenue, an8=body.customer, explanation=book["ALPH"], currency=currency, remark=body.remark,
        program="P03B11",
    )  # fmt: skip
    return edit.result(document_number=doc, document_type="RI", document_company=company)


class DocumentVoid(DocumentIn):
    customer: int
    void_date: date | None = Field(None, description="default: today")
    user: str = "JDEUSER"


@router.post("/documents/void")
async def void_document(request: Request, body: DocumentVoid) -> dict[str, Any]:
    """Void an invoice or credit memo in P03B11: every pay item gets VOD = V, the void date and no open
    amount, and the journal entry is reversed on the void date. JDE refuses to void a document that
    has receipts applied (void the receipts first)."""
    edit = Edit(request, body.user)
    store = edit.sandbox.store
    items = _document(edit, body.customer, body)
    if any(item["VOD"].strip() for item in items):
        raise HTTPException(422, f"5561 Document Already Voided: {body.document_number} {body.document_type}")
    if any(item["AAP"] != item["AG"] for item in items):
        raise HTTPException(
            422,
            f"5560 Receipts Applied: document {body.document_number} has receipts applied; void them first",
        )
    day = to_julian(body.void_date) if body.void_date else edit.context.today
    doc, dct, company = items[0]["DOC"], items[0]["DCT"], items[0]["KCO"]
    group = doc // 10
    ledger = [dict(r) for r in edit.rows("F03B11", group)]
    for row in ledger:
        if (row["DOC"], row["DCT"], row["KCO"]) == (doc, dct, company):
            row.update(VOD="V", VDGJ=day, AAP=0, FAP=0, PST="P")
            edit.stamp("F03B11", row, "P03B11")
    edit.save("F03B11", group, ledger)
    gl = store.table("F0911")
    gl_group = (company, dct, group)
    entry = [r for r in (gl.rows_of(gl_group) if gl.has_group(gl_group) else []) if r["DOC"] == doc]
    accounts = {r["AID"]: r for r in store.table("F0901").rows_of(0)}
    if entry:
        batch = store.take_batch_number()
        reversal = [(accounts.get(r["AID"], r), -r["AA"], r["EXR"]) for r in entry]
        postings.journal(
            store, edit.context, company=company, dct=dct, doc=doc, gl_date=day, batch=batch, batch_type="IB",
            lines=reversal, an8=body.customer, explanation=entry[0]["EXA"], currency=entry[0]["CRCD"],
            remark="Void", program="P03B11", first_line=max(r["JELN"] for r in entry) // 10 + 1,
        )  # fmt: skip
    return edit.result(document_number=doc, document_type=dct, document_company=company)


@router.post("/credit-memos", status_code=201)
async def post_credit_memo(request: Request, body: NewCreditMemo) -> dict[str, Any]:
    """A credit memo entered against an invoice in P03B11 (DCT RM, negative, ODOC = the invoice;
    G/L debit to ``account``), and with ``apply`` netted against the invoice on a zero-amount
    receipt (P03B102, matching document type RS), as JDE applies credit memos."""
    edit = Edit(request, body.user)
    store = edit.sandbox.store
    book, _ = _customer_master(edit, body.customer, None)
    invoice = _document(edit, body.customer, body.invoice)
    company, currency = invoice[0]["KCO"], invoice[0]["CRCD"]
    _, master = _customer_master(edit, body.customer, company)
    credit, tax = _hundredths(body.amount, currency), _hundredths(body.tax, currency)
    open_amount = sum(r["AAP"] for r in invoice)
    if body.apply and credit > open_amount:
        raise HTTPException(
            422, f"5515 Amount Exceeds Open Amount: the invoice has {money(open_amount)} open"
        )
    with refused_as_422():
        target = account(store, company, body.account or f"{COMPANIES[company][1]}.4900", "account")
    day = to_julian(body.memo_date) if body.memo_date else edit.context.today
    doc, batch = store.take_document_number(), store.take_batch_number()
    links = {"ODOC": invoice[0]["DOC"], "ODCT": invoice[0]["DCT"], "OKCO": company, "OSFX": invoice[0]["SFX"]}
    memo = postings.ar_document(
        store, edit.context, doc=doc, dct="RM", company=company, an8=body.customer, master=master,
        pay_items=[PayItem(-credit, -tax, day, "")], invoice_date=day, gl_date=day, currency=currency,
        reference=body.reference, purchase_order="", remark=body.remark, batch=batch, program="P03B11",
        links=links,
    )  # fmt: skip
    postings.journal(
        store, edit.context, company=company, dct="RM", doc=doc, gl_date=day, batch=batch, batch_type="IB",
        lines=[(target, credit - tax, "")], an8=body.customer, explanation=book["ALPH"], currency=currency,
        remark=body.remark, program="P03B11",
    )  # fmt: skip
    extra: dict[str, Any] = {"document_number": doc, "document_type": "RM", "document_company": company}
    if body.apply:
        bank = store.account_for(company, COMPANIES[company][1], "1110")
        assert bank is not None
        with refused_as_422():
            receipt = postings.post_receipt(
                store, edit.context, an8=body.customer, company=company, receipt_number=f"RM{doc}",
                receipt_date=day, gl_date=day, amount=0, currency=currency, bank=bank, remark=body.remark,
                applications=[
                    Application(invoice[0]["DOC"], invoice[0]["DCT"], company, "", credit, "invoice"),
                    Application(doc, "RM", company, memo[0]["SFX"], -credit, "credit memo"),
                ],
                program="P03B102",
            )  # fmt: skip
        extra["payment_id"] = receipt.header["PYID"]
    return edit.result(**extra)


@router.post("/sales-invoices", status_code=201)
async def invoice_sales_order(request: Request, body: NewSalesInvoice) -> dict[str, Any]:
    """A sales order billed by Sales Update (R42800): F42119 lines (DCTO SO, next DOCO), one RI
    invoice (F03B11, next DOC, SDOC = the order) and revenue lines to the branch's 4110 (F0911).
    Prices default to the item's base price in effect on the invoice date."""
    edit = Edit(request, body.user)
    store = edit.sandbox.store
    book, master = _customer_master(edit, body.customer, body.company)
    company, currency = master["CO"], master["CRCD"]
    branch = COMPANIES[company][1]
    day = to_julian(body.invoice_date) if body.invoice_date else edit.context.today
    revenue = store.account_for(company, branch, "4110")
    assert revenue is not None
    priced: list[tuple[Row, int, int, int]] = []  # (item, quantity, unit price, extended amount)
    index = item_index(store)
    for line in body.lines:
        itm = index.get(line.item.strip()) or (int(line.item) if line.item.strip().isdigit() else None)
        items = edit.rows("F4101", itm) if itm is not None else []
        if not items:
            raise HTTPException(404, f"no item {line.item}")
        item = items[0]
        if line.unit_price is not None:
            unit_price = _price(line.unit_price)
        else:
            base = price_in_effect(
                store, item["ITM"], currency=currency, unit_of_measure=item["UOM1"], day=day
            )
            if base is None:
                raise HTTPException(
                    422, f"item {item['LITM']} has no {currency} base price on {to_date(day)}"
                )
            unit_price = base["UPRC"]
        exact = Decimal(unit_price * line.quantity).scaleb(-PRICE_DECIMALS)
        rounded = exact.quantize(Decimal(1).scaleb(-CURRENCY_DECIMALS[currency]), rounding=ROUND_HALF_UP)
        priced.append((item, line.quantity, unit_price, int(rounded.scaleb(2))))
    order, doc, batch = (
        store.take_sales_order_number(),
        store.take_document_number(),
        store.take_batch_number(),
    )
    links = {"SDOC": order, "SDCT": "SO", "SKCO": company}
    terms = master["TRAR"].strip() or "N30"
    due = to_julian(to_date(day) + timedelta(days=PAYMENT_TERMS.get(terms, 30)))
    total = sum(extended for *_, extended in priced)
    postings.ar_document(
        store, edit.context, doc=doc, dct="RI", company=company, an8=body.customer, master=master,
        pay_items=[PayItem(total, 0, due, "")], invoice_date=day, gl_date=day, currency=currency,
        reference=body.reference, purchase_order="", remark="", batch=batch, program="R42800", links=links,
    )  # fmt: skip
    lines = []
    for number, (item, quantity, unit_price, extended) in enumerate(priced, start=1):
        row = TABLES["F42119"].blank()
        row.update(
            {
                "DOCO": order, "DCTO": "SO", "KCOO": company, "LNID": number * 1000,
                "MCU": right_justify(branch), "CO": company, "AN8": body.customer, "SHAN": body.customer,
                "TRDJ": day, "IVD": day, "DGL": day, "ITM": item["ITM"], "LITM": item["LITM"],
                "DSC1": item["DSC1"], "LNTY": item["LNTY"], "UOM": item["UOM1"], "UORG": quantity,
                "UPRC": unit_price, "AEXP": extended, "CRCD": currency, "LTTR": "620", "NXTR": "999",
                "DOC": doc, "DCT": "RI", "KCO": company, "VR01": body.reference,
            }
        )  # fmt: skip
        lines.append(edit.stamp("F42119", row, "R42800"))
    store.append("F42119", (order - SALES_ORDER_BASE) // 10, lines)
    postings.journal(
        store, edit.context, company=company, dct="RI", doc=doc, gl_date=day, batch=batch, batch_type="IB",
        lines=[(revenue, -extended, item["LITM"]) for item, _, _, extended in priced], an8=body.customer,
        explanation=book["ALPH"], currency=currency, remark="", program="R42800",
    )  # fmt: skip
    return edit.result(order_number=order, document_number=doc, document_company=company)
