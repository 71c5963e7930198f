"""`make demo`'s script, small and without latency: it runs, reports, and stops what it started."""

from __future__ import annotations

import re
import subprocess
import sys

import psutil
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e


def test_demo_runs_the_syncs_reports_and_leaves_nothing_running(tmp_path):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "demo.py"),
            "--customers",
            "30",
            "--latency-ms",
            "0",
            "--home",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = result.stdout
    assert "== initial load: run success" in report
    assert "== incremental run after the edits: run success" in report
    assert "rejected company" in report and "F0101.ALPH" in report
    assert "is not a valid address; not sent" in report
    no_change = report.split("== run with no change in JDE")[1].split("\n== ")[0]
    assert "HubSpot 0 (0 answered 429)" in no_change
    assert "jde_gl_account: created:" in report
    assert "jde_gl_account: updated:" in report.split("the option is hidden, not removed")[1]
    edits = report.split("== items after the edits on both sides")[1].split("\n== ")[0]
    assert "created JDE item DEMO-SVC-1" in edits
    assert "conflict: changed in HubSpot, but JDE owns it: name is 'Renamed by sales'" in edits
    posting = report.split("== invoices -> JDE A/R (F03B11, F0911): run success")[1].split("\n== ")[0]
    # read, created, updated, unchanged, rejected, waiting, failed: 8 of HubSpot's own invoices wait
    assert re.search(r"\n   invoice +11 +2 +0 +0 +1 +8 +0\n", posting), posting
    assert posting.count("jde_sync_status posted: JDE RI") == 2
    assert (
        "jde_sync_status rejected: invoice INV-1015 has no company: associate exactly one company" in posting
    )
    assert "(Contoso Manufacturing) has no JDE customer" in posting
    waited = report.split("== invoices: the waiting ones post by themselves: run success")[1].split("\n== ")[
        0
    ]
    assert re.search(r"\n   invoice +11 +8 +0 +2 +1 +0 +0\n", waited), waited
    void = report.split("== invoices after the void: one credit memo (RM): run success")[1].split("\n== ")[0]
    assert void.count("credit memo 00001-RM-") == 1 and "posted as" not in void
    again = report.split("== invoices with nothing new: nothing posted: run success")[1].split("\n\n")[0]
    assert "posted as" not in again and "credit memo" not in again
    receipts = report.split("== payments -> JDE receipts (F03B13, F03B14): run success")[1].split("\n== ")[0]
    # the six seeded payments that succeeded and the one recorded now; the processing one waits for money
    assert re.search(r"\n   receipt +7 +7 +0 +0 +0 +0 +0\n", receipts), receipts
    assert "applied 360.00 to RI" in receipts
    refund = report.split("== payments after the refund: the receipt voided: run success")[1].split("\n== ")[
        0
    ]
    assert "voided (00001-RI-" in refund and "reopened)" in refund
    quiet = report.split("== payments with nothing new: nothing posted: run success")[1].split("\n\n")[0]
    assert re.search(r"\n   receipt +6 +0 +0 +6 +0 +0 +0\n", quiet), quiet
    ledger = report.split("== A/R status: the whole ledger -> HubSpot: run success")[1].split("\n== ")[0]
    # read, created, ...: documents raised in JDE become HubSpot invoices, every company a balance
    assert re.search(r"\n   jde_invoice +\d+ +[1-9]\d* ", ledger), ledger
    assert re.search(r"\n   company_balance +[1-9]\d* +0 +[1-9]\d* ", ledger), ledger
    after = report.split("== A/R status after the receipt and the sales order: run success")[1].split(
        "\n== "
    )[0]
    assert "(from HubSpot): jde_pay_status paid, jde_open_amount 0, jde_last_receipt_date 20" in after, after
    assert re.search(
        r"\(raised in JDE, jde_document_key 00001-RI-\d+\): open, billable false, 2 line items", after
    )
    assert re.search(r"last payment 20\d\d-\d\d-\d\d", after), after
    quiet = report.split("== A/R status with nothing changed in JDE: run success")[1].split("\n\n")[0]
    assert "HubSpot 0 (0 answered 429)" in quiet, quiet
    assert "sandboxes stopped" in report
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
