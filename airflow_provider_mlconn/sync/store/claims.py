"""Claims and load outcomes: two workers never load the same record, and an outcome is saved only
while its claim is held.

A load claims its records in one transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
database write lock on SQLite). A claim older than ``claim_timeout`` is taken over (the worker
died); the same task instance (a later try) takes its own claims at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.records import PENDING_LOAD, RecordStatus
from airflow_provider_mlconn.sync.schema import records
from airflow_provider_mlconn.sync.store.bulk import bound_value, update_rows
from airflow_provider_mlconn.sync.store.database import Database, chunks, utcnow
from airflow_provider_mlconn.sync.store.events import EventBatch
from airflow_provider_mlconn.sync.store.id_map import IdMapRow, upsert_entries
from airflow_provider_mlconn.sync.store.journal import WriteJournal
from airflow_provider_mlconn.sync.store.rows import ACTOR_COLUMNS, Actor, OutcomeRow, StoredRecord

log = logging.getLogger(__name__)

#: What saving a load outcome sets on its record (the claim columns are cleared: it is given back).
_OUTCOME_COLUMNS = (
    "status",
    "attempts",
    "remote_id",
    "change",
    "error",
    "waiting_since",
    "updated_at",
    *ACTOR_COLUMNS,
)
#: The claim columns an outcome clears: the record is given back with it.
_CLAIM_COLUMNS = ("claim_token", "claim_owner", "claimed_at")


class _ClaimLost(Exception):
    """An outcome's record is no longer claimed by the token: save again, checking each one."""


@dataclass(frozen=True)
class JournalSettlement:
    """What the outcomes of one call mean for the write journal (saved in the same transaction):
    ``known`` keys have a definite outcome now; ``uncertain`` keys lost their response."""

    flow: str
    entity: str
    known: frozenset[str] = frozenset()
    uncertain: Mapping[str, tuple[int, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class WaitPolicy:
    """How long a record may wait for a prerequisite before it is rejected, and the clock."""

    max_wait: timedelta
    now: datetime | None = None


class Claims:
    def __init__(
        self, db: Database, cipher: PayloadCipher, journal: WriteJournal, *, claim_timeout: timedelta
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._journal = journal
        self.claim_timeout = claim_timeout

    def claim(
        self,
        *,
        owner: str,
        statuses: Sequence[RecordStatus] = PENDING_LOAD,
        run_key: str | None = None,
        entity: str | None = None,
        batch: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> str:
        """Claim the matching records nobody else holds; returns the claim token.

        Read the claimed records with ``records.iter(claim_token=...)``; give back the ones left
        with ``release(token)``.
        """
        token = str(uuid.uuid4())
        conditions: list[Any] = [records.c.status.in_([s.value for s in statuses])]
        if run_key is not None:
            conditions.append(records.c.run_key == run_key)
        if entity is not None:
            conditions.append(records.c.entity == entity)
        if batch is not None:
            conditions.append(records.c.batch == batch)

        def work(connection: Connection) -> None:
            now = utcnow()
            free = sa.or_(
                records.c.claim_token.is_(None),
                records.c.claim_owner == owner,
                records.c.claimed_at < now - self.claim_timeout,
            )
            id_chunks: Iterable[Sequence[int] | None] = chunks(ids) if ids is not None else [None]
            claim = records.update().values(claim_token=token, claim_owner=owner, claimed_at=now)
            if connection.dialect.name == "sqlite":
                # The transaction holds the database's write lock: nothing to skip, one statement.
                for id_chunk in id_chunks:
                    narrowed = [records.c.id.in_(id_chunk)] if id_chunk is not None else []
                    connection.execute(claim.where(*conditions, free, *narrowed))
                return
            for id_chunk in id_chunks:
                query = sa.select(records.c.id).where(*conditions, free).order_by(records.c.id)
                if id_chunk is not None:
                    query = query.where(records.c.id.in_(id_chunk))
                candidates = list(connection.execute(query.with_for_update(skip_locked=True)).scalars())
                for chunk in chunks(candidates):
                    connection.execute(claim.where(records.c.id.in_(chunk), *conditions, free))

        self._db.write(work)
        return token

    def release(self, token: str) -> None:
        self._db.write(
            lambda c: c.execute(
                records.update()
                .where(records.c.claim_token == token)
                .values(claim_token=None, claim_owner=None, claimed_at=None)
            )
        )

    def save_outcomes(
        self,
        token: str,
        outcomes: Sequence[OutcomeRow],
        actor: Actor,
        *,
        action: str,
        journal: JournalSettlement | None = None,
        wait: WaitPolicy | None = None,
        claimed: Mapping[int, StoredRecord] | None = None,
    ) -> int:
        """Persist load outcomes of claimed records, release their claims; returns how many were saved.

        An outcome whose claim was taken over meanwhile (this worker was presumed dead) is not
        written: the new owner's outcome counts. Loaded records update the id map; deletions mark
        it. A waiting record keeps the time its key started waiting (across runs); past
        ``wait.max_wait`` it is rejected instead.

        ``claimed`` is the records as read under this claim (by id). With it, and a driver that
        counts the rows an ``executemany`` changed, the records are not read again: each update
        names the claim token, and if fewer rows changed than outcomes were given (a claim was
        taken over meanwhile) the transaction is rolled back and saved again from a fresh read.
        """
        if not outcomes:
            return 0
        if claimed is not None and self._db.engine.dialect.supports_sane_multi_rowcount:
            trusted = {o.record_id: claimed[o.record_id] for o in outcomes if o.record_id in claimed}
            if len(trusted) == len(outcomes):
                try:
                    return self._db.write(
                        lambda connection: self._save(
                            connection,
                            token,
                            outcomes,
                            trusted,
                            actor=actor,
                            action=action,
                            journal=journal,
                            wait=wait,
                            checked=False,
                        )
                    )
                except _ClaimLost:
                    log.info("a claim was taken over while loading: saving outcomes from a fresh read")
        return self._db.write(
            lambda connection: self._save(
                connection,
                token,
                outcomes,
                _held(connection, token, outcomes),
                actor=actor,
                action=action,
                journal=journal,
                wait=wait,
            )
        )

    def _save(
        self,
        connection: Connection,
        token: str,
        outcomes: Sequence[OutcomeRow],
        held: Mapping[int, Any],  # StoredRecord, or a row of its columns read by ``_held``
        *,
        actor: Actor,
        action: str,
        journal: JournalSettlement | None,
        wait: WaitPolicy | None,
        checked: bool = True,
    ) -> int:
        """Write the outcomes of the ``held`` records. ``checked``: ``held`` was read under the
        claim in this transaction; otherwise each update names the token, and ``_ClaimLost`` is
        raised (rolling back) unless every one of them changed its row."""
        now = (wait.now if wait and wait.now else None) or utcnow()
        lost = [o.record_id for o in outcomes if o.record_id not in held]
        if lost:
            log.warning("records %s: claim lost before their outcome was saved", lost)
        saved = [o for o in outcomes if o.record_id in held]
        waits = _waiting_since(
            connection, [held[o.record_id] for o in saved if o.status is RecordStatus.WAITING]
        )
        # Rows go to the driver as they are: the step's time stamp is converted once, a waiting
        # record's own time when it is set.
        stamp = bound_value(connection, records.c.updated_at, now)
        touched = (stamp, *actor.values())
        updates = []
        events = EventBatch(connection, action=action, actor=actor, at=now)
        id_rows: list[IdMapRow] = []
        for outcome in saved:
            row = held[outcome.record_id]
            status, error = outcome.status, outcome.error
            waiting_since = None
            if status is RecordStatus.WAITING:
                waiting_since = row.waiting_since or waits.get(row.id) or now
                if wait is not None and now - waiting_since > wait.max_wait:
                    days = (now - waiting_since).total_seconds() / 86400
                    status = RecordStatus.REJECTED
                    error = f"waited {days:.1f} days (longer than {_span(wait.max_wait)}): {error}"
            attempts = row.attempts + (1 if outcome.attempted else 0)
            error_token = None if error is None else self._cipher.encrypt(error)
            updates.append(
                (
                    status.value,
                    attempts,
                    outcome.remote_id,
                    outcome.change,
                    error_token,
                    None
                    if waiting_since is None
                    else bound_value(connection, records.c.waiting_since, waiting_since),
                    *touched,
                    outcome.record_id,
                )
            )
            events.add(
                outcome.record_id,
                status,
                attempts,
                payload_hash=row.payload_hash,
                remote_id=outcome.remote_id,
                change=outcome.change,
                error=error_token,
            )
            if status is RecordStatus.LOADED and outcome.remote_id is not None:
                links = (
                    orjson.dumps(dict(outcome.links), option=orjson.OPT_SORT_KEYS).decode()
                    if outcome.links
                    else None
                )
                # A deletion leaves the key gone, with no content that counts as unchanged.
                last_hash, deleted_at = ("", now) if outcome.deleted else (row.payload_hash or "", None)
                id_rows.append(
                    IdMapRow(
                        row.flow,
                        row.entity,
                        row.key,
                        outcome.remote_id,
                        last_hash,
                        outcome.record_id,
                        row.run_key,
                        links,
                        deleted_at,
                    )
                )
                id_rows.extend(
                    IdMapRow(row.flow, entity, key, remote_id, digest, outcome.record_id, row.run_key)
                    for entity, key, remote_id, digest in outcome.also
                )
        # The claim is given back with the outcome: one statement per record does both.
        if checked:
            update_rows(connection, records, _OUTCOME_COLUMNS, updates, cleared=_CLAIM_COLUMNS, bound=True)
        else:
            changed = update_rows(
                connection,
                records,
                _OUTCOME_COLUMNS,
                [(*row, token) for row in updates],
                also="claim_token",
                cleared=_CLAIM_COLUMNS,
                bound=True,
            )
            if changed != len(updates):
                raise _ClaimLost()
        upsert_entries(connection, id_rows)
        events.write()
        if journal is not None:
            self._journal.settle(
                connection,
                journal.flow,
                journal.entity,
                known=journal.known,
                uncertain=journal.uncertain,
                actor=actor,
            )
        return len(updates)


def _held(connection: Connection, token: str, outcomes: Sequence[OutcomeRow]) -> dict[int, Any]:
    """The outcomes' records still claimed by ``token``, read now, by id."""
    return {
        row.id: row
        for chunk in chunks(outcomes)
        for row in connection.execute(
            sa.select(
                records.c.id,
                records.c.flow,
                records.c.entity,
                records.c.source_key.label("key"),
                records.c.run_key,
                records.c.payload_hash,
                records.c.attempts,
                records.c.waiting_since,
            ).where(
                records.c.id.in_([o.record_id for o in chunk]),
                records.c.claim_token == token,
            )
        )
    }


def _waiting_since(connection: Connection, rows: Sequence[Any]) -> dict[int, datetime]:
    """For records about to wait: when their key started waiting, if its previous row waited too."""
    if not rows:
        return {}
    found: dict[int, datetime] = {}
    by_group: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        by_group.setdefault((row.flow, row.entity), {})[row.key] = row
    for (flow, entity), by_key in by_group.items():
        previous: dict[str, tuple[int, str, datetime | None]] = {}
        for chunk in chunks(sorted(by_key)):
            for earlier in connection.execute(
                sa.select(
                    records.c.id, records.c.source_key, records.c.status, records.c.waiting_since
                ).where(records.c.flow == flow, records.c.entity == entity, records.c.source_key.in_(chunk))
            ):
                current = by_key[earlier.source_key]
                if earlier.id >= current.id:
                    continue
                best = previous.get(earlier.source_key)
                if best is None or best[0] < earlier.id:
                    previous[earlier.source_key] = (earlier.id, earlier.status, earlier.waiting_since)
        for key, (_, status, since) in previous.items():
            if status == RecordStatus.WAITING.value and since is not None:
                found[by_key[key].id] = since
    return found


def _span(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{delta.total_seconds() / 3600:g} hours"
