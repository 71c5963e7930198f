"""The items DAG through dag.test() against both sandboxes: JDE items become products once; a
product created in HubSpot becomes a JDE item and gets its number back; a rename in JDE reaches
the product; an edit in HubSpot of a field JDE owns is a conflict, never sent; and no write comes
back as a change (counted by both sandboxes)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.jde import query as q
from tests.conftest import REPO_ROOT
from tests.support.customers import Sandboxes

pytestmark = pytest.mark.integration

DAG_ID = "mlconn_items_sync"
VARIABLES = ("mlconn_watermark__items__jde", "mlconn_watermark__items__hubspot", "mlconn_items")
PRODUCT_PROPERTIES = (
    "name,description,price,hs_sku,jde_item_number,jde_short_item_number,jde_sync_status,jde_sync_message"
)


def items_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{DAG_ID}.py"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def run_items() -> Any:
    dag_run = items_dag().test(run_conf={"safety_lag_minutes": 0})
    assert str(dag_run.state) == "success", {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    time.sleep(1.1)  # what this run wrote is stamped in its own second; the next run reads past it
    return dag_run


@pytest.fixture
def items_flow(customer_sandboxes, airflow_store, airflow_db):
    from airflow.models import Variable

    for name in VARIABLES:
        Variable.delete(name)
    sandboxes = customer_sandboxes(jde={"customers": 60}, hubspot={"seed": 3})
    yield sandboxes
    for name in VARIABLES:
        Variable.delete(name)


def jde_writes(sandboxes: Sandboxes) -> int:
    """Orchestration calls the JDE sandbox served (every write into JDE is one)."""
    outcomes = sandboxes.jde_control("GET", "stats")["orchestrations"]  # "<name> <outcome>" -> count
    return sum(count for name, count in outcomes.items() if name.startswith("ORCH_55_UpsertItem "))


def writes(sandboxes: Sandboxes) -> tuple[int, int]:
    return jde_writes(sandboxes), sandboxes.hubspot_write_calls()


def products(sandboxes: Sandboxes) -> list[dict[str, Any]]:
    return sandboxes.hubspot_objects("products", PRODUCT_PROPERTIES.split(","))


def jde_items() -> dict[str, dict[str, Any]]:
    with JdeAisHook() as hook:
        return {str(r["LITM"]).strip(): r for r in hook.iter_rows("F4101")}


def test_items_and_products_sync_both_ways_without_ping_pong(items_flow):
    sandboxes = items_flow
    seeded_products = {p["properties"]["hs_sku"]: p["id"] for p in products(sandboxes)}
    assert seeded_products, "the HubSpot sandbox seeds products created by salespeople"
    items_before = jde_items()

    run_items()
    after = products(sandboxes)
    by_number = {}
    for product in after:
        number = product["properties"]["jde_item_number"]
        assert number, f"product {product['id']} has its JDE item number"
        assert number not in by_number, f"JDE item {number} is one product, once"
        by_number[number] = product
    items = jde_items()
    assert set(by_number) == set(items), "every JDE item is a product, every product a JDE item"
    for sku, product_id in seeded_products.items():
        assert by_number[sku]["id"] == product_id, "the HubSpot product got the number of its new JDE item"
        assert sku in items and sku not in items_before
    some_item = sorted(items_before)[0]
    assert by_number[some_item]["properties"]["name"] == str(items_before[some_item]["DSC1"]).strip()

    before = writes(sandboxes)
    run_items()
    assert writes(sandboxes) == before, "a second run with no edit writes nothing, on either side"

    # A rename in JDE: one HubSpot write, nothing back.
    itm = int(items_before[some_item]["ITM"])
    sandboxes.jde_control("PATCH", f"items/{itm}", {"description": "Renamed in JDE"})
    time.sleep(1.1)
    before = writes(sandboxes)
    run_items()
    assert writes(sandboxes) == (before[0], before[1] + 1)
    renamed = next(p for p in products(sandboxes) if p["properties"]["jde_item_number"] == some_item)
    assert renamed["properties"]["name"] == "Renamed in JDE"
    before = writes(sandboxes)
    run_items()
    assert writes(sandboxes) == before, "our own write read back from HubSpot goes nowhere"

    # A product created in HubSpot: one JDE write, one write back of its number, nothing after.
    created = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/products",
        {"properties": {"name": "Harbour crane rental", "price": "950", "hs_sku": "crane-1"}},
    )
    time.sleep(1.1)
    before = writes(sandboxes)
    run_items()
    assert writes(sandboxes) == (before[0] + 1, before[1] + 1)
    item = jde_items()["CRANE-1"]
    assert str(item["DSC1"]).strip() == "Harbour crane rental"
    back = sandboxes.hubspot_api(
        "GET", f"/crm/v3/objects/products/{created['id']}", properties=PRODUCT_PROPERTIES
    )
    assert back["properties"]["jde_item_number"] == "CRANE-1"
    assert back["properties"]["jde_short_item_number"] == str(item["ITM"])
    before = writes(sandboxes)
    run_items()
    run_items()
    assert writes(sandboxes) == before

    # A salesperson edits the name JDE owns: a conflict on the product, nothing to JDE, not overwritten.
    product_id = renamed["id"]
    sandboxes.hubspot_api(
        "PATCH", f"/crm/v3/objects/products/{product_id}", {"properties": {"name": "Sales name"}}
    )
    time.sleep(1.1)
    before = writes(sandboxes)
    run_items()
    assert writes(sandboxes) == (before[0], before[1] + 1), "only the conflict status is written"
    flagged = sandboxes.hubspot_api(
        "GET", f"/crm/v3/objects/products/{product_id}", properties=PRODUCT_PROPERTIES
    )
    assert flagged["properties"]["name"] == "Sales name"
    assert flagged["properties"]["jde_sync_status"] == "conflict"
    assert "name is 'Sales name' here (F4101.DSC1 in JDE)" in flagged["properties"]["jde_sync_message"]
    before = writes(sandboxes)
    run_items()
    assert writes(sandboxes) == before, "a conflict is reported once"

    # The next change in JDE wins.
    sandboxes.jde_control("PATCH", f"items/{itm}", {"description": "JDE wins"})
    time.sleep(1.1)
    run_items()
    won = sandboxes.hubspot_api(
        "GET", f"/crm/v3/objects/products/{product_id}", properties=PRODUCT_PROPERTIES
    )
    assert won["properties"]["name"] == "JDE wins" and won["properties"]["jde_sync_status"] == "synced"
    with JdeAisHook() as hook:
        [row] = hook.iter_rows("F4101", query=q.eq("F4101.ITM", itm))
    assert str(row["DSC1"]).strip() == "JDE wins"
