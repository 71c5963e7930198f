"""Pure mapping functions, one module per flow: JDE rows <-> HubSpot payloads. No I/O, no Airflow."""
