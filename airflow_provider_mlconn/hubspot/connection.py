"""The ``hubspot`` connection type: its fields and how the Airflow UI shows them.

Plain data with no imports beyond the standard library, so ``get_provider_info`` can declare it
(Airflow 3.2+ reads ``conn-fields`` / ``ui-field-behaviour`` from provider info without importing hooks).
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "hubspot"
DEFAULT_CONN_ID = "hubspot_default"
DEFAULT_HOST = "https://api.hubapi.com"
DEFAULT_RATE_LIMIT_PER_10S = 190
DEFAULT_TIMEOUT_S = 30.0
# Who shares one rate budget: every process of the machine, each process on its own, or every
# machine that reaches one Redis (a Celery deployment's broker).
RATE_BUDGETS = ("machine", "process", "redis")
DEFAULT_RATE_BUDGET = "machine"
DEFAULT_REDIS_CONN_ID = "redis_default"

# Extra fields (stored in the connection's extra JSON under these names).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "rate_limit_per_10s": {
        "label": "Rate limit per 10 s",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_RATE_LIMIT_PER_10S, "minimum": 1},
        "description": "The private app's burst limit (100 Free/Starter, 190 Pro/Enterprise, 250 with the "
        "API add-on). The hook keeps under it and under what the X-HubSpot-RateLimit headers report.",
    },
    "rate_budget": {
        "label": "Rate budget shared by",
        "schema": {"type": ["string", "null"], "default": DEFAULT_RATE_BUDGET},
        "description": "machine: every task process on this machine counts against one budget (a file under "
        "the temporary directory), so load tasks running side by side stay under the limit together; "
        "redis: every machine that reaches the Redis of the connection below counts against one budget "
        "(Celery workers on several machines); process: each process keeps its own count and learns of "
        "the others from HubSpot's headers.",
    },
    "rate_budget_redis_conn_id": {
        "label": "Redis connection of the budget",
        "schema": {"type": ["string", "null"], "default": DEFAULT_REDIS_CONN_ID},
        "description": "With rate budget redis: the Airflow connection (type redis: host, port, password, "
        'extra {"db": 0}) whose Redis keeps the shared budget.',
    },
    "verify_ssl": {
        "label": "Verify SSL",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "timeout": {
        "label": "Timeout (s)",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT_S, "minimum": 1},
        "description": "Seconds to wait for one HubSpot response.",
    },
}

UI_HIDDEN_FIELDS = ["schema", "login", "port"]
UI_RELABELING = {"password": "Private App Token", "host": "API base URL"}
UI_PLACEHOLDERS = {
    "host": f"{DEFAULT_HOST} (leave empty), or http://127.0.0.1:7078 for the sandbox",
    "password": "pat-na1-...",
}

# The ``connection-types`` entry of ``get_provider_info``.
CONNECTION_TYPE_INFO: dict[str, Any] = {
    "connection-type": CONN_TYPE,
    "hook-class-name": "airflow_provider_mlconn.hooks.hubspot.HubSpotHook",
    "hook-name": "HubSpot",
    "conn-fields": CONN_FIELDS,
    "ui-field-behaviour": {
        "hidden-fields": UI_HIDDEN_FIELDS,
        "relabeling": UI_RELABELING,
        "placeholders": UI_PLACEHOLDERS,
    },
}
