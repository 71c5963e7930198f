"""Flow tasks give the garbage collector's youngest generation room for a chunk's worth of objects."""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mlconn.operators import sync as sync_operators
from airflow_provider_mlconn.operators.common import YOUNG_GENERATION_SIZE, roomier_young_generation
from airflow_provider_mlconn.operators.sync import _FlowOperator

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _python_default_thresholds() -> Any:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_work_runs_with_a_roomier_young_generation_and_python_s_setting_comes_back() -> None:
    with roomier_young_generation():
        assert gc.get_threshold() == (YOUNG_GENERATION_SIZE, 10, 10)  # the older generations as they were
    assert gc.get_threshold() == (700, 10, 10)


def test_python_s_setting_comes_back_when_the_work_fails() -> None:
    with pytest.raises(RuntimeError), roomier_young_generation():
        raise RuntimeError("the task failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_process_that_already_has_more_room_keeps_it() -> None:
    gc.set_threshold(50_000, 20, 30)
    with roomier_young_generation():
        assert gc.get_threshold() == (50_000, 20, 30)
        with roomier_young_generation():  # nested: the outer one's setting is what comes back
            assert gc.get_threshold() == (50_000, 20, 30)
    assert gc.get_threshold() == (50_000, 20, 30)


class _ReportsTheCollector(_FlowOperator):
    def execute(self, context: Any) -> tuple[int, int, int]:
        return gc.get_threshold()


def test_every_flow_task_runs_with_the_roomier_young_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[Any] = []
    monkeypatch.setattr(
        sync_operators,
        "store_from_airflow",
        lambda: SimpleNamespace(reports=SimpleNamespace(save_task=lambda *a, **k: saved.append(k))),
    )
    operator = _ReportsTheCollector(task_id="extract", flow="customers")
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="extract", try_number=1, map_index=-1)
    assert operator.execute({"ti": ti}) == (YOUNG_GENERATION_SIZE, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)
    assert saved and saved[0]["state"] == "success"  # the task's report row is still written
