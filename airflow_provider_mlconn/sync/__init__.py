"""The sync engine: store (staging, audit trail, id map), watermarks, ordering, load and replay.

It knows neither remote API. A flow is declared once, in an importable module (the replay DAG
finds it by name through ``[mlconn] flow_modules``, default package ``airflow_provider_mlconn.flows``),
and its DAG file is one ``flow_dag`` call::

    # airflow_provider_mlconn/flows/customers.py
    from airflow_provider_mlconn.sync.flow import Entity, Flow, Stream
    from airflow_provider_mlconn.sync.watermarks import WatermarkKind

    CUSTOMERS = Flow(
        name="customers",
        streams=(
            Stream("F0101", extract=extract_address_book, kind=WatermarkKind.JDE_DATE_TIME,
                   source_timezone="America/Chicago"),
        ),
        entities=(
            Entity("company", target="hubspot"),
            Entity("contact", target="hubspot"),
            Entity("association", target="hubspot", depends_on=("company", "contact")),
        ),
        map=map_customer_record,          # (entity, source) -> payload | Rejection, pure
        dependencies=customer_prerequisites,  # (MappedRecord) -> [Prerequisite(...)]
        load=load_to_hubspot,             # (entity, [LoadRecord]) -> {key: Loaded | Failed | Rejection}
    )

    # dags/mlconn_customers_jde_to_hubspot.py
    from datetime import datetime, timezone
    from airflow_provider_mlconn.flows.customers import CUSTOMERS
    from airflow_provider_mlconn.operators.sync import flow_dag

    dag = flow_dag(CUSTOMERS, dag_id="mlconn_customers_jde_to_hubspot", schedule="*/15 * * * *",
                   start_date=datetime(2026, 1, 1, tzinfo=timezone.utc), tags=["jde", "hubspot"])

See ``flow`` for the callables' contracts, ``engine`` for the steps and docs/BEHAVIOR.md (S) for
the guarantees.
"""
