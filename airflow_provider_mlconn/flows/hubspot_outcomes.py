"""What a HubSpot write's per-record result means for the engine (shared by the flows that write to
HubSpot): written -> ``Loaded``; a 429, a 5xx, a dropped call or a retriable error -> ``Failed`` (a
retry can fix it); any other 4xx -> ``Rejection`` (a person has to act: a bad value, a missing
option, a property HubSpot refuses)."""

from __future__ import annotations

from airflow_provider_mlconn.hubspot.models import RecordOutcome, WriteStatus
from airflow_provider_mlconn.sync.flow import Failed, Loaded, LoadOutcome, Rejection


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
