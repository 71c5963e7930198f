"""Flow tasks run with the objects that existed before them out of the garbage collector's reach."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mlconn.operators import sync as sync_operators
from airflow_provider_mlconn.operators.common import collector_spares_older_objects
from airflow_provider_mlconn.operators.sync import _FlowOperator

pytestmark = pytest.mark.unit


class _Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _nothing_frozen_around() -> Any:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_cycle_older_than_the_work_waits_for_its_end_and_a_cycle_the_work_made_does_not() -> None:
    older = _Node()
    older_ref = weakref.ref(older)
    with collector_spares_older_objects():
        assert gc.get_freeze_count() > 0
        del older
        made = _Node()
        made_ref = weakref.ref(made)
        del made
        gc.collect()
        assert made_ref() is None  # the work's own garbage is collected while it runs
        assert older_ref() is not None  # frozen: the collector does not walk it
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert older_ref() is None  # back in reach once the work is over


def test_a_process_frozen_by_someone_else_stays_frozen() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with collector_spares_older_objects():
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == frozen  # not unfrozen under the one who froze it


def test_the_objects_are_given_back_when_the_work_fails() -> None:
    with pytest.raises(RuntimeError), collector_spares_older_objects():
        raise RuntimeError("the task failed")
    assert gc.get_freeze_count() == 0


class _ReportsTheCollector(_FlowOperator):
    def execute(self, context: Any) -> int:
        return gc.get_freeze_count()


def test_every_flow_task_runs_with_the_older_objects_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[Any] = []
    monkeypatch.setattr(
        sync_operators,
        "store_from_airflow",
        lambda: SimpleNamespace(reports=SimpleNamespace(save_task=lambda *a, **k: saved.append(k))),
    )
    operator = _ReportsTheCollector(task_id="extract", flow="customers")
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="extract", try_number=1, map_index=-1)
    assert operator.execute({"ti": ti}) > 0
    assert gc.get_freeze_count() == 0
    assert saved and saved[0]["state"] == "success"  # the task's report row is still written
