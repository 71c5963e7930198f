"""Thin operators over the sync engine, and ``flow_dag`` / ``flow_tasks`` that wire a flow's run.

A flow's DAG, as ``flow_tasks`` builds it::

    plan_window >> extract >> map >> <entity>.order >> <entity>.load[batch ...] >> commit_watermark

with one task group per entity, in the flow's stage order (``company.load`` before
``contact.order``). ``<entity>.load`` is mapped over the batches its ``order`` task returns, runs
in the entity's pool, and retries only what is not loaded. ``<entity>.order`` runs once ``map``
succeeded and the prerequisite entities' loads are done, even if some of their records failed
or they had nothing to load: records that need a failed one are held back, the others go on.
``commit_watermark`` runs once every task is done: it moves the watermarks only when none failed,
and in any case writes the run report (its log, the DAG run note, the run's asset event).

Every task records its calls per remote system and its time in the store (``TaskRecorder``) and
logs a progress line every few seconds while it runs.

Operators take the flow by name (or the Flow itself) and look it up in the flow registry at run
time, so the DAG serialises to plain strings.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Asset, BaseOperator, Param, TaskGroup, TriggerRule
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from airflow_provider_mlconn.hooks.jde_ais import shared_sessions
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.hubspot.webhooks import (
    EVENT_SOURCE,
    HUBSPOT_IDS_OPTION,
    MAX_TRIGGERED_IDS,
    WEBHOOK_ASSETS,
    object_ids_of,
)
from airflow_provider_mlconn.operators.common import (
    AirflowVariables,
    OneLineFailures,
    actor,
    optional_instant,
    optional_number,
    roomier_young_generation,
    run_info,
    store_from_airflow,
)
from airflow_provider_mlconn.operators.reporting import (
    TaskRecorder,
    publish_run_report,
    run_report_asset,
    upstream_failures,
)
from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.errors import WatermarkNotCommitted
from airflow_provider_mlconn.sync.flow import Flow, RecordStatus
from airflow_provider_mlconn.sync.registry import get_flow
from airflow_provider_mlconn.timetables import sync_schedule

#: A load that failed only for reasons its own retry cannot fix fails at once (see LoadBlocked).
LOAD_RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception="airflow_provider_mlconn.sync.errors.LoadBlocked",
            action=RetryAction.FAIL,
            reason="records wait for a prerequisite or the target refused for good; clear the failed "
            "prerequisite load (with downstream) or fix the cause, then clear this task",
        ),
        RetryRule(
            exception="airflow_provider_mlconn.operators.common.TaskFailed",
            action=RetryAction.FAIL,
            reason="a person must fix the cause (the connection, the data, the parameters) first",
        ),
    ]
)


def _flow_name(flow: Flow | str) -> str:
    return flow if isinstance(flow, str) else flow.name


class _FlowOperator(OneLineFailures, BaseOperator):
    """A step of a flow's run: its ``execute`` runs under a ``TaskRecorder`` (``self.recorder``):
    calls and time saved for the run report, progress lines while it runs; and with room for more
    young objects before the garbage collector runs (``roomier_young_generation``)."""

    ui_color = "#e8f0fe"
    recorder: TaskRecorder | None = None

    def __init__(self, *, flow: Flow | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flow_name = _flow_name(flow)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # one-line failures inside, recording around them
        execute = cls.__dict__.get("execute")
        if execute is not None and not getattr(execute, "recorded", False):
            cls.execute = _recorded(execute)  # type: ignore[method-assign]

    @property
    def flow(self) -> Flow:
        return get_flow(self.flow_name)


def _recorded(execute: Any) -> Any:
    @functools.wraps(execute)
    def wrapper(self: _FlowOperator, context: Any) -> Any:
        def save(*args: Any, **kwargs: Any) -> None:
            store_from_airflow().reports.save_task(*args, **kwargs)

        self.recorder = TaskRecorder(actor(context), save=save, logger=self.log)
        with self.recorder, roomier_young_generation():
            return execute(self, context)

    wrapper.recorded = True  # type: ignore[attr-defined]
    return wrapper


class PlanWindowOperator(_FlowOperator):
    """Decide each stream's window from its watermark; pushes the plan manifest.

    ``window_start``/``window_end`` (ISO 8601, naive = UTC) make it a range run; without them the
    run's params of the same names are used. ``overlap_minutes``/``safety_lag_minutes`` override
    the flow's (params, then Variable ``mlconn_window__<flow>``). Params ``full_resync`` and
    ``dry_run`` apply to every flow; any other param of the run reaches the flow's extract as
    ``window.options``.
    """

    template_fields: Sequence[str] = ("window_start", "window_end", "overlap_minutes", "safety_lag_minutes")

    def __init__(
        self,
        *,
        window_start: str | None = None,
        window_end: str | None = None,
        overlap_minutes: str | float | None = None,
        safety_lag_minutes: str | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.window_start = window_start
        self.window_end = window_end
        self.overlap_minutes = overlap_minutes
        self.safety_lag_minutes = safety_lag_minutes

    def run_options(self, context: Any, params: Mapping[str, Any], run: engine.RunInfo) -> dict[str, Any]:
        """The flow's own params (an option left empty in the form is no option: the run reads what
        a plain run reads); a webhook-triggered run adds the HubSpot ids its events name."""
        options = {
            name: value
            for name, value in params.items()
            if name not in ENGINE_PARAMS and value not in (None, "", [], {})
        }
        if run.is_asset_triggered and not options:
            ids = triggered_record_ids(context, self.log)
            if ids is not None:
                options[HUBSPOT_IDS_OPTION] = ids
        return options

    def execute(self, context: Any) -> dict[str, Any]:
        params = context.get("params") or {}

        def pick(name: str) -> Any:
            value = getattr(self, name)
            return params.get(name) if value is None else value

        run = run_info(context)
        manifest = engine.plan_windows(
            self.flow,
            run,
            AirflowVariables(),
            now=datetime.now(timezone.utc),
            window_start=optional_instant(pick("window_start"), "window_start"),
            window_end=optional_instant(pick("window_end"), "window_end"),
            overlap_minutes=optional_number(pick("overlap_minutes"), "overlap_minutes"),
            safety_lag_minutes=optional_number(pick("safety_lag_minutes"), "safety_lag_minutes"),
            full_resync=bool(params.get("full_resync")),
            dry_run=bool(params.get("dry_run")),
            options=self.run_options(context, params, run),
        )
        if self.recorder is not None:
            self.recorder.detail.update(dry_run=manifest.dry_run, full_resync=manifest.full_resync)
        if manifest.dry_run:
            self.log.info("dry run: records are mapped, nothing is loaded, no watermark moves")
        for stream, window in manifest.windows.items():
            self.log.info(
                "stream %s: %s window %s -> %s", stream, window["mode"], window["start"], window["end"]
            )
        return manifest.model_dump(mode="json")


class ExtractOperator(_FlowOperator):
    """Stage each stream's changes in the store; pushes counts and high-water marks (no rows)."""

    def __init__(self, *, plan_task_id: str = "plan_window", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        plan = engine.PlanManifest.model_validate(context["ti"].xcom_pull(task_ids=self.plan_task_id))
        manifest = engine.extract(
            self.flow,
            store_from_airflow(),
            run_info(context),
            actor(context),
            plan,
            map_while_extracting=True,
        )
        self.log.info(
            "staged %d new, %d changed, %d same, mapped as staged %s; high-water %s",
            manifest.new,
            manifest.changed,
            manifest.same,
            manifest.mapped,
            manifest.high_water,
        )
        return manifest.model_dump(mode="json")


class MapOperator(_FlowOperator):
    """Map the run's staged records; mark unchanged and rejected ones.

    The extract maps what it stages as it goes, so a first try maps what it left ``staged``; a
    later try (a retry, or the task cleared after a mapping fix) maps every record not in the
    target again.
    """

    def execute(self, context: Any) -> dict[str, Any]:
        info = run_info(context)
        first_try = int(context["ti"].try_number or 1) <= 1
        manifest = engine.map_records(
            self.flow,
            store_from_airflow(),
            info.ref(self.flow).run_key,
            actor(context),
            statuses=(RecordStatus.STAGED,) if first_try else engine.TO_MAP,
        )
        self.log.info("mapping outcome: %s", manifest.counts)
        counts = store_from_airflow().runs.status_counts(manifest.run_key)
        _warn_not_sent(self.log, counts, manifest.run_key, "map")
        return manifest.model_dump(mode="json")


class OrderOperator(_FlowOperator):
    """Record one entity's prerequisites and return its load batches (what the load maps over).

    In a dry run it returns no batch, so nothing is loaded.

    It runs once every upstream task is done (``ALL_DONE``): a prerequisite entity's load that
    failed for some records, or was skipped because it had nothing to load, must not stop this
    entity (Airflow's ``ALL_DONE_MIN_ONE_SUCCESS`` skips on any skipped upstream). It skips itself
    when the map step did not succeed (no map manifest).
    """

    template_fields: Sequence[str] = ("entity",)

    def __init__(
        self,
        *,
        entity: str,
        plan_task_id: str = "plan_window",
        extract_task_id: str = "extract",
        map_task_id: str = "map",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.entity = entity
        self.plan_task_id = plan_task_id
        self.extract_task_id = extract_task_id
        self.map_task_id = map_task_id

    def execute(self, context: Any) -> list[int]:
        from airflow.sdk.configuration import conf
        from airflow.sdk.exceptions import AirflowSkipException

        ti = context["ti"]
        if ti.xcom_pull(task_ids=self.map_task_id) is None:
            raise AirflowSkipException(
                f"{self.map_task_id} did not succeed: no {self.entity} records to order"
            )
        plan = engine.PlanManifest.model_validate(ti.xcom_pull(task_ids=self.plan_task_id))
        if plan.dry_run:
            self.log.info("dry run: %s records are not loaded", self.entity)
            return []
        extracted = engine.ExtractManifest.model_validate(ti.xcom_pull(task_ids=self.extract_task_id))
        manifest = engine.order_entity(
            self.flow,
            store_from_airflow(),
            run_info(context).ref(self.flow),
            self.entity,
            max_map_length=conf.getint("core", "max_map_length", fallback=1024),
            actor=actor(context),
            complete=extracted.complete,
        )
        if manifest.deletions:
            self.log.info(
                "%s: %d records gone from the source; their deletion rule applies",
                self.entity,
                manifest.deletions,
            )
        if manifest.relinked:
            self.log.info(
                "%s: %d unchanged records load again (their prerequisites moved)",
                self.entity,
                manifest.relinked,
            )
        self.log.info("%s: %d load batches", self.entity, len(manifest.batches))
        return manifest.batches


class LoadOperator(_FlowOperator):
    """Load one batch of one entity: the records of the run not loaded yet.

    Fails (after saving every outcome) when a record did not load, so a retry or a cleared task
    replays exactly those. Use ``LoadOperator.partial(...).expand(batch=order.output)``.
    """

    template_fields: Sequence[str] = ("entity", "batch")

    def __init__(self, *, entity: str, batch: int, **kwargs: Any) -> None:
        kwargs.setdefault("retry_policy", LOAD_RETRY_POLICY)
        super().__init__(**kwargs)
        self.entity = entity
        self.batch = batch

    def execute(self, context: Any) -> dict[str, Any]:
        info = run_info(context)
        store = store_from_airflow()
        # One AIS session for the task's calls (each opens its hook), logged out when it ends.
        with shared_sessions():
            manifest = engine.load_batch(
                self.flow,
                store,
                run_key=info.ref(self.flow).run_key,
                entity_name=self.entity,
                batch=int(self.batch),
                actor=actor(context),
                progress=self.recorder,
            )
        # The batch's own counts leave out what map rejected: the line says what the run holds back.
        counts = store.runs.status_counts(manifest.run_key, entity=self.entity)
        self.log.info(
            "%s batch %s: %d loaded (%d created, %d updated, %d deleted, %d confirmed after an uncertain "
            "write); not sent, of the run's %s records: %d rejected (%d by the target in this batch), "
            "%d waiting for a prerequisite",
            self.entity,
            self.batch,
            manifest.loaded,
            manifest.created,
            manifest.updated,
            manifest.deleted,
            manifest.confirmed,
            self.entity,
            counts.get("rejected", 0),
            manifest.rejected,
            counts.get("waiting", 0),
        )
        _warn_not_sent(self.log, counts, manifest.run_key, f"{self.entity}.load", entity=self.entity)
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {
                "run": manifest.run_key,
                **manifest.model_dump(
                    include={
                        "entity",
                        "batch",
                        "loaded",
                        "created",
                        "updated",
                        "deleted",
                        "rejected",
                        "waiting",
                    }
                ),
            }
        return manifest.model_dump(mode="json")


class CommitWatermarkOperator(_FlowOperator):
    """Move the watermarks to the extract's high-water marks once every record of the run is final,
    then write the run report: in this task's log, as the DAG run's note (``plugins/run_notes``) and
    as the extra of the run's asset event.

    It runs when every other task is done (``ALL_DONE``), so a failed run gets its report too; then
    it moves nothing and fails, naming the tasks that failed.
    """

    def __init__(
        self, *, plan_task_id: str = "plan_window", extract_task_id: str = "extract", **kwargs: Any
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id
        self.extract_task_id = extract_task_id

    def execute(self, context: Any) -> dict[str, Any] | None:
        ti = context["ti"]
        store = store_from_airflow()
        plan_value = ti.xcom_pull(task_ids=self.plan_task_id)
        extract_value = ti.xcom_pull(task_ids=self.extract_task_id)
        failed = upstream_failures(context)
        plan = None if plan_value is None else engine.PlanManifest.model_validate(plan_value)
        not_committed: WatermarkNotCommitted | None = None
        manifest = None
        if failed or plan is None or extract_value is None:
            stopped = ", ".join(failed) or f"{self.plan_task_id} or {self.extract_task_id}"
            not_committed = WatermarkNotCommitted(
                f"{stopped} did not succeed; the watermarks stay where they are (the run report is above)"
            )
        else:
            try:
                manifest = engine.commit_watermarks(
                    self.flow,
                    store,
                    AirflowVariables(),
                    run_key=plan.run_key,
                    plan=plan,
                    extract_manifest=engine.ExtractManifest.model_validate(extract_value),
                    now=datetime.now(timezone.utc),
                )
                self.log.info("watermarks moved %s; kept %s", manifest.moved, manifest.kept)
            except WatermarkNotCommitted as error:
                not_committed = error
        publish_run_report(
            context,
            store,
            self.flow,
            dry_run=None if plan is None else plan.dry_run,
            logger=self.log,
            asset=None if not_committed else run_report_asset(self.flow.name),
        )
        if not_committed is not None:
            raise not_committed
        return None if manifest is None else manifest.model_dump(mode="json")


@dataclass(frozen=True)
class FlowTasks:
    """The tasks ``flow_tasks`` created, for wiring more around them."""

    plan: PlanWindowOperator
    extract: ExtractOperator
    map: MapOperator
    orders: dict[str, OrderOperator]
    loads: dict[str, Any]
    commit: CommitWatermarkOperator


def flow_tasks(
    flow: Flow,
    *,
    load_retries: int = 2,
    load_retry_delay: timedelta = timedelta(minutes=1),
) -> FlowTasks:
    """Create a flow's tasks in the current DAG (``with DAG(...):``); see the module docstring."""
    plan = PlanWindowOperator(task_id="plan_window", flow=flow)
    extract = ExtractOperator(task_id="extract", flow=flow)
    mapping = MapOperator(task_id="map", flow=flow)
    plan >> extract >> mapping
    orders: dict[str, OrderOperator] = {}
    loads: dict[str, Any] = {}
    for stage in flow.stages:
        for name in stage:
            entity = flow.entity(name)
            with TaskGroup(group_id=name, tooltip=f"order and load {name} records ({entity.target})"):
                order = OrderOperator(task_id="order", flow=flow, entity=name)
                load = LoadOperator.partial(
                    task_id="load",
                    flow=flow.name,
                    entity=name,
                    pool=entity.pool_name,
                    retries=load_retries,
                    retry_delay=load_retry_delay,
                    retry_policy=LOAD_RETRY_POLICY,
                    map_index_template="batch {{ task.batch }}",
                    outlets=[Asset(entity.asset_uri)] if entity.asset_uri else [],
                ).expand(batch=order.output)
            mapping >> order
            for prerequisite in entity.depends_on:
                loads[prerequisite] >> order
            orders[name], loads[name] = order, load
    commit = CommitWatermarkOperator(
        task_id="commit_watermark", flow=flow, outlets=[run_report_asset(flow.name)]
    )
    list(loads.values()) >> commit
    return FlowTasks(plan=plan, extract=extract, map=mapping, orders=orders, loads=loads, commit=commit)


#: Params every flow's DAG has; the others are the flow's own options (``window.options``).
ENGINE_PARAMS = frozenset(
    {"window_start", "window_end", "overlap_minutes", "safety_lag_minutes", "full_resync", "dry_run"}
)


def flow_params() -> dict[str, Param]:
    """The params form of a flow's DAG: an optional range, window overrides, full resync, dry run."""
    return {
        "window_start": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Window start",
            description="Read changes from this instant (UTC if no zone). Empty: from the watermark.",
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Window end",
            description="Read changes before this instant. Empty: now minus the safety lag.",
        ),
        "overlap_minutes": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Overlap (minutes)",
            description="Re-read this much before the watermark. Empty: the flow's setting.",
        ),
        "safety_lag_minutes": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Safety lag (minutes)",
            description="Stop this much before now. Empty: the flow's setting.",
        ),
        "full_resync": Param(
            False,
            type="boolean",
            title="Full resync",
            description="Read everything from the beginning, not from the watermark (records whose "
            "content did not change still cost no write).",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Extract and map only: see what would be written (mlconn audit), write nothing, "
            "move no watermark.",
        ),
    }


def flow_dag(
    flow: Flow,
    *,
    dag_id: str,
    schedule: Any,
    start_date: datetime,
    tags: Sequence[str] = (),
    load_retries: int = 2,
    load_retry_delay: timedelta | None = None,
    params: Mapping[str, Param] | None = None,
    triggered_by: Sequence[Asset] = (),
    **dag_kwargs: Any,
) -> DAG:
    """A DAG that runs ``flow``: the whole declaration of a flow's DAG file.

    ``schedule`` is a cron expression or preset (run on a ``SyncTimetable``: each run reads the
    interval that ends when it runs, a backfill reads exactly its range), "none"/None for manual
    runs only, or a timetable. One run at a time (``max_active_runs=1``: runs of one flow share its
    watermarks), no catchup unless asked; the params form offers a range, window overrides, full
    resync and dry run, plus the flow's own ``params`` (they reach its extract as ``window.options``).
    ``triggered_by`` (webhook assets, ``webhook_asset``) also starts a run on each of their events,
    besides the schedule: such a run reads the records the events name (docs/BEHAVIOR.md H20).
    """
    if load_retry_delay is None:
        load_retry_delay = load_retry_delay_setting()
    dag_kwargs.setdefault("max_active_runs", 1)
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("doc_md", f"{flow.description}\n\nEntities:\n\n{flow.describe()}".strip())
    dag_kwargs.setdefault("description", _first_sentence(flow.description) or None)
    with DAG(
        dag_id=dag_id,
        schedule=sync_schedule(schedule, assets=triggered_by),
        start_date=start_date,
        tags=sorted({"mlconn", "sync", *tags}),
        params={**flow_params(), **(params or {})},
        **dag_kwargs,
    ) as dag:
        flow_tasks(flow, load_retries=load_retries, load_retry_delay=load_retry_delay)
    return dag


def webhook_asset(object_type: ObjectType | str) -> Asset:
    """The asset the webhook receiver emits for changes of ``object_type`` (invoices, payments,
    products): ``flow_dag(..., triggered_by=[webhook_asset("invoices")])``."""
    name, uri = WEBHOOK_ASSETS[ObjectType.parse(object_type)]
    return Asset(name=name, uri=uri)


def triggered_record_ids(context: Any, log: Any) -> list[str] | None:
    """The HubSpot record ids a webhook-triggered run reads: those named by the receiver's asset
    events that triggered it (queued events coalesce into one run, so there may be many). None: the
    run reads its window instead (an event from elsewhere, none named, or more than
    ``MAX_TRIGGERED_IDS``)."""
    triggering = context.get("triggering_asset_events") or {}
    extras = [dict(event.extra or {}) for events in triggering.values() for event in events]
    if not extras:
        return None
    if any(extra.get("source") != EVENT_SOURCE for extra in extras):
        log.info("triggered by asset events not from the webhook receiver: the run reads its window")
        return None
    ids = object_ids_of(extras)
    if not ids or len(ids) > MAX_TRIGGERED_IDS:
        log.info("webhook events name %d records: the run reads its window instead", len(ids))
        return None
    log.info(
        "webhook run: %d asset events name %d HubSpot records; reads them by id, moves no watermark",
        len(extras),
        len(ids),
    )
    return ids


def _warn_not_sent(
    log: Any, counts: Mapping[str, int], run_key: str, step: str, *, entity: str | None = None
) -> None:
    """A WARNING when the run holds records that were not sent (rejected or waiting so far, per the
    run's status ``counts``): a green run must not hide them."""
    rejected, waiting = counts.get("rejected", 0), counts.get("waiting", 0)
    if not (rejected or waiting):
        return
    log.warning(
        "after %s: %d %srecords of this run rejected, %d waiting for a prerequisite: NOT SENT. A fix at "
        "the source loads them with the next run that reads them (waiting ones load by themselves once "
        "their prerequisite is in the target). Reasons: mlconn audit failures --run '%s'",
        step,
        rejected,
        f"{entity} " if entity else "",
        waiting,
        run_key,
    )


#: Variable: seconds between a failed load task and its retry, for every flow DAG (default 60).
LOAD_RETRY_DELAY_VARIABLE = "mlconn_load_retry_delay_seconds"


def load_retry_delay_setting() -> timedelta:
    """The load tasks' retry delay: Variable ``mlconn_load_retry_delay_seconds``, read when the DAG
    file is parsed (like the schedules), else a minute."""
    from airflow.sdk import Variable

    text = Variable.get(LOAD_RETRY_DELAY_VARIABLE, default=None)
    if text in (None, ""):
        return timedelta(minutes=1)
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(
            f"Variable {LOAD_RETRY_DELAY_VARIABLE} must be a number of seconds, not {text!r}"
        ) from None
    if seconds < 0:
        raise ValueError(f"Variable {LOAD_RETRY_DELAY_VARIABLE} must not be negative, got {seconds:g}")
    return timedelta(seconds=seconds)


def _first_sentence(text: str) -> str:
    """The DAG list's one-line description: a flow description up to its first full stop."""
    head, _, _ = text.partition(". ")
    return head.rstrip(".") + "." if head else ""
