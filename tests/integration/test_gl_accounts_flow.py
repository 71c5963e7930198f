"""The GL accounts DAG through dag.test() against both sandboxes: JDE's postable accounts in range
become line-item options in HubSpot; a locked account is hidden, never removed; a run with no JDE
change writes nothing; a filter over HubSpot's option limit fails the run and sends nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.jde import query as q
from tests.conftest import REPO_ROOT
from tests.support.customers import Sandboxes

pytestmark = pytest.mark.integration

DAG_ID = "mlconn_gl_accounts_sync"
NO_LAG = {"safety_lag_minutes": 0}


def gl_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{DAG_ID}.py"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def run_gl(conf: dict[str, Any] | None = None, *, expect: str = "success") -> Any:
    dag_run = gl_dag().test(run_conf={**NO_LAG, **(conf or {})})
    assert str(dag_run.state) == expect, {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    return dag_run


@pytest.fixture
def gl_flow(customer_sandboxes, airflow_store, airflow_db):
    from airflow.models import Variable

    for name in ("mlconn_watermark__gl_accounts__jde", "mlconn_gl_accounts"):
        Variable.delete(name)
    sandboxes = customer_sandboxes(jde={"customers": 20})
    yield sandboxes
    for name in ("mlconn_watermark__gl_accounts__jde", "mlconn_gl_accounts"):
        Variable.delete(name)


def jde_revenue_accounts() -> dict[str, tuple[str, bool]]:
    """Every F0901 account with an object in 4000-4999: value -> (description, postable)."""
    with JdeAisHook() as hook:
        rows = hook.iter_rows("F0901", query=q.between("F0901.OBJ", "4000", "4999"))
        found = {}
        for row in rows:
            value = ".".join(
                p for p in (str(row["MCU"]).strip(), str(row["OBJ"]).strip(), str(row["SUB"]).strip()) if p
            )
            found[value] = (str(row["DL01"]).strip(), not str(row["PEC"]).strip())
    return found


def options(sandboxes: Sandboxes, name: str) -> dict[str, dict[str, Any]]:
    body = sandboxes.hubspot_api("GET", f"/crm/v3/properties/line_items/{name}")
    return {option["value"]: option for option in body["options"]}


def test_postable_accounts_in_range_become_options_and_a_locked_one_is_hidden(gl_flow):
    sandboxes = gl_flow
    truth = jde_revenue_accounts()
    assert any(postable for _, postable in truth.values()) and not all(p for _, p in truth.values())
    run_gl()
    shown = options(sandboxes, "jde_gl_account")
    assert set(shown) == set(truth), "every account in range is an option, once"
    for value, (description, postable) in truth.items():
        assert shown[value]["hidden"] is (not postable), value
        assert shown[value]["label"] == (f"{value} - {description}" if description else value)
    units = options(sandboxes, "jde_business_unit")
    with JdeAisHook() as hook:
        assert set(units) == {str(r["MCU"]).strip() for r in hook.iter_rows("F0006")}

    writes = sandboxes.hubspot_write_calls()
    run_gl()
    assert sandboxes.hubspot_write_calls() == writes, "a run with no JDE change writes nothing"

    value, aid = next((v, None) for v, (_, postable) in sorted(truth.items()) if postable)
    with JdeAisHook() as hook:
        bu, obj, *sub = value.split(".")
        aid = next(
            str(r["AID"]).strip()
            for r in hook.iter_rows("F0901", query=q.all_of(q.eq("F0901.OBJ", obj)))
            if str(r["MCU"]).strip() == bu and str(r["SUB"]).strip() == (sub[0] if sub else "")
        )
    sandboxes.jde_control("PATCH", f"accounts/{aid}", {"posting_edit": "N"})
    time.sleep(1.1)  # past the edit's second (UPMT)
    writes = sandboxes.hubspot_write_calls()
    run_gl()
    assert sandboxes.hubspot_write_calls() == writes + 1, "one PATCH of the option list"
    after = options(sandboxes, "jde_gl_account")
    assert after[value]["hidden"] is True, "locked in JDE: hidden, still there"
    assert set(after) == set(shown)


def test_a_filter_past_the_option_limit_fails_the_run_with_the_setting_to_narrow(gl_flow, monkeypatch):
    from airflow.models import Variable

    from airflow_provider_mlconn.mapping import reference_data

    monkeypatch.setattr(reference_data, "MAX_OPTIONS", 10)
    Variable.set("mlconn_gl_accounts", json.dumps({"object_ranges": [["1000", "9999"]]}))
    writes = gl_flow.hubspot_write_calls()
    dag_run = run_gl(expect="failed")
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states["map"] == "failed"
    assert gl_flow.hubspot_write_calls() == writes, "nothing is sent, not even a cut list"
