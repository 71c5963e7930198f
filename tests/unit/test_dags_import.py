"""Every file in dags/ imports cleanly through a DagBag: no import errors, no warnings."""

from __future__ import annotations

import warnings

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit


def test_every_dag_file_imports_without_errors_or_warnings() -> None:
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(REPO_ROOT / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    ours = [
        w
        for w in caught
        if str(REPO_ROOT / "dags") in str(w.filename) or "airflow_provider_mlconn" in str(w.filename)
    ]
    assert ours == [], [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]
    for dag_id, dag in bag.dags.items():
        assert dag_id.startswith("mlconn_"), f"{dag_id} does not follow the mlconn_ naming"
        assert dag.tags, f"{dag_id} has no tags"


def test_every_dag_has_a_description_and_its_forms_take_what_people_pick() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"), safe_mode=False)
    for dag_id, dag in bag.dags.items():
        assert dag.description and len(dag.description) < 200, f"{dag_id}: the DAG list shows no description"
    address_numbers = bag.dags["mlconn_customers_jde_to_hubspot"].params.get_param("address_numbers")
    # Optional in the trigger form: a type that allows null and a null default.
    assert "null" in address_numbers.schema["type"] and address_numbers.value is None
    replay = bag.dags["mlconn_replay"].params
    assert {None, "company", "contact"} <= set(replay.get_param("entity").schema["enum"])  # a select
    assert replay.get_param("statuses").schema["examples"] == ["failed", "rejected", "waiting", "uncertain"]


def test_the_load_retry_delay_is_a_variable_of_seconds_read_when_the_dag_is_parsed(monkeypatch) -> None:
    from datetime import timedelta

    from airflow_provider_mlconn.operators.sync import load_retry_delay_setting

    monkeypatch.delenv("AIRFLOW_VAR_MLCONN_LOAD_RETRY_DELAY_SECONDS", raising=False)
    assert load_retry_delay_setting() == timedelta(minutes=1)
    monkeypatch.setenv("AIRFLOW_VAR_MLCONN_LOAD_RETRY_DELAY_SECONDS", "5")
    assert load_retry_delay_setting() == timedelta(seconds=5)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "mlconn_payments_hubspot_to_jde.py"), safe_mode=False)
    assert bag.dags["mlconn_payments_hubspot_to_jde"].get_task("receipt.load").retry_delay == timedelta(
        seconds=5
    )
    monkeypatch.setenv("AIRFLOW_VAR_MLCONN_LOAD_RETRY_DELAY_SECONDS", "soon")
    with pytest.raises(
        ValueError, match="mlconn_load_retry_delay_seconds must be a number of seconds, not 'soon'"
    ):
        load_retry_delay_setting()
