"""The Airflow connections that point ``jde_ais_default`` and ``hubspot_default`` at running sandboxes.

Used by ``make demo``, ``make airflow``, the benchmarks and the tests, so that all of them talk to
the sandboxes the same way. Connection definitions are plain JSON (``airflow connections add
--conn-json``, ``AIRFLOW_CONN_<ID>``); nothing here imports the client side.
"""

from __future__ import annotations

import json
from typing import Any

JDE_CONN_ID = "jde_ais_default"
HUBSPOT_CONN_ID = "hubspot_default"


def sandbox_connections(
    *,
    jde_url: str,
    hubspot_url: str,
    jde_user: str = "JDE",
    jde_password: str = "JDE",
    jde_timezone: str = "America/Chicago",
    hubspot_token: str = "pat-na1-sandbox",
    device_name: str = "mlconn-sandbox",
    page_size: int = 500,
    hubspot_search_lag_seconds: float = 2.0,
    jde_role: str | None = "*ALL",
) -> dict[str, dict[str, Any]]:
    """Connection id -> definition. ``jde_timezone`` must be the JDE sandbox's ``--timezone``: it
    stamps UPMJ/UPMT in that zone, and the connection's ``server_timezone`` reads them back.
    ``hubspot_search_lag_seconds`` must be at least the HubSpot sandbox's ``--search-lag-ms``
    (1 s by default; tests run it at 0). ``jde_role`` None leaves the role to the server's default."""
    role = {} if jde_role is None else {"role": jde_role}
    return {
        JDE_CONN_ID: {
            "conn_type": "jde_ais",
            "host": jde_url,
            "login": jde_user,
            "password": jde_password,
            "extra": {
                "environment": "JDV920",
                **role,
                "device_name": device_name,
                "server_timezone": jde_timezone,
                "page_size": page_size,
            },
        },
        HUBSPOT_CONN_ID: {
            "conn_type": "hubspot",
            "host": hubspot_url,
            "password": hubspot_token,
            "extra": {"search_lag_seconds": hubspot_search_lag_seconds},
        },
    }


def connection_environment(connections: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The same connections as ``AIRFLOW_CONN_<ID>`` environment variables."""
    return {
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(definition)
        for conn_id, definition in connections.items()
    }
