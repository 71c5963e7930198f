"""Replay: failed, rejected, waiting or uncertain records again, after a fix, by hand."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from airflow_provider_mlconn.sync.engine.load import load_claimed
from airflow_provider_mlconn.sync.engine.manifests import LoadManifest
from airflow_provider_mlconn.sync.engine.mapping import map_records
from airflow_provider_mlconn.sync.engine.order import prerequisites_of
from airflow_provider_mlconn.sync.errors import LoadIncomplete
from airflow_provider_mlconn.sync.flow import Flow
from airflow_provider_mlconn.sync.records import PENDING_LOAD, RecordStatus
from airflow_provider_mlconn.sync.store import Actor, Store

log = logging.getLogger(__name__)

ReplayStatus = Literal["failed", "rejected", "waiting", "uncertain"]
REPLAYABLE: tuple[ReplayStatus, ...] = ("failed", "rejected", "waiting", "uncertain")
#: How many still rejected or waiting records a replay names in its manifest and log.
REPLAY_REPORT_ROWS = 50


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
    #: Map the source as stored when the record was read, instead of re-reading it now.
    use_stored_source: bool = False


class ReplayManifest(BaseModel):
    flow: str
    selected: int
    refreshed: int = 0
    mapped: dict[str, int] = Field(default_factory=dict)
    loads: list[LoadManifest] = Field(default_factory=list)
    dry_run: bool = False
    #: Records that ended rejected or waiting again, with their reasons (capped): a person acts.
    still_not_loaded: list[dict[str, str]] = Field(default_factory=list)
    still_not_loaded_count: int = 0

    @property
    def loaded(self) -> int:
        return sum(load.loaded for load in self.loads)


def select_replay(flow: Flow, store: Store, request: ReplayRequest) -> list[int]:
    """Record ids the request covers (latest row of each key only)."""
    run_key = None
    if request.run_id:
        run_key = store.runs.find_key(flow=flow.name, run_id=request.run_id) or request.run_id
    if request.entity:
        flow.entity(request.entity)
    return store.audit.select_for_replay(
        flow=flow.name,
        statuses=[RecordStatus(status) for status in request.statuses],
        entity=request.entity,
        run_key=run_key,
        since=request.since,
        until=request.until,
        limit=request.limit,
    )


def replay(
    flow: Flow, store: Store, record_ids: Sequence[int], actor: Actor, *, use_stored_source: bool = False
) -> ReplayManifest:
    """Re-read each record's source (unless ``use_stored_source``; entities without ``refresh``
    keep the stored one), re-map (so a mapping fix applies) and load, entity stage by stage.

    Every step is appended to each record's history (actions ``refresh``, ``replay-map``,
    ``replay-load``). Records that end rejected or waiting again are named in the manifest (a
    person has more to fix); LoadIncomplete is raised only when a record failed or is uncertain,
    which a retry may settle.
    """
    manifest = ReplayManifest(flow=flow.name, selected=len(record_ids))
    token = store.claims.claim(
        owner=actor.owner, ids=list(record_ids), statuses=tuple(RecordStatus(s) for s in REPLAYABLE)
    )
    try:
        if not use_stored_source:
            manifest.refreshed = _refresh_sources(flow, store, token, actor)
        mapped = map_records(
            flow, store, f"replay:{actor.run_id}", actor, claim_token=token, action="replay-map"
        )
        manifest.mapped = mapped.counts
        for entity_name in (name for stage in flow.stages for name in stage):
            entity = flow.entity(entity_name)
            plan = [
                (record.id, 0, prerequisites_of(flow, entity, record))
                for chunk in store.records.iter(claim_token=token, entity=entity.name, statuses=PENDING_LOAD)
                for record in chunk
            ]
            if not plan:
                continue
            store.records.save_order(plan)
            load = LoadManifest(run_key=f"replay:{actor.run_id}", entity=entity.name, batch=None)
            load_claimed(flow, store, entity, token=token, actor=actor, manifest=load, action="replay-load")
            manifest.loads.append(load)
    finally:
        store.claims.release(token)
    for chunk in store.records.iter(
        ids=list(record_ids), statuses=(RecordStatus.REJECTED, RecordStatus.WAITING)
    ):
        manifest.still_not_loaded_count += len(chunk)
        room = max(REPLAY_REPORT_ROWS - len(manifest.still_not_loaded), 0)
        manifest.still_not_loaded.extend(
            {"entity": r.entity, "key": r.key, "status": r.status.value, "reason": r.error or ""}
            for r in chunk[:room]
        )
    not_loaded = sum(load.unfinished for load in manifest.loads)
    if not_loaded:
        raise LoadIncomplete(
            f"replay of {flow.name}: {not_loaded} records failed, are uncertain or were held back for a "
            f"failed prerequisite ({manifest.still_not_loaded_count} more are still rejected or waiting); "
            "their outcomes are saved, see `mlconn audit record` for each",
            failed=not_loaded,
            held_back=0,
        )
    return manifest


def _refresh_sources(flow: Flow, store: Store, token: str, actor: Actor) -> int:
    """Re-read the claimed records' current source where their entity can (``refresh``)."""
    refreshed = 0
    for entity in flow.entities:
        if entity.refresh is None:
            continue
        for chunk in store.records.iter(claim_token=token, entity=entity.name):
            keys = [record.key for record in chunk if record.operation.value == "write"]
            if not keys:
                continue
            sources = entity.refresh(keys)
            updates = [
                (record.id, sources[record.key]) for record in chunk if sources.get(record.key) is not None
            ]
            store.records.replace_sources(updates, actor)
            refreshed += len(updates)
            gone = [record.key for record in chunk if record.key in keys and sources.get(record.key) is None]
            if gone:
                log.warning(
                    "%s: %d records are no longer at the source; their stored copy is mapped",
                    entity.name,
                    len(gone),
                )
    return refreshed
