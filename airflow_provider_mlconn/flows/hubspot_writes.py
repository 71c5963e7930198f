"""What every flow that writes to HubSpot shares.

- ``ensure_properties_once``: a flow's custom properties are created once per process, portal and
  set of properties (reads only, once they exist);
- ``hubspot_load_outcome``: what a write's per-record result means for the engine: written ->
  ``Loaded``; a 429, a 5xx, a dropped call or a retriable error -> ``Failed`` (a retry can fix it);
  any other 4xx -> ``Rejection`` (a person has to act: a bad value, a missing option, a property
  HubSpot refuses);
- ``write_sync_statuses``: ``jde_sync_status`` / ``jde_sync_message`` on the HubSpot records a
  money flow could not post (waiting, rejected, conflict), written only where the record does not
  show them yet, so a record's status costs one write, not one per run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hubspot.models import RecordOutcome, WriteStatus
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.hubspot.properties import PropertySpec
from airflow_provider_mlconn.sync.flow import Failed, Loaded, LoadOutcome, Rejection

log = logging.getLogger(__name__)

#: HubSpot's ``jde_sync_message`` holds what a person reads; longer reasons are cut.
SYNC_MESSAGE_LIMIT = 1000

_ensured: set[tuple[str, str, tuple[PropertySpec, ...]]] = set()
_ensured_lock = threading.Lock()


def ensure_properties_once(hook: HubSpotHook, specs: Sequence[PropertySpec]) -> list[str]:
    """Make sure ``specs`` exist in the hook's portal, once per process; the names it created."""
    key = (hook.settings.base_url, hook.hubspot_conn_id, tuple(specs))
    with _ensured_lock:
        if key in _ensured:
            return []
        states = hook.ensure_properties(specs)
        _ensured.add(key)
    return [name for name, state in states.items() if state == "created"]


def hubspot_load_outcome(
    outcome: RecordOutcome, *, note: str | None = None, what: str = "this record"
) -> LoadOutcome:
    if outcome.status is not WriteStatus.FAILED and outcome.record_id:
        return Loaded(outcome.record_id, created=outcome.status is WriteStatus.CREATED, note=note)
    error = outcome.error
    if error is None:
        return Failed(f"HubSpot gave no result for {what}")
    described = f"HubSpot {error.status or ''} {error.category or ''}: {error.message}".replace("  ", " ")
    if error.retriable or error.status is None or error.status >= 500 or error.status == 429:
        return Failed(described)
    return Rejection(described)


def shows_sync_status(properties: Mapping[str, Any], status: str, message: str) -> bool:
    """Whether a HubSpot record, as read, already shows this sync status and message."""
    return (
        properties.get("jde_sync_status") == status and (properties.get("jde_sync_message") or "") == message
    )


def write_sync_statuses(
    *,
    conn_id: str,
    object_type: ObjectType,
    specs: Sequence[PropertySpec],
    noun: str,
    current: Mapping[str, Mapping[str, Any]],
    statuses: Mapping[str, Mapping[str, str]],
) -> None:
    """Write ``statuses`` (``{key: {"jde_sync_status": ..., "jde_sync_message": ...}}``) to the
    records whose properties as read (``current[key]``) do not show them yet. A failed write is
    logged, not raised: the status is a courtesy to the reader, the posting is what counts."""
    wanted = {
        key: {name: value[:SYNC_MESSAGE_LIMIT] for name, value in status.items()}
        for key, status in statuses.items()
        if not shows_sync_status(
            current[key], status["jde_sync_status"], status["jde_sync_message"][:SYNC_MESSAGE_LIMIT]
        )
    }
    if not wanted:
        return
    with HubSpotHook(conn_id) as hook:
        ensure_properties_once(hook, specs)
        written = hook.update_records(object_type, wanted)
    for key, outcome in written.items():
        if outcome.status is WriteStatus.FAILED:
            log.warning(
                "%s %s: its sync status could not be written to HubSpot: %s", noun, key, outcome.error
            )
