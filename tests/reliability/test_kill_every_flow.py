"""A worker killed (SIGKILL) in the middle of a load, then its task cleared as in the UI, in the flows
the money-flow kill tests (tests/integration/test_invoices_faults.py, test_payments_faults.py) and
the customers' (tests/e2e/test_celery_stack.py) do not cover: A/R status creating HubSpot invoices
for documents raised in JDE, items becoming JDE items, and GL accounts becoming line-item options.
Each time: the run the clear resumed succeeds, and both systems hold every record once, read back
through their APIs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_mlconn.hooks.jde_ais import JdeAisHook
from airflow_provider_mlconn.jde import query as q
from tests.support.ar_status import INVOICE_PROPERTIES, associated, forget_ar_variables
from tests.support.customers import READ_PATHS, Sandboxes
from tests.support.faults import jde_settings, kill_mid_load_then_clear
from tests.support.invoices import CUSTOMERS_DAG, run
from tests.support.reliability import KILLED_MID_LOAD, record_held

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

AR_DAG = "mlconn_ar_jde_to_hubspot"
ITEMS_DAG = "mlconn_items_sync"
GL_DAG = "mlconn_gl_accounts_sync"
ITEM_VARIABLES = ("mlconn_watermark__items__jde", "mlconn_watermark__items__hubspot", "mlconn_items")
GL_VARIABLES = ("mlconn_watermark__gl_accounts__jde", "mlconn_gl_accounts")


@pytest.fixture
def kill_world(customer_sandboxes, airflow_store, airflow_db, quick_retries):
    from airflow.models import Variable

    names = (*ITEM_VARIABLES, *GL_VARIABLES)
    forget_ar_variables()
    for name in names:
        Variable.delete(name)
    yield customer_sandboxes
    forget_ar_variables()
    for name in names:
        Variable.delete(name)


def hubspot_latency(sandboxes: Sandboxes, milliseconds: float) -> None:
    sandboxes.http.post(
        f"{sandboxes.hubspot.url}/_sandbox/settings", json={"latency_ms": milliseconds}, timeout=30
    ).raise_for_status()


def invoice_writes(sandboxes: Sandboxes) -> int:
    """HubSpot writes of invoices and line items (and their associations): the jde_invoice load's own,
    not the company balances' (a load task of the same run)."""
    calls: dict[str, dict[str, int]] = sandboxes.hubspot_stats()["requests"]
    return sum(
        sum(by_status.values())
        for call, by_status in calls.items()
        if not call.startswith("GET ")
        and not call.endswith(READ_PATHS)
        and ("/invoices" in call or "/line_items" in call)
    )


def orchestration_calls(sandboxes: Sandboxes, orchestration: str) -> int:
    outcomes = sandboxes.jde_control("GET", "stats")["orchestrations"]  # "<name> <outcome>" -> count
    return sum(count for name, count in outcomes.items() if name.startswith(f"{orchestration} "))


def task_states(dag_run: Any) -> dict[str, str]:
    """The run's task states (try numbers too), for a failure message that says what failed."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        )
        return {f"{ti.task_id}[{ti.map_index}] try {ti.try_number}": str(ti.state) for ti in found}


def assert_resumed(dag_run: Any, load_task: str) -> None:
    """The run the clear resumed succeeded, and the killed load ran a second try in it."""
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert states.get(f"{load_task}[0] try 2") == "success", f"the kill did not land in {load_task}: {states}"


def test_ar_killed_while_creating_invoices_of_jde_documents_then_cleared_creates_each_once(kill_world):
    sandboxes: Sandboxes = kill_world(jde={"customers": 40, "open_items": 3})
    run(CUSTOMERS_DAG)
    # A customer with no contact in JDE gets no HubSpot invoice (rejected: HubSpot bills a contact).
    companies = sandboxes.hubspot_objects("companies", ["jde_address_number"], associations="contacts")
    billable = {int(c["properties"]["jde_address_number"]) for c in companies if associated(c, "contacts")}
    with JdeAisHook() as hook:
        columns = ["KCO", "DCT", "DOC", "AN8"]
        rows = hook.iter_rows("F03B11", columns=columns, query=q.eq("F03B11.DCT", "RI"))
        documents = {f"{r['KCO']}-{r['DCT']}-{int(r['DOC'])}" for r in rows if int(r["AN8"]) in billable}
    assert len(documents) >= 100
    writes_before = invoice_writes(sandboxes)
    # Each HubSpot call takes a while, so the kill lands among the creating calls of the first chunk.
    hubspot_latency(sandboxes, 300)
    finished = kill_mid_load_then_clear(
        AR_DAG,
        "jde_invoice.load",
        calls=lambda: invoice_writes(sandboxes),
        kill_after=writes_before + 4,
        then=lambda: hubspot_latency(sandboxes, 0),
    )
    assert_resumed(finished, "jde_invoice.load")

    invoices = sandboxes.hubspot_objects("invoices", INVOICE_PROPERTIES, associations="line_items")
    per_document = Counter(str(i["properties"].get("jde_document_key")) for i in invoices)
    record_held(
        KILLED_MID_LOAD,
        flows="A/R status (invoices raised in JDE)",
        injected="SIGKILL after 4 invoice and line-item writes (300 ms each)",
        runs="1 + clear",
        expected=sorted(documents),
        held=per_document,
    )
    assert set(per_document) == documents, "every document raised in JDE is a HubSpot invoice"
    assert set(per_document.values()) == {1}, "and only one"
    assert {i["properties"]["hs_invoice_status"] for i in invoices} == {"open"}
    lines = sandboxes.hubspot_objects("line_items", ["jde_line_key"])
    per_line = Counter(str(line["properties"].get("jde_line_key")) for line in lines)
    assert per_line and set(per_line.values()) == {1}, "no line item made twice"
    used = [line_id for i in invoices for line_id in associated(i, "line items")]
    assert all(associated(i, "line items") for i in invoices), "each invoice has its lines"
    assert sorted(used) == sorted(str(line["id"]) for line in lines), "each line item on one invoice"


def test_items_killed_while_creating_jde_items_then_cleared_creates_each_once(kill_world):
    sandboxes: Sandboxes = kill_world(jde={"customers": 10}, hubspot={"seed": 3})
    created = sandboxes.hubspot_api(
        "POST",
        "/crm/v3/objects/products/batch/create",
        {
            "inputs": [
                {"properties": {"name": f"Spare part {n}", "price": str(10 + n), "hs_sku": f"spare-{n:03d}"}}
                for n in range(100)
            ]
        },
    )
    made_in_hubspot = {str(p["properties"]["hs_sku"]).upper() for p in created["results"]}
    # Each JDE write takes a while, so the kill lands among the items being created.
    jde_settings(sandboxes, latency_ms=150)
    finished = kill_mid_load_then_clear(
        ITEMS_DAG,
        "jde_item.load",
        calls=lambda: orchestration_calls(sandboxes, "ORCH_55_UpsertItem"),
        kill_after=30,
        then=lambda: jde_settings(sandboxes, latency_ms=0),
    )
    assert_resumed(finished, "jde_item.load")

    with JdeAisHook() as hook:
        items = Counter(str(row["LITM"]).strip() for row in hook.iter_rows("F4101", columns=["LITM"]))
    record_held(
        KILLED_MID_LOAD,
        flows="items (products made in HubSpot to JDE)",
        injected="SIGKILL after 30 item upserts (150 ms each)",
        runs="1 + clear",
        expected=sorted(made_in_hubspot),
        held=items,
    )
    assert made_in_hubspot <= set(items), "every product made in HubSpot is a JDE item"
    assert set(items.values()) == {1}, "and no JDE item twice"
    products = sandboxes.hubspot_objects("products", ["hs_sku", "jde_item_number"])
    numbers = Counter(str(p["properties"].get("jde_item_number")) for p in products)
    assert set(numbers) == set(items), "every JDE item is one product, every product has its item number"
    assert set(numbers.values()) == {1}
    assert orchestration_calls(sandboxes, "ORCH_55_UpsertItem") < 2 * len(made_in_hubspot)


def running_for(dag_id: str, task_id: str) -> float:
    """Seconds the task has been running (0 while it is not), as the metadata database says."""
    from datetime import datetime, timezone

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        started = session.scalar(
            select(TaskInstance.start_date).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == TaskInstanceState.RUNNING,
            )
        )
    return 0.0 if started is None else (datetime.now(timezone.utc) - started).total_seconds()


def once(condition: Callable[[], bool]) -> Callable[[], int]:
    """1 from the first time ``condition`` holds on (the kill helper counts up, never down)."""
    seen = False

    def count() -> int:
        nonlocal seen
        seen = seen or condition()
        return int(seen)

    return count


def test_gl_accounts_killed_while_writing_the_options_then_cleared_leaves_each_option_once(kill_world):
    sandboxes: Sandboxes = kill_world(jde={"customers": 5})
    # The options of an account property are one record and one write: each HubSpot call takes a
    # second, and the task is killed 1.5 s into its run, while its calls are on their way (the
    # counters only count answered calls, too late for a task this short).
    hubspot_latency(sandboxes, 1000)
    finished = kill_mid_load_then_clear(
        GL_DAG,
        "gl_account_options.load",
        calls=once(lambda: running_for(GL_DAG, "gl_account_options.load") >= 1.5),
        kill_after=1,
        then=lambda: hubspot_latency(sandboxes, 0),
    )
    assert_resumed(finished, "gl_account_options.load")
    options: Counter[str] = Counter()
    for name in ("jde_gl_account", "jde_business_unit"):
        prop: dict[str, Any] = sandboxes.hubspot_api("GET", f"/crm/v3/properties/line_items/{name}")
        values = Counter(option["value"] for option in prop["options"])
        options.update(f"{name}={value}" for value in values.elements())
        assert values and set(values.values()) == {1}, f"{name}: each option once"
    before = sandboxes.hubspot_write_calls()
    run(GL_DAG)
    assert sandboxes.hubspot_write_calls() == before, "the cleared run left nothing for the next one"
    record_held(  # none lost: the next run found nothing left to write
        KILLED_MID_LOAD,
        flows="GL accounts (line-item options)",
        injected="SIGKILL 1.5 s into the options load (HubSpot calls of 1 s)",
        runs="1 + clear",
        expected=list(options),
        held=options,
    )
