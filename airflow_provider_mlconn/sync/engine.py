"""The steps of a run, free of Airflow: plan, extract, map, order, load, commit, and replay.

Each step takes the flow, the store and plain values, writes rows to the store and returns a small
manifest (what goes to XCom). The operators in ``airflow_provider_mlconn.operators`` only turn an
Airflow context into these arguments.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from airflow_provider_mlconn.sync.errors import (
    CallableContractError,
    LoadBlocked,
    LoadIncomplete,
    WatermarkNotCommitted,
)
from airflow_provider_mlconn.sync.flow import (
    PENDING_LOAD,
    Entity,
    Failed,
    Flow,
    Loaded,
    LoadRecord,
    MappedRecord,
    Prerequisite,
    RecordStatus,
    Rejection,
)
from airflow_provider_mlconn.sync.ordering import PrerequisiteState, readiness
from airflow_provider_mlconn.sync.store import (
    Actor,
    MappingResult,
    OutcomeRow,
    RunRef,
    Store,
    StoredRecord,
)
from airflow_provider_mlconn.sync.watermarks import (
    VariableAccess,
    Window,
    decode_watermark,
    encode_watermark,
    next_watermark,
    plan_window,
    resolve_window_settings,
    watermark_variable,
    window_settings_variable,
)

log = logging.getLogger(__name__)

#: After this many load calls in a row raise, a task stops calling and leaves the rest for a retry.
MAX_CONSECUTIVE_CALL_ERRORS = 3


class RunInfo(BaseModel):
    """The Airflow run a step belongs to."""

    dag_id: str
    run_id: str
    run_type: str | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None

    @property
    def is_backfill(self) -> bool:
        return self.run_type == "backfill"

    @property
    def reads_to_now(self) -> bool:
        """A run started by a person or an operator reads up to now (less the safety lag), not to its
        data interval's end: Airflow gives it the last full interval, which ends before the edits
        the person may have triggered it for."""
        return self.run_type in ("manual", "operator_triggered")

    def ref(self, flow: Flow) -> RunRef:
        return RunRef(flow=flow.name, dag_id=self.dag_id, run_id=self.run_id, run_type=self.run_type)


class PlanManifest(BaseModel):
    run_key: str
    flow: str
    windows: dict[str, dict[str, Any]]
    watermarks: dict[str, str | None] = Field(description="each stream's watermark when planned (ISO)")
    overlap_minutes: float
    safety_lag_minutes: float
    full_resync: bool = False
    dry_run: bool = Field(False, description="map only: nothing is loaded and no watermark moves")
    options: dict[str, Any] = Field(default_factory=dict, description="the run's options for extract")


class ExtractManifest(BaseModel):
    run_key: str
    flow: str
    high_water: dict[str, str | None]
    staged: dict[str, int]
    new: int
    changed: int
    same: int
    skipped_streams: list[str]


class MapManifest(BaseModel):
    run_key: str
    counts: dict[str, int]


class LoadManifest(BaseModel):
    run_key: str
    entity: str
    batch: int | None
    loaded: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    failed: int = 0
    held_back: int = 0
    not_attempted: int = 0
    retriable_failures: int = 0


class CommitManifest(BaseModel):
    run_key: str
    moved: dict[str, dict[str, str | None]]
    kept: dict[str, str]


# -- plan -------------------------------------------------------------------------------------


def plan_windows(
    flow: Flow,
    run: RunInfo,
    variables: VariableAccess,
    *,
    now: datetime,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    overlap_minutes: float | None = None,
    safety_lag_minutes: float | None = None,
    full_resync: bool = False,
    dry_run: bool = False,
    options: Mapping[str, Any] | None = None,
) -> PlanManifest:
    """Each stream's window for this run, from its watermark Variable and the run's kind.

    ``full_resync`` reads every stream from the beginning; ``dry_run`` makes the run map only;
    ``options`` reach each stream's extract as ``window.options``.
    """
    settings_variable = window_settings_variable(flow.name)
    settings = resolve_window_settings(
        flow_overlap=flow.overlap,
        flow_safety_lag=flow.safety_lag,
        variable_text=variables.get(settings_variable),
        variable=settings_variable,
        overlap_minutes=overlap_minutes,
        safety_lag_minutes=safety_lag_minutes,
    )
    windows: dict[str, dict[str, Any]] = {}
    marks: dict[str, str | None] = {}
    for stream in flow.streams:
        zone = stream.resolve_timezone()
        watermark = _read_watermark(flow, stream.name, variables, zone)
        window = plan_window(
            stream=stream.name,
            kind=stream.kind,
            source_timezone=zone,
            watermark=watermark,
            initial_start=stream.initial_start,
            settings=settings,
            now=now,
            is_backfill=run.is_backfill,
            data_interval_start=run.data_interval_start,
            data_interval_end=None if run.reads_to_now else run.data_interval_end,
            requested_start=window_start,
            requested_end=window_end,
            from_beginning=full_resync,
        )
        windows[stream.name] = window.to_manifest()
        marks[stream.name] = None if watermark is None else watermark.isoformat()
    return PlanManifest(
        run_key=run.ref(flow).run_key,
        flow=flow.name,
        windows=windows,
        watermarks=marks,
        overlap_minutes=settings.overlap.total_seconds() / 60,
        safety_lag_minutes=settings.safety_lag.total_seconds() / 60,
        full_resync=full_resync,
        dry_run=dry_run,
        options=dict(options or {}),
    )


def _read_watermark(flow: Flow, stream_name: str, variables: VariableAccess, zone: str) -> datetime | None:
    stream = flow.stream(stream_name)
    name = watermark_variable(flow.name, stream.name)
    text = variables.get(name)
    if not text:
        return None
    return decode_watermark(text, variable=name, kind=stream.kind, source_timezone=zone)


# -- extract ----------------------------------------------------------------------------------


def extract(flow: Flow, store: Store, run: RunInfo, actor: Actor, plan: PlanManifest) -> ExtractManifest:
    """Stream each stream's window into the store; returns counts and the high-water marks."""
    ref = run.ref(flow)
    store.ensure_run(ref)
    store.update_run(ref.run_key, windows=plan.windows)
    high_water: dict[str, str | None] = {}
    skipped: list[str] = []
    writer = store.staging_writer(ref, actor, entities=[e.name for e in flow.entities])
    for stream in flow.streams:
        window = replace(Window.from_manifest(plan.windows[stream.name]), options=plan.options)
        if window.empty:
            log.info(
                "stream %s: window is empty (%s); nothing to read", stream.name, plan.windows[stream.name]
            )
            skipped.append(stream.name)
            high_water[stream.name] = None
            continue
        mark = stream.extract(window, writer)
        writer.flush()
        if mark is not None and (not isinstance(mark, datetime) or mark.tzinfo is None):
            raise CallableContractError(
                f"flow {flow.name}: extract of stream {stream.name} must return an aware datetime "
                f"or None, got {mark!r}"
            )
        high_water[stream.name] = None if mark is None else min(mark, window.end).isoformat()
    store.update_run(ref.run_key, high_water=high_water)
    counts = writer.counts
    return ExtractManifest(
        run_key=ref.run_key,
        flow=flow.name,
        high_water=high_water,
        staged=dict(counts.per_entity),
        new=counts.new,
        changed=counts.changed,
        same=counts.same,
        skipped_streams=skipped,
    )


# -- map --------------------------------------------------------------------------------------

#: Statuses the map step (re)maps: all but ``loaded``/``unchanged`` (a rejected record is mapped
#: again when the step runs again: the mapping may have been fixed).
TO_MAP = (RecordStatus.STAGED, RecordStatus.MAPPED, RecordStatus.REJECTED, RecordStatus.FAILED)


def map_records(
    flow: Flow,
    store: Store,
    run_key: str,
    actor: Actor,
    *,
    claim_token: str | None = None,
    action: str = "map",
) -> MapManifest:
    """Map the run's records not in the target yet; mark ``unchanged`` what equals the last load.

    With ``claim_token`` (replay) it maps the claimed records instead, whatever their run;
    ``run_key`` then only labels the manifest.
    """
    counts: dict[str, int] = {}
    for chunk in store.iter_records(
        run_key=None if claim_token else run_key, statuses=TO_MAP, claim_token=claim_token
    ):
        results = _map_chunk(flow, store, chunk)
        store.save_mapping(results, actor, action=action)
        for result in results:
            counts[result.status.value] = counts.get(result.status.value, 0) + 1
    return MapManifest(run_key=run_key, counts=counts)


def preview_mapping(flow: Flow, store: Store, records: Sequence[StoredRecord]) -> list[MappingResult]:
    """What mapping would do now, without saving (dry-run replays)."""
    return _map_chunk(flow, store, records)


def _map_chunk(flow: Flow, store: Store, chunk: Sequence[StoredRecord]) -> list[MappingResult]:
    entries = {}
    for entity in {record.entity for record in chunk}:
        keys = [record.key for record in chunk if record.entity == entity]
        entries[entity] = store.id_map_entries(flow.name, entity, keys)
    results = []
    for record in chunk:
        try:
            mapped = flow.map(record.entity, record.source)
        except ValueError as error:
            # pydantic's ValidationError is a ValueError: its text says which field and why.
            mapped = Rejection(f"{type(error).__name__}: {error}")
        if isinstance(mapped, Rejection):
            results.append(
                MappingResult(record.id, RecordStatus.REJECTED, record.attempts, error=mapped.reason)
            )
            continue
        payload = _as_payload(flow, record, mapped)
        digest = store.cipher.digest(payload)
        entry = entries[record.entity].get(record.key)
        if entry is not None and entry.last_loaded_hash == digest:
            results.append(
                MappingResult(
                    record.id,
                    RecordStatus.UNCHANGED,
                    record.attempts,
                    payload=payload,
                    payload_hash=digest,
                    remote_id=entry.remote_id,
                )
            )
        else:
            results.append(
                MappingResult(
                    record.id, RecordStatus.MAPPED, record.attempts, payload=payload, payload_hash=digest
                )
            )
    return results


def _as_payload(flow: Flow, record: StoredRecord, mapped: Any) -> Mapping[str, Any]:
    model_dump = getattr(mapped, "model_dump", None)
    if callable(model_dump):
        mapped = model_dump(mode="json", exclude_none=False)
    if not isinstance(mapped, Mapping):
        raise CallableContractError(
            f"flow {flow.name}: map({record.entity!r}, ...) for key {record.key} returned "
            f"{type(mapped).__name__}; expected a mapping, a pydantic model or a Rejection"
        )
    return mapped


# -- order ------------------------------------------------------------------------------------


def order_entity(
    flow: Flow, store: Store, run_key: str, entity_name: str, *, max_map_length: int, actor: Actor
) -> list[int]:
    """Record prerequisites and split the entity's pending records into load batches.

    Returns the batch numbers (what the mapped load task expands over; empty: nothing to load).
    The number of batches stays within the flow's ``max_batches_per_entity`` and Airflow's
    ``max_map_length``; batches grow instead. Runs after the entities it depends on loaded, so
    it first reopens the unchanged records whose prerequisites moved (``reopen_relinked``).
    """
    entity = flow.entity(entity_name)
    reopen_relinked(flow, store, run_key, entity, actor)
    pending = store.count_records(run_key=run_key, entity=entity.name, statuses=PENDING_LOAD)
    if pending == 0:
        return []
    batches = min(math.ceil(pending / entity.task_batch_size), flow.max_batches_per_entity, max_map_length)
    per_batch = math.ceil(pending / batches)
    ordinal = 0
    used: set[int] = set()
    for chunk in store.iter_records(run_key=run_key, entity=entity.name, statuses=PENDING_LOAD):
        plan = []
        for record in chunk:
            batch = min(ordinal // per_batch, batches - 1)
            plan.append((record.id, batch, _prerequisites_of(flow, entity, record)))
            used.add(batch)
            ordinal += 1
        store.save_order(plan)
    return sorted(used)


def reopen_relinked(flow: Flow, store: Store, run_key: str, entity: Entity, actor: Actor) -> int:
    """Load again the run's ``unchanged`` records whose prerequisite this run loaded to another
    target id; returns how many.

    A record is unchanged when its payload equals the last one loaded, but what it links (a
    contact -> company association, say) also depends on the target ids of its prerequisites:
    when one of them now stands for another remote record, the link must be written again.
    """
    if not entity.depends_on or not store.count_records(
        run_key=run_key, entity=entity.name, statuses=(RecordStatus.UNCHANGED,)
    ):
        return 0
    moved = {name: store.moved_remote_ids(flow.name, run_key, name) for name in entity.depends_on}
    if not any(moved.values()):
        return 0
    reopened = 0
    for chunk in store.iter_records(run_key=run_key, entity=entity.name, statuses=(RecordStatus.UNCHANGED,)):
        results = []
        for record in chunk:
            reasons = [
                f"{p.entity} {p.key} is now {moved[p.entity][p.key][1]} in the target "
                f"(was {moved[p.entity][p.key][0] or 'absent'})"
                for p in _prerequisites_of(flow, entity, record)
                if p.flow in (None, flow.name) and p.key in moved.get(p.entity, {})
            ]
            if reasons:
                results.append(
                    MappingResult(
                        record.id,
                        RecordStatus.MAPPED,
                        record.attempts,
                        payload=record.payload,
                        payload_hash=record.payload_hash,
                        error="; ".join(reasons),
                    )
                )
        store.save_mapping(results, actor, action="relink")
        reopened += len(results)
    if reopened:
        log.info("%s: %d unchanged records load again, their prerequisites moved", entity.name, reopened)
    return reopened


def _prerequisites_of(flow: Flow, entity: Entity, record: StoredRecord) -> list[Prerequisite]:
    if record.payload is None:
        raise CallableContractError(
            f"{record.entity} {record.key} is {record.status.value} without a payload"
        )
    declared = flow.dependencies(MappedRecord(record.entity, record.key, record.source, record.payload))
    prerequisites = []
    for prerequisite in declared or ():
        if not isinstance(prerequisite, Prerequisite):
            raise CallableContractError(
                f"flow {flow.name}: dependencies() for {record.entity} {record.key} gave "
                f"{prerequisite!r}; expected Prerequisite(entity, key)"
            )
        if prerequisite.flow in (None, flow.name) and prerequisite.entity not in entity.depends_on:
            raise CallableContractError(
                f"flow {flow.name}: {record.entity} {record.key} needs {prerequisite.entity} "
                f"{prerequisite.key}, but entity {entity.name} does not declare depends_on "
                f"{prerequisite.entity!r} (so its records may load first)"
            )
        prerequisites.append(Prerequisite(prerequisite.entity, str(prerequisite.key), prerequisite.flow))
    return prerequisites


# -- load -------------------------------------------------------------------------------------


def load_batch(
    flow: Flow, store: Store, *, run_key: str, entity_name: str, batch: int, actor: Actor
) -> LoadManifest:
    """Load the batch's records that are not loaded yet; raise after persisting if any did not load."""
    entity = flow.entity(entity_name)
    manifest = LoadManifest(run_key=run_key, entity=entity.name, batch=batch)
    token = store.claim(owner=actor.owner, run_key=run_key, entity=entity.name, batch=batch)
    try:
        # Records of the batch another worker holds: their outcome comes from there, not from us.
        held_elsewhere = store.count_records(
            run_key=run_key, entity=entity.name, statuses=PENDING_LOAD, batch=batch, not_claimed_by=token
        )
        load_claimed(flow, store, entity, token=token, actor=actor, manifest=manifest, action="load")
    finally:
        store.release(token)
    if held_elsewhere:
        log.warning(
            "%d records of %s batch %d are claimed by another worker", held_elsewhere, entity.name, batch
        )
    manifest.not_attempted += held_elsewhere
    manifest.retriable_failures += held_elsewhere
    raise_if_incomplete(manifest, what=f"{entity.name} batch {batch} of {run_key}")
    return manifest


def load_claimed(
    flow: Flow,
    store: Store,
    entity: Entity,
    *,
    token: str,
    actor: Actor,
    manifest: LoadManifest,
    action: str,
) -> None:
    """Load the claimed records of one entity, ``call_batch_size`` per ``flow.load`` call.

    Every outcome is saved before the next call. A record whose prerequisite is not in the target
    is held back (``failed``, no call). After ``MAX_CONSECUTIVE_CALL_ERRORS`` raising calls in a
    row the rest is left as it is (still pending) for a retry.

    While one call runs, a helper thread reads the next chunk and checks its prerequisites (store
    reads only; prerequisites belong to other entities, which this call does not write), so the
    target is not kept waiting for the store between calls.
    """
    chunks = store.iter_records(
        claim_token=token, entity=entity.name, statuses=PENDING_LOAD, chunk_size=entity.call_batch_size
    )

    def prepare() -> _PreparedChunk | None:
        chunk = next(chunks, None)
        return None if chunk is None else _PreparedChunk(chunk, *_hold_back(flow, store, chunk))

    consecutive_errors = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"prefetch-{entity.name}") as prefetcher:
        upcoming = prefetcher.submit(prepare)
        while (prepared := upcoming.result()) is not None:
            upcoming = prefetcher.submit(prepare)
            if consecutive_errors >= MAX_CONSECUTIVE_CALL_ERRORS:
                manifest.not_attempted += len(prepared.chunk)
                manifest.retriable_failures += len(prepared.chunk)
                continue
            outcomes = prepared.held_back
            manifest.held_back += len(outcomes)
            if prepared.ready:
                results, raised = _call_load(flow, entity, [item for _, item in prepared.ready])
                consecutive_errors = consecutive_errors + 1 if raised else 0
                outcomes = [*outcomes, *_outcome_rows(flow, entity, prepared.ready, results, manifest)]
            store.save_outcomes(token, outcomes, actor, action=action)


@dataclass(frozen=True)
class _PreparedChunk:
    """One chunk of claimed records: those held back for a prerequisite (their outcome rows) and
    those ready to load."""

    chunk: list[StoredRecord]
    held_back: list[OutcomeRow]
    ready: list[tuple[StoredRecord, LoadRecord]]


def _hold_back(
    flow: Flow, store: Store, chunk: Sequence[StoredRecord]
) -> tuple[list[OutcomeRow], list[tuple[StoredRecord, LoadRecord]]]:
    states: dict[tuple[str, Prerequisite], PrerequisiteState] = {}
    for run_key in {record.run_key for record in chunk}:
        wanted = {p for record in chunk if record.run_key == run_key for p in record.prerequisites}
        if wanted:
            for prerequisite, state in store.prerequisite_states(flow.name, run_key, wanted).items():
                states[(run_key, prerequisite)] = state
    known_ids: dict[tuple[str, str], str] = {}
    sharing: dict[tuple[str, str], set[str]] = {}
    for entity in {record.entity for record in chunk}:
        entries = store.id_map_entries(flow.name, entity, [r.key for r in chunk if r.entity == entity])
        known_ids.update({(entity, key): entry.remote_id for key, entry in entries.items()})
        for target_id, keys in store.keys_by_remote_id(
            flow.name, entity, {entry.remote_id for entry in entries.values()}
        ).items():
            sharing[(entity, target_id)] = keys
    outcomes: list[OutcomeRow] = []
    ready: list[tuple[StoredRecord, LoadRecord]] = []
    for record in chunk:
        described = {p.describe(flow.name): p for p in record.prerequisites}
        verdict = readiness({text: states[(record.run_key, p)] for text, p in described.items()})
        if not verdict.ready:
            outcomes.append(OutcomeRow(record.id, RecordStatus.FAILED, attempted=False, error=verdict.reason))
            continue
        remote_id = known_ids.get((record.entity, record.key))
        shared_by = sharing.get((record.entity, remote_id), set()) if remote_id else set()
        ready.append(
            (
                record,
                LoadRecord(
                    entity=record.entity,
                    key=record.key,
                    payload=record.payload or {},
                    source=record.source,
                    remote_id=remote_id,
                    prerequisite_ids={p: verdict.remote_ids[text] for text, p in described.items()},
                    attempt=record.attempts + 1,
                    remote_id_shared_by=tuple(sorted(shared_by - {record.key})),
                ),
            )
        )
    return outcomes, ready


def _call_load(flow: Flow, entity: Entity, items: list[LoadRecord]) -> tuple[Mapping[str, Any], bool]:
    try:
        results = flow.load(entity.name, items)
    except Exception as error:
        if hasattr(error, "retriable"):
            # Classified by whoever raised it (a refused token, a quota): its message says it all.
            log.error("flow %s: load of %d %s records failed: %s", flow.name, len(items), entity.name, error)
        else:
            log.exception("flow %s: load of %d %s records raised", flow.name, len(items), entity.name)
        failure = Failed(f"{type(error).__name__}: {error}", retriable=getattr(error, "retriable", True))
        return {item.key: failure for item in items}, True
    if not isinstance(results, Mapping):
        raise CallableContractError(
            f"flow {flow.name}: load({entity.name!r}, ...) returned {type(results).__name__}; expected "
            "a mapping of source key -> Loaded | Failed | Rejection"
        )
    return {str(key): value for key, value in results.items()}, False


def _outcome_rows(
    flow: Flow,
    entity: Entity,
    ready: list[tuple[StoredRecord, LoadRecord]],
    results: Mapping[str, Any],
    manifest: LoadManifest,
) -> list[OutcomeRow]:
    rows = []
    for record, _ in ready:
        result = results.get(record.key)
        if isinstance(result, Loaded):
            change = "created" if result.created else "updated"
            rows.append(
                OutcomeRow(record.id, RecordStatus.LOADED, True, str(result.remote_id), change, result.note)
            )
            manifest.loaded += 1
            if result.created:
                manifest.created += 1
            else:
                manifest.updated += 1
        elif isinstance(result, Rejection):
            rows.append(OutcomeRow(record.id, RecordStatus.REJECTED, True, error=result.reason))
            manifest.rejected += 1
        else:
            if isinstance(result, Failed):
                failure = result
            elif result is None:
                failure = Failed(f"load({entity.name!r}) returned no outcome for this record")
            else:
                failure = Failed(
                    f"load({entity.name!r}) returned {type(result).__name__} for this record; expected "
                    "Loaded, Failed or Rejection"
                )
            rows.append(OutcomeRow(record.id, RecordStatus.FAILED, True, error=failure.error))
            manifest.failed += 1
            if failure.retriable:
                manifest.retriable_failures += 1
    return rows


def raise_if_incomplete(manifest: LoadManifest, *, what: str) -> None:
    """Raise LoadIncomplete (or LoadBlocked when no retry of this task can help)."""
    unfinished = manifest.failed + manifest.held_back + manifest.not_attempted
    if not unfinished:
        return
    message = (
        f"{what}: {manifest.loaded} loaded, {manifest.rejected} rejected, {manifest.failed} failed, "
        f"{manifest.held_back} held back for a prerequisite, {manifest.not_attempted} not attempted. "
        f"Outcomes are saved (`mlconn audit failures --run {manifest.run_key}`); "
        "a retry loads only what is not loaded."
    )
    error_class = LoadIncomplete if manifest.retriable_failures else LoadBlocked
    raise error_class(message, failed=manifest.failed, held_back=manifest.held_back)


# -- commit -----------------------------------------------------------------------------------


def commit_watermarks(
    flow: Flow,
    store: Store,
    variables: VariableAccess,
    *,
    run_key: str,
    plan: PlanManifest,
    extract_manifest: ExtractManifest,
    now: datetime,
) -> CommitManifest:
    """Move each stream's watermark to its high-water mark, if every record of the run is final.

    A dry run loaded nothing, so it moves nothing.
    """
    if plan.dry_run:
        not_moved = {stream.name: "dry run: nothing was loaded" for stream in flow.streams}
        store.update_run(run_key, committed={"moved": {}, "kept": not_moved}, committed_at=now)
        return CommitManifest(run_key=run_key, moved={}, kept=not_moved)
    counts = store.status_counts(run_key)
    unfinished = {
        status.value: counts[status.value]
        for status in (RecordStatus.STAGED, RecordStatus.MAPPED, RecordStatus.FAILED)
        if counts.get(status.value)
    }
    if unfinished:
        raise WatermarkNotCommitted(
            f"{run_key}: records not final {unfinished}; the watermarks stay where they are"
        )
    moved: dict[str, dict[str, str | None]] = {}
    kept: dict[str, str] = {}
    for stream in flow.streams:
        name = watermark_variable(flow.name, stream.name)
        window = Window.from_manifest(plan.windows[stream.name])
        high_text = extract_manifest.high_water.get(stream.name)
        high = None if high_text is None else datetime.fromisoformat(high_text)
        current = _read_watermark(flow, stream.name, variables, window.source_timezone)
        target = next_watermark(current, window, high)
        if target is None:
            kept[stream.name] = _why_kept(current, window, high)
            continue
        variables.set(
            name,
            encode_watermark(
                target, kind=stream.kind, source_timezone=window.source_timezone, updated_by=run_key
            ),
        )
        moved[stream.name] = {
            "from": None if current is None else current.isoformat(),
            "to": target.isoformat(),
        }
    store.update_run(run_key, committed={"moved": moved, "kept": kept}, committed_at=now)
    return CommitManifest(run_key=run_key, moved=moved, kept=kept)


def _why_kept(current: datetime | None, window: Window, high: datetime | None) -> str:
    if high is None:
        return "no change seen"
    return (
        f"high-water mark {high.isoformat()} does not move it: not after the watermark "
        f"({None if current is None else current.isoformat()}), or a {window.mode.value} run starting "
        "after it (moving would skip the changes in between)"
    )


# -- replay -----------------------------------------------------------------------------------


ReplayStatus = Literal["failed", "rejected"]
REPLAYABLE: tuple[ReplayStatus, ...] = ("failed", "rejected")


class ReplayRequest(BaseModel):
    """What the replay form asks for."""

    flow: str
    entity: str | None = None
    statuses: list[ReplayStatus] = Field(default_factory=lambda: list(REPLAYABLE))
    run_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = True
    limit: int = Field(default=10_000, ge=1, le=1_000_000)


class ReplayManifest(BaseModel):
    flow: str
    selected: int
    mapped: dict[str, int] = Field(default_factory=dict)
    loads: list[LoadManifest] = Field(default_factory=list)
    dry_run: bool = False


def select_replay(flow: Flow, store: Store, request: ReplayRequest) -> list[int]:
    """Record ids the request covers (latest row of each key only)."""
    run_key = None
    if request.run_id:
        run_key = store.find_run_key(flow=flow.name, run_id=request.run_id) or request.run_id
    if request.entity:
        flow.entity(request.entity)
    return store.select_for_replay(
        flow=flow.name,
        statuses=[RecordStatus(status) for status in request.statuses],
        entity=request.entity,
        run_key=run_key,
        since=request.since,
        until=request.until,
        limit=request.limit,
    )


def replay(flow: Flow, store: Store, record_ids: Sequence[int], actor: Actor) -> ReplayManifest:
    """Re-map from the stored source (so a mapping fix applies) and load, entity stage by stage.

    Every step is appended to each record's history (actions ``replay-map``, ``replay-load``).
    Raises LoadIncomplete when a record did not end loaded or unchanged.
    """
    manifest = ReplayManifest(flow=flow.name, selected=len(record_ids))
    token = store.claim(
        owner=actor.owner, ids=list(record_ids), statuses=(RecordStatus.FAILED, RecordStatus.REJECTED)
    )
    try:
        mapped = map_records(
            flow, store, f"replay:{actor.run_id}", actor, claim_token=token, action="replay-map"
        )
        manifest.mapped = mapped.counts
        for entity_name in (name for stage in flow.stages for name in stage):
            entity = flow.entity(entity_name)
            plan = [
                (record.id, 0, _prerequisites_of(flow, entity, record))
                for chunk in store.iter_records(claim_token=token, entity=entity.name, statuses=PENDING_LOAD)
                for record in chunk
            ]
            if not plan:
                continue
            store.save_order(plan)
            load = LoadManifest(run_key=f"replay:{actor.run_id}", entity=entity.name, batch=None)
            load_claimed(flow, store, entity, token=token, actor=actor, manifest=load, action="replay-load")
            manifest.loads.append(load)
    finally:
        store.release(token)
    still_rejected = manifest.mapped.get(RecordStatus.REJECTED.value, 0) + sum(
        load.rejected for load in manifest.loads
    )
    not_loaded = sum(load.failed + load.held_back + load.not_attempted for load in manifest.loads)
    if not_loaded or still_rejected:
        raise LoadIncomplete(
            f"replay of {flow.name}: {not_loaded} records failed or were held back, "
            f"{still_rejected} are still rejected; see `mlconn audit record` for each",
            failed=not_loaded,
            held_back=0,
        )
    return manifest
