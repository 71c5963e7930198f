"""Full F0101 read through JdeAisHook + the AIS sandbox: rows/s, and the hook's peak RSS.

The sandbox runs as its own process (``mlconn-sandbox jde --customers 100000``), so memory figures are
the hook's alone. Each measured read runs in a fresh child process that reports its peak RSS
(``ru_maxrss``): flat memory means the 100,000-row read peaks about where the 10,000-row read does.
Run alone: ``.venv/bin/python -m benchmarks.jde_read``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from benchmarks.report import write_section

CUSTOMERS = 100_000
PAGE_SIZE = 500
USERNAME, PASSWORD = "BENCH", "bench-password"


def _child(url: str, limit: int, typed: bool) -> None:
    """Read ``limit`` customers (all columns) and print timing and peak RSS as JSON."""
    from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
    from airflow_provider_mlconn.jde import query as q
    from airflow_provider_mlconn.jde.connection import JdeAisSettings
    from airflow_provider_mlconn.jde.models import AddressBookRow

    settings = JdeAisSettings(base_url=url, username=USERNAME, password=PASSWORD, page_size=PAGE_SIZE)
    query = q.all_of(q.in_list("F0101.AT1", ["C"]), q.le("F0101.AN8", _last_customer(limit)))
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with JdeAisHook(settings=settings) as hook:
        hook.count("F0006")  # log in before the clock starts
        started = time.perf_counter()
        rows = 0
        if typed:
            for _record in hook.iter_records(AddressBookRow, query=query):
                rows += 1
        else:
            for _row in hook.iter_rows("F0101", query=query):
                rows += 1
        seconds = time.perf_counter() - started
        calls = hook.metrics.total_calls
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "calls": calls,
                "baseline_kb": baseline_kb,
                "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def _last_customer(limit: int) -> int:
    """The address number of the ``limit``-th seeded customer (17 customers per block of 20)."""
    index = limit - 1
    return 10_000 + (index // 17) * 20 + index % 17


def _measure(url: str, limit: int, *, typed: bool = False) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.jde_read", "child", url, str(limit), "typed" if typed else "raw"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    if result["rows"] != limit:
        raise RuntimeError(f"read {result['rows']} customers, expected {limit}")
    return result


def main() -> None:
    from airflow_provider_mlconn.sandbox.runner import SandboxProcess

    started = time.perf_counter()
    arguments = ["--customers", str(CUSTOMERS), "--username", USERNAME, "--password", PASSWORD]
    with SandboxProcess("jde", arguments) as sandbox:
        startup = time.perf_counter() - started
        small = _measure(sandbox.url, 10_000)
        full = _measure(sandbox.url, CUSTOMERS)
        typed = _measure(sandbox.url, CUSTOMERS, typed=True)
    mb = 1024.0
    lines = [
        "## JDE AIS: full F0101 read through JdeAisHook + sandbox (`benchmarks/jde_read.py`)",
        "",
        f"Sandbox `--customers {CUSTOMERS}` (own process) accepted connections {startup:.1f} s after start.",
        f"Query: `F0101.AT1 LIST ['C']` and `AN8 <= last`, all columns, page size {PAGE_SIZE},",
        "token session, next-page links; each read in a fresh child process.",
        "",
        "| read | rows | seconds | rows/s | HTTP calls | RSS after imports | peak RSS | growth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, result in (
        ("`iter_rows`, 10,000 customers", small),
        ("`iter_rows`, 100,000 customers", full),
        ("`iter_records(AddressBookRow)`, 100,000", typed),
    ):
        rate = result["rows"] / result["seconds"]
        baseline, peak = result["baseline_kb"] / mb, result["peak_kb"] / mb
        lines.append(
            f"| {label} | {result['rows']:,.0f} | {result['seconds']:.1f} | {rate:,.0f}"
            f" | {result['calls']:.0f} | {baseline:.0f} MB | {peak:.0f} MB | {peak - baseline:.1f} MB |"
        )
    ratio = (full["peak_kb"] - full["baseline_kb"]) / max(small["peak_kb"] - small["baseline_kb"], 1)
    lines += [
        "",
        f"Peak RSS growth for 100,000 rows is {ratio:.2f}x that for 10,000 rows: memory stays flat because "
        "rows stream page by page. The sandbox generates rows on demand, so its row generation is part of "
        "the rows/s figure (the sandbox and the hook share the machine's 2 cores).",
    ]
    write_section("jde_read", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "typed")
    else:
        main()
