"""The initial load of 100,000 JDE customers into HubSpot at its rate limit, the way a deployment runs it.

``benchmarks/customers_flow.py`` at scale: `mlconn-sandbox jde --customers 100000` (about 190,000
Who's Who contacts), the HubSpot sandbox at its default 190 requests per rolling 10 s, 50 ms added
to every call of both, the real DAG run by a LocalExecutor deployment (pool `mlconn_hubspot` with 4
slots, so an entity's load batches run side by side), then a no-change rerun; peak RSS of a
`dag.test()` process for 10,000 and for 100,000 customers. Its own section of BENCHMARKS.md.

Run alone: ``.venv/bin/python -m benchmarks.customers_100k`` (about 20 minutes on 2 CPUs). The
knobs of ``customers_flow`` apply (``MLCONN_BENCH_CUSTOMERS``, ``MLCONN_BENCH_MODES``, ...).
"""

from __future__ import annotations

import importlib
import os

DEFAULTS = {
    "MLCONN_BENCH_CUSTOMERS": "100000",
    "MLCONN_BENCH_MODES": "local",
    "MLCONN_BENCH_RSS_CUSTOMERS": "10000,100000",
    "MLCONN_BENCH_SECTION": "customers_100k",
}


def main() -> None:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    # customers_flow reads its knobs when imported (``make bench`` has run it at 10,000 already).
    importlib.reload(importlib.import_module("benchmarks.customers_flow")).main()


if __name__ == "__main__":
    main()
