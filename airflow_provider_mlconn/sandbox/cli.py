"""``mlconn-sandbox jde|hubspot [options]``: serve one sandbox until interrupted.

Each sandbox package provides ``add_arguments(parser)`` for its options and
``app_from_args(namespace)`` that builds its ASGI app from them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
from collections.abc import Sequence

from airflow_provider_mlconn.sandbox.runner import serve_forever

SANDBOXES = {
    "jde": ("airflow_provider_mlconn.sandbox.jde", 7077, "JD Edwards EnterpriseOne AIS Server"),
    "hubspot": ("airflow_provider_mlconn.sandbox.hubspot", 7078, "HubSpot CRM API"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlconn-sandbox",
        description="Local, in-memory stand-ins for the JDE AIS Server and HubSpot APIs.",
    )
    systems = parser.add_subparsers(dest="system", required=True, metavar="{jde,hubspot}")
    for name, (module_name, default_port, title) in SANDBOXES.items():
        sub = systems.add_parser(name, help=f"a local {title}")
        sub.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        sub.add_argument(
            "--port", type=int, default=default_port, help=f"port (default {default_port}; 0 = any free)"
        )
        sub.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
        importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name = SANDBOXES[args.system][0]
    app = importlib.import_module(module_name).app_from_args(args)
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
