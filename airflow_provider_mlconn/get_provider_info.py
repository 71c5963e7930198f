"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point.

Every class named here must exist: an invalid entry breaks every ``airflow`` command, which
``tests/unit/test_provider_info.py`` guards against.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mlconn import __version__
from airflow_provider_mlconn.hubspot import connection as hubspot_connection
from airflow_provider_mlconn.hubspot import webhook_connection
from airflow_provider_mlconn.jde import connection as jde_connection


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-mlconn",
        "name": "JD Edwards EnterpriseOne and HubSpot (mlconn)",
        "description": "Keeps Oracle JD Edwards EnterpriseOne (AIS Server REST API) and HubSpot CRM in sync.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "JD Edwards EnterpriseOne AIS",
                "external-doc-url": "https://docs.oracle.com/en/applications/jd-edwards/cross-product/9.2/rest-api/",
                "tags": ["software"],
            },
            {
                "integration-name": "HubSpot",
                "external-doc-url": "https://developers.hubspot.com/docs/api-reference/",
                "tags": ["software"],
            },
        ],
        "hooks": [
            {
                "integration-name": "JD Edwards EnterpriseOne AIS",
                "python-modules": ["airflow_provider_mlconn.hooks.jde_ais"],
            },
            {
                "integration-name": "HubSpot",
                "python-modules": [
                    "airflow_provider_mlconn.hooks.hubspot",
                    "airflow_provider_mlconn.hooks.hubspot_webhooks",
                ],
            },
        ],
        "connection-types": [
            jde_connection.CONNECTION_TYPE_INFO,
            hubspot_connection.CONNECTION_TYPE_INFO,
            webhook_connection.CONNECTION_TYPE_INFO,
        ],
    }
