"""The schedule of flow DAGs: cron data intervals, and a date range that is read exactly.

Airflow 3 turns ``schedule="@hourly"`` into a ``CronTriggerTimetable``, whose runs have a data
interval of no width: a backfill run then has nothing to read (docs/BEHAVIOR.md S1). Flow DAGs use
``SyncTimetable`` instead: each run covers the interval that ends when it runs (``[10:00, 11:00)``
runs at 11:00, logical date 10:00), as ``CronDataIntervalTimetable`` does, and a range (a backfill,
catchup from ``start_date`` to ``end_date``) is covered exactly, with no gap and no overlap:

- Airflow asks for runs whose logical date lies in ``[from, to]``; with plain data intervals the
  run at ``to`` would read past ``to``. Here the last interval ends at ``to``;
- a range that starts or ends between two cron times gets a shorter first or last interval
  (a backfill from 10:30 to 13:00 reads ``[10:30, 11:00)``, ``[11:00, 12:00)``, ``[12:00, 13:00)``).

A timetable that is not one of Airflow's own must be registered by a plugin
(``airflow_provider_mlconn.plugins.MlconnPlugin``) so the scheduler and the api-server can read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, AssetAny, AssetOrTimeSchedule
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable


class SyncTimetable(CronDataIntervalTimetable):
    """Cron data intervals whose ranges (backfills, catchup) are cut to the range's own bounds."""

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        # The range's end is applied below: Airflow's own check keeps every interval that starts
        # by then, and would drop a range shorter than one interval.
        open_ended = TimeRestriction(restriction.earliest, None, restriction.catchup)
        info = super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=open_ended
        )
        if info is None or info.data_interval is None:
            return info
        start, end = info.data_interval.start, info.data_interval.end
        earliest = restriction.earliest
        if restriction.catchup and earliest is not None and last_automated_data_interval is None:
            # The first interval of a range starts where the range starts, aligned or not.
            previous = self._get_prev(start)
            if previous < earliest < start:
                start, end = earliest, start
        latest = restriction.latest
        if latest is not None:
            if start >= latest:
                return None
            end = min(end, latest)
        if (start, end) == (info.data_interval.start, info.data_interval.end):
            return info
        return DagRunInfo.interval(start=start, end=end)


def sync_schedule(schedule: Any, *, timezone: str = "UTC", assets: Sequence[Asset] = ()) -> Any:
    """A flow DAG's ``schedule`` argument: a cron expression or preset becomes a ``SyncTimetable``;
    None, "none" and "" mean manual runs only; a timetable object is kept as it is.

    With ``assets`` (the webhook assets, docs/BEHAVIOR.md H20) an event on any of them also starts
    a run: ``AssetOrTimeSchedule`` of the timetable and the assets, so polling stays the guarantee;
    with no timetable ("none") the assets alone schedule."""
    timetable = _timetable(schedule, timezone)
    if not assets:
        return timetable
    condition = assets[0] if len(assets) == 1 else AssetAny(*assets)
    if timetable is None:
        return condition
    if isinstance(timetable, str):
        raise ValueError(f"schedule {timetable!r} cannot be combined with webhook assets")
    return AssetOrTimeSchedule(timetable=timetable, assets=condition)


def _timetable(schedule: Any, timezone: str) -> Any:
    if schedule is None:
        return None
    if not isinstance(schedule, str):
        return schedule
    text = schedule.strip()
    if text.lower() in ("", "none"):
        return None
    if text in ("@once", "@continuous"):
        return text
    return SyncTimetable(text, timezone)
