"""Map: staged sources -> payloads, through each entity's own ``map``; unchanged and echoes cost
no call."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_mlconn.sync.engine.manifests import MapManifest
from airflow_provider_mlconn.sync.engine.order import declared_prerequisites
from airflow_provider_mlconn.sync.errors import CallableContractError
from airflow_provider_mlconn.sync.flow import Entity, Flow, no_prerequisites
from airflow_provider_mlconn.sync.records import Operation, Prerequisite, RecordStatus, Rejection
from airflow_provider_mlconn.sync.store import Actor, MappingResult, StagedSource, Store, StoredRecord

#: What mapping reads of a record: a stored one, or a source being staged (mapping while staging).
Mappable = StoredRecord | StagedSource

log = logging.getLogger(__name__)

#: Statuses the map step (re)maps: all but ``loaded``/``unchanged`` and ``uncertain`` (a write of
#: that payload may be in the target; it is confirmed as it was sent). A rejected record is mapped
#: again when the step runs again: the mapping may have been fixed.
TO_MAP = (
    RecordStatus.STAGED,
    RecordStatus.MAPPED,
    RecordStatus.REJECTED,
    RecordStatus.WAITING,
    RecordStatus.FAILED,
)


def map_records(
    flow: Flow,
    store: Store,
    run_key: str,
    actor: Actor,
    *,
    claim_token: str | None = None,
    action: str = "map",
    statuses: Sequence[RecordStatus] = TO_MAP,
) -> MapManifest:
    """Map the run's records not in the target yet; mark ``unchanged`` what equals the last load
    and what is our own write read back from the other side (``echo_of``).

    With ``claim_token`` (replay) it maps the claimed records instead, whatever their run;
    ``run_key`` then only labels the manifest. ``statuses`` narrows what is (re)mapped: the map
    task's first try takes only what the extract left ``staged`` (it maps as it stages).
    """
    chunks = store.records.iter(
        run_key=None if claim_token else run_key, statuses=statuses, claim_token=claim_token
    )
    counts, echoes = _map_chunks(flow, store, chunks, actor, action)
    return MapManifest(run_key=run_key, counts=counts, echoes=echoes)


def map_staged(flow: Flow, store: Store, ids: Sequence[int], actor: Actor) -> dict[str, int]:
    """Map records just staged (``ids``), as the map step would; returns counts per status."""
    counts, _ = _map_chunks(
        flow, store, store.records.iter(ids=ids, statuses=(RecordStatus.STAGED,)), actor, "map"
    )
    return counts


def _map_chunks(
    flow: Flow, store: Store, chunks: Iterable[list[StoredRecord]], actor: Actor, action: str
) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    echoes = 0
    for chunk in chunks:
        results, echo_hashes = _map_chunk(flow, store, chunk)
        store.records.save_mapping(results, actor, action=action)
        echoes += mark_echoes(store, flow, echo_hashes)
        for result in results:
            counts[result.status.value] = counts.get(result.status.value, 0) + 1
    if echoes:
        log.info("%d records are our own writes read back (echoes): no call", echoes)
    return counts, echoes


def map_sources(
    flow: Flow, store: Store, staged: Sequence[StagedSource]
) -> tuple[list[MappingResult], dict[str, dict[str, str]]]:
    """Mapping results of sources about to be staged (``record_id`` is each one's place in
    ``staged``), and per entity the echoes found: what the map step would decide for them."""
    return _map_chunk(flow, store, staged)


def mark_echoes(store: Store, flow: Flow, echo_hashes: Mapping[str, Mapping[str, str]]) -> int:
    """Note in the id map the echoes mapping found (entity -> key -> hash); returns how many."""
    for entity_name, hashes in echo_hashes.items():
        store.id_map.mark_echoes(flow.name, entity_name, hashes)
    return sum(len(hashes) for hashes in echo_hashes.values())


def preview_mapping(flow: Flow, store: Store, records: Sequence[StoredRecord]) -> list[MappingResult]:
    """What mapping would do now, without saving (dry-run replays)."""
    return _map_chunk(flow, store, records)[0]


def map_one(entity: Entity, source: Mapping[str, Any]) -> Mapping[str, Any] | Rejection:
    """The entity's mapping of one source, as a payload mapping or a Rejection.

    A ``ValueError`` the mapping raises (a pydantic validation error included) is a rejection with
    its text: it says which field and why.
    """
    try:
        mapped = entity.map(source)
    except ValueError as error:
        return Rejection(f"{type(error).__name__}: {error}")
    if type(mapped) is dict:
        return mapped  # the common answer, without the checks below (per record, on a hot path)
    if isinstance(mapped, Rejection):
        return mapped
    model_dump = getattr(mapped, "model_dump", None)
    if callable(model_dump):
        mapped = model_dump(mode="json", exclude_none=False)
    if not isinstance(mapped, Mapping):
        raise CallableContractError(
            f"entity {entity.name}: map() returned {type(mapped).__name__}; expected a mapping, a "
            "pydantic model or a Rejection"
        )
    return mapped


def _map_chunk(
    flow: Flow, store: Store, chunk: Sequence[Mappable]
) -> tuple[list[MappingResult], dict[str, dict[str, str]]]:
    """The chunk's mapping results, and per entity the echoes found (key -> payload hash)."""
    entries = {}
    echo_entries = {}
    entities = {entity_name: flow.entity(entity_name) for entity_name in {record.entity for record in chunk}}
    for entity_name, entity in entities.items():
        keys = [record.key for record in chunk if record.entity == entity_name]
        entries[entity_name] = store.id_map.entries(flow.name, entity_name, keys)
        if entity.echo_of is not None:
            echo_entries[entity_name] = store.id_map.entries(flow.name, entity.echo_of, keys)
    results: list[MappingResult] = []
    echoes: dict[str, dict[str, str]] = {}
    digest_of = store.cipher.digest
    for record in chunk:
        if record.operation is Operation.DELETE:
            continue  # nothing to map: the deletion rule takes the key as it is
        entity = entities[record.entity]
        mapped = map_one(entity, record.source)
        if isinstance(mapped, Rejection):
            results.append(
                MappingResult(record.id, RecordStatus.REJECTED, record.attempts, error=mapped.reason)
            )
            continue
        digest = digest_of(mapped)
        entry = entries[record.entity].get(record.key)
        if entry is not None and entry.deleted_at is None and entry.last_loaded_hash == digest:
            results.append(
                MappingResult(
                    record.id,
                    RecordStatus.UNCHANGED,
                    record.attempts,
                    payload=mapped,
                    payload_hash=digest,
                    remote_id=entry.remote_id,
                )
            )
            continue
        echo = _echo_note(entity, store, record, echo_entries.get(record.entity, {}))
        if echo is not None:
            results.append(
                MappingResult(
                    record.id,
                    RecordStatus.UNCHANGED,
                    record.attempts,
                    payload=mapped,
                    payload_hash=digest,
                    remote_id=entry.remote_id if entry is not None else None,
                    error=echo,
                )
            )
            if entry is not None:
                echoes.setdefault(record.entity, {})[record.key] = digest
            continue
        results.append(
            MappingResult(
                record.id,
                RecordStatus.MAPPED,
                record.attempts,
                payload=mapped,
                payload_hash=digest,
                prerequisites=_prerequisites(flow, entity, record, mapped),
            )
        )
    return results, echoes


def _prerequisites(
    flow: Flow, entity: Entity, record: Mappable, payload: Mapping[str, Any]
) -> tuple[Prerequisite, ...] | None:
    """The record's prerequisites, worked out while source and payload are at hand, so ordering
    is a matter of batches; None (worked out by ``order``) when the entity has none or declares
    them wrongly: that error belongs to the entity's order task, not to every entity's map."""
    if entity.prerequisites is no_prerequisites:
        return None
    try:
        return tuple(declared_prerequisites(flow, entity, record.key, record.source, payload))
    except CallableContractError:
        return None


def _echo_note(entity: Entity, store: Store, record: Mappable, written: Mapping[str, Any]) -> str | None:
    """A note when the record's source is what ``entity.echo_of`` last wrote to this side."""
    if entity.echo_of is None or entity.echo_view is None:
        return None
    last = written.get(record.key)
    if last is None or last.deleted_at is not None or not last.last_loaded_hash:
        return None
    if store.cipher.digest(entity.echo_view(record.source)) != last.last_loaded_hash:
        return None
    return f"our own write ({entity.echo_of} {record.key}) read back: nothing to send"
