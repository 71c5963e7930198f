"""The reliability suite's figures: each fault, kill or bad-input case of ``make reliability`` appends
one line (what it injected, how many records, how many lost and duplicated on either side, counted
through the systems' own APIs) to the file named by ``MLCONN_RELIABILITY_FIGURES``; the Makefile
then renders them into RELIABILITY.md (``python -m tests.support.reliability FIGURES OUT``). Under
``make test`` the variable is unset and nothing is written."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FIGURES_ENV = "MLCONN_RELIABILITY_FIGURES"


def record(
    case: str,
    *,
    flows: str,
    injected: str,
    records: int,
    lost: int,
    duplicated: int,
    runs: str = "",
) -> None:
    """One case's figures (nothing is written unless ``MLCONN_RELIABILITY_FIGURES`` names a file)."""
    path = os.environ.get(FIGURES_ENV)
    if not path:
        return
    line = {
        "case": case,
        "flows": flows,
        "injected": injected,
        "records": records,
        "runs": runs,
        "lost": lost,
        "duplicated": duplicated,
    }
    with Path(path).open("a", encoding="utf-8") as figures:
        figures.write(json.dumps(line) + "\n")


#: The case of every kill test: the worker's process group SIGKILLed mid-load, the task cleared.
KILLED_MID_LOAD = "worker killed mid-load, task cleared"


def record_held(
    case: str, *, flows: str, injected: str, runs: str, expected: Collection[str], held: Mapping[str, int]
) -> None:
    """``record`` for records that should each be held once (``held``: copies per key, as read back
    through an API): lost are those not held, duplicated the extra copies."""
    record(
        case,
        flows=flows,
        injected=injected,
        records=len(expected),
        lost=sum(1 for key in expected if held.get(key, 0) == 0),
        duplicated=sum(max(0, held.get(key, 0) - 1) for key in expected),
        runs=runs,
    )


def render(figures_path: Path, out_path: Path) -> None:
    lines = [json.loads(line) for line in figures_path.read_text(encoding="utf-8").splitlines() if line]
    if not lines:
        raise SystemExit(f"{figures_path} holds no figures: did the reliability tests run?")
    rows = "\n".join(
        f"| {line['case']} | {line['flows']} | {line['injected']} | {line['records']:,} | {line['runs']} "
        f"| **{line['lost']}** | **{line['duplicated']}** |"
        for line in lines
    )
    total: dict[str, Any] = {
        key: sum(int(line[key]) for line in lines) for key in ("records", "lost", "duplicated")
    }
    out_path.write_text(
        f"""# Reliability

Written by `make reliability` (the fault, kill and bad-input tests at full size: 500 invoices and 500
payments under faults; `make test` runs the same tests with 80). Each row is one test: what it
injected, how many records it moved, and how many of them were lost or duplicated, counted through
the systems' own APIs after the faults were switched off (JDE through AIS, HubSpot through its
list endpoints, or `mlconn_reconcile` comparing both). JDE's duplicate check is off wherever a
money document is posted, so a document sent twice would be two documents. The same command runs
the 54 kinds of bad input (`tests/reliability/test_bad_input.py`: each loaded right or rejected /
waiting with a reason, the rest of the run loaded) and the secrets scan
(`tests/reliability/test_secrets_and_clear_text.py`); they assert case by case and add no row here.

| case | flows | injected | records | runs | lost | duplicated |
|---|---|---|---:|---|---:|---:|
{rows}
| **all** | | | {total["records"]:,} | | **{total["lost"]}** | **{total["duplicated"]}** |

_{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},
measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC_
""",
        encoding="utf-8",
    )


if __name__ == "__main__":
    render(Path(sys.argv[1]), Path(sys.argv[2]))
