"""What each flow task records for its run's report, and the progress lines of long tasks.

``TaskRecorder`` wraps a flow task's ``execute`` (``_FlowOperator`` does it for every subclass):

- it counts every call the task makes to a remote system (``http.counting_calls``: calls, 429
  answers, retries, seconds waited), times the task and saves the try in the store
  (``store.reports.save_task``) however it ends, so the run report has calls and time per step;
- while the task runs, every ``[mlconn] progress_interval_seconds`` (default 10; 0 = off) it logs
  one line: for a load, records done / total, the rate, calls and 429s waited; for other tasks,
  how long and how many calls so far.

A report must never fail a sync: saving the try or logging progress only logs what went wrong.

``publish_run_report`` (the commit task) puts the run report where an Airflow user looks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlconn.http import CallTally, SystemCalls, counting_calls
from airflow_provider_mlconn.sync.engine import LoadManifest
from airflow_provider_mlconn.sync.flow import Flow
from airflow_provider_mlconn.sync.report import (
    NOTE_HEADING,
    NOTE_LIMIT,
    RunReport,
    asset_extra,
    build_report,
    render_note,
    render_text,
)
from airflow_provider_mlconn.sync.store import Actor, Store, run_key_for

log = logging.getLogger(__name__)

#: Seconds between two progress lines of a running task (Airflow config ``[mlconn]``).
DEFAULT_PROGRESS_INTERVAL = 10.0
PROGRESS_INTERVAL_OPTION = "progress_interval_seconds"
#: The XCom of ``commit_watermark`` that holds the run's note (set on the run by ``plugins/run_notes``).
RUN_NOTE_XCOM_KEY = "mlconn_run_note"


def progress_interval() -> float:
    from airflow.sdk.configuration import conf

    try:
        return max(0.0, conf.getfloat("mlconn", PROGRESS_INTERVAL_OPTION, fallback=DEFAULT_PROGRESS_INTERVAL))
    except ValueError:
        return DEFAULT_PROGRESS_INTERVAL


class TaskRecorder:
    """One try of one flow task: its calls, its time, its progress; see the module docstring.

    Use ``with TaskRecorder(...) as recorder:`` around the work; a load hands ``recorder`` to
    ``engine.load_batch(progress=...)`` so progress lines count its records.
    """

    def __init__(
        self,
        actor: Actor,
        *,
        save: Callable[..., None] | None,
        logger: logging.Logger | Any,
        interval: float | None = None,
        label: str | None = None,
    ) -> None:
        self.actor = actor
        self.run_key = run_key_for(actor.dag_id, actor.run_id)
        self._save = save
        self._log = logger
        self.interval = progress_interval() if interval is None else interval
        index = f" batch {actor.map_index}" if actor.map_index >= 0 else ""
        self.label = label or f"{actor.task_id}{index}"
        self.detail: dict[str, Any] = {}
        self.manifest: LoadManifest | None = None
        self.total: int | None = None
        self.tally = CallTally()
        self._started = datetime.now(timezone.utc)
        self._clock = time.monotonic()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._counting: AbstractContextManager[CallTally] = counting_calls()

    # -- engine.LoadProgress
    def started(self, manifest: LoadManifest, total: int) -> None:
        self.manifest, self.total = manifest, total

    def __enter__(self) -> TaskRecorder:
        self.tally = self._counting.__enter__()
        self._started = datetime.now(timezone.utc)
        self._clock = time.monotonic()
        if self.interval > 0:
            self._ticker = threading.Thread(
                target=self._tick, name=f"mlconn-progress-{self.actor.task_id}", daemon=True
            )
            self._ticker.start()
        return self

    def __exit__(self, error_type: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self._counting.__exit__(error_type, error, tb)
        self.finish(_state_of(error))

    def finish(self, state: str) -> None:
        """Save this try's row: how it ended, when, its calls and records."""
        if self.manifest is not None:
            self.detail.update(records=self.manifest.done, total=self.total)
        if self._save is None:
            return
        try:
            self._save(
                self.run_key,
                self.actor,
                state=state,
                started_at=self._started,
                ended_at=datetime.now(timezone.utc),
                calls=self.calls_json(),
                detail=self.detail,
            )
        except Exception:
            log.exception("could not save %s's calls and time for the run report", self.label)

    def calls_json(self) -> dict[str, dict[str, Any]]:
        return {system: counts.to_json() for system, counts in self.tally.snapshot().items()}

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._clock

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._log.info("%s", self.progress_line())
            except Exception:
                log.exception("progress line of %s", self.label)

    def progress_line(self) -> str:
        """``company.load batch 0: 340/1,000 records (34%), 12.3/s; HubSpot 45 calls, 2 answered 429
        (waited 3.1 s), 2 retries; 28 s``."""
        calls = calls_line(self.tally.snapshot()) or "no API call yet"
        seconds = self.elapsed
        manifest = self.manifest
        if manifest is None or self.total is None:
            return f"{self.label}: running for {seconds:.0f} s; {calls}"
        done = manifest.done
        share = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        rate = done / seconds if seconds > 0 else 0.0
        return f"{self.label}: {done:,}/{self.total:,} records{share}, {rate:.1f}/s; {calls}; {seconds:.0f} s"


def calls_line(calls: Mapping[str, SystemCalls]) -> str:
    parts = []
    for system, counts in calls.items():
        text = f"{system} {counts.calls} calls"
        if counts.rate_limited:
            text += f", {counts.rate_limited} answered 429 (waited {counts.waited_429:.1f} s)"
        else:
            text += ", 0 answered 429"
        if counts.retries:
            text += f", {counts.retries} retries"
        parts.append(text)
    return "; ".join(parts)


def _state_of(error: BaseException | None) -> str:
    if error is None:
        return "success"
    if type(error).__name__ in ("AirflowSkipException", "TaskDeferred"):
        return "skipped"
    return "failed"


# ------------------------------------------------------------------------------ the run report


def run_report_asset(flow_name: str) -> Any:
    """The asset a flow's ``commit_watermark`` updates once per run; its event's extra is the report."""
    from airflow.sdk import Asset

    return Asset(name=f"mlconn_{flow_name}_runs", uri=f"mlconn://runs/{flow_name}")


def upstream_failures(context: Any) -> list[str]:
    """The tasks of this run (other than the current one) that failed or could not run because an
    upstream one failed, as Airflow's Task SDK reports them; ``company.load[0]`` for a batch."""
    ti = context["ti"]
    get_states = getattr(ti, "get_task_states", None)
    if get_states is None:
        return []
    try:
        states = get_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    except Exception:  # the records' statuses still hold the watermark (S2)
        log.exception("could not read the states of the run's tasks")
        return []
    dag = getattr(getattr(ti, "task", None), "dag", None)
    task_ids = set(getattr(dag, "task_ids", ()))
    failed = []
    for name, state in states.items():
        if name == ti.task_id or str(state) not in ("failed", "upstream_failed"):
            continue
        base, _, index = name.rpartition("_")
        failed.append(f"{base}[{index}]" if base in task_ids and index.isdigit() else name)
    return sorted(failed)


def publish_run_report(
    context: Any, store: Store, flow: Flow, *, dry_run: bool | None, logger: Any, asset: Any | None
) -> RunReport | None:
    """Build the run's report and put it where an Airflow user looks: this task's log (a WARNING
    first when records were not sent), the DAG run's note (pushed as the XCom ``RUN_NOTE_XCOM_KEY``;
    the plugin's listener sets it when the run ends: a task cannot set a note through the Task SDK)
    and, given ``asset``, the extra of its asset event. Never raises: a sync does not fail for its
    report."""
    ti = context["ti"]
    run_key = run_key_for(ti.dag_id, ti.run_id)
    order = [name for stage in flow.stages for name in stage]
    try:
        report = build_report(store, run_key, entity_order=order, dry_run=dry_run)
    except LookupError:
        logger.warning("run report: %s read nothing into the store (it stopped before extract)", run_key)
        _push_note(ti, f"{NOTE_HEADING}: nothing was read; the run stopped before `extract`.")
        return None
    except Exception:
        logger.exception("the run report of %s could not be built", run_key)
        return None
    if report.needs_attention:
        logger.warning("%s", report.headline())
    logger.info("%s", render_text(report))
    # Room for what a person wrote in the note (the listener keeps it first).
    person = note_without_report(getattr(context.get("dag_run"), "note", None))
    _push_note(ti, render_note(report, limit=max(400, NOTE_LIMIT - len(person) - 2)))
    if asset is not None:
        try:
            context["outlet_events"][asset].extra = asset_extra(report)
        except Exception:
            logger.exception("could not attach the run report to the asset event of %s", run_key)
    return report


def _push_note(ti: Any, note: str) -> None:
    try:
        ti.xcom_push(key=RUN_NOTE_XCOM_KEY, value=note)
    except Exception:
        log.exception("could not hand the run note over (XCom %s)", RUN_NOTE_XCOM_KEY)


def note_without_report(note: str | None) -> str:
    """A DAG run note without the report part an earlier try of the run added (what a person or the
    trigger wrote stays)."""
    text = note or ""
    return text.split(NOTE_HEADING, 1)[0].rstrip()


def note_with_report(note: str | None, report_note: str, *, limit: int = NOTE_LIMIT) -> str:
    """The note a run ends with: what a person (or the trigger) wrote, then the run's report; the
    person's part is cut when both do not fit."""
    person = note_without_report(note)
    if not person:
        return report_note[:limit]
    room = limit - len(report_note) - 2
    if room < 20:
        return report_note[:limit]
    if len(person) > room:
        person = person[: room - 1] + "…"
    return f"{person}\n\n{report_note}"
