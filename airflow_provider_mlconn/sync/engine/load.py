"""Load: claimed records to the target through their entity, every outcome saved before the next
call; uncertain writes confirmed before they are ever sent again."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_mlconn.sync.engine.manifests import LoadManifest
from airflow_provider_mlconn.sync.errors import CallableContractError, LoadBlocked, LoadIncomplete
from airflow_provider_mlconn.sync.flow import Entity, Flow
from airflow_provider_mlconn.sync.ordering import PrerequisiteState, Readiness, Verdict, readiness
from airflow_provider_mlconn.sync.records import (
    PENDING_LOAD,
    Absent,
    Failed,
    Loaded,
    LoadRecord,
    Operation,
    Prerequisite,
    RecordStatus,
    Rejection,
    Uncertain,
    WaitingRecord,
    WriteMode,
)
from airflow_provider_mlconn.sync.store import (
    Actor,
    JournalEntry,
    JournalSettlement,
    OutcomeRow,
    Store,
    StoredRecord,
    WaitPolicy,
)

log = logging.getLogger(__name__)

#: After this many load calls in a row raise, a task stops calling and leaves the rest for a retry.
MAX_CONSECUTIVE_CALL_ERRORS = 3


class LoadProgress(Protocol):
    """Who watches a load (progress lines): told the manifest the load fills in as it goes, and how
    many records it claimed."""

    def started(self, manifest: LoadManifest, total: int) -> None: ...


def load_batch(
    flow: Flow,
    store: Store,
    *,
    run_key: str,
    entity_name: str,
    batch: int,
    actor: Actor,
    progress: LoadProgress | None = None,
) -> LoadManifest:
    """Load the batch's records that are not loaded yet; raise after persisting if any did not load."""
    entity = flow.entity(entity_name)
    manifest = LoadManifest(run_key=run_key, entity=entity.name, batch=batch)
    token = store.claims.claim(owner=actor.owner, run_key=run_key, entity=entity.name, batch=batch)
    try:
        # Records of the batch another worker holds: their outcome comes from there, not from us.
        held_elsewhere = store.records.count(
            run_key=run_key, entity=entity.name, statuses=PENDING_LOAD, batch=batch, not_claimed_by=token
        )
        if progress is not None:
            pending = store.records.count(
                run_key=run_key, entity=entity.name, statuses=PENDING_LOAD, batch=batch
            )
            progress.started(manifest, pending - held_elsewhere)
        load_claimed(flow, store, entity, token=token, actor=actor, manifest=manifest, action="load")
    finally:
        store.claims.release(token)
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
    """Load the claimed records of one entity, ``call_batch_size`` per call.

    Every outcome is saved before the next call. A record whose prerequisite failed is held back
    (``failed``, no call); one whose prerequisite is rejected or not in the target waits
    (``waiting``, no call, with the reason). A record with a write of unknown outcome in the
    journal is first looked up (``entity.confirm``): found, it is ``loaded`` with the found id;
    absent, it is sent. For an entity that creates on every send, each send is noted in the
    journal before the call. After ``MAX_CONSECUTIVE_CALL_ERRORS`` raising calls in a row the rest
    is left as it is (still pending) for a retry.

    While one call runs, a helper thread reads the next chunk and checks its prerequisites (store
    reads only; prerequisites belong to other entities, which this call does not write), so the
    target is not kept waiting for the store between calls; it starts with the call and ends
    before the call's outcomes are saved.
    """
    chunks = store.records.iter(
        claim_token=token, entity=entity.name, statuses=PENDING_LOAD, chunk_size=entity.call_batch_size
    )

    def prepare() -> _PreparedChunk | None:
        chunk = next(chunks, None)
        return None if chunk is None else _prepare_chunk(flow, entity, store, chunk)

    consecutive_errors = 0
    wait = WaitPolicy(max_wait=flow.max_wait)
    # Notes come from sends of create-once entities and lost answers of entities with a lookup;
    # for others, only a note already there (an earlier release, a changed entity) needs reading.
    # Keys claimed here get no note from anyone else while the claim is held.
    journaled = (
        entity.write is WriteMode.CREATE_ONCE
        or entity.confirm is not None
        or store.journal.holds_any(flow.name, entity.name)
    )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"prefetch-{entity.name}") as prefetcher:
        upcoming = prefetcher.submit(prepare)
        while (prepared := upcoming.result()) is not None:
            if consecutive_errors >= MAX_CONSECUTIVE_CALL_ERRORS:
                manifest.not_attempted += len(prepared.chunk)
                manifest.retriable_failures += len(prepared.chunk)
                upcoming = prefetcher.submit(prepare)
                continue
            call = _Call(flow, entity, manifest, digest=store.cipher.digest)
            call.outcomes.extend(prepared.held_back)
            call.outcomes.extend(prepared.waiting)
            manifest.held_back += len(prepared.held_back)
            manifest.waiting += len(prepared.waiting)
            _tell_waiting(entity, prepared)
            to_send = call.confirm(
                prepared.ready,
                store.journal.pending(flow.name, entity.name, prepared.keys) if journaled else {},
            )
            if to_send and entity.write is WriteMode.CREATE_ONCE:
                store.journal.note_sent(flow.name, entity.name, [(r.key, r.id) for r, _ in to_send], actor)
                call.noted.update(r.key for r, _ in to_send)
            # The next chunk is read while this call waits for the target, and is ready before this
            # thread writes the outcomes: two threads busy on the store at once only trade the GIL
            # (each SQLite step gives it up and waits to get it back).
            upcoming = prefetcher.submit(prepare)
            raised = call.send(to_send)
            consecutive_errors = consecutive_errors + 1 if raised else 0
            wait_for(upcoming)
            store.claims.save_outcomes(
                token,
                call.outcomes,
                actor,
                action=action,
                journal=call.settlement(),
                wait=wait,
                claimed={record.id: record for record in prepared.chunk},
            )


def wait_for(future: Future[Any]) -> None:
    """Until ``future`` is done (its error, if any, is raised where its result is taken)."""
    futures_wait([future])


_NOTHING_NEEDED = Readiness(remote_ids={}, reason=None)


@dataclass(frozen=True)
class _PreparedChunk:
    """One chunk of claimed records, split by what happens to them now."""

    chunk: list[StoredRecord]
    #: Held back for a prerequisite that failed in this run (outcome ``failed``, no call).
    held_back: list[OutcomeRow]
    #: Waiting for a prerequisite that is rejected or not in the target (outcome ``waiting``).
    waiting: list[OutcomeRow]
    ready: list[tuple[StoredRecord, LoadRecord]]

    @property
    def keys(self) -> list[str]:
        return [record.key for record, _ in self.ready]


def _tell_waiting(entity: Entity, prepared: _PreparedChunk) -> None:
    """Hand the chunk's waiting records to the entity's ``on_wait`` (best effort: logged on failure)."""
    if entity.on_wait is None or not prepared.waiting:
        return
    reasons = {row.record_id: row.error or "" for row in prepared.waiting}
    waiting = [
        WaitingRecord(record.entity, record.key, record.source, record.payload or {}, reasons[record.id])
        for record in prepared.chunk
        if record.id in reasons
    ]
    try:
        entity.on_wait(waiting)
    except Exception:
        log.exception("%s: telling the source that %d records wait failed", entity.name, len(waiting))


def _prepare_chunk(flow: Flow, entity: Entity, store: Store, chunk: list[StoredRecord]) -> _PreparedChunk:
    states: dict[tuple[str, Prerequisite], PrerequisiteState] = {}
    for run_key in {record.run_key for record in chunk}:
        wanted = {p for record in chunk if record.run_key == run_key for p in record.prerequisites}
        if wanted:
            for prerequisite, state in store.prerequisites.states(flow.name, run_key, wanted).items():
                states[(run_key, prerequisite)] = state
    entries = store.id_map.entries(flow.name, entity.name, [r.key for r in chunk])
    sharing = store.id_map.keys_by_remote_id(flow.name, entity.name, {e.remote_id for e in entries.values()})
    held_back: list[OutcomeRow] = []
    waiting: list[OutcomeRow] = []
    ready: list[tuple[StoredRecord, LoadRecord]] = []
    for record in chunk:
        described = {p.describe(flow.name): p for p in record.prerequisites}
        verdict = (
            readiness({text: states[(record.run_key, p)] for text, p in described.items()})
            if described
            else _NOTHING_NEEDED
        )
        if verdict.verdict is Verdict.HOLD:
            held_back.append(
                OutcomeRow(record.id, RecordStatus.FAILED, attempted=False, error=verdict.reason)
            )
            continue
        if verdict.verdict is Verdict.WAIT:
            waiting.append(OutcomeRow(record.id, RecordStatus.WAITING, attempted=False, error=verdict.reason))
            continue
        entry = entries.get(record.key)
        remote_id = entry.remote_id if entry is not None else record.remote_id
        shared_by = sharing.get(remote_id, set()) if remote_id else set()
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
                    operation=record.operation,
                ),
            )
        )
    return _PreparedChunk(chunk, held_back, waiting, ready)


class _Call:
    """One call's worth of records: confirmations, the send, and the outcomes to save."""

    def __init__(
        self, flow: Flow, entity: Entity, manifest: LoadManifest, *, digest: Callable[[Any], str]
    ) -> None:
        self.flow = flow
        self.entity = entity
        self.manifest = manifest
        self.digest = digest
        self.outcomes: list[OutcomeRow] = []
        self.known: set[str] = set()
        self.uncertain: dict[str, tuple[int, str]] = {}
        #: Keys with a journal note when the chunk was read, and keys this call noted as sent:
        #: the only notes its outcomes settle.
        self.journaled: set[str] = set()
        self.noted: set[str] = set()

    def confirm(
        self, ready: list[tuple[StoredRecord, LoadRecord]], journal: Mapping[str, JournalEntry]
    ) -> list[tuple[StoredRecord, LoadRecord]]:
        """Look up the records whose earlier write has no known outcome; returns what to send."""
        self.journaled.update(journal)
        doubtful = [(record, item) for record, item in ready if record.key in journal]
        to_send = [(record, item) for record, item in ready if record.key not in journal]
        if not doubtful:
            return to_send
        confirm = self.entity.confirm
        if confirm is None:
            # Idempotent writes (an upsert on a key): sending again is the confirmation.
            self.known.update(record.key for record, _ in doubtful)
            return ready
        found = _guarded(
            lambda: confirm([item for _, item in doubtful]),
            f"confirm of {len(doubtful)} {self.entity.name} records",
        )
        for record, item in doubtful:
            earlier = journal[record.key].describe()
            result = found.get(record.key) if isinstance(found, Mapping) else None
            if isinstance(result, Loaded):
                note = f"an earlier write ({earlier}) had reached the target: confirmed by lookup"
                if result.note:
                    note += f"; {result.note}"
                self.outcomes.append(
                    OutcomeRow(
                        record.id,
                        RecordStatus.LOADED,
                        False,
                        str(result.remote_id),
                        "created",
                        note,
                        links=_links(self.flow, item),
                    )
                )
                self.known.add(record.key)
                self.manifest.loaded += 1
                self.manifest.confirmed += 1
                self.manifest.created += 1
            elif isinstance(result, Absent):
                to_send.append((record, item))
            else:
                why = result.error if isinstance(result, Failed) else str(found)
                self.outcomes.append(
                    OutcomeRow(
                        record.id,
                        RecordStatus.UNCERTAIN,
                        False,
                        error=f"not sent again: the earlier write ({earlier}) could not be confirmed: {why}",
                    )
                )
                self.manifest.uncertain += 1
                self.manifest.retriable_failures += 1
        return to_send

    def send(self, items: list[tuple[StoredRecord, LoadRecord]]) -> bool:
        """Write (or delete) the records; returns True when a call raised."""
        raised = False
        for operation, function in (
            (Operation.WRITE, self.entity.load),
            (Operation.DELETE, self.entity.delete),
        ):
            batch = [(record, item) for record, item in items if item.operation is operation]
            if not batch:
                continue
            if function is None:
                raise CallableContractError(
                    f"entity {self.entity.name} has {operation.value} records but no rule"
                )
            self.manifest.calls += 1
            to_call = [item for _, item in batch]
            results = _guarded(
                lambda f=function, r=to_call: f(r),
                f"{operation.value} of {len(batch)} {self.entity.name} records",
            )
            if isinstance(results, Exception):
                raised = True
                results = {record.key: self._after_raise(results) for record, _ in batch}
            elif not isinstance(results, Mapping):
                raise CallableContractError(
                    f"entity {self.entity.name}: {operation.value} returned {type(results).__name__}; "
                    "expected a mapping of source key -> Loaded | Failed | Uncertain | Rejection"
                )
            self._record(batch, {str(key): value for key, value in results.items()}, operation)
        return raised

    def _after_raise(self, error: Exception) -> Failed | Uncertain:
        text = f"{type(error).__name__}: {error}"
        if self.entity.write is WriteMode.CREATE_ONCE:
            return Uncertain(f"the call raised after the records were sent: {text}")
        return Failed(text, retriable=getattr(error, "retriable", True))

    def _record(
        self, batch: list[tuple[StoredRecord, LoadRecord]], results: Mapping[str, Any], operation: Operation
    ) -> None:
        # Counted here and added to the manifest once per call: a pydantic model's attribute
        # assignment costs microseconds, twice per record.
        tally: Counter[str] = Counter()
        for record, item in batch:
            result = results.get(record.key)
            if result is None and self.entity.write is WriteMode.CREATE_ONCE:
                # The call went out and said nothing of this record: it may have been created.
                result = Uncertain(f"{self.entity.name}: the load returned no outcome for this record")
            if isinstance(result, Loaded):
                deleted = operation is Operation.DELETE
                change = "deleted" if deleted else ("created" if result.created else "updated")
                self.outcomes.append(
                    OutcomeRow(
                        record.id,
                        RecordStatus.LOADED,
                        True,
                        str(result.remote_id),
                        change,
                        result.note,
                        links=_links(self.flow, item),
                        deleted=deleted,
                        also=self._also(result),
                    )
                )
                self.known.add(record.key)
                tally["loaded"] += 1
                if deleted:
                    tally["deleted"] += 1
                elif result.created:
                    tally["created"] += 1
                else:
                    tally["updated"] += 1
            elif isinstance(result, Rejection):
                self.outcomes.append(OutcomeRow(record.id, RecordStatus.REJECTED, True, error=result.reason))
                self.known.add(record.key)
                tally["rejected"] += 1
            elif isinstance(result, Uncertain) and self.entity.confirm is not None:
                self.outcomes.append(OutcomeRow(record.id, RecordStatus.UNCERTAIN, True, error=result.error))
                self.uncertain[record.key] = (record.id, result.error)
                tally["uncertain"] += 1
                tally["retriable_failures"] += 1
            else:
                failure = _as_failure(self.entity, result)
                self.outcomes.append(OutcomeRow(record.id, RecordStatus.FAILED, True, error=failure.error))
                self.known.add(record.key)
                tally["failed"] += 1
                if failure.retriable:
                    tally["retriable_failures"] += 1
        for name, count in tally.items():
            setattr(self.manifest, name, getattr(self.manifest, name) + count)

    def _also(self, result: Loaded) -> tuple[tuple[str, str, str, str], ...]:
        rows = []
        for (entity_name, key), (remote_id, payload) in result.also.items():
            self.flow.entity(entity_name)  # a name the flow does not declare is a bug: say so
            rows.append((entity_name, str(key), str(remote_id), self.digest(payload)))
        return tuple(rows)

    def settlement(self) -> JournalSettlement:
        """What the outcomes settle in the journal: the notes of keys that had one (no statement for
        the common case of none; a note another worker makes meanwhile is not ours to drop)."""
        return JournalSettlement(
            flow=self.flow.name,
            entity=self.entity.name,
            known=frozenset(self.known & (self.journaled | self.noted)),
            uncertain=dict(self.uncertain),
        )


def _as_failure(entity: Entity, result: Any) -> Failed:
    if isinstance(result, Failed):
        return result
    if isinstance(result, Uncertain):
        # No lookup exists for this entity: its writes are idempotent, so a resend is the answer.
        return Failed(result.error)
    if result is None:
        return Failed(f"{entity.name}: the load returned no outcome for this record")
    return Failed(
        f"{entity.name}: the load returned {type(result).__name__} for this record; expected Loaded, "
        "Failed, Uncertain or Rejection"
    )


def _links(flow: Flow, item: LoadRecord) -> dict[str, str]:
    return {
        prerequisite.describe(flow.name): remote_id
        for prerequisite, remote_id in item.prerequisite_ids.items()
    }


def _guarded(call: Any, what: str) -> Any:
    """The call's result, or the exception it raised (logged)."""
    try:
        return call()
    except CallableContractError:
        raise
    except Exception as error:
        if hasattr(error, "retriable"):
            # Classified by whoever raised it (a refused token, a quota): its message says it all.
            log.error("%s failed: %s", what, error)
        else:
            log.exception("%s raised", what)
        return error


def raise_if_incomplete(manifest: LoadManifest, *, what: str) -> None:
    """Raise LoadIncomplete (or LoadBlocked when no retry of this task can help)."""
    if not manifest.unfinished:
        return
    message = (
        f"{what}: {manifest.loaded} loaded, {manifest.rejected} rejected, {manifest.failed} failed, "
        f"{manifest.held_back} held back for a prerequisite that failed, {manifest.not_attempted} not "
        f"attempted, {manifest.uncertain} uncertain (confirmed before any resend), {manifest.waiting} "
        "waiting for a prerequisite not in the target. "
        f"Outcomes are saved (`mlconn audit failures --run {manifest.run_key}`); "
        "a retry loads only what is not loaded."
    )
    error_class = LoadIncomplete if manifest.retriable_failures else LoadBlocked
    raise error_class(message, failed=manifest.failed + manifest.uncertain, held_back=manifest.held_back)
