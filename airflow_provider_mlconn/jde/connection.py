"""The ``jde_ais`` connection: its settings and its form in the Airflow UI.

Kept free of Airflow and HTTP imports: ``get_provider_info`` reads the form metadata from here on
every ``airflow`` command, and the hook builds ``JdeAisSettings`` from a Connection.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

CONN_TYPE = "jde_ais"
DEFAULT_CONN_ID = "jde_ais_default"
HOOK_NAME = "JD Edwards EnterpriseOne AIS"  # as README and the integration name say

# Declarative connection form (Airflow 3 "conn-fields" / "ui-field-behaviour").
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "environment": {
        "label": "Environment",
        "description": "JDE environment to log in to, e.g. JDV920 (server default when empty)",
        "schema": {"type": ["string", "null"], "examples": ["JDV920", "JPY920", "JPD920"]},
    },
    "role": {
        "label": "Role",
        "description": "JDE role, e.g. *ALL (server default when empty)",
        "schema": {"type": ["string", "null"], "examples": ["*ALL"]},
    },
    "device_name": {
        "label": "Device name",
        "description": "Sent at login and with every call; AIS binds the token to it",
        "schema": {"type": ["string", "null"], "default": "airflow-mlconn", "examples": ["airflow-mlconn"]},
    },
    "auth_mode": {
        "label": "Authentication",
        "description": "token: one AIS session per hook (recommended); basic: credentials on every call",
        "schema": {"type": ["string", "null"], "enum": ["token", "basic"], "default": "token"},
    },
    "page_size": {
        "label": "Page size",
        "description": "Rows per data-service page (maxPageSize)",
        "schema": {"type": ["integer", "null"], "default": 500, "minimum": 1},
    },
    "max_parallel_reads": {
        "label": "Reads in flight",
        "description": "Data-service requests one hook keeps in flight at once (1: one after another)",
        "schema": {"type": ["integer", "null"], "default": 4, "minimum": 1, "maximum": 16},
    },
    "verify_ssl": {
        "label": "Verify TLS certificate",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Per HTTP request",
        "schema": {"type": ["number", "null"], "default": 60},
    },
    "server_timezone": {
        "label": "Enterprise server time zone",
        "description": "IANA name (e.g. America/Chicago); UPMJ/UPMT audit stamps are in this zone",
        "schema": {
            "type": ["string", "null"],
            "default": "UTC",
            "examples": [
                "UTC",
                "America/Chicago",
                "America/New_York",
                "America/Los_Angeles",
                "Europe/London",
            ],
        },
    },
    "date_format": {
        "label": "User date format",
        "description": "Used in basic mode (token mode reads userInfo.simpleDateFormat at login)",
        "schema": {
            "type": ["string", "null"],
            "default": "MM/dd/yyyy",
            "examples": ["MM/dd/yyyy", "dd/MM/yyyy", "yyyy/MM/dd", "yyyyMMdd"],
        },
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "extra"],
    "relabeling": {"host": "AIS base URL", "login": "JDE user", "password": "Password"},
    # Standard fields only: the UI's extra fields take no placeholder, their "examples" (above)
    # become a list of suggestions instead.
    "placeholders": {"host": "https://ais.example.com:9443", "login": "INTEGR8", "password": "JDE password"},
}

CONNECTION_TYPE_INFO: dict[str, Any] = {
    "connection-type": CONN_TYPE,
    "hook-class-name": "airflow_provider_mlconn.hooks.jde_ais.JdeAisHook",
    "hook-name": HOOK_NAME,
    "conn-fields": CONN_FIELDS,
    "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
}


class JdeAisSettings(BaseModel):
    """Everything the hook needs to reach one AIS Server."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="scheme://host:port, without /jderest")
    username: str = Field(min_length=1)
    password: SecretStr
    environment: str | None = None
    role: str | None = None
    device_name: str = "airflow-mlconn"
    auth_mode: Literal["token", "basic"] = "token"
    page_size: int = Field(500, ge=1, le=100_000)
    #: AIS documents no limit; each read in flight holds an AIS thread, an HTML-server thread of the
    #: session and a database cursor (BEHAVIOR J6), so a sync keeps a few, not as many as it could.
    max_parallel_reads: int = Field(4, ge=1, le=16)
    verify_ssl: bool = True
    timeout: float = Field(60.0, gt=0)
    server_timezone: str = "UTC"
    date_format: str = "MM/dd/yyyy"

    @field_validator("base_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        if url.endswith("/jderest"):
            url = url[: -len("/jderest")]
        if "://" not in url:
            raise ValueError(f"AIS base URL {value!r} needs a scheme, e.g. https://ais.example.com:9443")
        return url

    @classmethod
    def from_connection(cls, conn: Any, *, name: str | None = None) -> JdeAisSettings:
        """From an Airflow Connection: host (URL, or host name + schema/port), login, password, extras.

        ``name`` is the connection id errors show (default ``conn.conn_id``)."""
        shown = name or conn.conn_id
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else json.loads(conn.extra or "{}")
        host = (conn.host or "").strip()
        if not host:
            raise ValueError(f"connection {shown!r}: host (the AIS base URL) is empty")
        if "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        if conn.port and host.count(":") < 2:
            host = f"{host.rstrip('/')}:{conn.port}"
        values: dict[str, Any] = {
            "base_url": host,
            "username": conn.login or "",
            "password": conn.password or "",
        }
        for field_name in CONN_FIELDS:
            value = extra.get(field_name, extra.get(f"extra__{CONN_TYPE}__{field_name}"))
            if value not in (None, ""):
                values[field_name] = value
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"connection {shown!r} is not a usable jde_ais connection: {error}") from None
