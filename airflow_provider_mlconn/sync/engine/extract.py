"""Extract: each stream's window into the store, then the waiting records a run can take over."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlconn.sync.engine.manifests import ExtractManifest, PlanManifest, RunInfo
from airflow_provider_mlconn.sync.engine.mapping import map_sources, map_staged, mark_echoes
from airflow_provider_mlconn.sync.errors import CallableContractError
from airflow_provider_mlconn.sync.flow import Entity, Flow
from airflow_provider_mlconn.sync.records import Prerequisite
from airflow_provider_mlconn.sync.store import (
    Actor,
    MappingResult,
    RunRef,
    StagedSource,
    Store,
    StoredRecord,
)
from airflow_provider_mlconn.sync.watermarks import Window

log = logging.getLogger(__name__)


def extract(
    flow: Flow,
    store: Store,
    run: RunInfo,
    actor: Actor,
    plan: PlanManifest,
    *,
    map_while_extracting: bool = False,
) -> ExtractManifest:
    """Stream each stream's window into the store, take over waiting records whose wait may be
    over; returns counts, the high-water marks and the entities the run read completely.

    With ``map_while_extracting`` each chunk is mapped as it is staged, from the sources in hand,
    and written mapped (while the source's next pages are on their way); the map step only maps
    what is left ``staged``.
    """
    ref = run.ref(flow)
    store.runs.ensure(ref)
    store.runs.update(ref.run_key, windows=plan.windows)
    high_water: dict[str, str | None] = {}
    skipped: list[str] = []
    mapped: Counter[str] = Counter()
    mapping_stopped: list[Exception] = []

    echoes: list[dict[str, dict[str, str]]] = []

    def stop_mapping(error: Exception) -> None:
        # A mapping that crashes is the map step's failure to report, not the extract's: what is
        # left staged is mapped there, and the run stops at map as it always did.
        mapping_stopped.append(error)
        log.warning("mapping while extracting stopped (%s); the map step maps the rest", error)

    def map_new(staged: Sequence[StagedSource]) -> list[MappingResult] | None:
        if mapping_stopped:
            return None
        try:
            results, found = map_sources(flow, store, staged)
        except Exception as error:
            stop_mapping(error)
            return None
        echoes.append(found)
        return results

    def after_flush(ids: Sequence[int]) -> None:
        # The echoes of the chunk just written, and what it left staged (sources that changed
        # within the run), mapped as the map step would.
        while echoes:
            mark_echoes(store, flow, echoes.pop())
        if mapping_stopped or not ids:
            return
        try:
            mapped.update(map_staged(flow, store, ids, actor))
        except Exception as error:
            stop_mapping(error)

    writer = store.staging_writer(
        ref,
        actor,
        entities=[e.name for e in flow.entities],
        after_flush=after_flush if map_while_extracting else None,
        mapper=map_new if map_while_extracting else None,
    )
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
    store.runs.update(ref.run_key, high_water=high_water)
    # Only a read of everything, unnarrowed, can tell which keys the source no longer has.
    complete = sorted(writer.complete) if plan.full_read and not skipped else []
    adopted, expired = {}, 0
    if not plan.options:  # a hand-picked run reads what it names and nothing else
        for entity in flow.entities:
            taken, rejected = adopt_waiting(flow, entity, store, ref, actor)
            expired += rejected
            repaired = adopt_repairs(entity, flow, store, ref, actor)
            if taken or repaired:
                adopted[entity.name] = taken + repaired
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
        adopted=adopted,
        expired=expired,
        complete=complete,
        mapped=dict(mapped + counts.mapped),
    )


def adopt_waiting(flow: Flow, entity: Entity, store: Store, run: RunRef, actor: Actor) -> tuple[int, int]:
    """Stage into ``run`` the waiting records of earlier runs whose wait may be over; returns how
    many were taken over and how many were rejected instead.

    A record waits for a prerequisite that is not in the target. It is taken over (staged again,
    action ``adopt``, with its current source when the entity can re-read it) once one of its
    prerequisites is in the id map or read by this run. One that waited longer than the flow's
    ``max_wait`` is rejected where it is; one its source no longer has, too. Keys this run read
    itself are left to that fresher read.
    """
    waiting = store.records.latest_waiting(flow=flow.name, entity=entity.name, not_in_run=run.run_key)
    if not waiting:
        return 0, 0
    held = store.records.keys_of_run(run.run_key, entity.name)
    now = datetime.now(timezone.utc)
    expired: list[tuple[int, str]] = []
    candidates: list[StoredRecord] = []
    for record in waiting:
        if record.key in held:
            continue
        since = record.waiting_since or record.updated_at
        if now - since > flow.max_wait:
            days = (now - since).total_seconds() / 86400
            expired.append(
                (record.id, f"waited {days:.1f} days, longer than {flow.max_wait}: {record.error}")
            )
        else:
            candidates.append(record)
    over = _prerequisites_now_available(flow, store, run, candidates)
    ready = [record for record in candidates if any(p in over for p in record.prerequisites)]
    staged: dict[tuple[str, str], Any] = {}
    if entity.refresh is not None and ready:
        sources = entity.refresh([record.key for record in ready])
        for record in ready:
            source = sources.get(record.key)
            if source is None:
                expired.append((record.id, f"no longer at the source while it waited: {record.error}"))
            else:
                staged[(entity.name, record.key)] = source
    else:
        staged = {(entity.name, record.key): record.source for record in ready}
    store.records.reject_expired(expired, actor, at=now)
    if staged:
        store.staging.stage_chunk(run, actor, staged, action="adopt")
        log.info("%s: %d waiting records of earlier runs taken over", entity.name, len(staged))
    if expired:
        log.warning("%s: %d waiting records rejected (waited too long or gone)", entity.name, len(expired))
    return len(staged), len(expired)


def adopt_repairs(entity: Entity, flow: Flow, store: Store, run: RunRef, actor: Actor) -> int:
    """Stage into ``run`` the keys the reconciliation queued for repair (``IdMap.queue_repair``),
    read again from the source (action ``repair``); returns how many. Their last loaded hash no
    longer matches any payload, so the load writes them whatever it wrote before. Keys this run
    read itself are left to that read; an entity that cannot re-read keeps its queue until its
    records are next read."""
    if entity.refresh is None:
        return 0
    held = store.records.keys_of_run(run.run_key, entity.name)
    keys = [key for key in store.id_map.repair_queue(flow.name, entity.name) if key not in held]
    if not keys:
        return 0
    sources = entity.refresh(keys)
    staged = {(entity.name, key): source for key, source in sources.items() if source is not None}
    if staged:
        store.staging.stage_chunk(run, actor, staged, action="repair")
        log.info(
            "%s: %d records queued for repair by the reconciliation read again", entity.name, len(staged)
        )
    return len(staged)


def _prerequisites_now_available(
    flow: Flow, store: Store, run: RunRef, waiting: list[StoredRecord]
) -> set[Prerequisite]:
    """The prerequisites of waiting records that are in the target now, or that this run read
    (they may load in it)."""
    named: dict[tuple[str, str], set[Prerequisite]] = {}
    for record in waiting:
        for prerequisite in record.prerequisites:
            named.setdefault((prerequisite.flow or flow.name, prerequisite.entity), set()).add(prerequisite)
    available: set[Prerequisite] = set()
    for (owner, entity_name), prerequisites in named.items():
        by_key = [p for p in prerequisites if not p.by_remote_id]
        by_remote = [p for p in prerequisites if p.by_remote_id]
        entries = store.id_map.entries(owner, entity_name, [p.key for p in by_key])
        known_remote = store.id_map.keys_by_remote_id(owner, entity_name, [p.key for p in by_remote])
        read_now = (
            store.records.keys_of_run(run.run_key, entity_name) if owner == flow.name and by_key else set()
        )
        for prerequisite in by_key:
            entry = entries.get(prerequisite.key)
            if (entry is not None and entry.deleted_at is None) or prerequisite.key in read_now:
                available.add(prerequisite)
        available.update(p for p in by_remote if known_remote.get(p.key))
    return available
