"""Order: an entity's records after the ones they need; deletions a full read found; load batches."""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from airflow_provider_mlconn.sync.engine.manifests import OrderManifest
from airflow_provider_mlconn.sync.errors import CallableContractError
from airflow_provider_mlconn.sync.flow import Entity, Flow, no_prerequisites
from airflow_provider_mlconn.sync.ordering import readiness
from airflow_provider_mlconn.sync.records import (
    PENDING_LOAD,
    MappedRecord,
    Operation,
    Prerequisite,
    RecordStatus,
)
from airflow_provider_mlconn.sync.store import Actor, MappingResult, RunRef, Store, StoredRecord

log = logging.getLogger(__name__)


def order_entity(
    flow: Flow,
    store: Store,
    run: RunRef,
    entity_name: str,
    *,
    max_map_length: int,
    actor: Actor,
    complete: Sequence[str] = (),
) -> OrderManifest:
    """Split the entity's pending records into load batches (by id ranges: one statement each).

    Runs after the entities it depends on loaded. First, when the run read the entity completely
    (``complete``) and the entity has a deletion rule, keys the target holds and the source no
    longer has are staged for it; then unchanged records whose prerequisites now stand for other
    target records are reopened (``relink``). The batch numbers are what the mapped load task
    expands over (empty: nothing to load); there are at most the entity's ``max_batches`` and
    Airflow's ``max_map_length``, batches grow instead.
    """
    entity = flow.entity(entity_name)
    manifest = OrderManifest(run_key=run.run_key, entity=entity.name, batches=[])
    if entity.delete is not None and entity.name in complete:
        manifest.deletions = stage_deletions(flow, store, run, entity, actor)
    manifest.relinked = reopen_relinked(flow, store, run.run_key, entity, actor)
    pending = store.records.ids_to_order(run_key=run.run_key, entity=entity.name, statuses=PENDING_LOAD)
    if not pending:
        return manifest
    if entity.prerequisites is not no_prerequisites:
        # The map step works prerequisites out; records mapped by an earlier release (or by hand)
        # get them here.
        missing = [record_id for record_id, known in pending if not known]
        for chunk in store.records.iter(ids=missing, statuses=PENDING_LOAD):
            store.records.save_order([(r.id, 0, prerequisites_of(flow, entity, r)) for r in chunk])
    count = len(pending)
    batches = min(math.ceil(count / entity.task_batch_size), entity.max_batches, max_map_length)
    if entity.batch_key is not None and batches > 1:
        manifest.batches = _batches_by_key(store, run, entity, batches)
        return manifest
    per_batch = math.ceil(count / batches)
    ranges = [
        (batch, pending[start][0], pending[min(start + per_batch, count) - 1][0])
        for batch, start in enumerate(range(0, count, per_batch))
    ]
    store.records.set_batches(run_key=run.run_key, entity=entity.name, statuses=PENDING_LOAD, ranges=ranges)
    manifest.batches = [batch for batch, _, _ in ranges]
    return manifest


def _batches_by_key(store: Store, run: RunRef, entity: Entity, batches: int) -> list[int]:
    """Batches by ``entity.batch_key``: one key's records share a batch (a stable hash of the key);
    records without a key fill the batches in turn."""
    assert entity.batch_key is not None
    used: set[int] = set()
    turn = 0
    for chunk in store.records.iter(run_key=run.run_key, entity=entity.name, statuses=PENDING_LOAD):
        plan: list[tuple[int, int, Sequence[Prerequisite] | None]] = []
        for record in chunk:
            key = entity.batch_key(record.payload or {}) if record.operation is Operation.WRITE else None
            if key:
                batch = zlib.crc32(key.encode()) % batches
            else:
                batch, turn = turn % batches, turn + 1
            plan.append((record.id, batch, None))
            used.add(batch)
        store.records.save_order(plan)
    return sorted(used)


def stage_deletions(flow: Flow, store: Store, run: RunRef, entity: Entity, actor: Actor) -> int:
    """Stage the keys the target holds for ``entity`` that this complete read did not see."""
    seen = store.records.keys_of_run(run.run_key, entity.name)
    gone = [
        (key, entry.remote_id, entry.last_loaded_hash)
        for key, entry in store.id_map.live_entries(flow.name, entity.name)
        if key not in seen
    ]
    staged = store.staging.stage_deletions(run, actor, entity.name, gone)
    if staged:
        log.info("%s: %d keys are gone from the source; their deletion rule applies", entity.name, staged)
    return staged


def reopen_relinked(flow: Flow, store: Store, run_key: str, entity: Entity, actor: Actor) -> int:
    """Load again the run's ``unchanged`` records whose prerequisites now stand for other target
    records than the ones their last write linked to; returns how many.

    A record is unchanged when its payload equals the last one loaded, but what it links (a
    contact -> company association, say) also depends on its prerequisites' target ids: when one
    of them changed (a contact that was linked to another person's record now has its own), the
    link must be written again. Records loaded before links were recorded are left as they are.
    """
    if not entity.depends_on:
        return 0
    reopened = 0
    for chunk in store.records.iter(run_key=run_key, entity=entity.name, statuses=(RecordStatus.UNCHANGED,)):
        entries = store.id_map.entries(flow.name, entity.name, [record.key for record in chunk])
        linked = [
            (record, entries[record.key])
            for record in chunk
            if entries.get(record.key) and entries[record.key].last_links
        ]
        if not linked:
            continue
        wanted = {record.id: prerequisites_of(flow, entity, record) for record, _ in linked}
        states = store.prerequisites.states(flow.name, run_key, {p for ps in wanted.values() for p in ps})
        results = []
        for record, entry in linked:
            described = {p.describe(flow.name): p for p in wanted[record.id]}
            verdict = readiness({text: states[p] for text, p in described.items()})
            if not verdict.ready:
                continue
            moved = [
                f"{text} is now {remote_id} in the target (was {entry.last_links.get(text) or 'absent'})"
                for text, remote_id in sorted(verdict.remote_ids.items())
                if entry.last_links.get(text) != remote_id
            ]
            if moved:
                results.append(
                    MappingResult(
                        record.id,
                        RecordStatus.MAPPED,
                        record.attempts,
                        payload=record.payload,
                        payload_hash=record.payload_hash,
                        error="; ".join(moved),
                        prerequisites=tuple(wanted[record.id]),
                    )
                )
        store.records.save_mapping(results, actor, action="relink")
        reopened += len(results)
    if reopened:
        log.info("%s: %d unchanged records load again, their prerequisites moved", entity.name, reopened)
    return reopened


def prerequisites_of(flow: Flow, entity: Entity, record: StoredRecord) -> list[Prerequisite]:
    """What the record needs in the target first, as its entity declares (none for a deletion)."""
    if record.operation is Operation.DELETE:
        return []
    if record.payload is None:
        raise CallableContractError(
            f"{record.entity} {record.key} is {record.status.value} without a payload"
        )
    return declared_prerequisites(flow, entity, record.key, record.source, record.payload)


def declared_prerequisites(
    flow: Flow, entity: Entity, key: str, source: Mapping[str, Any], payload: Mapping[str, Any]
) -> list[Prerequisite]:
    """``entity.prerequisites`` of one mapped record, checked against the entity's ``depends_on``."""
    declared = entity.prerequisites(MappedRecord(entity.name, key, source, payload))
    prerequisites = []
    for prerequisite in declared or ():
        if not isinstance(prerequisite, Prerequisite):
            raise CallableContractError(
                f"entity {entity.name}: prerequisites() for {key} gave {prerequisite!r}; expected "
                "Prerequisite(entity, key)"
            )
        if prerequisite.flow in (None, flow.name) and prerequisite.entity not in entity.depends_on:
            raise CallableContractError(
                f"flow {flow.name}: {entity.name} {key} needs {prerequisite.entity} "
                f"{prerequisite.key}, but entity {entity.name} does not declare depends_on "
                f"{prerequisite.entity!r} (so its records may load first)"
            )
        prerequisites.append(replace(prerequisite, key=str(prerequisite.key)))
    return prerequisites
