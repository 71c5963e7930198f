"""``/_sandbox/``: not part of AIS. Counters, settings, reset, and edits that simulate a person changing
data in JDE, so incremental sync can be tested (the ledger, account, item and price edits are in
``control_ledgers``).

Every edit stamps the rows it writes with UPMJ/UPMT (TDAY on F4106/F42119) = now in the enterprise
server's local time (``--timezone``), USER = ``user`` from the body (default ``JDEUSER``) and the program a
person would have used (P01012 Address Book, P0111 Who's Who, P01111 e-mail, P0115 phones, P4101 Item
Master). Each answers ``{"touched": [{"table", "key", "UPMJ", "UPMT" or "TDAY", "updated_at"}...]}``
listing every row it wrote, once.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from airflow_provider_mlconn.sandbox.jde.calendar import julian_to_ais, to_julian
from airflow_provider_mlconn.sandbox.jde.inputs import Context
from airflow_provider_mlconn.sandbox.jde.seed import COMPANIES, Row, fold_ascii, pad, right_justify

router = APIRouter(prefix="/_sandbox")


def _sandbox(request: Request) -> Any:
    return request.app.state.sandbox


class Edit:
    """Rows written by one edit, stamped with one moment, as a person at a JDE screen writes them."""

    def __init__(self, request: Request, user: str) -> None:
        self.sandbox = _sandbox(request)
        self.now = self.sandbox.now()
        self.user = user[:10]
        self._touched: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}
        # a person is not an orchestration: JDE's own screens let them repeat a reference
        self.context = Context(
            username=self.user,
            device="SANDBOX",
            simple_date_format=self.sandbox.simple_date_format,
            now=self.now,
            duplicate_check=False,
            on_stamp=self._record,
        )

    def stamp(self, table: str, row: Row, program: str) -> Row:
        return self.context.stamp(table, row, program)

    def _record(self, table: str, row: Row) -> None:
        schema = self.sandbox.store.table(table).schema
        key = {column: row[column] for column in schema.primary_key}
        for column, value in key.items():
            if schema.columns[column].kind == "date":
                key[column] = julian_to_ais(value)
        self._touched[(table, tuple(key.values()))] = {
            "table": table,
            "key": key,
            "UPMJ": julian_to_ais(row["UPMJ"]),
            schema.time_column: row[schema.time_column],
            "updated_at": self.now.isoformat(timespec="seconds"),
        }

    @property
    def touched(self) -> list[dict[str, Any]]:
        return list(self._touched.values())

    def rows(self, table: str, group: Any) -> list[Row]:
        virtual = self.sandbox.store.table(table)
        return [dict(r) for r in virtual.rows_of(group)] if virtual.has_group(group) else []

    def save(self, table: str, group: Any, rows: list[Row]) -> None:
        self.sandbox.store.table(table).replace_group(group, rows)

    def result(self, **extra: Any) -> dict[str, Any]:
        return {**extra, "touched": self.touched}


def _customer_row(edit: Edit, an8: int) -> Row:
    rows = edit.rows("F0101", an8)
    if not rows or rows[0]["AT1"].strip() != "C":
        raise HTTPException(404, f"address number {an8} is not a customer")
    return rows[0]


class AddressIn(BaseModel):
    lines: list[str] = Field(min_length=1, max_length=4, description="address lines 1-4 (ADD1-ADD4)")
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = "US"


class ContactIn(BaseModel):
    given_name: str
    surname: str
    title: str = ""
    email: str | None = None
    phone: str | None = None


class NewCustomer(BaseModel):
    name: str
    company: str = "00001"
    tax_id: str = ""
    currency: str | None = None
    payment_terms: str = "N30"
    address: AddressIn
    contacts: list[ContactIn] = []
    user: str = "JDEUSER"


class CustomerChange(BaseModel):
    name: str | None = None
    tax_id: str | None = None
    inactive: bool | None = None
    user: str = "JDEUSER"


class AddressChange(AddressIn):
    effective_date: date | None = Field(
        None,
        description="a new effective date adds an F0116 row; none (or an existing date) updates in place",
    )
    user: str = "JDEUSER"


class NewContact(ContactIn):
    user: str = "JDEUSER"


class ContactChange(BaseModel):
    given_name: str | None = None
    surname: str | None = None
    title: str | None = None
    active: bool | None = None
    user: str = "JDEUSER"


class EmailChange(BaseModel):
    email: str = Field(description="stored as given, valid or not (JDE does not check)")
    line: int = Field(1, ge=1, description="RCK7: which of the contact's e-mail lines")
    user: str = "JDEUSER"


class ItemChange(BaseModel):
    description: str | None = None
    description2: str | None = None
    search_text: str | None = None
    stocking_type: str | None = None
    unit_of_measure: str | None = None
    gl_class: str | None = None
    user: str = "JDEUSER"


class ResetRequest(BaseModel):
    customers: int | None = Field(None, ge=0)
    seed: int | None = None


class SettingsChange(BaseModel):
    duplicate_check: bool | None = Field(None, description="the orchestrations' duplicate reference checks")
    fault_after_commit_rate: float | None = Field(None, ge=0, le=1)
    fault_rate: float | None = Field(None, ge=0, le=1)
    latency_ms: float | None = Field(None, ge=0)


SETTINGS = ("duplicate_check", "fault_after_commit_rate", "fault_rate", "latency_ms")


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    """Request counts per route and status, logins, tokens issued, 444s, faults, rows returned."""
    sandbox = _sandbox(request)
    snapshot: dict[str, Any] = sandbox.stats.snapshot(sandbox.sessions)
    snapshot["options"] = {
        "customers": sandbox.options.customers,
        "seed": sandbox.options.seed,
        "timezone": sandbox.options.timezone,
        "token_ttl": sandbox.options.token_ttl,
        "fault_rate": sandbox.options.fault_rate,
        "latency_ms": sandbox.options.latency_ms,
        "duplicate_check": sandbox.options.duplicate_check,
        "fault_after_commit_rate": sandbox.options.fault_after_commit_rate,
    }
    snapshot["address_numbers"] = len(sandbox.store.table("F0101").group_ids)
    return snapshot


@router.get("/settings")
async def settings(request: Request) -> dict[str, Any]:
    """The switches a test may turn while the sandbox runs."""
    options = _sandbox(request).options
    return {name: getattr(options, name) for name in SETTINGS}


@router.patch("/settings")
async def change_settings(request: Request, body: SettingsChange) -> dict[str, Any]:
    """Turn switches at run time (as the CLI flags and ``create_app`` keywords set them at start);
    they stay as set across ``reset``."""
    options = _sandbox(request).options
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(options, name, value)
    return {name: getattr(options, name) for name in SETTINGS}


@router.post("/reset")
async def reset(request: Request, body: ResetRequest | None = None) -> dict[str, Any]:
    """Back to the seeded data (optionally another size or seed); ends every session, zeroes counters."""
    sandbox = _sandbox(request)
    sandbox.reset(customers=body.customers if body else None, seed=body.seed if body else None)
    return {"status": "reset", "customers": sandbox.options.customers, "seed": sandbox.options.seed}


@router.post("/sessions/expire")
async def expire_sessions(request: Request) -> dict[str, Any]:
    """End every session now: the next call with any token gets 444 (as after a server restart)."""
    sandbox = _sandbox(request)
    count = sandbox.sessions.active()
    sandbox.sessions.clear()
    return {"expired": count}


@router.post("/customers", status_code=201)
async def add_customer(request: Request, body: NewCustomer) -> dict[str, Any]:
    """A new customer as P01012 + P03013 would write it: F0101 (AT1 C), F03012 for ``company``, F0111
    line 0 and one line per contact, F0116, F01151 e-mails and F0115 phones of the contacts."""
    edit = Edit(request, body.user)
    company = body.company.zfill(5)
    if company not in COMPANIES:
        raise HTTPException(422, f"company {company} does not exist (known: {sorted(COMPANIES)})")
    store = edit.sandbox.store
    an8 = store.next_address_number
    store.next_address_number += 1
    name = body.name[:40]
    compressed = fold_ascii(name).upper().replace(" ", "")[:40]
    edit.save(
        "F0101",
        an8,
        [
            edit.stamp(
                "F0101",
                {
                    "AN8": an8, "ALKY": "", "TAX": body.tax_id[:20], "ALPH": name, "DC": compressed,
                    "MCU": right_justify(COMPANIES[company][1]), "SIC": "", "LNGP": "  ", "AT1": pad("C", 3),
                    "CM": "  ", "TAXC": "C", "ATR": "Y", "ATP": "N", "ATE": "N", "AC01": "   ", "AC02": "   ",
                    "AC03": "   ", "AC30": "   ",
                },
                "P01012",
            )
        ],
    )  # fmt: skip
    edit.save(
        "F03012",
        an8,
        [
            edit.stamp(
                "F03012",
                {
                    "AN8": an8, "CO": company, "ARC": pad("RC", 4),
                    "MCUR": right_justify(COMPANIES[company][1]),
                    "CRCD": (body.currency or COMPANIES[company][0]).upper(), "TXA1": pad("", 10),
                    "EXR1": "  ",
                    "ACL": 0, "HDAR": "N", "TRAR": pad(body.payment_terms, 3), "STTO": "C", "RYIN": " ",
                    "CMGR": pad("", 10), "CLMG": pad("", 10), "HOLD": "  ", "AC01": "   ",
                },
                "P03013",
            )
        ],
    )  # fmt: skip
    who = [edit.stamp("F0111", _who_row(an8, 0, name=name), "P01012")]
    emails, phones = [], []
    for line, contact in enumerate(body.contacts, start=1):
        who.append(
            edit.stamp(
                "F0111",
                _who_row(an8, line, given=contact.given_name, surname=contact.surname, title=contact.title),
                "P0111",
            )
        )
        if contact.email is not None:
            emails.append(edit.stamp("F01151", _email_row(an8, line, 1, contact.email), "P01111"))
        if contact.phone is not None:
            phones.append(edit.stamp("F0115", _phone_row(an8, line, 1, contact.phone), "P0115"))
    edit.save("F0111", an8, who)
    edit.save("F01151", an8, emails)
    edit.save("F0115", an8, phones)
    edit.save(
        "F0116",
        an8,
        [edit.stamp("F0116", _address_row(an8, to_julian(edit.now.date()), body.address), "P01012")],
    )
    for table in ("F03B11", "F03B13", "F03B14", "F0411", "F42119"):
        edit.save(table, an8, [])  # a new address number has no history to generate
    return edit.result(address_number=an8)


@router.patch("/customers/{an8}")
async def change_customer(request: Request, an8: int, body: CustomerChange) -> dict[str, Any]:
    """Change a customer's name (F0101.ALPH and the F0111 line 0 names), tax id, or active state
    (inactive: F0101.AC30 = INA and F03012.HDAR = Y, as the seeded inactive customers carry it)."""
    edit = Edit(request, body.user)
    book = _customer_row(edit, an8)
    if body.name is not None:
        book["ALPH"] = body.name[:40]
        book["DC"] = fold_ascii(body.name).upper().replace(" ", "")[:40]
        who = edit.rows("F0111", an8)
        for row in who:
            if row["IDLN"] == 0:
                row["ALPH"] = row["MLNM"] = body.name[:40]
                edit.stamp("F0111", row, "P01012")
        edit.save("F0111", an8, who)
    if body.tax_id is not None:
        book["TAX"] = body.tax_id[:20]
    if body.inactive is not None:
        book["AC30"] = pad("INA" if body.inactive else "", 3)
        masters = edit.rows("F03012", an8)
        for row in masters:
            row["HDAR"] = "Y" if body.inactive else "N"
            edit.stamp("F03012", row, "P03013")
        edit.save("F03012", an8, masters)
    edit.save("F0101", an8, [edit.stamp("F0101", book, "P01012")])
    return edit.result(address_number=an8)


@router.post("/customers/{an8}/addresses")
async def change_address(request: Request, an8: int, body: AddressChange) -> dict[str, Any]:
    """Change where a customer is (F0116). With a new ``effective_date`` a new effective-dated row is
    added (the old one stays, as P01012 does on "change address"); otherwise the row in effect today
    (or the row with that date) is updated in place."""
    edit = Edit(request, body.user)
    _customer_row(edit, an8)
    rows = edit.rows("F0116", an8)
    today = to_julian(edit.now.date())
    if body.effective_date is not None:
        effective = to_julian(body.effective_date)
    else:
        current = [r["EFTB"] for r in rows if r["EFTB"] <= today]
        effective = max(current) if current else today
    rows = [r for r in rows if r["EFTB"] != effective]
    rows.append(edit.stamp("F0116", _address_row(an8, effective, body), "P01012"))
    edit.save("F0116", an8, rows)
    return edit.result(address_number=an8, effective_date=julian_to_ais(effective))


@router.post("/customers/{an8}/contacts", status_code=201)
async def add_contact(request: Request, an8: int, body: NewContact) -> dict[str, Any]:
    """Add a contact person: the next F0111 line (IDLN), its e-mail (F01151) and phone (F0115)."""
    edit = Edit(request, body.user)
    _customer_row(edit, an8)
    who = edit.rows("F0111", an8)
    line = max((r["IDLN"] for r in who), default=0) + 1
    who.append(
        edit.stamp(
            "F0111",
            _who_row(an8, line, given=body.given_name, surname=body.surname, title=body.title),
            "P0111",
        )
    )
    edit.save("F0111", an8, who)
    if body.email is not None:
        edit.save(
            "F01151",
            an8,
            [*edit.rows("F01151", an8), edit.stamp("F01151", _email_row(an8, line, 1, body.email), "P01111")],
        )
    if body.phone is not None:
        edit.save(
            "F0115",
            an8,
            [*edit.rows("F0115", an8), edit.stamp("F0115", _phone_row(an8, line, 1, body.phone), "P0115")],
        )
    return edit.result(address_number=an8, line=line)


@router.patch("/customers/{an8}/contacts/{line}")
async def change_contact(request: Request, an8: int, line: int, body: ContactChange) -> dict[str, Any]:
    """Change a contact's names, title or active flag (F0111.ACTIN)."""
    edit = Edit(request, body.user)
    _customer_row(edit, an8)
    who = edit.rows("F0111", an8)
    row = next((r for r in who if r["IDLN"] == line and line > 0), None)
    if row is None:
        raise HTTPException(404, f"customer {an8} has no contact line {line}")
    if body.given_name is not None:
        row["GNNM"] = body.given_name[:25]
    if body.surname is not None:
        row["SRNM"] = body.surname[:25]
    if body.title is not None:
        row["ATTL"] = body.title[:40]
    if body.active is not None:
        row["ACTIN"] = "Y" if body.active else "N"
    row["MLNM"] = f"{row['GNNM']} {row['SRNM']}"[:40]
    row["ALPH"] = f"{row['SRNM']}, {row['GNNM']}"[:40]
    edit.stamp("F0111", row, "P0111")
    edit.save("F0111", an8, who)
    return edit.result(address_number=an8, line=line)


@router.delete("/customers/{an8}/contacts/{line}")
async def delete_contact(request: Request, an8: int, line: int) -> dict[str, Any]:
    """Delete a Who's Who line as P0111 does: the F0111 row and its phones (F0115) and e-mails
    (F01151) go. Nothing is stamped: a deleted row leaves nothing a poll by UPMJ/UPMT can find."""
    edit = Edit(request, "JDEUSER")
    _customer_row(edit, an8)
    who = edit.rows("F0111", an8)
    if line <= 0 or not any(r["IDLN"] == line for r in who):
        raise HTTPException(404, f"customer {an8} has no who's who line {line}")
    edit.save("F0111", an8, [r for r in who if r["IDLN"] != line])
    for table in ("F0115", "F01151"):
        edit.save(table, an8, [r for r in edit.rows(table, an8) if r["IDLN"] != line])
    return edit.result(address_number=an8, line=line, deleted=True)


@router.put("/customers/{an8}/contacts/{line}/email")
async def set_contact_email(request: Request, an8: int, line: int, body: EmailChange) -> dict[str, Any]:
    """Set a contact's e-mail (F01151 AN8/IDLN/RCK7=``line``), creating the row if needed. JDE stores
    what was typed, so an invalid address is accepted."""
    edit = Edit(request, body.user)
    _customer_row(edit, an8)
    if not any(r["IDLN"] == line for r in edit.rows("F0111", an8)):
        raise HTTPException(404, f"customer {an8} has no who's who line {line}")
    emails = [r for r in edit.rows("F01151", an8) if not (r["IDLN"] == line and r["RCK7"] == body.line)]
    emails.append(edit.stamp("F01151", _email_row(an8, line, body.line, body.email), "P01111"))
    edit.save("F01151", an8, emails)
    return edit.result(address_number=an8, line=line)


@router.patch("/items/{short_item_number}")
async def change_item(request: Request, short_item_number: int, body: ItemChange) -> dict[str, Any]:
    """Change an item (F4101) as P4101 would: descriptions, search text, stocking type, UOM, G/L class."""
    edit = Edit(request, body.user)
    rows = edit.rows("F4101", short_item_number)
    if not rows:
        raise HTTPException(404, f"no item with short item number {short_item_number}")
    row = rows[0]
    fields = {
        "DSC1": (body.description, 30), "DSC2": (body.description2, 30), "SRTX": (body.search_text, 30),
        "STKT": (body.stocking_type, 1), "UOM1": (body.unit_of_measure, 2), "GLPT": (body.gl_class, 4),
    }  # fmt: skip
    for alias, (value, size) in fields.items():
        if value is not None:
            row[alias] = value[:size].ljust(size) if alias == "GLPT" else value[:size]
    edit.save("F4101", short_item_number, [edit.stamp("F4101", row, "P4101")])
    index = getattr(edit.sandbox.store, "item_numbers", None)
    if index is not None:
        index[row["LITM"].strip()] = short_item_number
    return edit.result(short_item_number=short_item_number)


def _who_row(
    an8: int,
    line: int,
    *,
    name: str = "",
    given: str = "",
    surname: str = "",
    title: str = "",
    active: bool = True,
) -> Row:
    alpha = name or f"{surname}, {given}"
    return {
        "AN8": an8, "IDLN": line, "DSS7": line, "MLNM": (name or f"{given} {surname}")[:40],
        "ATTL": title[:40], "SLNM": "", "ALPH": alpha[:40],
        "DC": fold_ascii(alpha).upper().replace(" ", "")[:40], "GNNM": given[:25],
        "MDNM": "", "SRNM": surname[:25], "TYC": "C" if line else " ", "NICK": "", "GEND": " ",
        "ACTIN": "Y" if active else "N", "REM1": "",
    }  # fmt: skip


def _email_row(an8: int, line: int, rck7: int, email: str) -> Row:
    return {
        "AN8": an8, "IDLN": line, "RCK7": rck7, "ETP": pad("E", 4), "EMAL": email[:256],
        "EHIER": 1 if rck7 == 1 else 0, "ECLASS": pad("WRK", 3),
    }  # fmt: skip


def _phone_row(an8: int, line: int, rck7: int, phone: str) -> Row:
    return {
        "AN8": an8,
        "IDLN": line,
        "RCK7": rck7,
        "CNLN": 0,
        "PHTP": "BUS ",
        "AR1": pad("", 6),
        "PH1": phone[:20],
    }


def _address_row(an8: int, effective: int, address: AddressIn) -> Row:
    lines = (*address.lines, "", "", "", "")[:4]
    return {
        "AN8": an8, "EFTB": effective, "ADD1": lines[0][:40], "ADD2": lines[1][:40], "ADD3": lines[2][:40],
        "ADD4": lines[3][:40], "ADDZ": address.postal_code[:12], "CTY1": address.city[:25], "COUN": "",
        "ADDS": pad(address.state, 3), "CTR": pad(address.country, 3),
    }  # fmt: skip
