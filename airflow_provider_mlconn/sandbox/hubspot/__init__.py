"""``mlconn-sandbox hubspot``: a faithful, in-memory HubSpot CRM API (objects v3, search, properties,
associations v4, tax rates), with HubSpot's auth, rate limits, error bodies, search index lag, commerce
arithmetic (invoice totals, payments, refunds) and webhooks.

It models HubSpot, not our client: nothing here imports from hooks, mapping or
``airflow_provider_mlconn.hubspot``.
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI

from airflow_provider_mlconn.sandbox.hubspot.app import HubSpotSandbox, create_app
from airflow_provider_mlconn.sandbox.hubspot.gateway import Settings

__all__ = ["HubSpotSandbox", "add_arguments", "app_from_args", "create_app"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings()
    parser.add_argument("--token", default=defaults.token, help="the private app token it accepts")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=defaults.rate_limit,
        metavar="REQUESTS_PER_10S",
        help=f"rolling 10-second limit, TEN_SECONDLY_ROLLING (default {defaults.rate_limit})",
    )
    parser.add_argument(
        "--search-rate-limit",
        type=int,
        default=defaults.search_rate_limit,
        metavar="PER_S",
        help=f"search requests per second, SECONDLY (default {defaults.search_rate_limit})",
    )
    parser.add_argument(
        "--daily-limit",
        type=int,
        default=defaults.daily_limit,
        metavar="REQUESTS",
        help=f"requests per day, DAILY (default {defaults.daily_limit})",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="MS", help="added to every API call")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of API calls answered 502/504 (half before, half after the write happened)",
    )
    parser.add_argument(
        "--search-lag-ms",
        type=int,
        default=defaults.search_lag_ms,
        metavar="MS",
        help=f"how long a write takes to show in search (default {defaults.search_lag_ms})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help="start with HubSpot-origin data (products, companies, contacts, invoices, payments) from seed N",
    )
    parser.add_argument(
        "--api-payments-update-invoices",
        action=argparse.BooleanOptionalAction,
        default=defaults.api_payments_update_invoices,
        help="payments recorded through the API (commerce_payments + association 542) count towards the "
        "invoice's amount paid, balance due and paid status (default: they do)",
    )
    parser.add_argument(
        "--webhook-batch-delay-ms",
        type=int,
        default=defaults.webhook_batch_delay_ms,
        metavar="MS",
        help=f"how long webhook events gather into a batch (default {defaults.webhook_batch_delay_ms})",
    )
    parser.add_argument(
        "--webhook-backoff-scale",
        type=float,
        default=defaults.webhook_backoff_scale,
        metavar="F",
        help="multiplies the webhook retry delays (1.0: HubSpot's, about 24 h over 10 retries)",
    )
    parser.add_argument(
        "--webhook-max-retries",
        type=int,
        default=defaults.webhook_max_retries,
        metavar="N",
        help=f"retries of a webhook POST that failed (default {defaults.webhook_max_retries})",
    )
    parser.add_argument(
        "--webhook-timeout",
        type=float,
        default=defaults.webhook_timeout_s,
        metavar="SECONDS",
        help=f"a webhook receiver that answers later has failed (default {defaults.webhook_timeout_s})",
    )


def app_from_args(args: argparse.Namespace) -> FastAPI:
    return create_app(
        token=args.token,
        rate_limit=args.rate_limit,
        search_rate_limit=args.search_rate_limit,
        daily_limit=args.daily_limit,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        search_lag_ms=args.search_lag_ms,
        seed=args.seed,
        api_payments_update_invoices=args.api_payments_update_invoices,
        webhook_batch_delay_ms=args.webhook_batch_delay_ms,
        webhook_backoff_scale=args.webhook_backoff_scale,
        webhook_max_retries=args.webhook_max_retries,
        webhook_timeout_s=args.webhook_timeout,
    )
