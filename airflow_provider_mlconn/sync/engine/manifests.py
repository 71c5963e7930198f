"""What each step returns (and Airflow keeps in XCom): small JSON manifests, never rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from airflow_provider_mlconn.sync.flow import Flow
from airflow_provider_mlconn.sync.store import RunRef


class RunInfo(BaseModel):
    """The Airflow run a step belongs to."""

    dag_id: str
    run_id: str
    run_type: str | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None

    @property
    def is_backfill(self) -> bool:
        return self.run_type == "backfill"

    @property
    def is_scheduled(self) -> bool:
        return self.run_type == "scheduled"

    @property
    def is_asset_triggered(self) -> bool:
        return self.run_type == "asset_triggered"

    @property
    def reads_to_now(self) -> bool:
        """A run started by a person, an operator or an asset event (a webhook) reads up to now (less
        the safety lag), not to its data interval's end: Airflow gives it the last full interval,
        which ends before the edits the run was started for."""
        return self.run_type in ("manual", "operator_triggered", "asset_triggered")

    def ref(self, flow: Flow) -> RunRef:
        return RunRef(flow=flow.name, dag_id=self.dag_id, run_id=self.run_id, run_type=self.run_type)


class PlanManifest(BaseModel):
    run_key: str
    flow: str
    windows: dict[str, dict[str, Any]]
    watermarks: dict[str, str | None] = Field(description="each stream's watermark when planned (ISO)")
    overlap_minutes: float
    safety_lag_minutes: float
    full_resync: bool = False
    full_resync_reason: str | None = Field(None, description="why this run reads everything again")
    dry_run: bool = Field(False, description="map only: nothing is loaded and no watermark moves")
    options: dict[str, Any] = Field(default_factory=dict, description="the run's options for extract")

    @property
    def full_read(self) -> bool:
        """Every stream reads from the beginning and no option narrows what is read."""
        return not self.options and all(window["start"] is None for window in self.windows.values())


class ExtractManifest(BaseModel):
    run_key: str
    flow: str
    high_water: dict[str, str | None]
    staged: dict[str, int]
    new: int
    changed: int
    same: int
    skipped_streams: list[str]
    #: Waiting records of earlier runs this run took over (per entity), and those rejected for
    #: waiting too long or gone from the source.
    adopted: dict[str, int] = Field(default_factory=dict)
    expired: int = 0
    #: Entities whose every source key this run staged (a full read): deletions can be found.
    complete: list[str] = Field(default_factory=list)
    #: Records mapped as they were staged, per status (``map_while_extracting``).
    mapped: dict[str, int] = Field(default_factory=dict)


class MapManifest(BaseModel):
    run_key: str
    counts: dict[str, int]
    echoes: int = 0


class OrderManifest(BaseModel):
    run_key: str
    entity: str
    batches: list[int]
    relinked: int = 0
    deletions: int = 0


class LoadManifest(BaseModel):
    run_key: str
    entity: str
    batch: int | None
    loaded: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    rejected: int = 0
    failed: int = 0
    uncertain: int = 0
    confirmed: int = 0
    held_back: int = 0
    waiting: int = 0
    not_attempted: int = 0
    retriable_failures: int = 0
    calls: int = 0

    @property
    def unfinished(self) -> int:
        """Records a retry of this load still has to work on."""
        return self.failed + self.uncertain + self.held_back + self.not_attempted

    @property
    def done(self) -> int:
        """Records this load has an outcome for so far (progress lines)."""
        return (
            self.loaded
            + self.rejected
            + self.failed
            + self.uncertain
            + self.held_back
            + self.waiting
            + self.not_attempted
        )


class CommitManifest(BaseModel):
    run_key: str
    moved: dict[str, dict[str, str | None]]
    kept: dict[str, str]
    full_read_recorded: bool = False
