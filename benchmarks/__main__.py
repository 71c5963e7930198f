"""``python -m benchmarks``: run every benchmark module listed here, in order."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: list[str] = [
    "jde_read",
    "sync_store",
    "profile_steps",
    "hubspot_upsert",
    "customers_flow",
    "ar_status",
    "money_flows",
    "customers_100k",
]


def main() -> int:
    for name in BENCHMARKS:
        print(f"== benchmarks.{name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
