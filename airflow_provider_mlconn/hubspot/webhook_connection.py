"""The ``hubspot_webhooks`` connection type: the HubSpot app's client secret and how the receiver
checks deliveries (docs/BEHAVIOR.md H20).

Plain data with no imports beyond the standard library, so ``get_provider_info`` can declare it.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "hubspot_webhooks"
DEFAULT_CONN_ID = "hubspot_webhooks_default"
#: The receiver's path on the api-server (contract), under the plugin's ``/mlconn`` prefix.
RECEIVER_PATH = "/mlconn/webhooks/hubspot"

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "public_base_url": {
        "label": "Public base URL",
        "schema": {"type": ["string", "null"], "default": None},
        "description": "Scheme and host HubSpot calls (the app's target URL without the path), e.g. "
        "https://airflow.example.com. HubSpot signs the URL it calls: behind a proxy set it, else the "
        "api-server's own view of the URL is checked.",
    },
    "allow_legacy_signatures": {
        "label": "Allow v1/v2 signatures",
        "schema": {"type": ["boolean", "null"], "default": False},
        "description": "Accept requests signed only with X-HubSpot-Signature v1/v2 (legacy apps). "
        "They carry no timestamp, so a captured request can be replayed; leave off when HubSpot sends v3.",
    },
    "previous_client_secret": {
        "label": "Previous client secret",
        "schema": {"type": ["string", "null"], "default": None},
        "description": "While the app's secret is rotated: the old one, also accepted.",
    },
    "portal_id": {
        "label": "Portal id",
        "schema": {"type": ["integer", "null"], "default": None},
        "description": "Accept only events of this HubSpot account (hub id). Empty: any.",
    },
    "max_body_bytes": {
        "label": "Max body (bytes)",
        "schema": {"type": ["integer", "null"], "default": 1_000_000, "minimum": 1024},
        "description": "Larger requests are refused unread (100 events are about 40 KB).",
    },
}

UI_HIDDEN_FIELDS = ["schema", "login", "port", "host"]
UI_RELABELING = {"password": "Client secret"}
UI_PLACEHOLDERS = {"password": "the app's client secret (Auth tab)"}

CONNECTION_TYPE_INFO: dict[str, Any] = {
    "connection-type": CONN_TYPE,
    "hook-class-name": "airflow_provider_mlconn.hooks.hubspot_webhooks.HubSpotWebhooksHook",
    "hook-name": "HubSpot webhooks",
    "conn-fields": CONN_FIELDS,
    "ui-field-behaviour": {
        "hidden-fields": UI_HIDDEN_FIELDS,
        "relabeling": UI_RELABELING,
        "placeholders": UI_PLACEHOLDERS,
    },
}
