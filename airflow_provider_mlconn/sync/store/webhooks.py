"""The webhook inbox: events received, deduplicated on their content, and the requests' outcomes.

The receiver (``plugins/webhooks.py``) records each delivery here before it answers: an event seen
before (a retried delivery, HubSpot's duplicates) is not recorded twice, and one whose asset event
was already emitted schedules nothing again. No payload values are kept (a property change's value
is a hint only; the flow re-reads the record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from airflow_provider_mlconn.sync.schema import webhook_events, webhook_requests
from airflow_provider_mlconn.sync.store.database import Database, chunks, utcnow


class InboxEvent(Protocol):
    """What the inbox needs of an event (``hubspot.webhooks.WebhookEvent`` is one)."""

    @property
    def dedup_key(self) -> str: ...
    @property
    def event_id(self) -> int: ...
    @property
    def portal_id(self) -> int: ...
    @property
    def subscription_type(self) -> str: ...
    @property
    def object_type(self) -> str | None: ...
    @property
    def object_id(self) -> str: ...
    @property
    def property_name(self) -> str | None: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def attempt(self) -> int: ...
    @property
    def asset_uri(self) -> str | None: ...
    @property
    def ignored(self) -> str | None: ...


@dataclass(frozen=True)
class Recorded:
    """What recording a delivery found: the keys new to the inbox, the keys whose asset event is
    still to be emitted (new ones and earlier ones never signalled), and how many were seen before."""

    new: frozenset[str]
    to_signal: frozenset[str]
    duplicates: int


class WebhookInbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, source: str, events: Sequence[InboxEvent], *, now: datetime | None = None) -> Recorded:
        """Record the events not seen before (by ``dedup_key``) in one transaction."""
        received = now or utcnow()
        unique = {event.dedup_key: event for event in events}

        def work(connection: Connection) -> Recorded:
            seen: dict[str, datetime | None] = {}
            for part in chunks(list(unique)):
                for key, signalled in connection.execute(
                    sa.select(webhook_events.c.dedup_key, webhook_events.c.signalled_at).where(
                        webhook_events.c.source == source, webhook_events.c.dedup_key.in_(part)
                    )
                ):
                    seen[key] = signalled
            new = [event for key, event in unique.items() if key not in seen]
            if new:
                connection.execute(
                    webhook_events.insert(),
                    [
                        {
                            "source": source,
                            "dedup_key": e.dedup_key,
                            "received_at": received,
                            "event_id": e.event_id,
                            "portal_id": e.portal_id,
                            "subscription_type": e.subscription_type,
                            "object_type": e.object_type,
                            "object_id": e.object_id,
                            "property_name": e.property_name,
                            "occurred_at": e.occurred_at,
                            "attempt": e.attempt,
                            "asset_uri": e.asset_uri,
                            "ignored": e.ignored,
                            "signalled_at": None,
                        }
                        for e in new
                    ],
                )
            unsignalled = {key for key, signalled in seen.items() if signalled is None}
            return Recorded(
                new=frozenset(e.dedup_key for e in new),
                to_signal=frozenset(
                    key
                    for key, event in unique.items()
                    if event.asset_uri is not None and (key not in seen or key in unsignalled)
                ),
                duplicates=len(events) - len(new),
            )

        return self.db.write(work)

    def mark_signalled(self, source: str, keys: Sequence[str], *, now: datetime | None = None) -> None:
        at = now or utcnow()

        def work(connection: Connection) -> None:
            for part in chunks(list(keys)):
                connection.execute(
                    webhook_events.update()
                    .where(webhook_events.c.source == source, webhook_events.c.dedup_key.in_(part))
                    .values(signalled_at=at)
                )

        self.db.write(work)

    def log_request(
        self,
        source: str,
        *,
        status: int,
        outcome: str,
        events: int = 0,
        new_events: int = 0,
        duplicates: int = 0,
        seconds: float = 0.0,
        detail: str | None = None,
        now: datetime | None = None,
    ) -> None:
        self.db.write(
            lambda connection: connection.execute(
                webhook_requests.insert().values(
                    source=source,
                    received_at=now or utcnow(),
                    status=status,
                    outcome=outcome,
                    events=events,
                    new_events=new_events,
                    duplicates=duplicates,
                    seconds=seconds,
                    detail=None if detail is None else detail[:300],
                )
            )
        )

    def request_counts(self, source: str, *, since: datetime | None = None) -> dict[str, int]:
        """Requests per outcome (``accepted``, ``bad_signature``, ``stale``, ...)."""
        query = (
            sa.select(webhook_requests.c.outcome, sa.func.count())
            .where(webhook_requests.c.source == source)
            .group_by(webhook_requests.c.outcome)
        )
        if since is not None:
            query = query.where(webhook_requests.c.received_at >= since)
        with self.db.read() as connection:
            return {outcome: int(count) for outcome, count in connection.execute(query)}

    def event_counts(self, source: str) -> dict[str, int]:
        """Events recorded per asset they schedule (``ignored`` for those that schedule nothing)."""
        query = (
            sa.select(webhook_events.c.asset_uri, sa.func.count())
            .where(webhook_events.c.source == source)
            .group_by(webhook_events.c.asset_uri)
        )
        with self.db.read() as connection:
            return {uri or "ignored": int(count) for uri, count in connection.execute(query)}

    def prune(self, *, older_than: datetime) -> int:
        """Delete events and request rows received before ``older_than``; returns the events deleted."""

        def work(connection: Connection) -> int:
            deleted = connection.execute(
                webhook_events.delete().where(webhook_events.c.received_at < older_than)
            ).rowcount
            connection.execute(webhook_requests.delete().where(webhook_requests.c.received_at < older_than))
            return int(deleted or 0)

        return self.db.write(work)
