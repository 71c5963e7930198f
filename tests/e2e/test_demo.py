"""`make demo`'s script, small and without latency: it runs, reports, and stops what it started."""

from __future__ import annotations

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
    assert "sandboxes stopped" in report
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
