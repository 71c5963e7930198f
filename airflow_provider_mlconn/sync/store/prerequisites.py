"""Where a record's prerequisites stand: in its run, in the id map, or their latest record anywhere."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import sqlalchemy as sa

from airflow_provider_mlconn.sync.crypto import PayloadCipher
from airflow_provider_mlconn.sync.ordering import PrerequisiteState
from airflow_provider_mlconn.sync.records import IN_TARGET, Prerequisite
from airflow_provider_mlconn.sync.schema import records
from airflow_provider_mlconn.sync.store.database import Database, chunks
from airflow_provider_mlconn.sync.store.id_map import IdMap
from airflow_provider_mlconn.sync.store.records import RecordTable

IN_TARGET_VALUES = frozenset(status.value for status in IN_TARGET)


class PrerequisiteLookup:
    def __init__(self, db: Database, cipher: PayloadCipher, id_map: IdMap, records: RecordTable) -> None:
        self._db = db
        self._cipher = cipher
        self._id_map = id_map
        self._records = records

    def states(
        self, flow: str, run_key: str, prerequisites: Iterable[Prerequisite]
    ) -> dict[Prerequisite, PrerequisiteState]:
        """Where each prerequisite stands: its record in ``run_key`` (own flow), else the id map.

        For one that is not in the target, the state also carries its latest record's status and
        reason (from this run, or from an earlier run of its flow), so a dependent can say why it
        waits.
        """
        wanted = set(prerequisites)
        states: dict[Prerequisite, PrerequisiteState] = {}
        for (map_flow, entity), named in _by_flow_entity([p for p in wanted if p.by_remote_id], flow).items():
            # Resolved backwards: the live source key last loaded to that target id.
            owners = self._id_map.keys_by_remote_id(map_flow, entity, [p.key for p in named])
            for prerequisite in named:
                keys = sorted(owners.get(prerequisite.key, ()))
                states[prerequisite] = PrerequisiteState(
                    None, keys[0] if keys else None, error=None if keys else prerequisite.when_missing
                )
        wanted = {p for p in wanted if not p.by_remote_id}
        own = [p for p in wanted if p.flow in (None, flow)]
        with self._db.read() as connection:
            # One entity per query: "entity = ? AND source_key IN (...)" is an index lookup on the
            # (run_key, entity, source_key) key; a row-value IN over both columns scanned the run.
            for entity, group in _by_entity_key(own).items():
                for chunk in chunks(sorted(group)):
                    for row in connection.execute(
                        sa.select(
                            records.c.source_key, records.c.status, records.c.remote_id, records.c.error
                        ).where(
                            records.c.run_key == run_key,
                            records.c.entity == entity,
                            records.c.source_key.in_(chunk),
                        )
                    ):
                        in_target = row.status in IN_TARGET_VALUES
                        for prerequisite in group[row.source_key]:
                            states[prerequisite] = PrerequisiteState(
                                row.status,
                                row.remote_id,
                                latest_status=None if in_target else row.status,
                                error=None if in_target else self._cipher.decrypt(row.error),
                            )
        # Outside the run, or in it but not in the target: the id map knows whether an earlier
        # (or, for an older record being replayed, a later) run put it there.
        unresolved = [p for p in wanted if p not in states or states[p].run_status not in IN_TARGET_VALUES]
        # (by_remote_id prerequisites are settled above: they are never part of this list)
        missing: list[Prerequisite] = []
        for (map_flow, entity), named in _by_flow_entity(unresolved, flow).items():
            entries = self._id_map.entries(map_flow, entity, [p.key for p in named])
            for prerequisite in named:
                entry = entries.get(prerequisite.key)
                if entry is not None and entry.deleted_at is not None:
                    entry = None  # deleted at the source: not a record to link to
                in_run = states.get(prerequisite)
                if in_run is not None:
                    if entry is not None:
                        states[prerequisite] = replace(in_run, remote_id=entry.remote_id)
                elif entry is None:
                    missing.append(prerequisite)
                else:
                    states[prerequisite] = PrerequisiteState(None, entry.remote_id)
        latest = self._records.latest(
            (prerequisite.flow or flow, prerequisite.entity, prerequisite.key) for prerequisite in missing
        )
        for prerequisite in missing:
            found = latest.get((prerequisite.flow or flow, prerequisite.entity, prerequisite.key))
            states[prerequisite] = PrerequisiteState(
                None,
                None,
                latest_status=None if found is None else found[0],
                error=prerequisite.when_missing if found is None else found[1],
            )
        return states


def _by_entity_key(prerequisites: Iterable[Prerequisite]) -> dict[str, dict[str, list[Prerequisite]]]:
    """Prerequisites grouped by entity, then key (a key may be named by several prerequisites)."""
    grouped: dict[str, dict[str, list[Prerequisite]]] = {}
    for prerequisite in prerequisites:
        grouped.setdefault(prerequisite.entity, {}).setdefault(prerequisite.key, []).append(prerequisite)
    return grouped


def _by_flow_entity(
    prerequisites: Iterable[Prerequisite], flow: str
) -> dict[tuple[str, str], list[Prerequisite]]:
    grouped: dict[tuple[str, str], list[Prerequisite]] = {}
    for prerequisite in prerequisites:
        grouped.setdefault((prerequisite.flow or flow, prerequisite.entity), []).append(prerequisite)
    return grouped
