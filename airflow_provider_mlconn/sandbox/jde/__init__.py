"""A faithful local JD Edwards EnterpriseOne AIS Server (``mlconn-sandbox jde``).

Serves the token, data, next-page, orchestration and defaultconfig services under ``/jderest`` over
deterministic in-memory data, plus the ``/_sandbox/`` control API (stats, settings, reset, edits). It
models the server, not our client, and imports nothing from the rest of ``airflow_provider_mlconn``.
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI

from airflow_provider_mlconn.sandbox.jde.app import Options, create_app

__all__ = ["Options", "add_arguments", "app_from_args", "create_app"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--username", default="JDE", help="the one user that may log in (default JDE)")
    parser.add_argument("--password", default="JDE", help="its password (default JDE)")
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=720 * 60.0,
        help="absolute token lifetime in seconds, AIS timeToLive (default 43200 = 720 min)",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=30 * 60.0,
        help="idle token timeout in seconds, AIS sessionTimeout (default 1800)",
    )
    parser.add_argument(
        "--cursor-timeout",
        type=float,
        default=300.0,
        help="seconds an unused next-page result set stays open (default 300)",
    )
    parser.add_argument(
        "--customers", type=int, default=2000, help="number of seeded customers (default 2000)"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated data (default 42)")
    parser.add_argument(
        "--open-items",
        type=int,
        default=None,
        help="give every customer exactly this many open invoices instead of the mixed ledger (0-9; "
        "benchmarks)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every /jderest call")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="fraction of data-service/orchestration calls answered 500 or dropped (default 0)",
    )
    parser.add_argument(
        "--fault-after-commit-rate",
        type=float,
        default=0.0,
        help="fraction of orchestration calls that commit everything, then lose the answer: the "
        "connection closes without one, or a 504 gateway page comes (default 0)",
    )
    parser.add_argument(
        "--no-duplicate-check",
        action="store_true",
        help="the orchestrations accept an external reference, receipt number or supplier invoice "
        "number that already exists (built without the duplicate lookup; default: check)",
    )
    parser.add_argument(
        "--timezone",
        default="America/Chicago",
        help="the enterprise server's time zone; UPMJ/UPMT are stamped in it (default America/Chicago)",
    )
    parser.add_argument(
        "--date-format",
        default="MDE",
        choices=("MDE", "DME", "EMD"),
        help="the user's date format (default MDE)",
    )
    parser.add_argument(
        "--no-basic-auth", action="store_true", help="refuse HTTP Basic and body credentials on services"
    )


def app_from_args(args: argparse.Namespace) -> FastAPI:
    if not 0.0 <= args.fault_rate <= 1.0:
        raise SystemExit("--fault-rate must be between 0 and 1")
    if not 0.0 <= args.fault_after_commit_rate <= 1.0:
        raise SystemExit("--fault-after-commit-rate must be between 0 and 1")
    return create_app(
        username=args.username,
        password=args.password,
        token_ttl=args.token_ttl,
        session_timeout=args.session_timeout,
        cursor_timeout=args.cursor_timeout,
        customers=args.customers,
        seed=args.seed,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        timezone=args.timezone,
        date_format=args.date_format,
        allow_basic_auth=not args.no_basic_auth,
        duplicate_check=not args.no_duplicate_check,
        fault_after_commit_rate=args.fault_after_commit_rate,
        open_items=args.open_items,
    )
