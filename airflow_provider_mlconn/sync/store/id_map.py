"""The id map: source key <-> target id per flow and entity, with what we last wrote there."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.schema import id_map
from airflow_provider_mlconn.sync.store.bulk import bound_value, placeholder, upsert_rows
from airflow_provider_mlconn.sync.store.database import Database, chunks, stored_time, utcnow
from airflow_provider_mlconn.sync.store.rows import IdMapEntry

_ENTRY_UPDATED = (
    "remote_id",
    "last_loaded_hash",
    "last_record_id",
    "last_run_key",
    "last_links",
    "deleted_at",
    "loaded_at",
)
#: The last loaded hash of a key queued for repair: no payload hashes to it, so the next run that
#: reads the key writes it (a hash is 64 hex digits).
REPAIR_HASH = "repair"
#: An entry's columns as ``upsert_entries`` writes them (created_at and loaded_at last).
_ENTRY_COLUMNS = ("flow", "entity", "source_key", *_ENTRY_UPDATED[:-1], "created_at", "loaded_at")


class IdMap:
    """``mlconn_id_map``: one row per (flow, entity, source key) that ever reached the target."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def entries(self, flow: str, entity: str, keys: Iterable[str]) -> dict[str, IdMapEntry]:
        wanted = sorted(set(keys))
        found: dict[str, IdMapEntry] = {}
        if not wanted:
            return found
        with self._db.read() as connection:
            # Driver SQL: every map and load chunk asks this, and SQLAlchemy's rendering of an
            # expanding IN list of keys cost more than SQLite answering it.
            marker = placeholder(connection)
            for chunk in chunks(wanted):
                for key, *stored in connection.exec_driver_sql(
                    f"SELECT source_key, remote_id, last_loaded_hash, last_record_id, last_links, deleted_at "
                    f"FROM {id_map.name} WHERE flow = {marker} AND entity = {marker} "
                    f"AND source_key IN ({', '.join([marker] * len(chunk))})",
                    (flow, entity, *chunk),
                ):
                    found[key] = _entry(*stored)
        return found

    def live_entries(self, flow: str, entity: str) -> Iterator[tuple[str, IdMapEntry]]:
        """Every key of an entity the target holds and the source has not deleted, in key order."""
        last = ""
        while True:
            with self._db.read() as connection:
                rows = (
                    connection.execute(
                        sa.select(id_map)
                        .where(
                            id_map.c.flow == flow,
                            id_map.c.entity == entity,
                            id_map.c.deleted_at.is_(None),
                            id_map.c.source_key > last,
                        )
                        .order_by(id_map.c.source_key)
                        .limit(1000)
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                return
            for row in rows:
                yield (
                    row["source_key"],
                    _entry(
                        row["remote_id"],
                        row["last_loaded_hash"],
                        row["last_record_id"],
                        row["last_links"],
                        row["deleted_at"],
                    ),
                )
            last = rows[-1]["source_key"]

    def source_key_for(self, flow: str, entity: str, remote_id: str) -> str | None:
        """The reverse lookup: which source key a target id belongs to."""
        with self._db.read() as connection:
            return connection.execute(
                sa.select(id_map.c.source_key).where(
                    id_map.c.flow == flow, id_map.c.entity == entity, id_map.c.remote_id == remote_id
                )
            ).scalar()

    def keys_by_remote_id(self, flow: str, entity: str, remote_ids: Iterable[str]) -> dict[str, set[str]]:
        """The id map read backwards: each target id -> the live source keys last loaded to it."""
        found: dict[str, set[str]] = {}
        with self._db.read() as connection:
            for chunk in chunks(sorted(set(remote_ids))):
                for row in connection.execute(
                    sa.select(id_map.c.remote_id, id_map.c.source_key).where(
                        id_map.c.flow == flow,
                        id_map.c.entity == entity,
                        id_map.c.remote_id.in_(chunk),
                        id_map.c.deleted_at.is_(None),
                    )
                ):
                    found.setdefault(row.remote_id, set()).add(row.source_key)
        return found

    def mark_echoes(self, flow: str, entity: str, hashes: Mapping[str, str]) -> None:
        """The target already holds these payloads (key -> hash; our own write read back from the
        other side): later reads of the same content are unchanged."""
        if not hashes:
            return

        def work(connection: Connection) -> None:
            connection.execute(
                id_map.update()
                .where(
                    id_map.c.flow == flow,
                    id_map.c.entity == entity,
                    id_map.c.source_key == sa.bindparam("key"),
                )
                .values(last_loaded_hash=sa.bindparam("new_hash")),
                [{"key": key, "new_hash": digest} for key, digest in hashes.items()],
            )

        self._db.write(work)

    def queue_repair(self, flow: str, entity: str, keys: Iterable[str]) -> list[str]:
        """Make the flow's next run read these keys again and write them whatever it last wrote
        (the reconciliation's repair): their last loaded hash becomes ``REPAIR_HASH``. Returns the
        keys queued; a key not in the id map (never written) or deleted is not."""
        wanted = sorted(set(keys))

        def work(connection: Connection) -> list[str]:
            queued: list[str] = []
            for chunk in chunks(wanted):
                found = connection.execute(
                    sa.select(id_map.c.source_key).where(
                        id_map.c.flow == flow,
                        id_map.c.entity == entity,
                        id_map.c.source_key.in_(chunk),
                        id_map.c.deleted_at.is_(None),
                    )
                ).scalars()
                queued.extend(found)
            for chunk in chunks(queued):
                connection.execute(
                    id_map.update()
                    .where(id_map.c.flow == flow, id_map.c.entity == entity, id_map.c.source_key.in_(chunk))
                    .values(last_loaded_hash=REPAIR_HASH)
                )
            return sorted(queued)

        return self._db.write(work)

    def repair_queue(self, flow: str, entity: str) -> list[str]:
        """The keys ``queue_repair`` queued that no run has written since."""
        with self._db.read() as connection:
            return sorted(
                connection.execute(
                    sa.select(id_map.c.source_key).where(
                        id_map.c.flow == flow,
                        id_map.c.entity == entity,
                        id_map.c.last_loaded_hash == REPAIR_HASH,
                        id_map.c.deleted_at.is_(None),
                    )
                ).scalars()
            )


def _entry(
    remote_id: str, last_hash: str, last_record_id: int, links: str | None, deleted_at: datetime | str | None
) -> IdMapEntry:
    """An entry from its stored columns (``deleted_at`` as SQLAlchemy or the driver hands it over)."""
    return IdMapEntry(
        remote_id,
        last_hash,
        last_record_id,
        json.loads(links) if links else {},
        None if deleted_at is None else stored_time(deleted_at),
    )


class IdMapRow(NamedTuple):
    """One id map row as a load outcome writes it."""

    flow: str
    entity: str
    source_key: str
    remote_id: str
    last_loaded_hash: str
    last_record_id: int
    last_run_key: str
    last_links: str | None = None  # JSON text
    deleted_at: datetime | None = None


def upsert_entries(connection: Connection, rows: Sequence[IdMapRow]) -> None:
    """Insert or update id map rows inside the caller's transaction; a row only moves forward (a
    newer record wins)."""
    if not rows:
        return
    now = bound_value(connection, id_map.c.loaded_at, utcnow())
    upsert_rows(
        connection,
        id_map,
        _ENTRY_COLUMNS,
        [
            (
                *row[:-1],
                None
                if row.deleted_at is None
                else bound_value(connection, id_map.c.deleted_at, row.deleted_at),
                now,
                now,
            )
            for row in rows
        ],
        conflict=("flow", "entity", "source_key"),
        update=_ENTRY_UPDATED,
        only_if=f"{id_map.name}.last_record_id <= excluded.last_record_id",
        bound=True,
    )
