"""Faithful local stand-ins for the JD Edwards AIS Server and the HubSpot CRM API.

They model the remote systems, not our client: nothing here imports from the rest of
``airflow_provider_mlconn``, so a client bug cannot hide behind a matching sandbox bug.
"""
