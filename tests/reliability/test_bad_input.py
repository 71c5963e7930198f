"""Bad input, tabled: each kind is loaded correctly or rejected with a reason a person can act on, and
nothing else in the run is disturbed (the run succeeds, every ordinary record loads).

JDE side: customers keyed through the JDE sandbox's edit API (as P01012 / P0111 / P01111 write them),
then one customers run. HubSpot side: invoices and payments made through HubSpot's API, then one
invoices run and one payments run; and what HubSpot itself refuses (so no flow ever reads it).
54 kinds: 30 customer rows, 15 invoices, 6 payments, 3 HubSpot refusals.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_mlconn.sync.flow import RecordStatus
from tests.support.customers import HUBSPOT_TOKEN, Sandboxes
from tests.support.invoices import (
    CUSTOMERS_DAG,
    INVOICES_DAG,
    PAYMENTS_DAG,
    create_invoice,
    customers_in_hubspot,
    forget_flow_variables,
    invoice_properties,
    jde_posts,
    ledger,
    payment_properties,
    receipts,
    record_payment,
    run,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

ADDRESS = {"lines": ["Kaiserkai 3"], "city": "Hamburg", "country": "DE"}


@dataclass(frozen=True)
class CustomerCase:
    kind: str
    body: dict[str, Any]
    #: HubSpot company properties expected (None: the company is rejected with ``rejected``).
    company: dict[str, str] | None = None
    rejected: str = ""
    #: Per contact line (1, 2, ...): expected contact properties, a rejection fragment, or
    #: "linked to N" (written to the HubSpot contact of line N, which owns the e-mail).
    contacts: dict[int, dict[str, str] | str] = field(default_factory=dict)


def customer(name: str, *, address: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "address": address or ADDRESS, **extra}


def person(given: str, surname: str, email: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"given_name": given, "surname": surname, "email": email, **extra}


CUSTOMER_CASES = [
    CustomerCase("name of blanks", customer("     "), rejected="F0101.ALPH (alpha name) is blank"),
    CustomerCase("name padded with blanks", customer("   Padded Traders   "), {"name": "Padded Traders"}),
    CustomerCase(
        "name over JDE's 40 characters (JDE keeps 40)",
        customer("Overlong Name Industrial Holdings International Group Ltd"),
        {"name": "Overlong Name Industrial Holdings Intern"},
    ),
    CustomerCase(
        "HTML and script in the name (sent as text)",
        customer("<script>alert(1)</script> Widgets"),
        {"name": "<script>alert(1)</script> Widgets"},
    ),
    CustomerCase(
        "SQL metacharacters in the name",
        customer("O'Brien & Sons; DROP TABLE--"),
        {"name": "O'Brien & Sons; DROP TABLE--"},
    ),
    CustomerCase("umlauts", customer("Müller & Söhne GmbH"), {"name": "Müller & Söhne GmbH"}),
    CustomerCase("CJK characters", customer("株式会社テスト商事"), {"name": "株式会社テスト商事"}),
    CustomerCase("right-to-left script", customer("شركة الاختبار"), {"name": "شركة الاختبار"}),
    CustomerCase("emoji (outside the BMP)", customer("Rocket 🚀 Labs"), {"name": "Rocket 🚀 Labs"}),
    CustomerCase(
        "control characters in the name (a green-screen import)",
        customer("Bell\x07Tab\tCo\x00rp"),
        {"name": "Bell Tab Co rp"},
    ),
    CustomerCase(
        "unknown country code",
        customer("Nowhere Trading", address={"lines": ["1 Road"], "city": "X", "country": "QQ"}),
        {"name": "Nowhere Trading", "country": ""},
    ),
    CustomerCase(
        "JDE country alias, lower case",
        customer("Alias Country Co", address={"lines": ["1 Road"], "city": "Leeds", "country": "gb"}),
        {"name": "Alias Country Co", "country": "GB"},
    ),
    CustomerCase(
        "four address lines",
        customer("Four Lines Ltd", address={"lines": ["Unit 4", "Dock Road", "Harbour Estate", "Gate B"]}),
        {"address": "Unit 4", "address2": "Dock Road, Harbour Estate, Gate B"},
    ),
    CustomerCase(
        "address lines of blanks",
        customer("Blank Street Co", address={"lines": ["   ", "  "], "city": "Bonn", "country": "DE"}),
        {"address": "", "address2": "", "city": "Bonn"},
    ),
    CustomerCase(
        "unknown currency code on the customer master",
        customer("Odd Currency Co", currency="zzz"),
        {"name": "Odd Currency Co", "jde_currency": "ZZZ"},
    ),
    CustomerCase(
        "contact e-mail in capitals with blanks",
        customer("Mail Case Co", contacts=[person("Ana", "Lima", "  ANA.LIMA@Mail-Case.EXAMPLE ")]),
        {"name": "Mail Case Co"},
        contacts={1: {"email": "ana.lima@mail-case.example", "firstname": "Ana"}},
    ),
    CustomerCase(
        "contact e-mail that is not an address",
        customer("Bad Mail Co", contacts=[person("Ben", "Ode", "ben.ode(at)bad-mail.example")]),
        {"name": "Bad Mail Co"},
        contacts={1: {"email": "", "firstname": "Ben", "lastname": "Ode"}},
    ),
    CustomerCase(
        "contact e-mail over 254 characters",
        customer("Long Mail Co", contacts=[person("Cai", "Wu", "c@" + "a" * 250 + ".example")]),
        {"name": "Long Mail Co"},
        contacts={1: {"email": "", "lastname": "Wu"}},
    ),
    CustomerCase(
        "contact e-mail with a local part over 64 characters",
        customer("Local Part Co", contacts=[person("Dee", "Fox", "d" * 65 + "@local-part.example")]),
        {"name": "Local Part Co"},
        contacts={1: {"email": "", "lastname": "Fox"}},
    ),
    CustomerCase(
        "contact with neither a name nor an e-mail",
        customer("Nameless Contact Co", contacts=[person("", "", None)]),
        {"name": "Nameless Contact Co"},
        contacts={1: "no name (GNNM, SRNM, MLNM, ALPH blank) and no valid e-mail"},
    ),
    CustomerCase(
        "contact with only an e-mail",
        customer("Only Mail Co", contacts=[person("", "", "desk@only-mail.example")]),
        {"name": "Only Mail Co"},
        contacts={1: {"email": "desk@only-mail.example", "firstname": "", "lastname": ""}},
    ),
    CustomerCase(
        "HTML in a contact's name and title",
        customer("Markup People Co", contacts=[person("<b>Eve</b>", "Ray", None, title="<i>CFO</i>")]),
        {"name": "Markup People Co"},
        contacts={1: {"firstname": "<b>Eve</b>", "jobtitle": "<i>CFO</i>"}},
    ),
    CustomerCase(
        "phone number with letters",
        customer("Vanity Phone Co", contacts=[person("Gil", "Orr", None, phone="555-CALL-NOW")]),
        {"name": "Vanity Phone Co"},
        contacts={1: {"phone": "555-CALL-NOW"}},
    ),
    CustomerCase(
        "a name of punctuation only",
        customer("— & —"),
        {"name": "— & —"},
    ),
    CustomerCase(
        "contact with a surname only",
        customer("Surname Only Co", contacts=[person("", "Okafor")]),
        {"name": "Surname Only Co"},
        contacts={1: {"firstname": "", "lastname": "Okafor"}},
    ),
    CustomerCase(
        "contact e-mail with a plus tag",
        customer("Plus Tag Co", contacts=[person("Ivo", "Pell", "ivo+jde@plus-tag.example")]),
        {"name": "Plus Tag Co"},
        contacts={1: {"email": "ivo+jde@plus-tag.example"}},
    ),
    CustomerCase(
        "contact e-mail ending in a dot",
        customer("Trailing Dot Co", contacts=[person("Jan", "Kos", "jan@trailing-dot.example.")]),
        {"name": "Trailing Dot Co"},
        contacts={1: {"email": "", "lastname": "Kos"}},
    ),
    CustomerCase(
        "phone with a country code, brackets and an extension, over JDE's 20 characters (PH1 keeps 20)",
        customer("Extension Co", contacts=[person("Kim", "Lo", None, phone="+49 (40) 123-456 ext. 7")]),
        {"name": "Extension Co"},
        contacts={1: {"phone": "+49 (40) 123-456 ext"}},
    ),
    CustomerCase(
        "two contacts of one customer with one e-mail (HubSpot keeps one contact per e-mail)",
        customer(
            "Shared Mailbox Co",
            contacts=[
                person("Lea", "Moe", "buying@shared-mailbox.example"),
                person("Max", "Noe", "BUYING@shared-mailbox.example"),
            ],
        ),
        {"name": "Shared Mailbox Co"},
        contacts={1: {"email": "buying@shared-mailbox.example"}, 2: "linked to 1"},
    ),
    CustomerCase(
        "a customer whose only contact is rejected, beside a good one",
        customer("Half Good Co", contacts=[person("", "", "not-an-address"), person("Hal", "Ives", None)]),
        {"name": "Half Good Co"},
        contacts={1: "no name (GNNM, SRNM, MLNM, ALPH blank) and no valid e-mail", 2: {"lastname": "Ives"}},
    ),
]


@pytest.fixture
def bad_input_flows(customer_sandboxes, airflow_store):
    from airflow.models import Variable

    forget_flow_variables()
    sandboxes: Sandboxes = customer_sandboxes(jde={"customers": 10})
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    yield sandboxes
    forget_flow_variables()


def _store() -> Any:
    from airflow_provider_mlconn.operators.common import store_from_airflow

    return store_from_airflow()


def _records(dag_run: Any) -> dict[tuple[str, str], Any]:
    return {(r.entity, r.key): r for r in _store().records.of_run(f"{dag_run.dag_id}/{dag_run.run_id}")}


def _by(records: list[dict[str, Any]], key_property: str) -> dict[str, dict[str, Any]]:
    return {str(r["properties"][key_property]): r["properties"] for r in records}


def test_bad_jde_customer_rows_are_loaded_right_or_rejected_with_a_reason_and_the_run_succeeds(
    bad_input_flows,
):
    sandboxes: Sandboxes = bad_input_flows
    numbers = {
        case.kind: int(sandboxes.jde_control("POST", "customers", case.body)["address_number"])
        for case in CUSTOMER_CASES
    }
    dag_run = run(CUSTOMERS_DAG)  # asserts the run succeeded
    records = _records(dag_run)
    companies = _by(
        sandboxes.hubspot_objects(
            "companies",
            ["jde_address_number", "name", "country", "address", "address2", "city", "jde_currency"],
        ),
        "jde_address_number",
    )
    contacts = _by(
        sandboxes.hubspot_objects(
            "contacts", ["jde_contact_key", "email", "firstname", "lastname", "jobtitle", "phone"]
        ),
        "jde_contact_key",
    )
    wrong: list[str] = []
    for case in CUSTOMER_CASES:
        number = str(numbers[case.kind])
        if case.company is None:
            record = records[("company", number)]
            if (
                number in companies
                or record.status is not RecordStatus.REJECTED
                or case.rejected not in (record.error or "")
            ):
                wrong.append(
                    f"{case.kind}: expected rejected ({case.rejected}), got {record.status} {record.error!r}"
                )
        elif number not in companies:
            wrong.append(f"{case.kind}: company not in HubSpot ({records[('company', number)].error!r})")
        else:
            got = {name: companies[number].get(name) or "" for name in case.company}
            if got != case.company:
                wrong.append(f"{case.kind}: company {got} != {case.company}")
        for line, expected in case.contacts.items():
            key = f"{number}-{line}"
            if isinstance(expected, str) and expected.startswith("linked to "):
                record = records[("contact", key)]
                owner = contacts.get(f"{number}-{expected.removeprefix('linked to ')}", {})
                if (
                    key in contacts
                    or record.status is not RecordStatus.LOADED
                    or record.remote_id != owner.get("hs_object_id")
                ):
                    wrong.append(
                        f"{case.kind}: contact {key} expected {expected}, "
                        f"got {record.status} {record.remote_id}"
                    )
            elif isinstance(expected, str):
                record = records[("contact", key)]
                if (
                    key in contacts
                    or record.status is not RecordStatus.REJECTED
                    or expected not in (record.error or "")
                ):
                    wrong.append(
                        f"{case.kind}: contact {key} expected rejected, got {record.status} {record.error!r}"
                    )
            elif key not in contacts:
                wrong.append(
                    f"{case.kind}: contact {key} not in HubSpot ({records[('contact', key)].error!r})"
                )
            else:
                got = {name: contacts[key].get(name) or "" for name in expected}
                if got != expected:
                    wrong.append(f"{case.kind}: contact {key} {got} != {expected}")
    assert wrong == []
    # Nothing else disturbed: every seeded customer is in HubSpot beside the cases (or, where the seed
    # itself holds a bad row, rejected with its reason), none failed.
    seeded = {
        key: r
        for (entity, key), r in records.items()
        if entity == "company" and int(key) not in numbers.values()
    }
    assert len(seeded) == 10
    assert [
        key for key, r in seeded.items() if key not in companies and r.status is not RecordStatus.REJECTED
    ] == []
    assert [r.key for r in records.values() if r.status is RecordStatus.FAILED] == []


# -- HubSpot invoices -> JDE -------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceCase:
    kind: str
    lines: list[dict[str, Any]]
    #: "posted", "skipped" (never sent, nothing to act on), or "rejected: <fragment>" / "waiting: <fragment>".
    expect: str
    company: str = "customer"  # "customer", "none", "two", "not in JDE"
    currency: str = "USD"
    status: str = "open"
    gross: str | None = None  # the posted document's gross amount, where it is posted


def line(name: str, price: str, quantity: str = "1", **extra: str) -> dict[str, Any]:
    return {"name": name, "price": price, "quantity": quantity, **extra}


INVOICE_CASES = [
    InvoiceCase(
        "an ordinary invoice (the control)", [line("Consulting", "120.00")], "posted", gross="120.00"
    ),
    InvoiceCase(
        "HTML and script in a line's name",
        [line("<script>alert('x')</script> Install", "80.00")],
        "posted",
        gross="80.00",
    ),
    InvoiceCase(
        "non-Latin line names",
        [line("Wartung für Müller", "50.00"), line("設置作業", "25.00")],
        "posted",
        gross="75.00",
    ),
    InvoiceCase("a fractional quantity", [line("Hours", "40.00", "2.5")], "posted", gross="100.00"),
    InvoiceCase(
        "a line name over JDE's 30-character description",
        [line("Preventive maintenance visit with full calibration report", "90.00")],
        "posted",
        gross="90.00",
    ),
    InvoiceCase(
        "no company associated", [line("Orphan", "40.00")], "rejected: has no company", company="none"
    ),
    InvoiceCase(
        "two companies associated", [line("Shared", "40.00")], "rejected: has 2 companies", company="two"
    ),
    InvoiceCase(
        "a company with no JDE customer",
        [line("New logo", "40.00")],
        "waiting: has no JDE customer",
        company="not in JDE",
    ),
    InvoiceCase(
        "an invoice of zero", [line("Free sample", "0")], "rejected: JDE posts no invoice of zero or less"
    ),
    InvoiceCase(
        "a discount as large as the line",
        [line("Goodwill visit", "50.00", discount="50")],
        "rejected: JDE posts no invoice of zero or less",
    ),
    InvoiceCase(
        "cents in a currency without decimals",
        [line("Yen service", "100.5")],
        "rejected: more decimals than JPY has",
        currency="JPY",
    ),
    InvoiceCase("a draft (not issued)", [line("Draft", "10.00")], "skipped", status="draft"),
]


def _company_for(sandboxes: Sandboxes, case: InvoiceCase, customers: list[Any]) -> list[str]:
    if case.company == "none":
        return []
    if case.company == "two":
        return [customers[0].company_id, customers[1].company_id]
    if case.company == "not in JDE":
        made = sandboxes.hubspot_api(
            "POST", "/crm/v3/objects/companies", {"properties": {"name": "New Logo Inc"}}
        )
        return [made["id"]]
    return [customers[0].company_id]


def test_bad_hubspot_invoices_are_posted_right_or_rejected_or_wait_with_a_reason_and_the_run_succeeds(
    bad_input_flows,
):
    sandboxes: Sandboxes = bad_input_flows
    customers = customers_in_hubspot(sandboxes, 2)
    made: dict[str, dict[str, Any]] = {}
    for case in INVOICE_CASES:
        companies = _company_for(sandboxes, case, customers)
        invoice = create_invoice(
            sandboxes,
            company_id=companies[0] if companies else None,
            contact_id=customers[0].contact_id,
            lines=[{"hs_line_item_currency_code": case.currency, **item} for item in case.lines],
            currency=case.currency,
            status=case.status,
        )
        for extra in companies[1:]:
            sandboxes.hubspot_api(
                "PUT", f"/crm/v4/objects/invoices/{invoice['id']}/associations/default/companies/{extra}"
            )
        made[case.kind] = invoice
    time.sleep(1.1)
    run(INVOICES_DAG)  # asserts the run succeeded

    wrong: list[str] = []
    for case in INVOICE_CASES:
        invoice = made[case.kind]
        number = invoice["properties"]["hs_number"]
        written = invoice_properties(sandboxes, invoice["id"])["properties"]
        posted = ledger(number)
        status, message = written.get("jde_sync_status") or "", written.get("jde_sync_message") or ""
        if case.expect == "posted":
            gross = [item.gross_amount for item in posted]
            if status != "posted" or gross != [Decimal(str(case.gross))]:
                wrong.append(f"{case.kind}: {status} {message!r}, JDE gross {gross}")
        elif case.expect == "skipped":
            if posted or status:
                wrong.append(
                    f"{case.kind}: expected untouched, got {status} {message!r} and {len(posted)} in JDE"
                )
        else:
            want, _, fragment = case.expect.partition(": ")
            if posted or status != want or fragment not in message:
                wrong.append(
                    f"{case.kind}: expected {case.expect}, got {status} {message!r}, {len(posted)} in JDE"
                )
    assert wrong == []
    assert jde_posts(sandboxes) == sum(case.expect == "posted" for case in INVOICE_CASES)


def test_what_hubspot_itself_refuses_never_reaches_a_flow(bad_input_flows):
    """A 10 MB property value, a body that is not UTF-8 and a negative price: HubSpot answers 400, as the
    sandbox does, so no flow ever reads them."""
    sandboxes: Sandboxes = bad_input_flows
    headers = {"Authorization": f"Bearer {HUBSPOT_TOKEN}", "Content-Type": "application/json"}
    url = f"{sandboxes.hubspot.url}/crm/v3/objects/line_items"
    huge = sandboxes.http.post(
        url,
        json={"properties": {"name": "x" * 10_000_000, "price": "1", "quantity": "1"}},
        headers=headers,
        timeout=120,
    )
    assert huge.status_code == 400, huge.text[:300]
    not_utf8 = sandboxes.http.post(
        url, data=b'{"properties": {"name": "caf\xe9", "price": "1"}}', headers=headers, timeout=30
    )
    assert not_utf8.status_code == 400, not_utf8.text[:300]
    negative = sandboxes.http.post(
        url,
        json={"properties": {"name": "Refund", "price": "-50.00", "quantity": "1"}},
        headers=headers,
        timeout=30,
    )
    assert negative.status_code == 400, negative.text[:300]


# -- HubSpot payments -> JDE -------------------------------------------------------------------------


PAYMENT_CASES = [
    # kind, payment status, amount, on the invoice that was refused, expected receipts (amount, unapplied)
    ("a succeeded payment (the control)", "succeeded", "40.00", False, [("40.00", "0")]),
    ("a payment still processing", "processing", "40.00", False, []),
    ("a failed payment", "failed", "40.00", False, []),
    ("a payment in dispute before its first sync", "disputed_awaiting_decision", "40.00", False, []),
    ("a payment over the invoice's balance", "succeeded", "150.00", False, [("150.00", "50.00")]),
    ("a payment of an invoice JDE refused", "succeeded", "40.00", True, []),
]


def test_payments_that_are_not_money_yet_or_pay_a_refused_invoice_are_not_posted_and_the_run_succeeds(
    bad_input_flows,
):
    sandboxes: Sandboxes = bad_input_flows
    [first] = customers_in_hubspot(sandboxes, 1)
    invoices = {  # one invoice per case: HubSpot records payments on open invoices only
        kind: create_invoice(
            sandboxes,
            company_id=None if refused else first.company_id,
            contact_id=first.contact_id,
            lines=[line("Service", "100.00")],
        )
        for kind, _, _, refused, _ in PAYMENT_CASES
    }
    time.sleep(1.1)
    run(INVOICES_DAG)
    payments = {
        kind: record_payment(sandboxes, invoices[kind]["id"], amount, status=status)
        for kind, status, amount, _, _ in PAYMENT_CASES
    }
    time.sleep(1.1)
    run(PAYMENTS_DAG)  # asserts the run succeeded
    wrong = []
    for kind, _, _, _, expected in PAYMENT_CASES:
        got = [(str(r.receipt_amount), str(r.unapplied_amount)) for r in receipts(payments[kind]["id"])]
        want = [
            (str(Decimal(a).quantize(Decimal("0.01"))), str(Decimal(u).quantize(Decimal("0.01"))))
            for a, u in expected
        ]
        got = [
            (str(Decimal(a).quantize(Decimal("0.01"))), str(Decimal(u).quantize(Decimal("0.01"))))
            for a, u in got
        ]
        if got != want:
            wrong.append(f"{kind}: receipts {got} != {want}")
    assert wrong == []
    waiting = payment_properties(sandboxes, payments["a payment of an invoice JDE refused"]["id"])
    assert waiting["jde_sync_status"] == "waiting", waiting
    assert (
        invoices["a payment of an invoice JDE refused"]["properties"]["hs_number"]
        in waiting["jde_sync_message"]
    ), waiting
