"""Commit: move each stream's watermark once every record of the run is final."""

from __future__ import annotations

from datetime import datetime

from airflow_provider_mlconn.sync.engine.manifests import CommitManifest, ExtractManifest, PlanManifest
from airflow_provider_mlconn.sync.engine.plan import full_read_variable, read_watermark
from airflow_provider_mlconn.sync.errors import WatermarkNotCommitted
from airflow_provider_mlconn.sync.flow import Flow
from airflow_provider_mlconn.sync.records import NOT_FINAL
from airflow_provider_mlconn.sync.store import Store
from airflow_provider_mlconn.sync.watermarks import (
    VariableAccess,
    Window,
    encode_watermark,
    next_watermark,
    watermark_variable,
)


def commit_watermarks(
    flow: Flow,
    store: Store,
    variables: VariableAccess,
    *,
    run_key: str,
    plan: PlanManifest,
    extract_manifest: ExtractManifest,
    now: datetime,
) -> CommitManifest:
    """Move each stream's watermark to its high-water mark, if every record of the run is final.

    ``rejected`` and ``waiting`` records are final; ``staged``, ``mapped``, ``failed`` and
    ``uncertain`` are not. A dry run loaded nothing, so it moves nothing. A run that read
    everything records when (a flow's periodic full read counts from there).
    """
    if plan.dry_run:
        not_moved = {stream.name: "dry run: nothing was loaded" for stream in flow.streams}
        store.runs.update(run_key, committed={"moved": {}, "kept": not_moved}, committed_at=now)
        return CommitManifest(run_key=run_key, moved={}, kept=not_moved)
    counts = store.runs.status_counts(run_key)
    unfinished = {status.value: counts[status.value] for status in NOT_FINAL if counts.get(status.value)}
    if unfinished:
        raise WatermarkNotCommitted(
            f"{run_key}: records not final {unfinished}; the watermarks stay where they are"
        )
    moved: dict[str, dict[str, str | None]] = {}
    kept: dict[str, str] = {}
    for stream in flow.streams:
        name = watermark_variable(flow.name, stream.name)
        window = Window.from_manifest(plan.windows[stream.name])
        high_text = extract_manifest.high_water.get(stream.name)
        high = None if high_text is None else datetime.fromisoformat(high_text)
        current = read_watermark(flow, stream.name, variables, window.source_timezone)
        target = next_watermark(current, window, high)
        if target is None:
            kept[stream.name] = _why_kept(current, window, high)
            continue
        variables.set(
            name,
            encode_watermark(
                target, codec=stream.codec, source_timezone=window.source_timezone, updated_by=run_key
            ),
        )
        moved[stream.name] = {
            "from": None if current is None else current.isoformat(),
            "to": target.isoformat(),
        }
    full_read = plan.full_read and not extract_manifest.skipped_streams
    if full_read:
        variables.set(full_read_variable(flow.name), now.isoformat())
    store.runs.update(
        run_key, committed={"moved": moved, "kept": kept, "full_read": full_read}, committed_at=now
    )
    return CommitManifest(run_key=run_key, moved=moved, kept=kept, full_read_recorded=full_read)


def _why_kept(current: datetime | None, window: Window, high: datetime | None) -> str:
    if high is None:
        return "no change seen"
    return (
        f"high-water mark {high.isoformat()} does not move it: not after the watermark "
        f"({None if current is None else current.isoformat()}), or a {window.mode.value} run starting "
        "after it (moving would skip the changes in between)"
    )
