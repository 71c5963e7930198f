"""The code a benchmark compares against: another commit of this repository, run side by side.

``MLCONN_BENCH_BASELINE=<git rev>`` (a tag such as ``perf-base``, a branch or a commit) makes a
benchmark run its measurement twice in alternation, once on the work tree and once on the package
and DAGs of that commit (exported with ``git archive`` into a temporary folder that goes first on
``PYTHONPATH``), so both sides meet the same machine, the same load and the same sandboxes.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BASELINE_REV = os.environ.get("MLCONN_BENCH_BASELINE", "").strip()
#: How many times each side runs, alternating; the figures are the best of them.
ROUNDS = int(os.environ.get("MLCONN_BENCH_ROUNDS", "2"))
#: With a baseline, the work tree's side runs an export of HEAD too, so editing files while a
#: long comparison runs cannot change what it measures (commit first).
FREEZE_HEAD = os.environ.get("MLCONN_BENCH_FREEZE", "1") not in ("", "0", "false")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a label, and where its package and DAGs live."""

    label: str
    root: Path
    rev: str = ""

    def env(self) -> dict[str, str]:
        """Environment of a child process that runs this side's code."""
        path = [str(self.root), os.environ.get("PYTHONPATH", "")]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}

    @property
    def dags(self) -> Path:
        return self.root / "dags"


def commit_of(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def _export(rev: str, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as archive:
        subprocess.run(
            ["git", "archive", "--format=tar", rev, "airflow_provider_mlconn", "dags"],
            cwd=REPO_ROOT,
            check=True,
            stdout=archive,
        )
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(target, filter="data")
    return target


def sides(folder: Path) -> list[Side]:
    """The work tree (HEAD, exported, when comparing), and the baseline commit exported under
    ``folder`` when one is asked for."""
    if not BASELINE_REV:
        return [Side("this tree", REPO_ROOT)]
    baseline = Side(
        f"{BASELINE_REV} ({commit_of(BASELINE_REV)})",
        _export(BASELINE_REV, folder / "baseline"),
        BASELINE_REV,
    )
    if not FREEZE_HEAD:
        return [baseline, Side("this tree", REPO_ROOT)]
    head = commit_of("HEAD")
    return [baseline, Side(f"this branch ({head})", _export("HEAD", folder / "head"), "HEAD")]
