"""Fault machinery of the money-flow tests: switches on both sandboxes, runs repeated until one
succeeds, and a worker killed (SIGKILL) mid-load whose task is then cleared as in the UI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.support.customers import Sandboxes
from tests.support.invoices import dag

#: Documents per fault test: ``make test`` posts 80; ``make reliability`` sets 500 (acceptance size).
DOCUMENTS = int(os.environ.get("MLCONN_FAULT_INVOICES", "80"))


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load tasks retry after 1 s instead of a minute (Variable ``mlconn_load_retry_delay_seconds``,
    read when the DAG file is parsed): the fault tests wait for retries, not for the clock."""
    monkeypatch.setenv("AIRFLOW_VAR_MLCONN_LOAD_RETRY_DELAY_SECONDS", "1")


def jde_settings(sandboxes: Sandboxes, **settings: Any) -> None:
    response = sandboxes.http.patch(f"{sandboxes.jde.url}/_sandbox/settings", json=settings, timeout=30)
    response.raise_for_status()


def hubspot_faults(sandboxes: Sandboxes, rate: float) -> None:
    response = sandboxes.http.post(
        f"{sandboxes.hubspot.url}/_sandbox/settings", json={"fault_rate": rate}, timeout=30
    )
    response.raise_for_status()


def faults_on(sandboxes: Sandboxes) -> None:
    """JDE without its duplicate check, 20 % of orchestration calls losing their answer after the
    commit, 10 % of calls failing before; HubSpot failing 5 % of calls."""
    jde_settings(sandboxes, duplicate_check=False, fault_after_commit_rate=0.2, fault_rate=0.1)
    hubspot_faults(sandboxes, 0.05)


def faults_off(sandboxes: Sandboxes) -> None:
    """The checks read through the APIs themselves: faults off, so they see what is stored."""
    jde_settings(sandboxes, fault_after_commit_rate=0, fault_rate=0)
    hubspot_faults(sandboxes, 0)


def run_until_success(dag_id: str, most: int = 8) -> int:
    """Run the DAG until a run succeeds (bounded: each run loads what the one before could not
    settle); returns how many runs it took."""
    for runs in range(1, most + 1):
        if str(dag(dag_id).test(run_conf={"safety_lag_minutes": 0}).state) == "success":
            return runs
    raise AssertionError(f"{dag_id}: no run succeeded in {most}")


def kill_mid_load_then_clear(
    dag_id: str,
    load_task: str,
    *,
    calls: Callable[[], int],
    kill_after: int,
    then: Callable[[], None] | None = None,
) -> Any:
    """Run the DAG in a worker process, SIGKILL it once ``calls()`` reaches ``kill_after``, fail its
    running tasks (what the scheduler does with a worker that stopped heartbeating), call ``then``,
    clear ``load_task`` and run the run again as the UI's Clear does; returns the finished run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    from tests.support.sync import clear_and_rerun

    # The worker: the test session's environment (metadata DB, store, connections), not
    # tests.conftest (which would make an AIRFLOW_HOME of its own).
    script = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO_ROOT / 'dags' / f'{dag_id}.py')!r}, safe_mode=False)\n"
        f"bag.dags[{dag_id!r}].test(run_conf={{'safety_lag_minutes': 0}})\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=dict(os.environ), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240
        while calls() < kill_after:
            assert worker.poll() is None, "the run ended before the kill"
            assert time.monotonic() < deadline, "the run did not start loading"
            time.sleep(0.05)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    with create_session() as session:
        dag_run = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.state == DagRunState.RUNNING)
        )
        assert dag_run is not None
        run_id = dag_run.run_id
        for ti in session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.state == TaskInstanceState.RUNNING,
            )
        ):
            ti.state = TaskInstanceState.FAILED
    assert calls() >= kill_after
    if then is not None:
        then()
    return clear_and_rerun(dag(dag_id), run_id, load_task)
