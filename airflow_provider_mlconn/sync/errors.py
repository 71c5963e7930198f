"""What the sync engine raises, split by what a caller (or an Airflow retry) can do about it."""

from __future__ import annotations


class SyncError(Exception):
    """Base class of the sync engine's errors."""


class FlowDefinitionError(SyncError, ValueError):
    """A flow, stream or entity is declared wrongly; the message names the flow and the field."""


class WindowError(SyncError, ValueError):
    """A requested window or override is invalid (end before start, negative overlap, bad date)."""


class WatermarkValueError(SyncError, ValueError):
    """A watermark Variable holds a value that cannot be read; the message names the Variable."""


class StoreConfigurationError(SyncError):
    """The store cannot be opened: no Fernet key, bad SQLAlchemy URL, unreadable connection."""


class CallableContractError(SyncError, TypeError):
    """A flow's extract, map, dependencies or load callable returned something of the wrong shape."""


class LoadIncomplete(SyncError):
    """Some records of a load task are not loaded; their outcomes are already in the store.

    Raised after every outcome is persisted, so the task shows red and a retry (or a cleared task)
    loads exactly the records that are not ``loaded`` yet.
    """

    def __init__(self, message: str, *, failed: int, held_back: int) -> None:
        super().__init__(message)
        self.failed = failed
        self.held_back = held_back


class LoadBlocked(LoadIncomplete):
    """Every failure is one a retry of this task alone cannot fix.

    Either the records wait for a prerequisite that did not load (it is retried by its own task;
    clear that task with its downstream tasks), or the target refused in a way it said will not
    change soon (``retriable = False`` on the error, e.g. a daily quota). The load operators' retry
    policy fails the task at once instead of burning retries.
    """


class WatermarkNotCommitted(SyncError):
    """The commit step found records of the run that are not final; the watermark stays put."""
