"""Flow DAGs' schedule: runs with data intervals, and a backfill that reads exactly its range.

The backfill cases go through ``airflow.models.backfill._get_info_list`` on the serialized DAG: the
function ``POST /api/v2/backfills`` (and the UI's backfill form) uses to decide the runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pendulum
import pytest
from airflow.timetables.base import TimeRestriction

from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.timetables import SyncTimetable, sync_schedule
from tests.support.sync import DictVariables, make_toy_flow

pytestmark = pytest.mark.unit

UTC = timezone.utc
HOURLY = SyncTimetable("0 * * * *", "UTC")


def _at(hhmm: str) -> pendulum.DateTime:
    return pendulum.datetime(2026, 3, 2, int(hhmm[:2]), int(hhmm[3:]), tz="UTC")


def _intervals(infos) -> list[tuple[str, str]]:
    return [
        (info.data_interval.start.strftime("%H:%M"), info.data_interval.end.strftime("%H:%M"))
        for info in infos
    ]


@pytest.fixture(scope="module")
def customers_dag():
    """The customers DAG as the scheduler and the api-server see it: serialized and read back."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    from tests.conftest import REPO_ROOT

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "mlconn_customers_jde_to_hubspot.py"), safe_mode=False)
    dag = bag.dags["mlconn_customers_jde_to_hubspot"]
    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def _backfill(dag, start: str, end: str) -> list[tuple[str, str]]:
    from airflow.models.backfill import _get_info_list

    return _intervals(_get_info_list(from_date=_at(start), to_date=_at(end), reverse=False, dag=dag))


def test_the_customers_dag_is_on_the_sync_timetable_after_serialization(customers_dag) -> None:
    assert isinstance(customers_dag.timetable, SyncTimetable)
    assert customers_dag.timetable.summary == "0 * * * *"


def test_a_backfill_reads_exactly_its_range_in_consecutive_runs(customers_dag) -> None:
    # Airflow's own cron timetables give four runs for 10:00-13:00 (logical dates 10, 11, 12, 13).
    assert _backfill(customers_dag, "10:00", "13:00") == [
        ("10:00", "11:00"),
        ("11:00", "12:00"),
        ("12:00", "13:00"),
    ]


def test_a_backfill_between_cron_times_gets_a_shorter_first_and_last_run(customers_dag) -> None:
    assert _backfill(customers_dag, "10:30", "13:20") == [
        ("10:30", "11:00"),
        ("11:00", "12:00"),
        ("12:00", "13:00"),
        ("13:00", "13:20"),
    ]


def test_a_backfill_shorter_than_one_interval_is_one_run_of_the_range(customers_dag) -> None:
    assert _backfill(customers_dag, "10:10", "10:50") == [("10:10", "10:50")]


def test_a_scheduled_run_reads_the_interval_that_ends_when_it_runs() -> None:
    restriction = TimeRestriction(_at("00:00"), None, catchup=False)
    first = HOURLY.next_dagrun_info_v2(last_dagrun_info=None, restriction=restriction)
    assert first is not None and first.data_interval is not None
    assert first.run_after == first.data_interval.end
    assert first.data_interval.end - first.data_interval.start == timedelta(hours=1)
    second = HOURLY.next_dagrun_info_v2(last_dagrun_info=first, restriction=restriction)
    assert second is not None and second.data_interval is not None
    assert second.data_interval.start == first.data_interval.end


def test_the_schedule_variable_text_becomes_a_timetable_or_manual_only() -> None:
    assert sync_schedule("none") is None and sync_schedule(" ") is None and sync_schedule(None) is None
    assert sync_schedule("@hourly") == SyncTimetable("@hourly", "UTC")
    assert isinstance(sync_schedule("*/15 * * * *"), SyncTimetable)


T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("run_type", "expected_end"),
    [
        ("scheduled", T0),  # its interval's end
        ("manual", T0 + timedelta(minutes=40)),  # now: the UI infers the last full hour for it
        ("operator_triggered", T0 + timedelta(minutes=40)),
    ],
)
def test_scheduled_runs_read_to_their_interval_end_and_manual_runs_to_now(run_type, expected_end) -> None:
    flow = make_toy_flow("windows_by_run_type", safety_lag=timedelta(0))
    variables = DictVariables()
    variables.set("mlconn_watermark__windows_by_run_type__changes", '{"at": "2026-03-02T11:00:00+00:00"}')
    run = engine.RunInfo(
        dag_id="mlconn_windows",
        run_id=f"{run_type}__1",
        run_type=run_type,
        data_interval_start=T0 - timedelta(hours=1),
        data_interval_end=T0,
    )
    plan = engine.plan_windows(flow, run, variables, now=T0 + timedelta(minutes=40), overlap_minutes=0)
    window = plan.windows["changes"]
    assert window["start"] == "2026-03-02T11:00:00+00:00"
    assert datetime.fromisoformat(window["end"]) == expected_end


def test_a_backfill_run_reads_its_data_interval_and_never_moves_the_watermark_back() -> None:
    flow = make_toy_flow("backfill_windows", safety_lag=timedelta(0))
    variables = DictVariables()
    mark = '{"at": "2026-03-02T15:00:00+00:00"}'
    variables.set("mlconn_watermark__backfill_windows__changes", mark)
    run = engine.RunInfo(
        dag_id="mlconn_windows",
        run_id="backfill__1",
        run_type="backfill",
        data_interval_start=T0 - timedelta(hours=2),
        data_interval_end=T0 - timedelta(hours=1),
    )
    plan = engine.plan_windows(flow, run, variables, now=T0 + timedelta(hours=4))
    window = plan.windows["changes"]
    assert (window["mode"], window["start"], window["end"]) == (
        "range",
        "2026-03-02T10:00:00+00:00",
        "2026-03-02T11:00:00+00:00",
    )
    from airflow_provider_mlconn.sync.watermarks import Window, next_watermark

    current = datetime(2026, 3, 2, 15, tzinfo=UTC)
    assert next_watermark(current, Window.from_manifest(window), T0 - timedelta(minutes=70)) is None
