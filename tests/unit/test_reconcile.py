"""The reconciliation's parts that need no sandbox: how values compare, what the log shows, where the
report is kept (encrypted), which keys repair queues, and the migration that keeps reports."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from airflow_provider_mlconn.operators.reconcile import requested_flows
from airflow_provider_mlconn.reconcile.ar_status import compared
from airflow_provider_mlconn.reconcile.report import (
    Finding,
    Kind,
    ReconcileReport,
    Tally,
    normalized,
    render_html,
    render_text,
)
from airflow_provider_mlconn.sync import schema
from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.store import Store
from airflow_provider_mlconn.sync.store.id_map import REPAIR_HASH, IdMapRow, upsert_entries


@pytest.mark.parametrize(
    ("written", "held"),
    [("1000", "1000.0"), ("0", "0.00"), ("", None), (" Acme ", "Acme"), ("-12.50", "-12.5")],
)
def test_values_hubspot_gives_back_in_another_form_compare_equal(written, held):
    assert normalized(written) == normalized(held)


@pytest.mark.parametrize(("one", "other"), [("00001", "1"), ("M30", "M31"), ("1000", "1000.01"), ("x", "")])
def test_codes_keep_their_leading_zeros_and_real_differences_stay_different(one, other):
    assert normalized(one) != normalized(other)


@pytest.mark.parametrize(
    ("name", "written", "held"),
    [
        ("hs_due_date", "2026-12-15", "2026-12-15T00:00:00Z"),
        ("hs_invoice_date", "2026-12-01", "1796083200000"),
        ("jde_last_receipt_date", "2026-11-30", "2026-11-30"),
        ("jde_last_payment_date", "", None),
        ("jde_open_amount", "180.00", "180"),
    ],
)
def test_days_and_amounts_hubspot_gives_back_in_another_form_compare_equal(name, written, held):
    assert compared(name, written) == compared(name, held)


def test_a_day_that_differs_is_a_difference():
    assert compared("hs_due_date", "2026-12-15") != compared("hs_due_date", "2026-12-16T00:00:00Z")


def _report() -> ReconcileReport:
    return ReconcileReport(
        run_key="mlconn_reconcile/manual__1",
        started_at=datetime(2026, 11, 30, tzinfo=timezone.utc),
        flows=["customers"],
        tallies=[
            Tally(flow="customers", entity="company", jde=3, hubspot=3, matched=2, differences={"drift": 1})
        ],
        findings=[
            Finding(
                flow="customers",
                entity="company",
                key="10001",
                kind=Kind.DRIFT,
                field="name",
                jde="Acme Pumps",
                hubspot="Renamed",
                hubspot_ids=("7",),
            ),
            Finding(
                flow="customers",
                entity="contact",
                key="10001-2",
                kind=Kind.DRIFT,
                field="email",
                jde="a@b.io",
            ),
        ],
        calls={"HubSpot": 4, "JDE AIS": 7},
    )


def test_the_log_shows_the_table_and_each_difference_with_personal_values_masked():
    text = render_text(_report())
    assert text.splitlines()[0].startswith("reconciliation mlconn_reconcile/manual__1: 2 difference(s)")
    assert "customers.company" in text and "HubSpot 4, JDE AIS 7" in text
    assert "name: JDE 'A***' vs HubSpot 'R***'" in text
    assert "a@b.io" not in text and "Acme" not in text and "Renamed" not in text


def test_the_html_page_lists_every_difference_masked_and_escaped():
    report = _report()
    report.findings.append(
        Finding(
            flow="items",
            entity="product",
            key="<script>alert(1)</script>",
            kind=Kind.MISSING_IN_HUBSPOT,
            note="a <b>note</b> & more",
        )
    )
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<tr>") == 1 + 1 + 1 + 3, "header, one tally, header, three findings"
    assert "customers.company" in page and "10001-2" in page and "&#x27;A***&#x27;" not in page
    assert "A***" in page and "R***" in page
    assert "Acme" not in page and "Renamed" not in page and "a@b.io" not in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &lt;b&gt;note&lt;/b&gt; &amp; more" in page
    assert "3 difference(s)" in page


def test_the_summary_of_the_asset_event_counts_and_names_no_value():
    summary = _report().summary()
    assert summary["differences"] == 2 and summary["in_step"] is False
    assert summary["by_entity"] == {"customers": {"company": {"drift": 1}, "contact": {"drift": 1}}}
    assert "Acme" not in str(summary) and "a@b.io" not in str(summary)


def test_the_report_is_kept_encrypted_and_the_latest_is_read_back(tmp_path, fernet_key):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", PayloadCipher(fernet_key))
    report = _report()
    store.reconcile_reports.save(
        run_key=report.run_key,
        dag_id="mlconn_reconcile",
        run_id="manual__1",
        summary=report.summary(),
        report=report.model_dump(mode="json"),
    )
    later = report.model_copy(update={"run_key": "mlconn_reconcile/manual__2", "findings": []})
    store.reconcile_reports.save(
        run_key=later.run_key,
        dag_id="mlconn_reconcile",
        run_id="manual__2",
        summary=later.summary(),
        report=later.model_dump(mode="json"),
    )
    latest = store.reconcile_reports.latest()
    assert latest is not None and (latest.run_key, latest.differences) == ("mlconn_reconcile/manual__2", 0)
    first = store.reconcile_reports.latest("mlconn_reconcile/manual__1")
    assert first is not None and first.report["findings"][0]["hubspot"] == "Renamed"
    store.dispose()
    raw = (tmp_path / "store.db").read_bytes()
    assert b"Renamed" not in raw and b"a@b.io" not in raw


def test_repair_queues_keys_the_flow_wrote_and_not_those_it_never_wrote_or_deleted(tmp_path, fernet_key):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", PayloadCipher(fernet_key))
    rows = [
        IdMapRow("customers", "company", key, f"9{key}", "a" * 64, 1, "r")
        for key in ("10001", "10002", "10003")
    ]
    # 10003 was deleted at the source: its entry is gone, with no content counted as unchanged.
    rows[2] = rows[2]._replace(last_loaded_hash="", deleted_at=datetime.now(timezone.utc))
    store.db.write(lambda connection: upsert_entries(connection, rows))
    queued = store.id_map.queue_repair("customers", "company", ["10001", "10003", "19999"])
    assert queued == ["10001"]
    assert store.id_map.repair_queue("customers", "company") == ["10001"]
    assert store.id_map.entries("customers", "company", ["10001"])["10001"].last_loaded_hash == REPAIR_HASH
    assert store.id_map.entries("customers", "company", ["10002"])["10002"].last_loaded_hash == "a" * 64
    store.dispose()


def test_a_store_that_got_migration_5_before_4_gets_4_when_it_arrives(tmp_path, fernet_key, monkeypatch):
    """Migrations 4 (webhook inbox) and 5 (reconcile reports) were built side by side: a store that
    ran a release with 5 but not 4 gets 4 when it arrives."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    everything = schema.MIGRATIONS
    monkeypatch.setattr(schema, "MIGRATIONS", tuple(m for m in everything if m[0] != 4))
    Store(url, PayloadCipher(fernet_key)).dispose()
    probe = sa.create_engine(url)
    assert not sa.inspect(probe).has_table("mlconn_webhook_events")
    assert sa.inspect(probe).has_table("mlconn_reconcile_reports")
    probe.dispose()
    monkeypatch.setattr(schema, "MIGRATIONS", everything)
    store = Store(url, PayloadCipher(fernet_key))
    with store.engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version FROM mlconn_schema_migrations")).scalars().all()
    assert sorted(versions) == [1, 2, 3, 4, 5]
    assert sa.inspect(store.engine).has_table("mlconn_webhook_events")
    assert sa.inspect(store.engine).has_table("mlconn_reconcile_reports")
    store.dispose()


def test_only_the_flows_it_can_compare_are_taken():
    assert requested_flows(None) == ["customers", "money", "ar_status", "gl_accounts", "items"]
    assert requested_flows("money") == ["money"]
    with pytest.raises(
        ValueError,
        match=r"cannot be reconciled; choose from "
        r"\[.customers., .money., .ar_status., .gl_accounts., .items.\]",
    ):
        requested_flows(["invoices"])


def test_pruning_removes_old_reports_and_keeps_the_newest_however_old(tmp_path, fernet_key):
    from datetime import timedelta

    from airflow_provider_mlconn.sync.retention import prune_store

    store = Store(f"sqlite:///{tmp_path / 'store.db'}", PayloadCipher(fernet_key))
    report = _report()
    for run_id in ("manual__1", "manual__2"):
        store.reconcile_reports.save(
            run_key=f"mlconn_reconcile/{run_id}",
            dag_id="mlconn_reconcile",
            run_id=run_id,
            summary=report.summary(),
            report=report.model_dump(mode="json"),
        )
    later = datetime.now(timezone.utc) + timedelta(days=30)
    assert prune_store(store, older_than_days=1, now=later, dry_run=True).reconcile_reports == 1
    assert prune_store(store, older_than_days=1, now=later).reconcile_reports == 1
    newest = store.reconcile_reports.latest()
    assert newest is not None and newest.run_key == "mlconn_reconcile/manual__2"
    assert store.reconcile_reports.latest("mlconn_reconcile/manual__1") is None
    store.dispose()
