"""Invoices and payments HubSpot -> JDE at volume: 20,000 of each, 50 ms latency on both sandboxes.

Both sandboxes run as subprocesses (``mlconn-sandbox jde``, ``mlconn-sandbox hubspot`` at its default
190 requests per rolling 10 s). The DAGs run through ``dag.test()`` in a child process with an
AIRFLOW_HOME of its own (one task at a time: a deployment whose JDE pool has one slot), so every
operator, Variable and store call is in the measurement:

1. the customers flow brings the companies and contacts (not measured);
2. ``DOCUMENTS`` invoices are issued in HubSpot, spread over the customers (the sandbox's
   ``/_sandbox/invoices``, with its latency off while seeding), then the invoices flow posts them:
   one AIS orchestration call per document (``ORCH_55_CreateCustomerInvoice``) and its write-back;
3. each invoice is paid in full (``/_sandbox/payments``), then the payments flow posts the receipts
   (``ORCH_55_CreateReceipt``), applied to the invoices;
4. both flows run again with nothing new: no posting.

Per flow: JDE and HubSpot calls per document, the wall time beside the lower bound (every call made
one after the other at the sandboxes' latency, HubSpot's no faster than its rate limit), and where the
time went (the tasks' own times). JDE's duplicate check is off (as a JDE whose orchestrations have no
duplicate lookup): the counts of documents per reference prove that nothing was posted twice.

Run alone: ``.venv/bin/python -m benchmarks.money_flows`` (about 45 minutes at 20,000). Knobs:
``MLCONN_BENCH_MONEY_DOCUMENTS`` (20000), ``MLCONN_BENCH_MONEY_CUSTOMERS`` (500),
``MLCONN_BENCH_LATENCY_MS`` (50).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from benchmarks.ar_status import _run, _run_child
from benchmarks.customers_flow import (
    HUBSPOT_TOKEN,
    RATE_LIMIT,
    _airflow_env,
    _calls_since,
    _connections,
    _migrated_home,
    _sandboxes,
    _total,
)
from benchmarks.report import write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
CUSTOMERS_DAG = "mlconn_customers_jde_to_hubspot"
INVOICES_DAG = "mlconn_invoices_hubspot_to_jde"
PAYMENTS_DAG = "mlconn_payments_hubspot_to_jde"
DOCUMENTS = int(os.environ.get("MLCONN_BENCH_MONEY_DOCUMENTS", "20000"))
CUSTOMERS = int(os.environ.get("MLCONN_BENCH_MONEY_CUSTOMERS", "500"))
LATENCY_MS = float(os.environ.get("MLCONN_BENCH_LATENCY_MS", "50"))
ALLOWED_PER_S = RATE_LIMIT / 10
POSTING_COMPANY = "00001"
INVOICE_POST = "ORCH_55_CreateCustomerInvoice"
RECEIPT_POST = "ORCH_55_CreateReceipt"
#: The entities of each flow whose record counts the report shows.
#: A search window ends the connection's search lag before now (2 s for the sandboxes, H10): records
#: changed later are the next run's. The benchmark waits that long after seeding, and a second more.
SETTLE_S = 3.2
ENTITIES = {"invoices": ("invoice", "invoice_writeback"), "payments": ("receipt", "payment_writeback")}


# -- child: seeds HubSpot the way people do, runs the DAGs --------------------------------------------


def _set_latency(jde_url: str, hubspot_url: str, latency_ms: float) -> None:
    requests.patch(
        f"{jde_url}/_sandbox/settings", json={"latency_ms": latency_ms}, timeout=60
    ).raise_for_status()
    requests.post(
        f"{hubspot_url}/_sandbox/settings", json={"latency_ms": latency_ms}, timeout=60
    ).raise_for_status()


def _billable_customers(hubspot_url: str) -> list[tuple[str, str]]:
    """(company id, contact id) of the customers with a Customer Master line in the posting company."""
    from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook

    with JdeAisHook() as hook:
        billable = {
            int(row["AN8"])
            for row in hook.iter_rows("F03012", columns=["AN8", "CO"])
            if str(row["CO"]) == POSTING_COMPANY
        }
    found: list[tuple[str, str]] = []
    after: str | None = None
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {os.environ['MLCONN_BENCH_HUBSPOT_TOKEN']}"
        while True:
            params: dict[str, str | int] = {
                "limit": 100,
                "properties": "jde_address_number",
                "associations": "contacts",
            }
            if after:
                params["after"] = after
            page = http.get(f"{hubspot_url}/crm/v3/objects/companies", params=params, timeout=60).json()
            for company in page["results"]:
                contacts = company.get("associations", {}).get("contacts", {}).get("results", [])
                number = company["properties"].get("jde_address_number")
                if contacts and number and int(number) in billable:
                    found.append((company["id"], str(contacts[0]["id"])))
            after = page.get("paging", {}).get("next", {}).get("after")
            if not after:
                return found


def _in_parallel(url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST every body to a control route, four at a time; the answers in order."""
    with requests.Session() as http:
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=4)
        http.mount("http://", adapter)

        def post(body: dict[str, Any]) -> dict[str, Any]:
            response = http.post(url, json=body, timeout=60)
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(post, bodies))


def _issue_invoices(hubspot_url: str, customers: list[tuple[str, str]]) -> list[dict[str, Any]]:
    requests.post(
        f"{hubspot_url}/_sandbox/products",
        json={"name": "Support hours", "price": "95", "sku": "SUP-H"},
        timeout=60,
    ).raise_for_status()
    bodies = [
        {
            "currency": "USD",
            "company_id": customers[index % len(customers)][0],
            "contact_id": customers[index % len(customers)][1],
            "lines": [{"sku": "SUP-H", "quantity": 1 + index % 7, "price": "95"}],
        }
        for index in range(DOCUMENTS)
    ]
    return [answer["invoice"] for answer in _in_parallel(f"{hubspot_url}/_sandbox/invoices", bodies)]


def _pay(hubspot_url: str, invoices: list[dict[str, Any]]) -> list[str]:
    """Each invoice paid in full, as a person records it; the payment ids."""
    bodies = [
        {
            "invoice_id": invoice["id"],
            "amount": invoice["properties"]["hs_amount_billed"],
            "status": "succeeded",
        }
        for invoice in invoices
    ]
    return [str(payment["id"]) for payment in _in_parallel(f"{hubspot_url}/_sandbox/payments", bodies)]


def _documents_per_reference(table: str, reference: str, document_type: str | None) -> dict[str, int]:
    """How many documents JDE holds per reference (RI by VR01, receipts by CKNU), through AIS."""
    from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
    from airflow_provider_mlconn.jde import query as q

    with JdeAisHook() as hook:
        query = q.eq(f"{table}.DCT", document_type) if document_type else None
        key = "DOC" if table == "F03B11" else "PYID"
        rows = hook.iter_rows(table, columns=[key, reference], query=query)
        documents = {(str(row[reference]).strip(), int(row[key])) for row in rows}
    return dict(Counter(ref for ref, _ in documents if ref))


def child(result_path: str, jde_url: str, hubspot_url: str) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models import Variable

    dags = {}
    for dag_id in (CUSTOMERS_DAG, INVOICES_DAG, PAYMENTS_DAG):
        bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{dag_id}.py"), safe_mode=False)
        if bag.import_errors:
            raise RuntimeError(f"{dag_id} does not import: {bag.import_errors}")
        dags[dag_id] = bag.dags[dag_id]
    Variable.set("mlconn_invoices", json.dumps({"posting": {"default_revenue_account": "M30.4110"}}))
    requests.patch(
        f"{jde_url}/_sandbox/settings", json={"duplicate_check": False}, timeout=60
    ).raise_for_status()
    _set_latency(jde_url, hubspot_url, 0)
    dags[CUSTOMERS_DAG].test(run_conf={"safety_lag_minutes": 0})
    customers = _billable_customers(hubspot_url)
    began = time.time()
    invoices = _issue_invoices(hubspot_url, customers)
    seeding = {"invoices_s": time.time() - began, "customers": len(customers)}
    _set_latency(jde_url, hubspot_url, LATENCY_MS)
    time.sleep(SETTLE_S)
    runs = {"invoices": _run(dags[INVOICES_DAG], jde_url, hubspot_url, ENTITIES["invoices"])}
    _set_latency(jde_url, hubspot_url, 0)
    began = time.time()
    payments = _pay(hubspot_url, invoices)
    seeding["payments_s"] = time.time() - began
    _set_latency(jde_url, hubspot_url, LATENCY_MS)
    time.sleep(SETTLE_S)
    runs["payments"] = _run(dags[PAYMENTS_DAG], jde_url, hubspot_url, ENTITIES["payments"])
    runs["invoices_again"] = _run(dags[INVOICES_DAG], jde_url, hubspot_url, ENTITIES["invoices"])
    runs["payments_again"] = _run(dags[PAYMENTS_DAG], jde_url, hubspot_url, ENTITIES["payments"])
    _set_latency(jde_url, hubspot_url, 0)
    numbers = [str(invoice["properties"]["hs_number"]) for invoice in invoices]
    per_invoice = _documents_per_reference("F03B11", "VR01", "RI")
    per_payment = _documents_per_reference("F03B13", "CKNU", None)
    result = {
        "runs": runs,
        "seeding": seeding,
        "invoices_documents": Counter(per_invoice.get(number, 0) for number in numbers),
        "receipts": Counter(per_payment.get(payment, 0) for payment in payments),
    }
    Path(result_path).write_text(json.dumps(result))


# -- parent: sandboxes, home, child -------------------------------------------------------------------


def _measure() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="mlconn-bench-money-"))
    try:
        home = _migrated_home(root)
        env = {
            **os.environ,
            **_airflow_env(home),
            "AIRFLOW_VAR_MLCONN_INVOICES_SCHEDULE": "none",
            "AIRFLOW_VAR_MLCONN_PAYMENTS_SCHEDULE": "none",
        }
        with _sandboxes(CUSTOMERS, 0) as (jde_url, hubspot_url):
            env.update(_connections(jde_url, hubspot_url, f"sqlite:///{home / 'store.db'}"))
            env["MLCONN_BENCH_HUBSPOT_TOKEN"] = HUBSPOT_TOKEN
            return _run_child("benchmarks.money_flows", home, env, jde_url, hubspot_url)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- figures ------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run of a money flow: its calls on both sides, its tasks, what it loaded."""

    name: str
    wall_s: float
    hubspot: dict[str, dict[str, int]]
    jde: dict[str, int]
    orchestrations: dict[str, int]
    records: dict[str, dict[str, int]]
    tasks: list[dict[str, Any]]

    @classmethod
    def of(cls, name: str, raw: Mapping[str, Any]) -> Run:
        if raw["state"] != "success":
            raise RuntimeError(f"the {name} run did not succeed: {raw['state']}")
        before, after = raw["before"], {"hubspot": raw["hubspot"], "jde": raw["jde"]}
        jde = {
            route: int(count) - int(before["jde"]["requests"].get(route, 0))
            for route, count in after["jde"]["requests"].items()
            if "/_sandbox" not in route and int(count) != int(before["jde"]["requests"].get(route, 0))
        }
        orchestrations = {
            outcome: int(count) - int(before["jde"]["orchestrations"].get(outcome, 0))
            for outcome, count in after["jde"]["orchestrations"].items()
            if int(count) != int(before["jde"]["orchestrations"].get(outcome, 0))
        }
        return cls(
            name=name,
            wall_s=raw["wall_s"],
            hubspot=_calls_since(after["hubspot"]["requests"], before["hubspot"]["requests"]),
            jde=jde,
            orchestrations=orchestrations,
            records=raw["records"],
            tasks=raw["tasks"],
        )

    @property
    def jde_calls(self) -> int:
        return sum(self.jde.values())

    @property
    def hubspot_calls(self) -> int:
        return _total(self.hubspot)

    @property
    def hubspot_429s(self) -> int:
        return sum(by_status.get("429", 0) for by_status in self.hubspot.values())

    def posts(self, orchestration: str) -> int:
        return sum(n for outcome, n in self.orchestrations.items() if outcome.startswith(f"{orchestration} "))

    @property
    def bound_s(self) -> float:
        """Every call one after the other at the latency; HubSpot's no faster than its limit."""
        latency = LATENCY_MS / 1000
        return self.jde_calls * latency + max(
            self.hubspot_calls * latency, self.hubspot_calls / ALLOWED_PER_S
        )

    def seconds(self, part: str) -> float:
        return sum(t["seconds"] for t in self.tasks if part in t["task_id"])

    def loaded(self, entity: str) -> int:
        return int(self.records.get(entity, {}).get("loaded", 0))


def _jde_table(run: Run) -> str:
    rows = sorted(run.jde.items(), key=lambda item: -item[1])
    return "\n".join(f"| `{route}` | {count:,} | {count / DOCUMENTS:.3f} |" for route, count in rows)


def _hubspot_table(run: Run) -> str:
    rows = sorted(run.hubspot.items(), key=lambda item: -sum(item[1].values()))
    return "\n".join(
        f"| `{call}` | {sum(by.values()):,} | {sum(by.values()) / DOCUMENTS:.3f} |" for call, by in rows
    )


def _row(label: str, run: Run, orchestration: str, entities: tuple[str, ...]) -> str:
    loaded = " / ".join(f"{run.loaded(entity):,}" for entity in entities)
    return (
        f"| {label} | {run.wall_s:.1f} s | {run.bound_s:.1f} s | **{run.wall_s / run.bound_s:.2f}** "
        f"| {run.posts(orchestration):,} | {run.jde_calls / DOCUMENTS:.3f} "
        f"| {run.hubspot_calls / DOCUMENTS:.3f} "
        f"| {run.hubspot_429s} | {loaded} |"
    )


def _where(run: Run) -> str:
    parts = ("extract", "map", ".order", ".load", "commit")
    return ", ".join(f"{part.strip('.')} {run.seconds(part):.1f} s" for part in parts)


def report(raw: Mapping[str, Any]) -> str:
    runs = {name: Run.of(name, data) for name, data in raw["runs"].items()}
    invoices, payments = runs["invoices"], runs["payments"]
    again_i, again_p = runs["invoices_again"], runs["payments_again"]
    seeding = raw["seeding"]
    per_invoice = {int(k): v for k, v in raw["invoices_documents"].items()}
    per_receipt = {int(k): v for k, v in raw["receipts"].items()}
    return f"""## Invoices and payments HubSpot -> JDE, {DOCUMENTS:,} each (`benchmarks/money_flows.py`)

{DOCUMENTS:,} invoices issued in HubSpot over {seeding["customers"]:,} customers (one line each), then each
paid in full; {LATENCY_MS:.0f} ms added to every call of both sandboxes, HubSpot at {RATE_LIMIT} requests per
rolling 10 s, **JDE's duplicate check off**. Each DAG through `dag.test()` (one task at a time: a JDE
pool of one slot). The bound: every call the run made, one after the other at {LATENCY_MS:.0f} ms
(HubSpot's no faster than {ALLOWED_PER_S:.0f}/s). Calls per document divide by {DOCUMENTS:,}.

| run | wall | bound | wall / bound | posts | JDE calls / doc | HubSpot calls / doc | 429s | loaded |
|---|---|---|---|---|---|---|---|---|
{_row("invoices (RI + write-back)", invoices, INVOICE_POST, ENTITIES["invoices"])}
{_row("payments (receipt + write-back)", payments, RECEIPT_POST, ENTITIES["payments"])}
{_row("invoices, nothing new", again_i, INVOICE_POST, ENTITIES["invoices"])}
{_row("payments, nothing new", again_p, RECEIPT_POST, ENTITIES["payments"])}

Nothing posted twice (read back through AIS): RI documents per HubSpot invoice number
{dict(sorted(per_invoice.items()))} (documents: invoices), receipts per HubSpot payment id (CKNU)
{dict(sorted(per_receipt.items()))} (receipts: payments).

Where the time went (the tasks' own times, summed over mapped instances): invoices {_where(invoices)};
payments {_where(payments)}.

JDE calls of the invoices run:

| route | calls | per document |
|---|---|---|
{_jde_table(invoices)}

JDE calls of the payments run:

| route | calls | per document |
|---|---|---|
{_jde_table(payments)}

HubSpot calls of the invoices run:

| call | requests | per document |
|---|---|---|
{_hubspot_table(invoices)}

HubSpot calls of the payments run:

| call | requests | per document |
|---|---|---|
{_hubspot_table(payments)}

Seeding (not in the figures, latency off): {DOCUMENTS:,} invoices {seeding["invoices_s"]:.0f} s, their
payments {seeding["payments_s"]:.0f} s.
"""


def main() -> None:
    markdown = report(_measure())
    write_section("money_flows", markdown)
    print(markdown)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:5])
    else:
        main()
