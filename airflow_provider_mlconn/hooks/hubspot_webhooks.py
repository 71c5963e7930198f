"""``HubSpotWebhooksHook``: the settings of the webhook receiver, from the ``hubspot_webhooks``
connection (the app's client secret is its password, never in code or logs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_mlconn.hubspot import webhook_connection as conn_spec
from airflow_provider_mlconn.hubspot.webhooks import DEFAULT_MAX_BODY_BYTES


@dataclass(frozen=True)
class WebhookSettings:
    """How the receiver checks a delivery. ``secrets`` are never shown."""

    secrets: tuple[str, ...] = field(repr=False)
    public_base_url: str | None = None
    allow_legacy_signatures: bool = False
    portal_id: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def webhook_settings(connection: Any | None) -> WebhookSettings:
    """The receiver's settings from a connection (None: no connection, every request is refused)."""
    if connection is None:
        return WebhookSettings(secrets=())
    extra = connection.extra_dejson or {}
    secrets = tuple(
        s
        for s in ((connection.password or "").strip(), str(extra.get("previous_client_secret") or "").strip())
        if s
    )
    base = str(extra.get("public_base_url") or "").strip() or None
    if base is not None and urlsplit(base).scheme not in ("http", "https"):
        raise ValueError(f"public_base_url must be an http(s) URL, not {base!r}")
    portal = extra.get("portal_id")
    return WebhookSettings(
        secrets=secrets,
        public_base_url=base,
        allow_legacy_signatures=str(extra.get("allow_legacy_signatures", False)).lower() in ("true", "1"),
        portal_id=int(portal) if portal not in (None, "") else None,
        max_body_bytes=int(extra.get("max_body_bytes") or DEFAULT_MAX_BODY_BYTES),
    )


class HubSpotWebhooksHook(BaseHook):
    """The receiver's connection. ``connection`` may be given directly (the api-server reads it from
    the metadata database or a secrets backend, outside any task)."""

    conn_name_attr = "hubspot_webhooks_conn_id"
    default_conn_name = conn_spec.DEFAULT_CONN_ID
    conn_type = conn_spec.CONN_TYPE
    hook_name = "HubSpot webhooks"

    def __init__(
        self, hubspot_webhooks_conn_id: str = conn_spec.DEFAULT_CONN_ID, *, connection: Any | None = None
    ) -> None:
        super().__init__()
        self.hubspot_webhooks_conn_id = hubspot_webhooks_conn_id
        self._connection = connection

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": list(conn_spec.UI_HIDDEN_FIELDS),
            "relabeling": dict(conn_spec.UI_RELABELING),
            "placeholders": dict(conn_spec.UI_PLACEHOLDERS),
        }

    def settings(self) -> WebhookSettings:
        connection = self._connection or self.get_connection(self.hubspot_webhooks_conn_id)
        return webhook_settings(connection)

    def test_connection(self) -> tuple[bool, str]:
        """No call to make (HubSpot calls us): the secret is set and the public URL is well formed."""
        try:
            settings = self.settings()
        except Exception as error:
            return False, f"connection '{self.hubspot_webhooks_conn_id}': {error}"
        if not settings.secrets:
            return False, "no client secret: put the HubSpot app's client secret in the password field"
        target = (settings.public_base_url or "https://<api-server host>") + conn_spec.RECEIVER_PATH
        return True, f"Client secret set; the app's target URL is {target}."
