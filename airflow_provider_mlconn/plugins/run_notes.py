"""The run report as the DAG run's note: a listener sets it when a provider DAG's run ends.

A task cannot set its DAG run's note in Airflow 3.3: the Task SDK's execution API reads the note
(``DagRun.note``) but offers no call to change it; only the public REST API (a user's token), the
UI and the trigger request do (apache/airflow#64890 asks for it; #69403 proposes it, open). So the
flow's ``commit_watermark`` task pushes the note as its XCom ``mlconn_run_note``, and this listener
(``on_dag_run_success`` / ``on_dag_run_failed``, called in the scheduler, or in ``dag.test()``,
where the run's state is decided, in that session) sets it on the run: what a person wrote stays
first, the report follows and replaces the one an earlier try of the run left. The dry-run note
the trigger got (``DRY_RUN_NOTE``) gives way to the report, whose first line says it was a dry run
and what it would write: the run's page shows a note's first line only.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from airflow_provider_mlconn.operators.reporting import RUN_NOTE_XCOM_KEY, note_with_report
from airflow_provider_mlconn.plugins.api_server import DRY_RUN_NOTE

log = logging.getLogger(__name__)

DAG_ID_PREFIX = "mlconn_"
COMMIT_TASK_ID = "commit_watermark"


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    set_report_note(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    set_report_note(dag_run)


def set_report_note(dag_run: Any) -> None:
    """Put the report the run's commit task handed over into the run's note (never raises)."""
    if not str(getattr(dag_run, "dag_id", "")).startswith(DAG_ID_PREFIX):
        return
    try:
        _set_note(dag_run)
    except Exception:
        log.exception("could not set the run report note of %s/%s", dag_run.dag_id, dag_run.run_id)


def _set_note(dag_run: Any) -> None:
    """In the session the run is in (the scheduler's); a run object without one (``dag.test()``
    hands over a detached copy) is found again in a session of its own."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        report = _report_note(session, dag_run.dag_id, dag_run.run_id)
        if report:
            dag_run.note = report_note(dag_run.note, report)
        return
    with create_session() as own:
        report = _report_note(own, dag_run.dag_id, dag_run.run_id)
        run = own.get(DagRun, dag_run.id) if report else None
        if run is not None and report:
            run.note = report_note(run.note, report)


def report_note(note: str | None, report: str) -> str:
    """The run's note with the report: after what a person wrote, instead of the dry-run note."""
    return note_with_report(None if (note or "").strip() == DRY_RUN_NOTE else note, report)


def _report_note(session: Any, dag_id: str, run_id: str) -> str | None:
    import sqlalchemy as sa
    from airflow.models.xcom import XComModel

    row = session.scalars(
        sa.select(XComModel).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == COMMIT_TASK_ID,
            XComModel.map_index == -1,
            XComModel.key == RUN_NOTE_XCOM_KEY,
        )
    ).first()
    value = None if row is None else XComModel.deserialize_value(row)
    return value if isinstance(value, str) and value.strip() else None
