"""The write orchestrations a JDE administrator published for the HubSpot -> JDE flows.

Each takes Generic (flat JSON) inputs, validates them the way the underlying application would
(P03B11 Standard Invoice Entry, P03B102 Standard Receipts Entry, P0411 Standard Voucher Entry, P4101
Item Master), writes the tables, and returns its published outputs. A business rule that fails
raises ``BusinessError``; the app turns it into the AIS ``ServiceErrorResponse`` (HTTP 500) with
``errorText`` = ``"<code> <title>"`` and ``userDefinedErrorText`` = ``"<input field>: <what is wrong>"``
(the step's custom error message). The duplicate checks on external references are the
administrator's own lookup steps: ``Context.duplicate_check`` off (``--no-duplicate-check``) models an
orchestration built without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow_provider_mlconn.sandbox.jde import postings
from airflow_provider_mlconn.sandbox.jde.calendar import format_user_date, to_julian
from airflow_provider_mlconn.sandbox.jde.inputs import (
    BusinessError,
    Context,
    account,
    amount,
    company_code,
    currency_code,
    customer,
    distribution,
    entries,
    julian,
    money,
    number,
    record,
    supplier,
    text,
    to_date,
    within,
)
from airflow_provider_mlconn.sandbox.jde.items import add_item, check_codes, item_index
from airflow_provider_mlconn.sandbox.jde.postings import Application, PayItem
from airflow_provider_mlconn.sandbox.jde.schema import TABLES
from airflow_provider_mlconn.sandbox.jde.seed import COMPANIES, PAYMENT_TERMS, Row, pad, right_justify
from airflow_provider_mlconn.sandbox.jde.store import Store

__all__ = ["ORCHESTRATIONS", "BusinessError", "Context", "Orchestration"]


@dataclass(frozen=True)
class Orchestration:
    name: str
    description: str
    inputs: tuple[tuple[str, str], ...]
    run: Callable[[Store, dict[str, Any], Context], dict[str, Any]]


def _pay_items(
    inputs: dict[str, Any], context: Context, currency: str, due_date: int, *, sign: int
) -> list[PayItem]:
    """``PayItems`` as entered (positive amounts), stored with ``sign`` (-1 on a credit memo)."""
    items = entries(inputs, "PayItems", required=True)
    if len(items) > 999:
        raise BusinessError("5508", "Too Many Pay Items", "PayItems", f"{len(items)} pay items; at most 999")
    result = []
    for index, item in enumerate(items):
        with within(f"PayItems[{index}]"):
            gross = amount(item, "GrossAmount", currency)
            tax = amount(item, "TaxAmount", currency, required=False) or 0
            assert gross is not None
            if gross == 0:
                raise BusinessError("5509", "Amount Required", "GrossAmount", "must not be zero")
            if sign < 0 and (gross < 0 or tax < 0):
                raise BusinessError(
                    "5510",
                    "Amount Must Be Positive",
                    "GrossAmount" if gross < 0 else "TaxAmount",
                    "enter credit memo amounts as positive numbers; JDE stores them negative",
                )
            remark = text(item, "Remark", 30)
            due = julian(item, "DueDate", context, required=False) or due_date
        result.append(PayItem(sign * gross, sign * tax, due, remark))
    return result


def _balanced(pay_items: list[PayItem], lines: list[tuple[Row, int, str]], sign: int) -> None:
    expected = sign * sum(item.gross - item.tax for item in pay_items)
    distributed = sum(value for _, value, _ in lines)
    if distributed != expected:
        raise BusinessError(
            "5503",
            "Distribution Out of Balance",
            "GLDistribution",
            f"lines total {money(distributed)} but the document needs {money(expected)} (gross less tax)",
        )


def _reference_index(store: Store) -> dict[tuple[str, str, str], tuple[int, str, str]]:
    """(company, DCT, VR01) -> document key over every invoice and credit memo; built on first use."""
    if store.invoice_references is None:
        index: dict[tuple[str, str, str], tuple[int, str, str]] = {}
        table = store.table("F03B11")
        for row in table.scan(table.group_ids):
            reference = row["VR01"].strip()
            if reference and row["DCT"] in ("RI", "RM"):
                index.setdefault((row["KCO"], row["DCT"], reference), (row["DOC"], row["DCT"], row["KCO"]))
        store.invoice_references = index
    return store.invoice_references


def _refuse_duplicate_reference(
    store: Store, context: Context, company: str, dct: str, reference: str, *, code: str, title: str
) -> None:
    existing = _reference_index(store).get((company, dct, reference))
    if existing is not None and context.duplicate_check:
        doc, kind, kco = existing
        noun = "invoice" if kind == "RI" else "credit memo"
        raise BusinessError(
            code, title, "ExternalReference", f"{reference} is already on {noun} {doc} {kind} {kco}"
        )


def _document_outputs(rows: list[Row], batch: int, reference: str) -> dict[str, Any]:
    first = rows[0]
    return {
        "DocumentNumber": str(first["DOC"]),
        "DocumentType": first["DCT"],
        "DocumentCompany": first["KCO"],
        "BatchNumber": str(batch),
        "PayItemCount": str(len(rows)),
        "GrossAmount": money(sum(r["AG"] for r in rows)),
        "ExternalReference": reference,
    }


# -- ORCH_55_CreateCustomerInvoice -----------------------------------------------------------------


def create_customer_invoice(store: Store, inputs: dict[str, Any], context: Context) -> dict[str, Any]:
    an8, company, book, master = customer(store, inputs)
    reference = text(inputs, "ExternalReference", 25, required=True)
    _refuse_duplicate_reference(
        store, context, company, "RI", reference, code="5502", title="Duplicate Invoice Reference"
    )
    invoice_date = julian(inputs, "InvoiceDate", context)
    assert invoice_date is not None
    gl_date = julian(inputs, "GLDate", context, required=False) or invoice_date
    terms = master["TRAR"].strip() or "N30"
    due_date = julian(inputs, "DueDate", context, required=False)
    if due_date is None:
        due_date = to_julian(to_date(invoice_date) + timedelta(days=PAYMENT_TERMS.get(terms, 30)))
    currency = currency_code(inputs, master["CRCD"])
    purchase_order = text(inputs, "PurchaseOrder", 8)
    remark = text(inputs, "Remark", 30)
    pay_items = _pay_items(inputs, context, currency, due_date, sign=1)
    lines = distribution(store, inputs, company, currency)
    _balanced(pay_items, lines, 1)
    doc, batch = store.take_document_number(), store.take_batch_number()
    rows = postings.ar_document(
        store, context, doc=doc, dct="RI", company=company, an8=an8, master=master, pay_items=pay_items,
        invoice_date=invoice_date, gl_date=gl_date, currency=currency, reference=reference,
        purchase_order=purchase_order, remark=remark, batch=batch, program="P03B11",
    )  # fmt: skip
    postings.journal(
        store, context, company=company, dct="RI", doc=doc, gl_date=gl_date, batch=batch, batch_type="IB",
        lines=[(acct, -value, line_remark) for acct, value, line_remark in lines], an8=an8,
        explanation=book["ALPH"], currency=currency, remark=remark, program="P03B11",
    )  # fmt: skip
    _reference_index(store).setdefault((company, "RI", reference), (doc, "RI", company))
    outputs = _document_outputs(rows, batch, reference)
    outputs["DueDate"] = format_user_date(due_date, context.simple_date_format)
    return outputs


# -- ORCH_55_CreateCreditMemo -----------------------------------------------------------------------


def create_credit_memo(store: Store, inputs: dict[str, Any], context: Context) -> dict[str, Any]:
    """A credit memo (DCT RM): amounts entered positive, stored negative; G/L lines debit the
    accounts given (returns, allowances, revenue); optionally tied to the invoice it credits."""
    an8, company, book, master = customer(store, inputs)
    reference = text(inputs, "ExternalReference", 25, required=True)
    _refuse_duplicate_reference(
        store, context, company, "RM", reference, code="5530", title="Duplicate Credit Memo Reference"
    )
    memo_date = julian(inputs, "InvoiceDate", context)
    assert memo_date is not None
    gl_date = julian(inputs, "GLDate", context, required=False) or memo_date
    currency = currency_code(inputs, master["CRCD"])
    remark = text(inputs, "Remark", 30)
    links: Row = {}
    original = record(inputs, "OriginalDocument")
    if original is not None:
        with within("OriginalDocument"):
            links = _original_document(store, original, an8, company, currency)
    pay_items = _pay_items(inputs, context, currency, memo_date, sign=-1)  # due at once
    lines = distribution(store, inputs, company, currency)
    _balanced(pay_items, lines, -1)
    doc, batch = store.take_document_number(), store.take_batch_number()
    rows = postings.ar_document(
        store, context, doc=doc, dct="RM", company=company, an8=an8, master=master, pay_items=pay_items,
        invoice_date=memo_date, gl_date=gl_date, currency=currency, reference=reference, purchase_order="",
        remark=remark, batch=batch, program="P03B11", links=links,
    )  # fmt: skip
    postings.journal(
        store, context, company=company, dct="RM", doc=doc, gl_date=gl_date, batch=batch, batch_type="IB",
        lines=lines, an8=an8,
        explanation=book["ALPH"], currency=currency, remark=remark, program="P03B11",
    )  # fmt: skip
    _reference_index(store).setdefault((company, "RM", reference), (doc, "RM", company))
    outputs = _document_outputs(rows, batch, reference)
    if links:
        outputs["OriginalDocument"] = {
            "DocumentNumber": str(links["ODOC"]),
            "DocumentType": links["ODCT"],
            "DocumentCompany": links["OKCO"],
        }
    return outputs


def _original_document(store: Store, original: dict[str, Any], an8: int, company: str, currency: str) -> Row:
    doc = number(original, "DocumentNumber")
    assert doc is not None
    dct = text(original, "DocumentType", 2, default="RI").upper()
    kco = text(original, "DocumentCompany", 5, default=company).zfill(5)
    items = postings.document_rows(store, doc, dct, kco)
    if not items:
        raise BusinessError("5513", "Invoice Not Found", "DocumentNumber", f"no document {doc} {dct} {kco}")
    if items[0]["AN8"] != an8:
        raise BusinessError(
            "5514",
            "Invoice Belongs To Another Customer",
            "DocumentNumber",
            f"document {doc} {dct} {kco} is for customer {items[0]['AN8']}, not {an8}",
        )
    if items[0]["CRCD"] != currency:
        raise BusinessError(
            "5517",
            "Currency Mismatch",
            "DocumentNumber",
            f"document {doc} is in {items[0]['CRCD']}, the credit memo in {currency}",
        )
    return {"ODOC": doc, "ODCT": dct, "OKCO": kco, "OSFX": items[0]["SFX"]}


# -- ORCH_55_CreateReceipt --------------------------------------------------------------------------


def create_receipt(store: Store, inputs: dict[str, Any], context: Context) -> dict[str, Any]:
    an8, company, _book, master = customer(store, inputs)
    receipt_number = text(inputs, "ReceiptNumber", 25, required=True)
    duplicate = postings.receipts_numbered(store, an8, receipt_number)
    if duplicate and context.duplicate_check:
        raise BusinessError(
            "5512",
            "Duplicate Receipt Number",
            "ReceiptNumber",
            f"{receipt_number} is already receipt (payment id) {duplicate[0]['PYID']} of customer {an8}",
        )
    receipt_date = julian(inputs, "ReceiptDate", context)
    assert receipt_date is not None
    gl_date = julian(inputs, "GLDate", context, required=False) or receipt_date
    currency = currency_code(inputs, master["CRCD"])
    received = amount(inputs, "Amount", currency)
    assert received is not None
    if received <= 0:
        raise BusinessError("5509", "Amount Required", "Amount", "a receipt amount must be positive")
    bank_text = text(inputs, "BankAccount", 29)
    bank = (
        account(store, company, bank_text, "BankAccount")
        if bank_text
        else store.account_for(company, COMPANIES[company][1], "1110")
    )
    assert bank is not None
    remark = text(inputs, "Remark", 30)
    applications = []
    for index, application in enumerate(entries(inputs, "Applications", required=False)):
        where = f"Applications[{index}]"
        with within(where):
            doc = number(application, "DocumentNumber")
            dct = text(application, "DocumentType", 2, default="RI").upper()
            kco = text(application, "DocumentCompany", 5, default=company).zfill(5)
            pay_item = text(application, "PayItem", 3)
            applied = amount(application, "Amount", currency)
        assert doc is not None and applied is not None
        if applied <= 0:
            raise BusinessError("5515", "Amount Exceeds Open Amount", f"{where}.Amount", "must be positive")
        applications.append(Application(doc, dct, kco, pay_item.zfill(3) if pay_item else "", applied, where))
    receipt = postings.post_receipt(
        store, context, an8=an8, company=company, receipt_number=receipt_number, receipt_date=receipt_date,
        gl_date=gl_date, amount=received, currency=currency, bank=bank, remark=remark,
        applications=applications, program="P03B102",
    )  # fmt: skip
    header = receipt.header
    outputs: dict[str, Any] = {
        "PaymentId": str(header["PYID"]),
        "ReceiptNumber": receipt_number,
        "BatchNumber": str(header["ICU"]),
        "AppliedAmount": money(header["CKAM"] - header["AAP"]),
        "UnappliedAmount": money(header["AAP"]),
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
            for item, part in receipt.applied
        ],
    }
    if receipt.unapplied_document is not None:
        outputs["UnappliedDocument"] = _key_outputs(receipt.unapplied_document)
    return outputs


def _key_outputs(row: Row) -> dict[str, str]:
    return {
        "DocumentNumber": str(row["DOC"]),
        "DocumentType": row["DCT"],
        "DocumentCompany": row["KCO"],
        "PayItem": row["SFX"],
        "OpenAmount": money(row["AAP"]),
        "PayStatus": row["PST"],
    }


# -- ORCH_55_VoidReceipt ----------------------------------------------------------------------------


def void_receipt(store: Store, inputs: dict[str, Any], context: Context) -> dict[str, Any]:
    """Void a receipt found by PaymentId, or by ReceiptNumber + CustomerNumber."""
    pyid = number(inputs, "PaymentId", required=False)
    if pyid is not None:
        header = postings.receipt_header(store, pyid)
        if header is None:
            raise BusinessError(
                "5550", "Receipt Not Found", "PaymentId", f"no receipt with payment id {pyid}"
            )
        field_name = "PaymentId"
    else:
        receipt_number = text(inputs, "ReceiptNumber", 25)
        if not receipt_number:
            raise BusinessError(
                "0001",
                "Required Field Missing",
                "PaymentId",
                "give PaymentId, or ReceiptNumber and CustomerNumber",
            )
        an8 = number(inputs, "CustomerNumber")
        assert an8 is not None
        found = postings.receipts_numbered(store, an8, receipt_number)
        if not found:
            raise BusinessError(
                "5550",
                "Receipt Not Found",
                "ReceiptNumber",
                f"customer {an8} has no receipt {receipt_number}",
            )
        live = [r for r in found if not r["VDGJ"]]
        if len(live) > 1:
            raise BusinessError(
                "5553",
                "Receipt Number Not Unique",
                "ReceiptNumber",
                f"{receipt_number} is on payment ids {', '.join(str(r['PYID']) for r in live)}; "
                "give PaymentId",
            )
        header = live[0] if live else found[0]
        field_name = "ReceiptNumber"
    void_date = julian(inputs, "VoidDate", context, required=False) or context.today
    reason = text(inputs, "VoidReason", 3, required=True).upper()
    voided = postings.void_receipt(
        store, context, header=header, void_date=void_date, reason=reason, field_name=field_name,
        program="P03B102",
    )  # fmt: skip
    outputs: dict[str, Any] = {
        "PaymentId": str(header["PYID"]),
        "ReceiptNumber": header["CKNU"].strip(),
        "VoidDate": format_user_date(void_date, context.simple_date_format),
        "VoidReason": reason,
        "ReversalLineCount": str(len(voided.reversals)),
        "ReopenedDocuments": [_key_outputs(row) for row in voided.reopened],
    }
    if voided.unapplied_document is not None:
        outputs["VoidedUnappliedDocument"] = _key_outputs(voided.unapplied_document)
    return outputs


# -- ORCH_55_CreateVoucher --------------------------------------------------------------------------


def _supplier_invoices(store: Store) -> dict[tuple[int, str], tuple[int, str, str]]:
    """(supplier, VINV) -> voucher key over F0411; built on first use, kept current."""
    if store.supplier_invoices is None:
        index: dict[tuple[int, str], tuple[int, str, str]] = {}
        table = store.table("F0411")
        for row in table.scan(table.group_ids):
            if row["VINV"].strip():
                index.setdefault((row["AN8"], row["VINV"].strip()), (row["DOC"], row["DCT"], row["KCO"]))
        store.supplier_invoices = index
    return store.supplier_invoices


def create_voucher(store: Store, inputs: dict[str, Any], context: Context) -> dict[str, Any]:
    """A supplier's invoice as P0411 enters it (DCT PV): F0411 pay items, F0911 expense debits."""
    an8, book = supplier(store, inputs)
    company = company_code(inputs)
    supplier_invoice = text(inputs, "SupplierInvoiceNumber", 25, required=True)
    existing = _supplier_invoices(store).get((an8, supplier_invoice))
    if existing is not None and context.duplicate_check:
        doc, dct, kco = existing
        raise BusinessError(
            "5540",
            "Duplicate Supplier Invoice",
            "SupplierInvoiceNumber",
            f"{supplier_invoice} of supplier {an8} is already voucher {doc} {dct} {kco}",
        )
    invoice_date = julian(inputs, "InvoiceDate", context)
    assert invoice_date is not None
    gl_date = julian(inputs, "GLDate", context, required=False) or invoice_date
    due_date = julian(inputs, "DueDate", context, required=False) or to_julian(
        to_date(invoice_date) + timedelta(days=30)
    )
    currency = currency_code(inputs, COMPANIES[company][0])
    remark = text(inputs, "Remark", 30)
    pay_items = _pay_items(inputs, context, currency, due_date, sign=1)
    lines = distribution(store, inputs, company, currency)
    _balanced(pay_items, lines, 1)
    doc, batch = store.take_document_number(), store.take_batch_number()
    foreign = currency != COMPANIES[company][0]
    year, period = postings.fiscal(gl_date)
    rows = []
    for index, item in enumerate(pay_items, start=1):
        row = TABLES["F0411"].blank()
        row.update(
            {
                "DOC": doc, "DCT": "PV", "KCO": company, "SFX": f"{index:03d}", "SFXE": 0, "AN8": an8,
                "PYE": an8, "DIVJ": invoice_date, "DGJ": gl_date, "DDJ": item.due, "FY": year, "PN": period,
                "CO": company, "ICU": batch, "ICUT": "V", "DICJ": context.today, "PST": "A", "AG": item.gross,
                "AAP": item.gross, "ATXA": item.gross - item.tax if item.tax else 0, "STAM": item.tax,
                "CRRM": "F" if foreign else "D", "CRCD": currency,
                "CRR": postings.FOREIGN_RATE if foreign else 0, "ACR": item.gross if foreign else 0,
                "FAP": item.gross if foreign else 0, "GLC": pad("", 4),
                "MCU": right_justify(COMPANIES[company][1]), "PTC": pad("N30", 3), "VINV": supplier_invoice,
                "RMK": (item.remark or remark)[:30],
            }
        )  # fmt: skip
        rows.append(context.stamp("F0411", row, "P0411"))
    store.append("F0411", doc // 10, rows)
    postings.journal(
        store, context, company=company, dct="PV", doc=doc, gl_date=gl_date, batch=batch, batch_type="V",
        lines=lines, an8=an8, explanation=book["ALPH"], currency=currency, remark=remark, program="P0411",
    )  # fmt: skip
    _supplier_invoices(store).setdefault((an8, supplier_invoice), (doc, "PV", company))
    return {
        "DocumentNumber": str(doc),
        "DocumentType": "PV",
        "DocumentCompany": company,
        "BatchNumber": str(batch),
        "PayItemCount": str(len(rows)),
        "GrossAmount": money(sum(r["AG"] for r in rows)),
        "DueDate": format_user_date(due_date, context.simple_date_format),
        "SupplierInvoiceNumber": supplier_invoice,
    }


# -- ORCH_55_UpsertItem -------------------------------------------------------------------------------

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
    item_number = text(inputs, "ItemNumber", 25, required=True)
    changes: dict[str, str] = {}
    for field, alias, size in ITEM_FIELDS:
        if inputs.get(field) is not None:
            changes[alias] = text(inputs, field, size)
    check_codes(changes, {alias: field for field, alias, _ in ITEM_FIELDS})
    index = item_index(store)
    table = store.table("F4101")
    short = index.get(item_number)
    if short is None:
        if not changes.get("DSC1"):
            raise BusinessError(
                "0001", "Required Field Missing", "Description", "a new item needs a description"
            )
        short = add_item(store, context, item_number, changes)["ITM"]
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
            table.replace_group(short, [context.stamp("F4101", row, "P4101")])
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
            "ORCH_55_CreateCreditMemo",
            "Create an A/R credit memo (F03B11 DCT RM, negative pay items + F0911 debits), optionally "
            "tied to the invoice it credits; ExternalReference (VR01) must be unique per company",
            (
                ("CustomerNumber", "Numeric"),
                ("Company", "String"),
                ("ExternalReference", "String"),
                ("InvoiceDate", "Date"),
                ("GLDate", "Date"),
                ("CurrencyCode", "String"),
                ("Remark", "String"),
                ("OriginalDocument", "Object"),
                ("PayItems", "Array"),
                ("GLDistribution", "Array"),
            ),
            create_credit_memo,
        ),
        Orchestration(
            "ORCH_55_CreateReceipt",
            "Create a receipt (F03B13) and apply it to invoices (F03B14); what it does not apply stays "
            "as unapplied cash (an RU document in F03B11); ReceiptNumber must be unique per customer",
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
            "ORCH_55_VoidReceipt",
            "Void a receipt (F03B13/F03B14 void date and reason, reversing lines, paid documents reopened, "
            "unapplied cash voided, G/L reversed), found by PaymentId or ReceiptNumber + CustomerNumber",
            (
                ("PaymentId", "Numeric"),
                ("ReceiptNumber", "String"),
                ("CustomerNumber", "Numeric"),
                ("VoidDate", "Date"),
                ("VoidReason", "String"),
            ),
            void_receipt,
        ),
        Orchestration(
            "ORCH_55_CreateVoucher",
            "Create an A/P voucher (F0411 DCT PV + F0911 expense distribution); SupplierInvoiceNumber "
            "(VINV) must be unique per supplier",
            (
                ("SupplierNumber", "Numeric"),
                ("Company", "String"),
                ("SupplierInvoiceNumber", "String"),
                ("InvoiceDate", "Date"),
                ("GLDate", "Date"),
                ("DueDate", "Date"),
                ("CurrencyCode", "String"),
                ("Remark", "String"),
                ("PayItems", "Array"),
                ("GLDistribution", "Array"),
            ),
            create_voucher,
        ),
        Orchestration(
            "ORCH_55_UpsertItem",
            "Create an item (F4101) or update it, found by its 2nd item number (LITM)",
            (("ItemNumber", "String"), *((field, "String") for field, _, _ in ITEM_FIELDS)),
            upsert_item,
        ),
    )
}
