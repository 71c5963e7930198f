"""The steps of a run, free of Airflow: plan, extract, map, order, load, commit, and replay.

Each step takes the flow, the store and plain values, writes rows to the store and returns a small
manifest (what goes to XCom). The operators in ``airflow_provider_mlconn.operators`` only turn an
Airflow context into these arguments.
"""

from __future__ import annotations

from airflow_provider_mlconn.sync.engine.commit import commit_watermarks
from airflow_provider_mlconn.sync.engine.extract import adopt_waiting, extract
from airflow_provider_mlconn.sync.engine.load import (
    MAX_CONSECUTIVE_CALL_ERRORS,
    LoadProgress,
    load_batch,
    load_claimed,
    raise_if_incomplete,
)
from airflow_provider_mlconn.sync.engine.manifests import (
    CommitManifest,
    ExtractManifest,
    LoadManifest,
    MapManifest,
    OrderManifest,
    PlanManifest,
    RunInfo,
)
from airflow_provider_mlconn.sync.engine.mapping import (
    TO_MAP,
    map_one,
    map_records,
    map_staged,
    preview_mapping,
)
from airflow_provider_mlconn.sync.engine.order import order_entity, prerequisites_of, reopen_relinked
from airflow_provider_mlconn.sync.engine.plan import full_read_variable, plan_windows, read_watermark
from airflow_provider_mlconn.sync.engine.replay import (
    REPLAY_REPORT_ROWS,
    REPLAYABLE,
    ReplayManifest,
    ReplayRequest,
    ReplayStatus,
    replay,
    select_replay,
)

__all__ = [
    "MAX_CONSECUTIVE_CALL_ERRORS",
    "REPLAYABLE",
    "REPLAY_REPORT_ROWS",
    "TO_MAP",
    "CommitManifest",
    "ExtractManifest",
    "LoadManifest",
    "LoadProgress",
    "MapManifest",
    "OrderManifest",
    "PlanManifest",
    "ReplayManifest",
    "ReplayRequest",
    "ReplayStatus",
    "RunInfo",
    "adopt_waiting",
    "commit_watermarks",
    "extract",
    "full_read_variable",
    "load_batch",
    "load_claimed",
    "map_one",
    "map_records",
    "map_staged",
    "order_entity",
    "plan_windows",
    "prerequisites_of",
    "preview_mapping",
    "raise_if_incomplete",
    "read_watermark",
    "reopen_relinked",
    "replay",
    "select_replay",
]
