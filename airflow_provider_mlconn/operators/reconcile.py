"""The ``mlconn_reconcile`` DAG: compare JDE and HubSpot through their APIs, read only, and report.

One task, ``reconcile``: for each flow asked for (params ``flows``), read both systems and list what
is missing on either side, doubled, or drifted (see ``airflow_provider_mlconn/reconcile/``). The
report goes to the task log (a summary table, values masked), to the store (``mlconn reconcile
report`` prints the latest), and to the asset event ``mlconn://reconcile`` (counts only, for
alerts). With ``repair``, the drifted and missing records a flow's next run mends (customers, option
lists, products, invoice statuses, company balances) are queued for that run, which reads them again and
writes them; nothing is written to JDE or HubSpot here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Asset, BaseOperator, Param, Variable

from airflow_provider_mlconn.http import counting_calls
from airflow_provider_mlconn.operators.common import (
    OneLineFailures,
    roomier_young_generation,
    store_from_airflow,
)
from airflow_provider_mlconn.reconcile.report import (
    RECONCILED_FLOWS,
    Finding,
    Kind,
    ReconcileReport,
    Tally,
    render_text,
)
from airflow_provider_mlconn.sync.store import Store, run_key_for
from airflow_provider_mlconn.timetables import sync_schedule

DAG_ID = "mlconn_reconcile"
SCHEDULE_VARIABLE = "mlconn_reconcile_schedule"
RECONCILE_ASSET_URI = "mlconn://reconcile"
#: Entities whose differences a run of their flow mends once it reads the record again.
_REPAIRABLE = {
    ("customers", "company"),
    ("customers", "contact"),
    ("customers", "association"),
    ("ar_status", "invoice_status"),
    ("ar_status", "company_balance"),
    ("gl_accounts", "gl_account_options"),
    ("gl_accounts", "business_unit_options"),
    ("items", "product"),
}
_OPTION_LISTS = {"gl_account_options": "jde_gl_account", "business_unit_options": "jde_business_unit"}
_NOT_REPAIRABLE = {
    Kind.DUPLICATE: "two records with one key: a person merges them (a run cannot tell which to keep)",
    Kind.MISSING_IN_JDE: "JDE does not have it: a person decides (the weekly full read marks what the "
    "flow wrote and JDE deleted)",
    Kind.TOTAL: "follows from the documents above",
}


def reconcile_asset() -> Asset:
    return Asset(name="mlconn_reconcile", uri=RECONCILE_ASSET_URI)


def requested_flows(value: Any) -> list[str]:
    """The ``flows`` param: names out of ``RECONCILED_FLOWS``; empty means all of them."""
    if value in (None, "", []):
        return list(RECONCILED_FLOWS)
    names = [value] if isinstance(value, str) else list(value)
    unknown = [name for name in names if name not in RECONCILED_FLOWS]
    if unknown:
        raise ValueError(f"flows {unknown} cannot be reconciled; choose from {list(RECONCILED_FLOWS)}")
    return [name for name in RECONCILED_FLOWS if name in names]


def _comparisons(store: Store) -> dict[str, Callable[[], tuple[list[Tally], list[Finding]]]]:
    from airflow_provider_mlconn.reconcile.ar_status import compare_ar_status
    from airflow_provider_mlconn.reconcile.customers import compare_customers
    from airflow_provider_mlconn.reconcile.items import compare_items
    from airflow_provider_mlconn.reconcile.money import compare_money
    from airflow_provider_mlconn.reconcile.reference_data import compare_gl_accounts

    return {
        "customers": lambda: compare_customers(store),
        "money": compare_money,
        "ar_status": compare_ar_status,
        "gl_accounts": compare_gl_accounts,
        "items": compare_items,
    }


def reconcile(store: Store, *, run_key: str, flows: Sequence[str], repair: bool) -> ReconcileReport:
    """Compare the flows, queue repairs if asked, and keep the report in the store."""
    report = ReconcileReport(run_key=run_key, started_at=datetime.now(timezone.utc), flows=list(flows))
    comparisons = _comparisons(store)
    with counting_calls() as tally:
        for name in flows:
            tallies, findings = comparisons[name]()
            report.tallies.extend(tallies)
            report.findings.extend(findings)
    report.calls = {system: calls.calls for system, calls in tally.snapshot().items()}
    report.repair = {"requested": repair}
    if repair:
        report.findings, queued = queue_repairs(store, report.findings)
        report.repair.update(
            queued=queued,
            not_repairable=sum(1 for f in report.findings if not f.repair.startswith("queued")),
        )
    report.finished_at = datetime.now(timezone.utc)
    return report


def queue_repairs(store: Store, findings: Sequence[Finding]) -> tuple[list[Finding], dict[str, int]]:
    """Queue what the flows' next runs can mend (they read the key again and write it);
    returns the findings, each saying what became of it, and the keys queued per entity."""
    repairable = [f for f in findings if _repairable(f)]
    wanted: dict[tuple[str, str], set[str]] = {}
    for finding in repairable:
        wanted.setdefault((finding.flow, finding.entity), set()).add(_repair_key(finding))
    # A company or contact written again gets a new HubSpot id: its associations are written again too.
    gone_contacts = {f.key for f in repairable if f.entity == "contact" and f.kind is Kind.MISSING_IN_HUBSPOT}
    gone_companies = tuple(
        f"{f.key}-" for f in repairable if f.entity == "company" and f.kind is Kind.MISSING_IN_HUBSPOT
    )
    if gone_contacts or gone_companies:
        links = wanted.setdefault(("customers", "association"), set())
        for key, _entry in store.id_map.live_entries("customers", "association"):
            if key in gone_contacts or (gone_companies and key.startswith(gone_companies)):
                links.add(key)
    queued = {
        (flow, entity): set(store.id_map.queue_repair(flow, entity, keys))
        for (flow, entity), keys in wanted.items()
    }
    marked = []
    for finding in findings:
        if _repair_key(finding) in queued.get((finding.flow, finding.entity), set()):
            note = f"queued for the next run of the {finding.flow} flow"
        elif _repairable(finding):
            note = "not queued: the flow never wrote it (run the flow with address_numbers)"
        elif (
            finding.flow == "ar_status"
            and finding.kind is Kind.MISSING_IN_HUBSPOT
            and finding.entity == "jde_invoice"
        ):
            note = (
                "not queued: the A/R flow's next run creates it if JDE stamped it since the last run; "
                "for an older document, run the flow with full_resync"
            )
        elif finding.flow == "ar_status" and finding.entity in ("jde_invoice", "line_item"):
            note = (
                "not repaired by a run: the flow creates the HubSpot invoice of a document raised in JDE "
                "once and never rewrites it (F37); a person corrects it in HubSpot"
            )
        elif finding.flow == "money" and finding.kind is not Kind.TOTAL:
            note = "not repaired by a run: a posted JDE document or receipt is corrected in JDE"
        else:
            note = _NOT_REPAIRABLE.get(finding.kind, "not repairable by a run")
        marked.append(finding.model_copy(update={"repair": note}))
    return marked, {entity: len(keys) for (_flow, entity), keys in sorted(queued.items()) if keys}


def _repairable(finding: Finding) -> bool:
    if (finding.flow, finding.entity) not in _REPAIRABLE:
        return False
    # An option list is written whole: one shown that JDE lacks is hidden by the same write.
    mended = (
        (Kind.DRIFT, Kind.MISSING_IN_HUBSPOT, Kind.MISSING_IN_JDE)
        if finding.flow == "gl_accounts"
        else (
            Kind.DRIFT,
            Kind.MISSING_IN_HUBSPOT,
        )
    )
    return finding.kind in mended


def _repair_key(finding: Finding) -> str:
    """The key the flow's id map knows the record by (an option list's is its property's name)."""
    return _OPTION_LISTS.get(finding.entity, finding.key) if finding.flow == "gl_accounts" else finding.key


class ReconcileOperator(OneLineFailures, BaseOperator):
    """Compare, report (log, store, asset event), and queue repairs when the run asks."""

    def execute(self, context: Any) -> dict[str, Any]:
        params = context.get("params") or {}
        flows = requested_flows(params.get("flows"))
        repair = params.get("repair", False)
        if not isinstance(repair, bool):
            raise ValueError(f"repair must be true or false, got {repair!r}")
        ti = context["ti"]
        run_key = run_key_for(ti.dag_id, ti.run_id)
        store = store_from_airflow()
        with roomier_young_generation():
            report = reconcile(store, run_key=run_key, flows=flows, repair=repair)
        summary = report.summary()
        store.reconcile_reports.save(
            run_key=run_key,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            summary=summary,
            report=report.model_dump(mode="json"),
        )
        text = render_text(report)
        if report.differences:
            self.log.warning("%s", text.splitlines()[0])
        self.log.info("%s", text)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = summary
        return summary


def reconcile_params() -> dict[str, Param]:
    return {
        "flows": Param(
            list(RECONCILED_FLOWS),
            type="array",
            items={"type": "string", "enum": list(RECONCILED_FLOWS)},
            examples=list(RECONCILED_FLOWS),
            uniqueItems=True,
            title="Flows to compare",
            description="customers: companies, contacts, associations; money: posted invoices (and "
            "their G/L lines) and receipts, and each customer's totals; ar_status: invoices raised in "
            "JDE with their line items, each invoice's JDE pay status and open amount, and each "
            "company's A/R balances; gl_accounts: the line-item options of G/L accounts and business "
            "units; items: products.",
        ),
        "repair": Param(
            False,
            type="boolean",
            title="Repair",
            description="Queue the drifted and missing companies, contacts, associations, option "
            "lists and products, and drifted invoice statuses and company balances, for their flow's "
            "next run (which reads them again and writes them). Nothing is written to JDE or HubSpot "
            "by this DAG.",
        ),
    }


def reconcile_dag(dag_id: str = DAG_ID) -> DAG:
    """The reconciliation DAG; ``dags/mlconn_reconcile.py`` is this one call. Daily by default;
    Variable ``mlconn_reconcile_schedule`` (a cron expression or preset, ``none`` for manual only)."""
    with DAG(
        dag_id=dag_id,
        schedule=sync_schedule(Variable.get(SCHEDULE_VARIABLE, default="@daily")),
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["mlconn", "reconcile", "jde", "hubspot"],
        description="Compare JDE and HubSpot (read only): missing, duplicate and drifted records.",
        params=reconcile_params(),
        doc_md=__doc__,
        default_args={"retries": 1},
    ) as dag:
        ReconcileOperator(task_id="reconcile", outlets=[reconcile_asset()])
    return dag
