"""The write journal: writes whose outcome is not known, so they are confirmed before a resend.

For an entity that creates on every send (``WriteMode.CREATE_ONCE``) the engine notes each record
as ``sent`` in its own committed transaction *before* the call, and removes the note with the
outcome. A note that survives means the outcome was never saved (the worker died mid-call) or
the response was lost (``uncertain``): before the key is sent again, by any run, retry or replay,
the entity looks it up by its business key. One note per key, whatever run the record is in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.schema import write_journal
from airflow_provider_mlconn.sync.store.database import Database, chunks, utcnow
from airflow_provider_mlconn.sync.store.rows import Actor

SENT = "sent"
UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class JournalEntry:
    """A write of ``key`` whose outcome is unknown: noted ``sent`` at ``sent_at`` by ``sent_by``."""

    key: str
    record_id: int
    state: str
    sent_at: datetime
    sent_by: str
    error: str | None

    def describe(self) -> str:
        what = "its response was lost" if self.state == UNCERTAIN else "no outcome was saved"
        why = f" ({self.error})" if self.error else ""
        return f"sent at {self.sent_at:%Y-%m-%d %H:%M:%S} UTC by {self.sent_by}; {what}{why}"


class WriteJournal:
    def __init__(self, db: Database, cipher: PayloadCipher) -> None:
        self._db = db
        self._cipher = cipher

    def pending(self, flow: str, entity: str, keys: Iterable[str]) -> dict[str, JournalEntry]:
        found: dict[str, JournalEntry] = {}
        with self._db.read() as connection:
            for chunk in chunks(sorted(set(keys))):
                for row in connection.execute(
                    sa.select(write_journal).where(
                        write_journal.c.flow == flow,
                        write_journal.c.entity == entity,
                        write_journal.c.source_key.in_(chunk),
                    )
                ).mappings():
                    found[row["source_key"]] = JournalEntry(
                        key=row["source_key"],
                        record_id=row["record_id"],
                        state=row["state"],
                        sent_at=row["sent_at"],
                        sent_by=row["sent_by"],
                        error=self._cipher.decrypt(row["error"]),
                    )
        return found

    def holds_any(self, flow: str, entity: str) -> bool:
        """Whether the journal holds a note for any key of ``entity``."""
        with self._db.read() as connection:
            return (
                connection.execute(
                    sa.select(write_journal.c.source_key)
                    .where(write_journal.c.flow == flow, write_journal.c.entity == entity)
                    .limit(1)
                ).first()
                is not None
            )

    def count(self, flow: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(write_journal)
        if flow is not None:
            query = query.where(write_journal.c.flow == flow)
        with self._db.read() as connection:
            return int(connection.execute(query).scalar_one())

    def note_sent(self, flow: str, entity: str, sends: Sequence[tuple[str, int]], actor: Actor) -> None:
        """Commit ``sent`` notes for ``(key, record_id)`` before the call that sends them."""
        if not sends:
            return
        self._db.write(
            lambda connection: _upsert(connection, flow, entity, sends, actor=actor, state=SENT, errors=None)
        )

    def settle(
        self,
        connection: Connection,
        flow: str,
        entity: str,
        *,
        known: Iterable[str],
        uncertain: Mapping[str, tuple[int, str]],
        actor: Actor,
    ) -> None:
        """Inside the outcome's transaction: drop the notes of keys whose outcome is now known and
        mark ``uncertain`` the ones whose response was lost (key -> (record id, error))."""
        known_keys = sorted(set(known) - set(uncertain))
        for chunk in chunks(known_keys):
            connection.execute(
                write_journal.delete().where(
                    write_journal.c.flow == flow,
                    write_journal.c.entity == entity,
                    write_journal.c.source_key.in_(chunk),
                )
            )
        if uncertain:
            sends = [(key, record_id) for key, (record_id, _) in uncertain.items()]
            errors = {key: self._cipher.encrypt(error) for key, (_, error) in uncertain.items()}
            _upsert(connection, flow, entity, sends, actor=actor, state=UNCERTAIN, errors=errors)


def _upsert(
    connection: Connection,
    flow: str,
    entity: str,
    sends: Sequence[tuple[str, int]],
    *,
    actor: Actor,
    state: str,
    errors: Mapping[str, str] | None,
) -> None:
    now = utcnow()
    dialect = pg_dialect if connection.dialect.name == "postgresql" else sqlite_dialect
    statement = dialect.insert(write_journal)
    statement = statement.on_conflict_do_update(
        index_elements=[write_journal.c.flow, write_journal.c.entity, write_journal.c.source_key],
        set_={
            "record_id": statement.excluded.record_id,
            "state": statement.excluded.state,
            "sent_by": statement.excluded.sent_by,
            "error": statement.excluded.error,
            # An uncertain outcome keeps the time the write was sent.
            **({"sent_at": statement.excluded.sent_at} if state == SENT else {}),
        },
    )
    connection.execute(
        statement,
        [
            {
                "flow": flow,
                "entity": entity,
                "source_key": key,
                "record_id": record_id,
                "state": state,
                "sent_at": now,
                "sent_by": actor.describe(),
                "error": (errors or {}).get(key),
            }
            for key, record_id in sends
        ],
    )
