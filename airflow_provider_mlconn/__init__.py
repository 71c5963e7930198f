"""Apache Airflow provider that keeps JD Edwards EnterpriseOne and HubSpot CRM in sync."""

from __future__ import annotations

__version__ = "0.1.0"
