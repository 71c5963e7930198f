"""``make demo``: the syncs end to end against the local JDE and HubSpot sandboxes.

1. starts both sandboxes (child processes, free local ports) and points ``jde_ais_default`` and
   ``hubspot_default`` at them;
2. customers: runs ``mlconn_customers_jde_to_hubspot`` (Airflow's ``dag.test()``, in this process,
   on a SQLite metadata database under .demo/) for the initial load; edits JDE the way a person
   would (a changed address, a new customer, a new contact, an invalid e-mail, a blanked name);
   runs it again, and once more with nothing changed;
3. reference data: ``mlconn_gl_accounts_sync`` (accounts become line-item options; one is locked in
   JDE and hidden) and ``mlconn_items_sync`` (items become products; a rename in JDE, a product
   created in HubSpot, a conflicting edit in HubSpot);
4. invoices: HubSpot starts with companies and invoices of its own (``--seed 42``); invoices are
   issued to JDE's customers and one to no company; ``mlconn_invoices_hubspot_to_jde`` posts each
   once to F03B11/F0911 and writes the JDE document back, refuses the bad one with its reason, and
   the HubSpot companies' invoices wait until accounting opens them as JDE customers, then post by
   themselves; a void after posting makes one credit memo; a run with nothing new posts nothing;
5. payments: HubSpot's payments (seeded, and one recorded now) post as JDE receipts applied to their
   invoices (``mlconn_payments_hubspot_to_jde``); a refund in full voids the receipt;
6. A/R status: ``mlconn_ar_jde_to_hubspot`` reads the whole ledger (documents raised in JDE become
   non-billable HubSpot invoices, companies get their balances); accounting keys a receipt in JDE
   for an invoice issued in HubSpot and bills a sales order; the next run shows the invoice paid,
   the new invoice in HubSpot with its line items, the balance; a run with nothing changed writes
   nothing;
7. reconciliation: ``mlconn_reconcile`` compares both systems through their APIs and prints its
   report (what differs after all of the above: the conflicting product edit, at least);
8. after each run prints what happened: records read, created, updated, unchanged, rejected and
   waiting (with the reasons), API calls on each side, 429s, time;
9. stops everything it started. The audit store stays in .demo/ for ``mlconn audit``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_HOME = REPO_ROOT / ".demo"
DAG_ID = "mlconn_customers_jde_to_hubspot"
GL_DAG_ID = "mlconn_gl_accounts_sync"
ITEMS_DAG_ID = "mlconn_items_sync"
INVOICES_DAG_ID = "mlconn_invoices_hubspot_to_jde"
PAYMENTS_DAG_ID = "mlconn_payments_hubspot_to_jde"
AR_DAG_ID = "mlconn_ar_jde_to_hubspot"
JDE_USER, JDE_PASSWORD, JDE_TIMEZONE = "DEMO", "demo-password", "America/Chicago"
HUBSPOT_TOKEN = "pat-na1-demo-0000"
SHOWN_NOTES = 10


def prepare_environment(home: Path) -> None:
    """Airflow reads its configuration once, at first import: write it before anything imports Airflow.

    An airflow.cfg (not environment variables) so that ``AIRFLOW_HOME=.demo/airflow mlconn audit ...``
    finds the same database and Fernet key after the demo.
    """
    from cryptography.fernet import Fernet

    airflow_home = home / "airflow"
    (airflow_home / "airflow.cfg").write_text(
        "[core]\n"
        f"dags_folder = {REPO_ROOT / 'dags'}\n"
        "load_examples = False\n"
        f"fernet_key = {Fernet.generate_key().decode()}\n"
        "[database]\n"
        f"sql_alchemy_conn = sqlite:///{airflow_home / 'airflow.db'}\n"
        "[logging]\n"
        "logging_level = WARNING\n"
    )
    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    for name in [n for n in os.environ if n.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
        del os.environ[name]


class Sandbox:
    """A started sandbox process and its control API."""

    def __init__(self, process: Any) -> None:
        import requests

        self.process = process
        self.url = process.url
        self.http = requests.Session()

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def total_requests(self) -> tuple[int, int]:
        """(all requests, 429s) the sandbox served so far (HubSpot counts by path then status, JDE by
        "METHOD path status")."""
        stats = self.control("GET", "stats")
        if "total" in stats:
            return int(stats["total"]), int(stats.get("rate_limited", 0))
        return sum(int(n) for n in stats["requests"].values()), 0


def run_once(label: str, jde: Sandbox, hubspot: Sandbox, dag_id: str = DAG_ID) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_mlconn.sync.store import open_store, run_key_for, store_settings

    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{dag_id}.py"), safe_mode=False).dags[dag_id]
    jde_before, hubspot_before = jde.total_requests(), hubspot.total_requests()
    started = time.monotonic()
    # The demo edits JDE and runs again at once: no safety lag, or the edits would wait for the next run.
    dag_run = dag.test(run_conf={"safety_lag_minutes": 0})
    seconds = time.monotonic() - started
    jde_after, hubspot_after = jde.total_requests(), hubspot.total_requests()

    from airflow.configuration import conf

    settings = store_settings(None, airflow_fernet_key=conf.get("core", "fernet_key"))
    store = open_store(settings)
    records = store.records.of_run(run_key_for(dag_id, dag_run.run_id))
    outcome: Counter[tuple[str, str]] = Counter()
    for record in records:
        state = record.change if record.status.value == "loaded" and record.change else record.status.value
        outcome[(record.entity, state)] += 1
    return {
        "label": label,
        "dag_id": dag_id,
        "entities": [task.task_id.split(".")[0] for task in dag.tasks if task.task_id.endswith(".order")],
        "state": str(dag_run.state),
        "seconds": seconds,
        "records": records,
        "outcome": outcome,
        "jde_calls": jde_after[0] - jde_before[0],
        "hubspot_calls": hubspot_after[0] - hubspot_before[0],
        "hubspot_429s": hubspot_after[1] - hubspot_before[1],
        "store": settings.url,
        "run_id": dag_run.run_id,
    }


def print_report(result: dict[str, Any]) -> None:
    outcome = result["outcome"]
    print(f"\n== {result['label']}: run {result['state']} in {result['seconds']:.1f} s")
    columns = ("read", "created", "updated", "unchanged", "rejected", "waiting", "failed")
    width = max(12, *(len(entity) + 2 for entity in result["entities"]))
    print("   " + "entity".ljust(width) + "".join(name.rjust(10) for name in columns))
    for entity in result["entities"]:
        read = sum(n for (e, _), n in outcome.items() if e == entity)
        counts = [read, *(outcome[(entity, state)] for state in columns[1:])]
        print("   " + entity.ljust(width) + "".join(str(n).rjust(10) for n in counts))
    print(
        f"   API calls: JDE AIS {result['jde_calls']}, HubSpot {result['hubspot_calls']} "
        f"({result['hubspot_429s']} answered 429)"
    )
    shown = 0
    for record in sorted(
        result["records"], key=lambda r: (r.status.value not in ("rejected", "waiting"), r.entity, r.key)
    ):
        if record.status.value == "unchanged":
            continue
        for line in [record.error] if record.error else list((record.payload or {}).get("notes", [])):
            if shown < SHOWN_NOTES:
                print(f"   - {record.status.value:<9}{record.entity} {record.key}: {line}")
            shown += 1
    if shown > SHOWN_NOTES:
        run = f"{result['dag_id']}/{result['run_id']}"
        print(f"   ... {shown - SHOWN_NOTES} more; the run's failures: mlconn audit failures --run '{run}'")


def pick_customers(count: int) -> list[tuple[int, int]]:
    """(address number, a contact line) of the first ``count`` customers that have a contact."""
    from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
    from airflow_provider_mlconn.jde import query as q

    with JdeAisHook() as hook:
        customers = [
            int(r["AN8"]) for r in hook.iter_rows("F0101", query=q.eq("F0101.AT1", "C"), columns=["AN8"])
        ]
        lines: dict[int, int] = {}
        for row in hook.iter_rows(
            "F0111", query=q.in_list("F0111.AN8", customers[:50]), columns=["AN8", "IDLN"]
        ):
            if int(row["IDLN"]) > 0:
                lines.setdefault(int(row["AN8"]), int(row["IDLN"]))
    return [(an8, lines[an8]) for an8 in customers if an8 in lines][:count]


def edit_jde(jde: Sandbox) -> None:
    (moved, _), (grows, _), (mistyped, line), (blanked, _) = pick_customers(4)
    new_address = {"lines": ["Neue Strasse 5"], "city": "Bremen", "country": "DE"}
    jde.control("POST", f"customers/{moved}/addresses", new_address)
    print(f"   customer {moved}: moved to Neue Strasse 5, Bremen (address updated in F0116)")
    nordwind = {
        "name": "Nordwind Handel GmbH",
        "address": {"lines": ["Hafenweg 1"], "city": "Hamburg", "country": "DE"},
        "contacts": [{"given_name": "Jana", "surname": "Lindqvist", "email": "jana@nordwind.example"}],
    }
    added = jde.control("POST", "customers", nordwind)
    print(f"   customer {added['address_number']}: new, Nordwind Handel GmbH, with one contact")
    otto = {"given_name": "Otto", "surname": "Berg", "email": "otto@berg.example"}
    contact = jde.control("POST", f"customers/{grows}/contacts", otto)
    print(f"   customer {grows}: new contact line {contact['line']}, Otto Berg")
    jde.control("PUT", f"customers/{mistyped}/contacts/{line}/email", {"email": "otto.berg(at)example"})
    print(f"   customer {mistyped}: contact line {line} got the e-mail 'otto.berg(at)example' (invalid)")
    jde.control("PATCH", f"customers/{blanked}", {"name": ""})
    print(f"   customer {blanked}: alpha name blanked by mistake (HubSpot needs a company name)")


def reference_data(jde: Sandbox, hubspot: Sandbox) -> list[dict[str, Any]]:
    """GL accounts -> line-item options, then items <-> products, with edits on both sides."""
    from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
    from airflow_provider_mlconn.jde import query as q

    results = [run_once("GL accounts and business units -> line-item options", jde, hubspot, GL_DAG_ID)]
    print_report(results[-1])
    with JdeAisHook() as hook:
        account = next(
            r
            for r in hook.iter_rows("F0901", query=q.between("F0901.OBJ", "4000", "4999"))
            if not str(r["PEC"]).strip()
        )
    jde.control("PATCH", f"accounts/{str(account['AID']).strip()}", {"posting_edit": "I"})
    value = ".".join(p for p in (str(account[c]).strip() for c in ("MCU", "OBJ", "SUB")) if p)
    print(f"\n== in JDE: account {value} made inactive (F0901.PEC = I)")
    time.sleep(1.1)
    results.append(
        run_once("GL accounts after the change: the option is hidden, not removed", jde, hubspot, GL_DAG_ID)
    )
    print_report(results[-1])

    results.append(
        run_once("items -> products (and HubSpot's own products -> JDE items)", jde, hubspot, ITEMS_DAG_ID)
    )
    print_report(results[-1])
    with JdeAisHook() as hook:
        item = next(iter(hook.iter_rows("F4101", columns=["ITM", "LITM"])))
    jde.control("PATCH", f"items/{item['ITM']}", {"description": "Demo widget, renamed in JDE"})
    print(f"\n== in JDE: item {str(item['LITM']).strip()} renamed")
    created = hubspot_api(
        hubspot,
        "POST",
        "/crm/v3/objects/products",
        {"properties": {"name": "Demo service", "price": "120", "hs_sku": "DEMO-SVC-1"}},
    )
    print(f"== in HubSpot: product {created['id']} 'Demo service' (SKU DEMO-SVC-1) created by a salesperson")
    other = next(
        p
        for p in hubspot_api(
            hubspot, "GET", "/crm/v3/objects/products", None, limit=20, properties="jde_item_number"
        )["results"]
        if p["properties"].get("jde_item_number") not in (None, str(item["LITM"]).strip())
    )
    hubspot_api(
        hubspot,
        "PATCH",
        f"/crm/v3/objects/products/{other['id']}",
        {"properties": {"name": "Renamed by sales"}},
    )
    number = other["properties"]["jde_item_number"]
    print(f"== in HubSpot: product {other['id']} (JDE item {number}) renamed by sales; JDE owns the name")
    time.sleep(2.5)  # HubSpot's search shows a change after a lag (the connection allows 2 s)
    results.append(run_once("items after the edits on both sides", jde, hubspot, ITEMS_DAG_ID))
    print_report(results[-1])
    results.append(run_once("items with nothing changed: nothing comes back", jde, hubspot, ITEMS_DAG_ID))
    print_report(results[-1])
    return results


def invoices(jde: Sandbox, hubspot: Sandbox) -> list[dict[str, Any]]:
    """HubSpot's invoices post once to JDE: those of JDE's customers at once, those of HubSpot's own
    companies once accounting opened them in JDE; a bad one is refused; a void becomes a credit memo."""
    import json

    from airflow.models import Variable

    from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
    from airflow_provider_mlconn.jde import query as q

    with JdeAisHook() as hook:  # a postable revenue account of company 00001 (the demo locked one)
        account = next(
            ".".join(p for p in (str(r[c]).strip() for c in ("MCU", "OBJ", "SUB")) if p)
            for r in hook.iter_rows(
                "F0901", query=q.all_of(q.between("F0901.OBJ", "4000", "4999"), q.eq("F0901.CO", "00001"))
            )
            if not str(r["PEC"]).strip()
        )
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": account}}))
    print(f"\n== settings: Variable mlconn_invoices, lines without a G/L account post to {account}")
    companies = hubspot_objects(hubspot, "companies", "name,jde_address_number", associations="contacts")
    seeded = [c for c in companies if not c["properties"].get("jde_address_number")]
    print(
        f"== in HubSpot already: {len(seeded)} companies of its own (no JDE customer) with 12 invoices, "
        "draft, open and paid"
    )
    known = [
        c
        for c in companies
        if c["properties"].get("jde_address_number") and (c.get("associations") or {}).get("contacts")
    ][:2]
    issued = []
    for quantity, company in enumerate(known, start=2):
        contact = company["associations"]["contacts"]["results"][0]["id"]
        issued.append(_issue(hubspot, company["id"], contact, quantity))
        print(
            f"== in HubSpot: invoice {issued[-1]['properties']['hs_number']} issued to "
            f"{company['properties']['name']} ({quantity} x Demo service at 120)"
        )
    buyer = hubspot_api(
        hubspot, "POST", "/crm/v3/objects/contacts", {"properties": {"email": "buyer@walkin.example"}}
    )
    orphan = _issue(hubspot, None, buyer["id"], 1)
    print(f"== in HubSpot: invoice {orphan['properties']['hs_number']} issued to a contact, no company")
    time.sleep(2.5)  # HubSpot's search shows a change after a lag (the connection allows 2 s)
    results = [run_once("invoices -> JDE A/R (F03B11, F0911)", jde, hubspot, INVOICES_DAG_ID)]
    print_report(results[-1])
    print_invoices(hubspot, [invoice["id"] for invoice in [*issued, orphan]])

    print("\n== accounting opens HubSpot's companies as JDE customers (P01012) and enters their numbers:")
    for company in seeded:
        name = company["properties"]["name"]
        opened = jde.control(
            "POST",
            "customers",
            {"name": name, "address": {"lines": ["Main Street 1"], "city": "Chicago", "country": "US"}},
        )["address_number"]
        hubspot_api(
            hubspot,
            "PATCH",
            f"/crm/v3/objects/companies/{company['id']}",
            {"properties": {"jde_address_number": str(opened)}},
        )
        print(f"   {name}: JDE customer {opened}")
    time.sleep(1.1)
    results.append(run_once("customers: the new JDE customers meet their HubSpot companies", jde, hubspot))
    print_report(results[-1])
    results.append(run_once("invoices: the waiting ones post by themselves", jde, hubspot, INVOICES_DAG_ID))
    print_report(results[-1])

    voided = issued[0]
    hubspot.http.post(f"{hubspot.url}/_sandbox/invoices/{voided['id']}/void", timeout=30).raise_for_status()
    print(f"\n== in HubSpot: invoice {voided['properties']['hs_number']} voided after it was posted")
    time.sleep(2.5)
    results.append(run_once("invoices after the void: one credit memo (RM)", jde, hubspot, INVOICES_DAG_ID))
    print_report(results[-1])
    results.append(run_once("invoices with nothing new: nothing posted", jde, hubspot, INVOICES_DAG_ID))
    print_report(results[-1])
    return results


def payments(jde: Sandbox, hubspot: Sandbox) -> list[dict[str, Any]]:
    """HubSpot's payments post once as JDE receipts applied to their invoices; a refund voids one."""
    invoices = {
        i["properties"]["hs_number"]: i
        for i in hubspot_objects(
            hubspot, "invoices", "hs_number,hs_invoice_status,hs_balance_due,jde_document_number"
        )
    }
    paid_now = invoices["INV-1014"]
    balance = paid_now["properties"]["hs_balance_due"]
    payment = hubspot.http.post(
        f"{hubspot.url}/_sandbox/payments",
        json={"invoice_id": paid_now["id"], "amount": balance, "method": "ach"},
        timeout=30,
    )
    payment.raise_for_status()
    print(
        f"\n== in HubSpot already: the seeded payments (paid and part-paid invoices, one still processing); "
        f"now invoice INV-1014 paid by ACH: payment {payment.json()['id']} for {balance} USD"
    )
    time.sleep(2.5)  # HubSpot's search shows a change after a lag (the connection allows 2 s)
    results = [run_once("payments -> JDE receipts (F03B13, F03B14)", jde, hubspot, PAYMENTS_DAG_ID)]
    print_report(results[-1])
    refunded = payment.json()["id"]
    hubspot.http.post(
        f"{hubspot.url}/_sandbox/payments/{refunded}/refund", json={}, timeout=30
    ).raise_for_status()
    print(f"\n== in HubSpot: payment {refunded} refunded in full")
    time.sleep(2.5)
    results.append(run_once("payments after the refund: the receipt voided", jde, hubspot, PAYMENTS_DAG_ID))
    print_report(results[-1])
    results.append(run_once("payments with nothing new: nothing posted", jde, hubspot, PAYMENTS_DAG_ID))
    print_report(results[-1])
    return results


def ar_status(jde: Sandbox, hubspot: Sandbox) -> list[dict[str, Any]]:
    """What accounting keys in JDE, sales sees in HubSpot: a receipt for an invoice issued in HubSpot,
    an invoice billed from a sales order in JDE, the companies' balances; nothing when nothing changed."""
    from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook

    results = [run_once("A/R status: the whole ledger -> HubSpot", jde, hubspot, AR_DAG_ID)]
    print_report(results[-1])
    posted = next(
        invoice
        for invoice in hubspot_objects(
            hubspot, "invoices", "hs_number,hs_invoice_status,jde_document_number", associations="companies"
        )
        if invoice["properties"].get("jde_document_number")
        and invoice["properties"].get("hs_invoice_status") == "open"
        and (invoice.get("associations") or {}).get("companies")
    )
    company_id = posted["associations"]["companies"]["results"][0]["id"]
    customer = int(
        hubspot_api(
            hubspot, "GET", f"/crm/v3/objects/companies/{company_id}", None, properties="jde_address_number"
        )["properties"]["jde_address_number"]
    )
    document = int(posted["properties"]["jde_document_number"])
    jde.control(
        "POST",
        "receipts",
        {
            "customer": customer,
            "receipt_number": "CHK-DEMO-1",
            "applications": [{"document_number": document}],
        },
    )
    print(
        f"\n== in JDE: cheque CHK-DEMO-1 of customer {customer} keyed for RI {document} "
        f"(HubSpot invoice {posted['properties']['hs_number']}), P03B102"
    )
    # the customer opened in JDE earlier in the demo, with one contact: in HubSpot with it by now
    billed_to = next(
        int(c["properties"]["jde_address_number"])
        for c in hubspot_objects(hubspot, "companies", "name,jde_address_number")
        if c["properties"].get("name") == "Nordwind Handel GmbH"
    )
    with JdeAisHook() as hook:
        items = [
            str(r["LITM"]).strip() for r in itertools.islice(hook.iter_rows("F4101", columns=["LITM"]), 2)
        ]
    lines = [
        {"item": items[0], "quantity": 4, "unit_price": "25"},
        {"item": items[1], "quantity": 1, "unit_price": "80"},
    ]
    order = jde.control("POST", "sales-invoices", {"customer": billed_to, "lines": lines})
    raised = f"{order['document_company']}-RI-{order['document_number']}"
    print(f"== in JDE: sales order {order['order_number']} of customer {billed_to} billed (R42800): {raised}")
    time.sleep(1.1)
    results.append(run_once("A/R status after the receipt and the sales order", jde, hubspot, AR_DAG_ID))
    print_report(results[-1])
    names = "hs_number,hs_invoice_status,hs_invoice_billable,hs_amount_billed,hs_currency," + ",".join(
        ("jde_document_key", "jde_open_amount", "jde_pay_status", "jde_last_receipt_date")
    )
    paid = hubspot_api(hubspot, "GET", f"/crm/v3/objects/invoices/{posted['id']}", None, properties=names)
    shown = paid["properties"]
    print(
        f"   HubSpot invoice {shown['hs_number']} (from HubSpot): jde_pay_status {shown['jde_pay_status']}, "
        f"jde_open_amount {shown['jde_open_amount']}, jde_last_receipt_date {shown['jde_last_receipt_date']}"
    )
    made = next(
        i
        for i in hubspot_objects(hubspot, "invoices", names, associations="line_items")
        if i["properties"].get("jde_document_key") == raised
    )
    shown = made["properties"]
    line_count = len((made.get("associations") or {}).get("line items", {}).get("results", []))
    print(
        f"   HubSpot invoice {shown['hs_number']} (raised in JDE, jde_document_key {raised}): "
        f"{shown['hs_invoice_status']}, billable {shown['hs_invoice_billable']}, {line_count} line items, "
        f"{shown['hs_amount_billed']} {shown['hs_currency']}, jde_pay_status {shown['jde_pay_status']}"
    )
    balance_names = (
        "name,jde_open_ar_balance,jde_overdue_ar_balance,jde_oldest_open_due_date,jde_last_payment_date"
    )
    balance = hubspot_api(
        hubspot, "GET", f"/crm/v3/objects/companies/{company_id}", None, properties=balance_names
    )
    shown = balance["properties"]
    print(
        f"   company {shown['name']}: jde_open_ar_balance {shown['jde_open_ar_balance']}, overdue "
        f"{shown['jde_overdue_ar_balance']}, oldest open due {shown['jde_oldest_open_due_date'] or '-'}, "
        f"last payment {shown['jde_last_payment_date']}"
    )
    results.append(run_once("A/R status with nothing changed in JDE", jde, hubspot, AR_DAG_ID))
    print_report(results[-1])
    return results


def reconciliation() -> dict[str, Any]:
    """``mlconn_reconcile`` once, its report printed as ``mlconn reconcile report`` prints it."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_mlconn.reconcile.report import ReconcileReport, render_text
    from airflow_provider_mlconn.sync.store import open_store, run_key_for, store_settings

    dag_id = "mlconn_reconcile"
    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{dag_id}.py"), safe_mode=False).dags[dag_id]
    started = time.monotonic()
    dag_run = dag.test()
    seconds = time.monotonic() - started
    store = open_store(store_settings(None, airflow_fernet_key=conf.get("core", "fernet_key")))
    stored = store.reconcile_reports.latest(run_key_for(dag_id, dag_run.run_id))
    print(f"\n== reconciliation (read only, both APIs): run {dag_run.state} in {seconds:.1f} s")
    if stored is not None:
        print(render_text(ReconcileReport.model_validate(stored.report), rows=15))
    print("   `mlconn reconcile report` prints it again; `--json` with every value")
    return {"label": "reconciliation", "state": str(dag_run.state), "store": store.url}


def print_invoices(hubspot: Sandbox, ids: list[str]) -> None:
    """What the HubSpot invoices show after the run (the write-back)."""
    for invoice_id in ids:
        properties = hubspot_api(
            hubspot,
            "GET",
            f"/crm/v3/objects/invoices/{invoice_id}",
            None,
            properties="hs_number,jde_document_number,jde_document_type,jde_batch_number,jde_sync_status,"
            "jde_sync_message",
        )["properties"]
        if properties.get("jde_document_number"):
            shown = (
                f"JDE {properties['jde_document_type']} {properties['jde_document_number']} "
                f"(batch {properties['jde_batch_number']})"
            )
        else:
            shown = properties.get("jde_sync_message") or ""
        print(
            f"   HubSpot invoice {properties['hs_number']}: "
            f"jde_sync_status {properties['jde_sync_status']}: {shown}"
        )


def hubspot_objects(
    hubspot: Sandbox, object_type: str, properties: str, **params: Any
) -> list[dict[str, Any]]:
    """Every record of a type, through the list endpoint's paging."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = hubspot_api(
            hubspot,
            "GET",
            f"/crm/v3/objects/{object_type}",
            None,
            limit=100,
            properties=properties,
            **params,
            **({"after": after} if after else {}),
        )
        found.extend(page["results"])
        after = (page.get("paging") or {}).get("next", {}).get("after")
        if not after:
            return found


def _issue(hubspot: Sandbox, company_id: str | None, contact_id: str, quantity: int) -> dict[str, Any]:
    """An open invoice as a salesperson makes it in the invoices tool, from the demo's product."""
    response = hubspot.http.post(
        f"{hubspot.url}/_sandbox/invoices",
        json={
            "currency": "USD",
            **({"company_id": company_id} if company_id else {}),
            "contact_id": contact_id,
            "lines": [{"sku": "DEMO-SVC-1", "quantity": quantity, "price": "120"}],
        },
        timeout=30,
    )
    response.raise_for_status()
    invoice: dict[str, Any] = response.json()["invoice"]
    return invoice


def hubspot_api(hubspot: Sandbox, method: str, path: str, body: Any = None, **params: Any) -> Any:
    response = hubspot.http.request(
        method,
        f"{hubspot.url}{path}",
        json=body,
        params=params or None,
        headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"},
        timeout=60,
    )
    response.raise_for_status()
    return response.json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=240, help="customers in JDE (default 240)")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="added latency on both APIs (default 20)"
    )
    parser.add_argument("--home", type=Path, default=DEMO_HOME, help="the demo's files (default .demo)")
    args = parser.parse_args()
    home = args.home.resolve()

    shutil.rmtree(home, ignore_errors=True)
    (home / "airflow").mkdir(parents=True)
    prepare_environment(home)
    logging.disable(logging.WARNING)

    from airflow_provider_mlconn.sandbox.runner import SandboxProcess

    jde_process = SandboxProcess(
        "jde",
        [
            "--customers",
            str(args.customers),
            "--latency-ms",
            str(args.latency_ms),
            "--username",
            JDE_USER,
            "--password",
            JDE_PASSWORD,
            "--timezone",
            JDE_TIMEZONE,
            "--token-ttl",
            "300",
        ],
    )
    hubspot_process = SandboxProcess(
        "hubspot", ["--token", HUBSPOT_TOKEN, "--latency-ms", str(args.latency_ms), "--seed", "42"]
    )
    started = time.monotonic()
    with jde_process, hubspot_process:
        jde, hubspot = Sandbox(jde_process), Sandbox(hubspot_process)
        from airflow_provider_mlconn.sandbox.connections import connection_environment, sandbox_connections

        definitions = sandbox_connections(
            jde_url=jde.url,
            hubspot_url=hubspot.url,
            jde_user=JDE_USER,
            jde_password=JDE_PASSWORD,
            jde_timezone=JDE_TIMEZONE,
            hubspot_token=HUBSPOT_TOKEN,
            device_name="mlconn-demo",
        )
        os.environ.update(connection_environment(definitions))
        print(f"JDE AIS sandbox   {jde.url}  ({args.customers} customers, {args.latency_ms:g} ms latency)")
        print(f"HubSpot sandbox   {hubspot.url}  (190 requests / 10 s, {args.latency_ms:g} ms latency)")
        print(f"Preparing Airflow's metadata database (SQLite under {home}) ...", flush=True)
        from airflow.utils import db

        db.resetdb()

        results = [run_once("initial load", jde, hubspot)]
        print_report(results[-1])
        print("\n== edits in JDE, as a person would make them in P01012 / P0111:")
        edit_jde(jde)
        time.sleep(1.1)  # JDE stamps whole seconds; the next window ends before the current second
        results.append(run_once("incremental run after the edits", jde, hubspot))
        print_report(results[-1])
        results.append(run_once("run with no change in JDE", jde, hubspot))
        print_report(results[-1])
        results.extend(reference_data(jde, hubspot))
        results.extend(invoices(jde, hubspot))
        results.extend(payments(jde, hubspot))
        results.extend(ar_status(jde, hubspot))
        results.append(reconciliation())

    total = time.monotonic() - started
    print(f"\nAll done in {total:.0f} s; sandboxes stopped.")
    print(f"Audit store: {results[0]['store']} (payloads encrypted with the demo's Fernet key)")
    print(f"Look inside: AIRFLOW_HOME={home / 'airflow'} .venv/bin/mlconn audit runs")
    return 0 if all(r["state"] == "success" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
