"""The run report: what a run of a flow read, wrote and refused, and what it cost in calls and time.

Built from the store alone (the run's records and its task tries, ``store.reports``), so the
commit task, ``mlconn report`` and the tests build the same report:

- per entity: read, created, updated (deleted), unchanged, rejected, waiting, failed, uncertain; in a
  dry run what would be created, updated or deleted instead;
- per remote system: calls, 429 answers, retries and the seconds waited before retries;
- per step (task): tries, batches, seconds, how it ended;
- the records a person must look at (rejected, waiting, failed, uncertain) with their reasons, the
  first ``rows`` of them, how many more, and the ``mlconn audit failures`` command for all;
- in a dry run, what would be written: per update the fields that would change (old -> new).

``masked=True`` (logs, run notes, asset events: read by everyone with access to Airflow) masks
personal data (``sync.masking``); ``mlconn audit`` shows values whole.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from airflow_provider_mlconn.sync.masking import mask_reason, mask_value
from airflow_provider_mlconn.sync.records import NOT_LOADED, RecordStatus
from airflow_provider_mlconn.sync.store import Store, StoredRecord, TaskRun
from airflow_provider_mlconn.sync.store.reports import RecordKey

#: Records named (with reasons, or with their changed fields) before "... N more".
REPORT_ROWS = 20
#: Airflow keeps at most this many characters of a DAG run note.
NOTE_LIMIT = 1000
#: The first line of the report part of a DAG run note (what a later report replaces).
NOTE_HEADING = "**Sync report**"
_COUNT_COLUMNS = (
    "read",
    "created",
    "updated",
    "deleted",
    "unchanged",
    "rejected",
    "waiting",
    "failed",
    "uncertain",
)
_DRY_COLUMNS = ("read", "would_create", "would_update", "would_delete", "unchanged", "rejected", "waiting")
#: Columns left out of a table when every entity has 0 there.
_OPTIONAL_COLUMNS = frozenset({"deleted", "would_delete"})
_ATTENTION = ("rejected", "waiting", "failed", "uncertain")


class EntityCounts(BaseModel):
    entity: str
    read: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0
    waiting: int = 0
    failed: int = 0
    uncertain: int = 0
    #: Staged or mapped, not loaded: still to load, or (dry run) what would be written.
    pending: int = 0
    would_create: int = 0
    would_update: int = 0
    would_delete: int = 0


class SystemCallCounts(BaseModel):
    system: str
    calls: int = 0
    rate_limited: int = 0
    errors: int = 0
    retries: int = 0
    seconds: float = 0.0
    waited: float = 0.0
    waited_429: float = 0.0


class StepTime(BaseModel):
    task_id: str
    state: str
    tries: int
    batches: int
    seconds: float


class NotLoaded(BaseModel):
    entity: str
    key: str
    status: str
    reason: str


class FieldChange(BaseModel):
    field: str
    old: Any = None
    new: Any = None


class Change(BaseModel):
    entity: str
    key: str
    action: Literal["create", "update", "delete"]
    #: For an update, the fields whose value would change (or changed); empty when ``previous_known``
    #: is False (the previous write's row was pruned from the store).
    fields: list[FieldChange] = Field(default_factory=list)
    previous_known: bool = True


class RunReport(BaseModel):
    run_key: str
    flow: str
    dag_id: str
    run_id: str
    run_type: str | None = None
    dry_run: bool = False
    masked: bool = True
    committed: dict[str, Any] = Field(default_factory=dict)
    entities: list[EntityCounts] = Field(default_factory=list)
    calls: list[SystemCallCounts] = Field(default_factory=list)
    steps: list[StepTime] = Field(default_factory=list)
    not_loaded: list[NotLoaded] = Field(default_factory=list)
    not_loaded_total: int = 0
    changes: list[Change] = Field(default_factory=list)
    changes_total: int = 0

    def total(self, column: str) -> int:
        return sum(int(getattr(counts, column)) for counts in self.entities)

    @property
    def failed_steps(self) -> list[str]:
        """Tasks whose latest try failed."""
        return [step.task_id for step in self.steps if step.state == "failed"]

    @property
    def needs_attention(self) -> bool:
        """Records were not sent (rejected, waiting, failed or uncertain) or a task failed: a person
        should look."""
        return bool(self.failed_steps) or any(self.total(column) for column in _ATTENTION)

    def attention_text(self) -> str:
        """``extract failed; 1 rejected, 1 waiting`` (empty when all went well)."""
        parts = [f"{', '.join(self.failed_steps)} failed"] if self.failed_steps else []
        counts = [f"{self.total(c)} {c}" for c in _ATTENTION if self.total(c)]
        if counts:
            parts.append(f"{', '.join(counts)} NOT SENT")
        return "; ".join(parts)

    @property
    def audit_command(self) -> str:
        return f"mlconn audit failures --run '{self.run_key}'"

    @property
    def changes_command(self) -> str:
        return f"mlconn audit changes --run '{self.run_key}'"

    def headline(self) -> str:
        """One line: the run, what it wrote and, first, what it did not."""
        kind = "dry run" if self.dry_run else "run"
        done = _done_text(self)
        if self.needs_attention:
            return f"{self.flow} {kind}: {self.attention_text()} ({self.audit_command}); {done}"
        return f"{self.flow} {kind}: {done}; nothing rejected, waiting or failed"


def _done_text(report: RunReport) -> str:
    if report.dry_run:
        return (
            f"{report.total('read')} read: would create {report.total('would_create')}, update "
            f"{report.total('would_update')}, delete {report.total('would_delete')}; "
            f"{report.total('unchanged')} unchanged"
        )
    done = (
        f"{report.total('read')} read, {report.total('created')} created, {report.total('updated')} "
        f"updated, {report.total('unchanged')} unchanged"
    )
    return done + (f", {report.total('deleted')} deleted" if report.total("deleted") else "")


def build_report(
    store: Store,
    run_key: str,
    *,
    entity_order: Sequence[str] = (),
    rows: int = REPORT_ROWS,
    masked: bool = True,
    dry_run: bool | None = None,
    changes: bool | None = None,
) -> RunReport:
    """The report of one run, from the store. ``dry_run`` None: as the run's plan said.
    ``changes`` None: listed for a dry run (what would be written)."""
    summary = store.runs.get(run_key)
    if summary is None:
        raise LookupError(f"no run {run_key!r} in the store (see `mlconn audit runs` for run keys)")
    tries = store.reports.tasks(run_key)
    if dry_run is None:
        dry_run = _was_dry_run(tries, summary.committed)
    report = RunReport(
        run_key=run_key,
        flow=summary.flow,
        dag_id=summary.dag_id,
        run_id=summary.run_id,
        run_type=summary.run_type,
        dry_run=dry_run,
        masked=masked,
        committed=summary.committed,
        calls=_calls(tries),
        steps=_steps(tries),
    )
    report.entities = _entity_counts(store, report, entity_order)
    ids, report.not_loaded_total = store.reports.record_ids(run_key, _NOT_LOADED_ORDER, limit=rows)
    report.not_loaded = [
        NotLoaded(
            entity=record.entity,
            key=record.key,
            status=record.status.value,
            reason=_reason(record.error, masked),
        )
        for record in _in_order(store, ids)
    ]
    if changes if changes is not None else dry_run:
        report.changes, report.changes_total = run_changes(
            store, report.flow, run_key, limit=rows, masked=masked, entity_order=entity_order
        )
    return report


#: What ``mlconn audit failures`` lists, rejected and waiting first: they are what a green run hides.
_NOT_LOADED_ORDER = tuple(sorted(NOT_LOADED, key=lambda status: _ATTENTION.index(status.value)))


def _was_dry_run(tries: Sequence[TaskRun], committed: Mapping[str, Any]) -> bool:
    for task in tries:
        if task.task_id == "plan_window" and "dry_run" in task.detail:
            return bool(task.detail["dry_run"])
    kept = committed.get("kept") or {}
    return bool(kept) and all(str(why).startswith("dry run") for why in kept.values())


def _calls(tries: Sequence[TaskRun]) -> list[SystemCallCounts]:
    """Every call of every try: all of them reached the remote system."""
    totals: dict[str, SystemCallCounts] = {}
    for task in tries:
        for system, counts in task.calls.items():
            total = totals.setdefault(system, SystemCallCounts(system=system))
            for name in ("calls", "rate_limited", "errors", "retries", "seconds", "waited", "waited_429"):
                setattr(total, name, getattr(total, name) + counts.get(name, 0))
    return [totals[name] for name in sorted(totals)]


def _steps(tries: Sequence[TaskRun]) -> list[StepTime]:
    """Per task: the latest try of each batch, summed; in the order the tasks first started."""
    latest: dict[str, dict[int, TaskRun]] = {}
    count: dict[str, int] = defaultdict(int)
    for task in tries:  # ordered by start
        batches = latest.setdefault(task.task_id, {})
        known = batches.get(task.map_index)
        if known is None or task.try_number >= known.try_number:
            batches[task.map_index] = task
        count[task.task_id] = max(count[task.task_id], task.try_number)
    steps = []
    for task_id, batches in latest.items():
        states = {task.state for task in batches.values()}
        state = next((s for s in ("failed", "running") if s in states), "success")
        if states == {"skipped"}:
            state = "skipped"
        steps.append(
            StepTime(
                task_id=task_id,
                state=state,
                tries=count[task_id],
                batches=len([index for index in batches if index >= 0]),
                seconds=round(sum(task.seconds or 0.0 for task in batches.values()), 3),
            )
        )
    return steps


def _entity_counts(store: Store, report: RunReport, entity_order: Sequence[str]) -> list[EntityCounts]:
    by_entity: dict[str, EntityCounts] = {name: EntityCounts(entity=name) for name in entity_order}
    for row in store.reports.outcome_counts(report.run_key):
        counts = by_entity.setdefault(row.entity, EntityCounts(entity=row.entity))
        status = RecordStatus(row.status)
        if row.operation == "delete":
            if status is RecordStatus.LOADED:
                counts.deleted += row.count
            elif status in (RecordStatus.STAGED, RecordStatus.MAPPED):
                counts.pending += row.count
                counts.would_delete += row.count
            else:
                _add(counts, status.value, row.count)
            continue
        counts.read += row.count
        if status is RecordStatus.LOADED:
            _add(counts, "created" if row.change == "created" else "updated", row.count)
        elif status in (RecordStatus.STAGED, RecordStatus.MAPPED):
            counts.pending += row.count
        else:
            _add(counts, status.value, row.count)
    if report.dry_run:
        for entity, action in _pending_actions(store, report.flow, report.run_key).items():
            counts = by_entity.setdefault(entity, EntityCounts(entity=entity))
            counts.would_create += action.get("create", 0)
            counts.would_update += action.get("update", 0)
    return list(by_entity.values())


def _add(counts: EntityCounts, column: str, number: int) -> None:
    setattr(counts, column, getattr(counts, column) + number)


def _pending_actions(store: Store, flow: str, run_key: str) -> dict[str, dict[str, int]]:
    """Per entity, how many of the run's mapped records would be created and how many updated."""
    actions: dict[str, dict[str, int]] = {}
    for record, action in _actions(store, flow, run_key, (RecordStatus.MAPPED,)):
        if action != "delete":
            per_entity = actions.setdefault(record.entity, {})
            per_entity[action] = per_entity.get(action, 0) + 1
    return actions


Action = Literal["create", "update", "delete"]


def _actions(
    store: Store, flow: str, run_key: str, statuses: Sequence[RecordStatus]
) -> list[tuple[RecordKey, Action]]:
    """What writing each of the run's records in ``statuses`` does (a ``loaded`` one: what it did):
    create (the target does not hold it), update or delete; by entity and key."""
    keyed = store.reports.record_keys(run_key, statuses)
    pending: dict[str, list[str]] = defaultdict(list)
    for record in keyed:
        if record.status is not RecordStatus.LOADED:
            pending[record.entity].append(record.key)
    live = {
        entity: {
            key for key, entry in store.id_map.entries(flow, entity, keys).items() if entry.deleted_at is None
        }
        for entity, keys in pending.items()
    }
    result: list[tuple[RecordKey, Action]] = []
    for record in keyed:
        action: Action
        if record.operation == "delete":
            action = "delete"
        elif record.status is RecordStatus.LOADED:
            action = "create" if record.change == "created" else "update"
        else:
            action = "update" if record.key in live[record.entity] else "create"
        result.append((record, action))
    return result


def run_changes(
    store: Store,
    flow: str,
    run_key: str,
    *,
    limit: int | None = REPORT_ROWS,
    masked: bool = True,
    entity: str | None = None,
    key: str | None = None,
    entity_order: Sequence[str] = (),
) -> tuple[list[Change], int]:
    """What the run would write (its ``mapped`` records) or wrote (``loaded``): updates first, with
    the fields that change (old -> new, against the record's previous write), then deletions, then
    creations; at most ``limit`` of them, and how many there are in all."""
    chosen = [
        (record, action)
        for record, action in _actions(store, flow, run_key, (RecordStatus.MAPPED, RecordStatus.LOADED))
        if (entity is None or record.entity == entity) and (key is None or record.key == key)
    ]
    rank = {name: number for number, name in enumerate(entity_order)}
    order = {"update": 0, "delete": 1, "create": 2}
    chosen.sort(
        key=lambda item: (order[item[1]], rank.get(item[0].entity, len(rank)), item[0].entity, item[0].key)
    )
    total = len(chosen)
    shown = chosen if limit is None else chosen[:limit]
    records = {record.id: record for record in _in_order(store, [item.id for item, _ in shown])}
    previous_ids = store.reports.previous_writes([item.id for item, action in shown if action == "update"])
    previous = {record.id: record for record in _in_order(store, list(previous_ids.values()))}
    changes = []
    for item, action in shown:
        record = records[item.id]
        change = Change(entity=record.entity, key=record.key, action=action)
        if action == "update":
            before = previous.get(previous_ids.get(record.id, -1))
            if before is None:
                change.previous_known = False
            else:
                change.fields = field_changes(before.payload or {}, record.payload or {}, masked=masked)
        changes.append(change)
    return changes, total


def field_changes(old: Mapping[str, Any], new: Mapping[str, Any], *, masked: bool) -> list[FieldChange]:
    """The fields (dotted paths) whose values differ, old -> new; personal data masked if asked."""
    before, after = _flatten(old), _flatten(new)
    changed = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        old_value, new_value = before.get(name), after.get(name)
        if masked:
            old_value, new_value = mask_value(name, old_value), mask_value(name, new_value)
        changed.append(FieldChange(field=name, old=old_value, new=new_value))
    return changed


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, item in value.items():
        path = f"{prefix}{name}"
        if isinstance(item, Mapping) and item:
            flat.update(_flatten(item, f"{path}."))
        else:
            flat[path] = item
    return flat


def _in_order(store: Store, ids: Sequence[int]) -> list[StoredRecord]:
    """The records of ``ids``, decrypted, in the order of ``ids``."""
    found = {record.id: record for chunk in store.records.iter(ids=list(ids)) for record in chunk}
    return [found[record_id] for record_id in ids if record_id in found]


def _reason(error: str | None, masked: bool) -> str:
    text = " ".join((error or "").split())
    return mask_reason(text) if masked else text


# ---------------------------------------------------------------------------------------- rendering


def render_text(report: RunReport) -> str:
    """The report as the task log and ``mlconn report`` print it."""
    lines = [f"Run report {report.run_key}" + (" (DRY RUN: nothing was written)" if report.dry_run else "")]
    lines.append(f"   {report.headline()}")
    columns = _columns(report)
    width = max([12, *(len(c.entity) + 2 for c in report.entities)])
    header = [_label(column) for column in columns]
    widths = [max(9, len(text) + 1) for text in header]
    lines.append(
        "   " + "entity".ljust(width) + "".join(t.rjust(w) for t, w in zip(header, widths, strict=True))
    )
    for counts in report.entities:
        values = [str(getattr(counts, column)) for column in columns]
        lines.append(
            "   "
            + counts.entity.ljust(width)
            + "".join(v.rjust(w) for v, w in zip(values, widths, strict=True))
        )
    lines.append("   API calls: " + (_calls_text(report.calls) or "none"))
    if report.steps:
        lines.append("   time per step: " + ", ".join(_step_text(step) for step in report.steps))
    if report.not_loaded_total:
        lines.append(
            f"   {report.not_loaded_total} records not sent (rejected, waiting, failed or uncertain); "
            f"reasons{' (personal data masked)' if report.masked else ''}:"
        )
        for row in report.not_loaded:
            lines.append(f"   - {row.status:<9} {row.entity} {row.key}: {row.reason}")
        more = report.not_loaded_total - len(report.not_loaded)
        lines.append(f"   {f'... {more} more; ' if more else ''}all of them: {report.audit_command}")
    if report.changes_total:
        verb = "would be written" if report.dry_run else "written"
        lines.append(f"   what {verb}{' (personal data masked)' if report.masked else ''}:")
        for change in report.changes:
            lines.append(f"   - {change_text(change)}")
        more = report.changes_total - len(report.changes)
        lines.append(f"   {f'... {more} more; ' if more else ''}whole values: {report.changes_command}")
    return "\n".join(lines)


def change_text(change: Change) -> str:
    head = f"{change.action} {change.entity} {change.key}"
    if change.action != "update":
        return head
    if not change.previous_known:
        return f"{head}: (the previous write is no longer in the store)"
    if not change.fields:
        return f"{head}: (no field differs)"
    return f"{head}: " + "; ".join(
        f"{item.field} {_value_text(item.old)} -> {_value_text(item.new)}" for item in change.fields
    )


def render_note(report: RunReport, limit: int = NOTE_LIMIT) -> str:
    """The report as a DAG run note (Markdown, at most ``limit`` characters): the headline, the
    table, calls, and as many not-sent records (or dry-run changes) as fit."""
    columns = _columns(report)
    # Airflow's run page shows a note's first line only: it is the headline.
    first = f"{NOTE_HEADING} ({'dry run, nothing written' if report.dry_run else 'run'}): "
    if report.needs_attention:
        first += f"**{report.attention_text()}**, `{report.audit_command}`; {_done_text(report)}"
    else:
        first += f"{_done_text(report)}; nothing rejected, waiting or failed"
    table = [
        "| entity | " + " | ".join(_label(c) for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
        *(
            f"| {counts.entity} | " + " | ".join(str(getattr(counts, c)) for c in columns) + " |"
            for counts in report.entities
        ),
    ]
    calls = "API calls: " + (_calls_text(report.calls) or "none")
    fixed = [first, "", *table, "", calls]
    details = [f"- {row.status} {row.entity} {row.key}: {row.reason}" for row in report.not_loaded] + [
        f"- {change_text(change)}" for change in report.changes
    ]
    note = "\n".join(fixed)
    if len(note) > limit:  # too many entities for a note: the headline and where to look
        return _cut(f"{first}\n\n{report.headline()}\n\n`mlconn report --run '{report.run_key}'`", limit)
    shown = 0
    for line in details:
        candidate = note + ("\n\n" if shown == 0 else "\n") + _cut(line, 200)
        if len(candidate) > limit - 40:
            break
        note, shown = candidate, shown + 1
    hidden = len(details) - shown
    if hidden:
        note += f"\n\n… {hidden} more: `mlconn report --run '{report.run_key}'`"
    return _cut(note, limit)


def asset_extra(report: RunReport) -> dict[str, Any]:
    """The report as an asset event's extra (JSON, personal data masked as in the report)."""
    return {
        "run": report.run_key,
        "flow": report.flow,
        "dry_run": report.dry_run,
        "headline": report.headline(),
        "needs_attention": report.needs_attention,
        "entities": {counts.entity: counts.model_dump(exclude={"entity"}) for counts in report.entities},
        "calls": {calls.system: calls.model_dump(exclude={"system"}) for calls in report.calls},
        "steps": {step.task_id: step.model_dump(exclude={"task_id"}) for step in report.steps},
        "not_sent": [row.model_dump() for row in report.not_loaded],
        "not_sent_total": report.not_loaded_total,
        "audit_command": report.audit_command,
    }


def _columns(report: RunReport) -> list[str]:
    base = _DRY_COLUMNS if report.dry_run else _COUNT_COLUMNS
    columns = [c for c in base if c not in _OPTIONAL_COLUMNS or any(getattr(e, c) for e in report.entities)]
    if not report.dry_run and any(e.pending for e in report.entities):
        columns.append("pending")
    return columns


def _label(column: str) -> str:
    return {
        "would_create": "create",
        "would_update": "update",
        "would_delete": "delete",
        "pending": "not loaded",
    }.get(column, column)


def _calls_text(calls: Iterable[SystemCallCounts]) -> str:
    parts = []
    for item in calls:
        text = f"{item.system} {item.calls}"
        extra = []
        if item.rate_limited:
            extra.append(f"{item.rate_limited} answered 429, waited {item.waited_429:.1f} s")
        else:
            extra.append("0 answered 429")
        if item.retries:
            extra.append(f"{item.retries} retries")
        if item.errors:
            extra.append(f"{item.errors} errors")
        parts.append(f"{text} ({', '.join(extra)})")
    return ", ".join(parts)


def _step_text(step: StepTime) -> str:
    parts = [f"{step.seconds:.1f} s"]
    if step.batches > 1:
        parts.append(f"{step.batches} batches")
    if step.tries > 1:
        parts.append(f"{step.tries} tries")
    if step.state != "success":
        parts.append(step.state)
    return f"{step.task_id} {', '.join(parts)}"


def _value_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
