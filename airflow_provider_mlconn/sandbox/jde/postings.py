"""The ledger rows JDE's programs write, shared by the orchestrations and the ``/_sandbox/`` edits.

An A/R document is one F03B11 row per pay item (credit memos negative), its journal entry one F0911
line per account. A receipt is an F03B13 header and one F03B14 line per pay item it pays; cash it
does not apply becomes an RU document (negative open amount) with an F03B14 line of its own. A void
marks the receipt and its lines, adds reversing lines (matching document type RO), gives the paid
documents their open amount back and voids the RU document. Every row written is stamped by the
``Context`` (UPMJ/UPMT now) and validation happens before the first write, so a refused call changes
nothing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from airflow_provider_mlconn.sandbox.jde.inputs import BusinessError, Context, account_number, money, to_date
from airflow_provider_mlconn.sandbox.jde.schema import TABLES
from airflow_provider_mlconn.sandbox.jde.seed import COMPANIES, NEW_DOCUMENT_START, Row, right_justify
from airflow_provider_mlconn.sandbox.jde.store import Store

FOREIGN_RATE = 10_000_000  # 1.0000000: the sandbox books foreign documents at par


@dataclass(frozen=True)
class PayItem:
    gross: int  # as stored: negative on a credit memo
    tax: int
    due: int  # Julian
    remark: str


@dataclass(frozen=True)
class Application:
    """Part of a receipt applied to a document: positive pays an invoice, negative takes a credit.

    ``write_off`` closes more of the invoice than was paid (F03B14.AWAT, reason RSCO): the open
    amount drops by both, the receipt's cash only by ``amount``."""

    doc: int
    dct: str
    kco: str
    pay_item: str  # blank: the oldest open pay items first
    amount: int
    field: str  # the input it came from, for error messages
    write_off: int = 0
    write_off_reason: str = ""


@dataclass
class Receipt:
    header: Row
    lines: list[Row]
    applied: list[tuple[Row, int]]  # (pay item after the application, amount applied)
    unapplied_document: Row | None


@dataclass
class Void:
    header: Row
    reversals: list[Row]
    reopened: list[Row] = field(default_factory=list)  # documents given their open amount back
    unapplied_document: Row | None = None


def fiscal(gl_date: int) -> tuple[int, int]:
    """(FY, PN) of a G/L date: the sandbox's fiscal year is the calendar year [I]."""
    return (gl_date // 1000) % 100, to_date(gl_date).month


def pay_status(open_amount: int) -> str:
    return "P" if open_amount == 0 else "A"


def document_rows(store: Store, doc: int, dct: str, kco: str) -> list[Row]:
    ledger = store.table("F03B11")
    group = doc // 10
    rows = ledger.rows_of(group) if ledger.has_group(group) else []
    return [r for r in rows if r["DOC"] == doc and r["DCT"] == dct and r["KCO"] == kco]


def ar_document(
    store: Store,
    context: Context,
    *,
    doc: int,
    dct: str,
    company: str,
    an8: int,
    master: Row,
    pay_items: list[PayItem],
    invoice_date: int,
    gl_date: int,
    currency: str,
    reference: str,
    purchase_order: str,
    remark: str,
    batch: int,
    program: str,
    links: Row | None = None,
) -> list[Row]:
    """Write an A/R document's pay items (F03B11) and return them."""
    foreign = currency != COMPANIES[company][0]
    receivable = store.account_for(company, COMPANIES[company][1], "1210")
    year, period = fiscal(gl_date)
    rows = []
    for index, item in enumerate(pay_items, start=1):
        row = TABLES["F03B11"].blank()
        row.update(
            {
                "DOC": doc, "DCT": dct, "KCO": company, "SFX": f"{index:03d}", "AN8": an8, "PYR": an8,
                "DIVJ": invoice_date, "DGJ": gl_date, "DDJ": item.due, "FY": year, "PN": period,
                "CO": company, "ICU": batch, "ICUT": "IB", "DICJ": context.today, "PST": "A",
                "AG": item.gross, "AAP": item.gross, "ATXA": item.gross - item.tax if item.tax else 0,
                "STAM": item.tax, "CRRM": "F" if foreign else "D", "CRCD": currency,
                "CRR": FOREIGN_RATE if foreign else 0, "ACR": item.gross if foreign else 0,
                "FAP": item.gross if foreign else 0, "TXA1": master["TXA1"], "EXR1": master["EXR1"],
                "RMK": (item.remark or remark)[:30], "VR01": reference, "PO": purchase_order,
                "MCU": right_justify(COMPANIES[company][1]), "PTC": master["TRAR"],
                "AID": receivable["AID"] if receivable else "",
            }
        )  # fmt: skip
        row.update(links or {})
        rows.append(context.stamp("F03B11", row, program))
    store.append("F03B11", doc // 10, rows)
    return rows


def journal(
    store: Store,
    context: Context,
    *,
    company: str,
    dct: str,
    doc: int,
    gl_date: int,
    batch: int,
    batch_type: str,
    lines: list[tuple[Row, int, str]],
    an8: int,
    explanation: str,
    currency: str,
    remark: str,
    program: str,
    first_line: int = 1,
) -> list[Row]:
    """Write a journal entry's lines (F0911, ledger AA, unposted): (account, amount, remark) each,
    numbered (JELN) from ``first_line`` x 10 (a reversal continues the entry it reverses)."""
    rows = []
    for number, (account, amount, line_remark) in enumerate(lines, start=first_line):
        row = TABLES["F0911"].blank()
        row.update(
            {
                "KCO": company, "DCT": dct, "DOC": doc, "DGJ": gl_date, "JELN": number * 10, "LT": "AA",
                "EXTL": "  ", "ICU": batch, "ICUT": batch_type, "CO": account["CO"], "AID": account["AID"],
                "MCU": account["MCU"], "OBJ": account["OBJ"], "SUB": account["SUB"],
                "ANI": account_number(account), "AA": amount, "CRCD": currency, "EXA": explanation[:30],
                "EXR": (line_remark or remark)[:30], "POST": " ", "AN8": an8,
            }
        )  # fmt: skip
        rows.append(context.stamp("F0911", row, program))
    store.append("F0911", (company, dct, doc // 10), rows)
    return rows


# -- receipts -----------------------------------------------------------------------------------------


def receipts_numbered(store: Store, an8: int, receipt_number: str) -> list[Row]:
    """The customer's receipt headers with this receipt number (CKNU is not unique in JDE)."""
    headers = store.table("F03B13")
    # seeded receipts sit in the customer's group; newer ones in the groups of next-number PYIDs
    newer = headers.group_ids[bisect.bisect_left(headers.group_ids, NEW_DOCUMENT_START // 10) :]
    return [
        row
        for group in ([an8] if headers.has_group(an8) else []) + newer
        for row in headers.rows_of(group)
        if row["AN8"] == an8 and row["CKNU"].strip() == receipt_number
    ]


def receipt_header(store: Store, pyid: int) -> Row | None:
    headers = store.table("F03B13")
    group = pyid // 10
    rows = headers.rows_of(group) if headers.has_group(group) else []
    return next((r for r in rows if r["PYID"] == pyid), None)


def post_receipt(
    store: Store,
    context: Context,
    *,
    an8: int,
    company: str,
    receipt_number: str,
    receipt_date: int,
    gl_date: int,
    amount: int,
    currency: str,
    bank: Row,
    remark: str,
    applications: list[Application],
    program: str,
) -> Receipt:
    """Enter a receipt as P03B102 does: apply it, leave the rest as unapplied cash (an RU document),
    and write its journal entry (bank debit, A/R and unapplied cash credits)."""
    ledger = store.table("F03B11")
    changed: dict[int, list[Row]] = {}  # F03B11 group -> its rows, edited copies
    applied: list[tuple[Row, int]] = []
    written_off: list[tuple[Row, int, str]] = []  # (pay item, write-off, reason)
    for application in applications:
        group = application.doc // 10
        if group not in changed:
            changed[group] = [dict(r) for r in (ledger.rows_of(group) if ledger.has_group(group) else [])]
        parts = _apply(changed[group], application, an8=an8, currency=currency)
        for item, cash, write_off in _split_write_off(parts, application.write_off):
            applied.append((item, cash))
            written_off.append((item, write_off, application.write_off_reason))
    applied_total = sum(part for _, part in applied)
    if applied_total > amount:
        raise BusinessError(
            "5516",
            "Applied More Than Received",
            "Applications",
            f"{money(applied_total)} applied but the receipt is {money(amount)}",
        )
    for item, _ in applied:
        context.stamp("F03B11", item, program)
    pyid = store.take_document_number()
    batch = store.take_batch_number()
    foreign = currency != COMPANIES[company][0]
    unapplied = amount - applied_total
    header = TABLES["F03B13"].blank()
    header.update(
        {
            "PYID": pyid, "CKNU": receipt_number, "AN8": an8, "PYR": an8, "DMTJ": receipt_date,
            "DGJ": gl_date, "ICU": batch, "ICUT": "RB", "CKAM": amount, "AAP": unapplied,
            "CRRM": "F" if foreign else "D", "CRCD": currency, "FCAM": amount if foreign else 0,
            "FAP": unapplied if foreign else 0, "GLBA": bank["AID"], "CO": company,
            "TYIN": "A" if applied else "U", "RMK": remark,
        }
    )  # fmt: skip
    context.stamp("F03B13", header, program)
    matching = "RC" if amount else "RS"  # a zero receipt that nets a credit memo is a "spread" receipt
    lines = [
        _receipt_line(header, number, item, part, matching, write_off=write_off, reason=reason)
        for number, ((item, part), (_, write_off, reason)) in enumerate(
            zip(applied, written_off, strict=True), start=1
        )
    ]
    for group, rows in changed.items():
        ledger.replace_group(group, rows)
    unapplied_document = None
    unapplied_account = store.account_for(company, COMPANIES[company][1], "1290")
    if unapplied:
        unapplied_document = _unapplied_cash(store, context, header, unapplied_account, program)
        lines.append(_receipt_line(header, len(lines) + 1, unapplied_document, unapplied, "RU"))
    for line in lines:
        context.stamp("F03B14", line, program)
    store.append("F03B13", pyid // 10, [header])
    store.append("F03B14", pyid // 10, lines)
    receivable = store.account_for(company, COMPANIES[company][1], "1210")
    written_total = sum(write_off for _, write_off, _ in written_off)
    write_off_account = store.account_for(company, COMPANIES[company][1], "4910") if written_total else None
    entry = [
        (bank, amount),
        (receivable, -applied_total - written_total),
        (unapplied_account, -unapplied),
        (write_off_account, written_total),
    ]
    journal(
        store,
        context,
        company=company,
        dct="RC",
        doc=pyid,
        gl_date=gl_date,
        batch=batch,
        batch_type="RB",
        lines=[(account, value, "") for account, value in entry if account is not None and value],
        an8=an8,
        explanation=receipt_number,
        currency=currency,
        remark=remark,
        program=program,
    )
    return Receipt(header, lines, applied, unapplied_document)


def _apply(rows: list[Row], application: Application, *, an8: int, currency: str) -> list[tuple[Row, int]]:
    """Take ``application.amount`` off the document's pay items (edited in ``rows``, a copy)."""
    doc, dct, kco, pay_item = application.doc, application.dct, application.kco, application.pay_item
    where = application.field
    items = [
        r
        for r in rows
        if r["DOC"] == doc and r["DCT"] == dct and r["KCO"] == kco and (not pay_item or r["SFX"] == pay_item)
    ]
    named = f"{doc} {dct} {kco}" + (f" pay item {pay_item}" if pay_item else "")
    if not items:
        raise BusinessError("5513", "Invoice Not Found", f"{where}.DocumentNumber", f"no document {named}")
    if items[0]["AN8"] != an8:
        raise BusinessError(
            "5514",
            "Invoice Belongs To Another Customer",
            f"{where}.DocumentNumber",
            f"document {named} is for customer {items[0]['AN8']}, not {an8}",
        )
    if items[0]["CRCD"] != currency:
        raise BusinessError(
            "5517",
            "Currency Mismatch",
            f"{where}.DocumentNumber",
            f"document {doc} is in {items[0]['CRCD']}, the receipt in {currency}",
        )
    open_total = sum(r["AAP"] for r in items)
    wanted = application.amount + application.write_off
    if application.write_off < 0 or (application.write_off and application.amount < 0):
        raise BusinessError(
            "5518", "Invalid Write-Off", f"{where}.WriteOff", "a write-off is positive and closes an invoice"
        )
    if wanted == 0 or (wanted > 0) != (open_total > 0) or abs(wanted) > abs(open_total):
        raise BusinessError(
            "5515",
            "Amount Exceeds Open Amount",
            f"{where}.Amount",
            f"{money(wanted)} applied but document {named} has {money(open_total)} open",
        )
    result = []
    remaining = wanted
    for item in sorted(items, key=lambda r: r["SFX"]):
        if remaining == 0:
            break
        if (item["AAP"] > 0) != (wanted > 0) or item["AAP"] == 0:
            continue
        part = min(item["AAP"], remaining) if wanted > 0 else max(item["AAP"], remaining)
        item["AAP"] -= part
        if item["CRRM"] == "F":
            item["FAP"] = item["AAP"]
        item["PST"] = pay_status(item["AAP"])
        remaining -= part
        result.append((item, part))
    return result


def _split_write_off(applied: list[tuple[Row, int]], write_off: int) -> list[tuple[Row, int, int]]:
    """(pay item, cash, write-off) per pay item: the write-off is taken from the last parts closed."""
    split = []
    for item, part in reversed(applied):
        taken = min(part, write_off) if write_off > 0 else 0
        write_off -= taken
        split.append((item, part - taken, taken))
    return list(reversed(split))


def _receipt_line(
    header: Row, number: int, document: Row, part: int, matching: str, *, write_off: int = 0, reason: str = ""
) -> Row:
    line = TABLES["F03B14"].blank()
    line.update(
        {
            "PYID": header["PYID"], "RC5": number, "CKNU": header["CKNU"], "DOC": document["DOC"],
            "DCT": document["DCT"], "KCO": document["KCO"], "SFX": document["SFX"], "AN8": header["AN8"],
            "PYR": header["PYR"], "DGJ": header["DGJ"], "ICU": header["ICU"], "PAAP": part, "ADSA": 0,
            "AWAT": write_off, "RSCO": reason.ljust(2)[:2] if write_off else "  ",
            "CRCD": header["CRCD"], "DCTM": matching, "RMK": header["RMK"],
        }
    )  # fmt: skip
    return line


def _unapplied_cash(store: Store, context: Context, header: Row, account: Row | None, program: str) -> Row:
    """The RU document holding a receipt's unapplied cash: negative, open, linked by PYID."""
    company, unapplied = header["CO"], header["AAP"]
    foreign = header["CRRM"] == "F"
    doc = store.take_document_number()
    year, period = fiscal(header["DGJ"])
    row = TABLES["F03B11"].blank()
    row.update(
        {
            "DOC": doc, "DCT": "RU", "KCO": company, "SFX": "001", "AN8": header["AN8"], "PYR": header["PYR"],
            "DIVJ": header["DMTJ"], "DGJ": header["DGJ"], "DDJ": header["DMTJ"], "FY": year, "PN": period,
            "CO": company, "ICU": header["ICU"], "ICUT": "RB", "DICJ": context.today, "PST": "A",
            "AG": -unapplied, "AAP": -unapplied, "CRRM": header["CRRM"], "CRCD": header["CRCD"],
            "CRR": FOREIGN_RATE if foreign else 0, "ACR": -unapplied if foreign else 0,
            "FAP": -unapplied if foreign else 0, "RMK": header["RMK"],
            "MCU": right_justify(COMPANIES[company][1]), "AID": account["AID"] if account else "",
            "PYID": header["PYID"],
        }
    )  # fmt: skip
    context.stamp("F03B11", row, program)
    store.append("F03B11", doc // 10, [row])
    return row


def void_receipt(
    store: Store, context: Context, *, header: Row, void_date: int, reason: str, field_name: str, program: str
) -> Void:
    """Void a receipt as P03B102 does (B03B0023 per line): mark header and lines, add reversing
    lines (DCTM RO) dated ``void_date``, reopen what it paid, void its RU document, reverse its
    journal entry (DCT RO)."""
    pyid = header["PYID"]
    if header["VDGJ"]:
        raise BusinessError(
            "5551",
            "Receipt Already Voided",
            field_name,
            f"receipt {header['CKNU'].strip()} (payment id {pyid}) was voided on {to_date(header['VDGJ'])}",
        )
    if void_date < header["DGJ"]:
        raise BusinessError(
            "5552",
            "Void Date Before G/L Date",
            "VoidDate",
            f"{to_date(void_date)} is before the receipt's G/L date {to_date(header['DGJ'])}",
        )
    group = pyid // 10
    details = store.table("F03B14")
    all_lines = [dict(r) for r in details.rows_of(group)] if details.has_group(group) else []
    originals = [r for r in all_lines if r["PYID"] == pyid and r["DCTM"] != "RO"]
    batch = store.take_batch_number()
    ledger = store.table("F03B11")
    changed: dict[int, list[Row]] = {}
    result = Void(dict(header), [])
    next_line = max((r["RC5"] for r in all_lines if r["PYID"] == pyid), default=0)
    for line in originals:
        doc_group = line["DOC"] // 10
        if doc_group not in changed:
            changed[doc_group] = (
                [dict(r) for r in ledger.rows_of(doc_group)] if ledger.has_group(doc_group) else []
            )
        for item in changed[doc_group]:
            if (item["DOC"], item["DCT"], item["KCO"], item["SFX"]) != (
                line["DOC"], line["DCT"], line["KCO"], line["SFX"],
            ):  # fmt: skip
                continue
            item["AAP"] += line["PAAP"] + line.get("AWAT", 0)
            if item["CRRM"] == "F":
                item["FAP"] = item["AAP"]
            item["PST"] = pay_status(item["AAP"])
            if item["DCT"] == "RU":
                item.update(VOD="V", VDGJ=void_date)
                result.unapplied_document = item
            else:
                result.reopened.append(item)
            context.stamp("F03B11", item, program)
        line.update(VDGJ=void_date, VRE=reason, NFVD="R")
        context.stamp("F03B14", line, program)
        next_line += 1
        reversal = dict(line)
        reversal.update(
            RC5=next_line,
            PAAP=-line["PAAP"],
            ADSA=-line["ADSA"],
            AWAT=-line.get("AWAT", 0),
            DCTM="RO",
            DGJ=void_date,
            ICU=batch,
            POST=" ",
        )
        result.reversals.append(context.stamp("F03B14", reversal, program))
    result.header.update(VDGJ=void_date, VRE=reason, NFVD="V", AAP=0, FAP=0, POST=" ")
    context.stamp("F03B13", result.header, program)
    for doc_group, rows in changed.items():
        ledger.replace_group(doc_group, rows)
    kept = [r for r in all_lines if r["PYID"] != pyid or r["DCTM"] == "RO"]
    details.replace_group(group, [*kept, *originals, *result.reversals])
    headers = store.table("F03B13")
    headers.replace_group(group, [result.header if r["PYID"] == pyid else r for r in headers.rows_of(group)])
    gl = store.table("F0911")
    gl_group = (header["CO"], "RC", group)
    entry = [r for r in (gl.rows_of(gl_group) if gl.has_group(gl_group) else []) if r["DOC"] == pyid]
    accounts = {r["AID"]: r for r in store.table("F0901").rows_of(0)}
    journal(
        store,
        context,
        company=header["CO"],
        dct="RO",
        doc=pyid,
        gl_date=void_date,
        batch=batch,
        batch_type="RB",
        lines=[(accounts.get(r["AID"], r), -r["AA"], "") for r in entry],
        an8=header["AN8"],
        explanation=header["CKNU"],
        currency=header["CRCD"],
        remark=f"Void {reason}".strip(),
        program=program,
    )
    return result
