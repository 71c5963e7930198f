"""``mlconn``: read the sync store's audit trail, and create the pools.

    mlconn report --run RUN_KEY [--rows N] [--json]
    mlconn audit runs [--flow F] [--limit N] [--json]
    mlconn audit failures --run RUN_KEY [--status failed|rejected|waiting ...] [--json]
    mlconn audit changes --run RUN_KEY [--entity E] [--key K] [--limit N] [--json]
    mlconn audit record --flow F --entity E --key K [--json]
    mlconn reconcile report [--run RUN_KEY] [--rows N] [--json | --html]
    mlconn store prune [--older-than-days N] [--dry-run]
    mlconn webhooks stats [--hours N] [--json]
    mlconn pools ensure

A run key is ``<dag_id>/<run_id>``. ``mlconn report`` prints the run report as the run's
``commit_watermark`` task logs it (personal data masked); ``mlconn audit`` shows values whole.
``mlconn reconcile report`` prints the latest ``mlconn_reconcile`` report as its task logs it;
``--json`` gives the whole report, every value unmasked; ``--html`` one HTML page with every
difference, masked as in the log (``> report.html`` to share it).

The store is the one the DAGs use (the ``mlconn_store`` connection, else SQLite under
``$AIRFLOW_HOME/mlconn/``; ``--store-url`` overrides the URL). Payloads and errors are shown
decrypted: whoever runs this needs the Fernet key (the connection's or Airflow's), like the tasks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from airflow_provider_mlconn.sync.records import NOT_LOADED, RecordStatus
from airflow_provider_mlconn.sync.report import (
    REPORT_ROWS,
    build_report,
    change_text,
    render_text,
    run_changes,
)
from airflow_provider_mlconn.sync.retention import DEFAULT_RETENTION_DAYS, prune_store
from airflow_provider_mlconn.sync.store import STORE_CONN_ID, RecordEvent, Store, StoredRecord, open_store

_STATUS_COLUMNS = ("loaded", "unchanged", "rejected", "waiting", "failed", "uncertain", "mapped", "staged")
_NOT_LOADED = tuple(status.value for status in NOT_LOADED)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlconn", description="mlconn sync: audit trail and pools")
    parser.add_argument(
        "--store-url", help="SQLAlchemy URL of the store (default: the mlconn_store connection)"
    )
    parser.add_argument("--conn-id", default=STORE_CONN_ID, help="store connection id (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)

    report = commands.add_parser(
        "report", help="a run's report: counts per entity, calls, time per step, records not sent"
    )
    report.add_argument("--run", required=True, dest="run_key", help="run key: <dag_id>/<run_id>")
    report.add_argument(
        "--rows", type=int, default=REPORT_ROWS, help="records named with their reason (default: %(default)s)"
    )
    report.add_argument("--json", action="store_true", help="JSON instead of text")

    audit = commands.add_parser("audit", help="read the store's audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    runs = audit.add_parser("runs", help="recent runs with their record counts per status")
    runs.add_argument("--flow", help="only this flow")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true", help="JSON instead of a table")

    failures = audit.add_parser(
        "failures", help="a run's failed, rejected and waiting records, with the reasons"
    )
    failures.add_argument("--run", required=True, dest="run_key", help="run key (see `mlconn audit runs`)")
    failures.add_argument(
        "--status",
        action="append",
        choices=list(_NOT_LOADED),
        help="only these statuses (repeatable; default all of them)",
    )
    failures.add_argument("--json", action="store_true")

    changes = audit.add_parser(
        "changes",
        help="what a run wrote, or (dry run) would write: per update the fields that change, old -> new, "
        "decrypted",
    )
    changes.add_argument("--run", required=True, dest="run_key", help="run key (see `mlconn audit runs`)")
    changes.add_argument("--entity", help="only this entity")
    changes.add_argument("--key", help="only this source key")
    changes.add_argument("--limit", type=int, default=None, help="at most this many records")
    changes.add_argument("--json", action="store_true")

    record = audit.add_parser("record", help="one record's full history across runs, decrypted")
    record.add_argument("--flow", required=True)
    record.add_argument("--entity", required=True)
    record.add_argument("--key", required=True, help="the source key (e.g. a JDE address number)")
    record.add_argument("--json", action="store_true")

    reconcile = commands.add_parser(
        "reconcile", help="the reports of mlconn_reconcile (JDE and HubSpot compared)"
    ).add_subparsers(dest="reconcile_command", required=True)
    reconcile_report = reconcile.add_parser("report", help="the latest reconciliation report")
    reconcile_report.add_argument("--run", dest="run_key", help="this run's report (<dag_id>/<run_id>)")
    reconcile_report.add_argument(
        "--rows", type=int, default=50, help="differences named one by one (default: %(default)s)"
    )
    shape = reconcile_report.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the whole report as JSON, unmasked")
    shape.add_argument(
        "--html", action="store_true", help="one HTML page with every difference, personal values masked"
    )

    store_commands = commands.add_parser("store", help="maintain the store").add_subparsers(
        dest="store_command", required=True
    )
    prune = store_commands.add_parser(
        "prune", help="delete old runs' record rows and events (the id map and each record's latest row stay)"
    )
    prune.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        help=f"records last touched before this many days ago (default: [mlconn] retention_days, "
        f"else {DEFAULT_RETENTION_DAYS})",
    )
    prune.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")

    webhooks = commands.add_parser("webhooks", help="the HubSpot webhook receiver's inbox").add_subparsers(
        dest="webhooks_command", required=True
    )
    webhook_stats = webhooks.add_parser(
        "stats", help="requests accepted and refused (per reason), events recorded per asset"
    )
    webhook_stats.add_argument("--hours", type=float, default=None, help="requests of the last N hours only")
    webhook_stats.add_argument("--json", action="store_true")

    pools = commands.add_parser("pools", help="Airflow pools of the load tasks").add_subparsers(
        dest="pools_command", required=True
    )
    pools.add_parser("ensure", help="create mlconn_hubspot and mlconn_jde if missing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "pools":
        from airflow_provider_mlconn.sync.pools import POOLS, ensure_pools, pool_slots

        created = ensure_pools()
        for name in POOLS:
            state = "created" if name in created else "exists"
            print(f"{name}: {state} ({pool_slots(name)} slots when created)")
        return 0
    store = _open(args)
    if args.command == "store":
        result = prune_store(store, older_than_days=args.older_than_days, dry_run=args.dry_run)
        verb = "would delete" if result.dry_run else "deleted"
        print(
            f"{verb} {result.records} record rows and {result.events} events last touched before "
            f"{result.cutoff:%Y-%m-%d %H:%M} UTC, {result.runs} runs left without records and "
            f"{result.reconcile_reports} reconciliation reports"
        )
        return 0
    if args.command == "report":
        return _report(store, args)
    if args.command == "webhooks":
        return _webhook_stats(store, args)
    if args.command == "reconcile":
        return _reconcile_report(store, args)
    if args.audit_command == "runs":
        return _runs(store, args)
    if args.audit_command == "failures":
        return _failures(store, args)
    if args.audit_command == "changes":
        return _changes(store, args)
    return _record(store, args)


def _webhook_stats(store: Store, args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta, timezone

    since = None if args.hours is None else datetime.now(timezone.utc) - timedelta(hours=args.hours)
    requests = store.webhooks.request_counts("hubspot", since=since)
    events = store.webhooks.event_counts("hubspot")
    if args.json:
        _print_json({"requests": requests, "events": events})
        return 0
    accepted = requests.pop("accepted", 0)
    refused = ", ".join(f"{reason} {count}" for reason, count in sorted(requests.items())) or "none"
    print(f"requests: {accepted} accepted; refused or failed: {refused}")
    for asset, count in sorted(events.items()):
        print(f"events {asset}: {count}")
    return 0


def _open(args: argparse.Namespace) -> Store:
    from airflow_provider_mlconn.hooks.mlconn_store import MlconnStoreHook
    from airflow_provider_mlconn.operators.common import connection_from_metadata_db

    hook = MlconnStoreHook(args.conn_id, connection=connection_from_metadata_db(args.conn_id))
    settings = hook.settings()
    if args.store_url:
        settings = replace(settings, url=args.store_url)
    return open_store(settings)


def _entity_order(store: Store, run_key: str) -> list[str]:
    """The run's flow's entities in load order, when the flow is registered here."""
    from airflow_provider_mlconn.sync.registry import get_flow

    summary = store.runs.get(run_key)
    try:
        flow = get_flow(summary.flow) if summary else None
    except Exception:  # a flow this installation does not have: the store's order will do
        return []
    return [name for stage in flow.stages for name in stage] if flow else []


def _report(store: Store, args: argparse.Namespace) -> int:
    try:
        report = build_report(
            store, args.run_key, entity_order=_entity_order(store, args.run_key), rows=args.rows
        )
    except LookupError as error:
        print(str(error), file=sys.stderr)
        return 1
    if args.json:
        _print_json(report.model_dump(mode="json"))
    else:
        print(render_text(report))
    return 0


def _reconcile_report(store: Store, args: argparse.Namespace) -> int:
    from airflow_provider_mlconn.reconcile.report import ReconcileReport, render_html, render_text

    stored = store.reconcile_reports.latest(args.run_key)
    if stored is None:
        where = f"for run {args.run_key!r}" if args.run_key else "yet"
        print(f"no reconciliation report {where}: trigger mlconn_reconcile", file=sys.stderr)
        return 1
    if args.json:
        _print_json(stored.report)
    elif args.html:
        sys.stdout.write(render_html(ReconcileReport.model_validate(stored.report)))
    else:
        print(render_text(ReconcileReport.model_validate(stored.report), rows=args.rows))
    return 0


def _changes(store: Store, args: argparse.Namespace) -> int:
    summary = store.runs.get(args.run_key)
    if summary is None:
        print(f"no run {args.run_key!r} in the store (see `mlconn audit runs` for run keys)", file=sys.stderr)
        return 1
    found, total = run_changes(
        store,
        summary.flow,
        args.run_key,
        limit=args.limit,
        masked=False,
        entity=args.entity,
        key=args.key,
        entity_order=_entity_order(store, args.run_key),
    )
    if args.json:
        _print_json([change.model_dump(mode="json") for change in found])
        return 0
    for change in found:
        print(change_text(change))
    if total > len(found):
        print(f"... {total - len(found)} more (--limit)")
    if not found:
        print("nothing written and nothing to write in this run")
    return 0


def _runs(store: Store, args: argparse.Namespace) -> int:
    summaries = store.runs.recent(flow=args.flow, limit=args.limit)
    if args.json:
        _print_json(
            [
                {
                    "run_key": s.run_key,
                    "flow": s.flow,
                    "run_type": s.run_type,
                    "created_at": s.created_at,
                    "committed_at": s.committed_at,
                    "windows": s.windows,
                    "high_water": s.high_water,
                    "committed": s.committed,
                    "counts": s.counts,
                }
                for s in summaries
            ]
        )
        return 0
    rows = [
        [
            s.run_key,
            s.flow,
            s.run_type or "",
            _time(s.created_at),
            _time(s.committed_at) if s.committed_at else "-",
            *[str(s.counts.get(status, 0)) for status in _STATUS_COLUMNS],
        ]
        for s in summaries
    ]
    _print_table(["RUN KEY", "FLOW", "TYPE", "CREATED", "COMMITTED", *map(str.upper, _STATUS_COLUMNS)], rows)
    return 0


def _failures(store: Store, args: argparse.Namespace) -> int:
    statuses = [RecordStatus(s) for s in (args.status or _NOT_LOADED)]
    found = store.records.of_run(args.run_key, statuses=statuses)
    if args.json:
        _print_json([_record_json(record) for record in found])
        return 0
    if not found and not store.runs.status_counts(args.run_key):
        print(f"no records for run {args.run_key!r} (see `mlconn audit runs` for run keys)", file=sys.stderr)
        return 1
    _print_table(
        ["ID", "ENTITY", "KEY", "STATUS", "ATTEMPTS", "UPDATED", "REASON"],
        [
            [str(r.id), r.entity, r.key, r.status.value, str(r.attempts), _time(r.updated_at), r.error or ""]
            for r in found
        ],
    )
    return 0


def _record(store: Store, args: argparse.Namespace) -> int:
    history = store.audit.history(flow=args.flow, entity=args.entity, key=args.key)
    if args.json:
        _print_json(
            [
                {**_record_json(record), "events": [_event_json(e) for e in events]}
                for record, events in history
            ]
        )
        return 0
    if not history:
        print(f"no record {args.flow}/{args.entity} {args.key!r} in the store", file=sys.stderr)
        return 1
    for record, events in history:
        print(
            f"== run {record.run_key}: {record.status.value}, {record.attempts} attempts, "
            f"remote id {record.remote_id or '-'}"
        )
        if record.error:
            print(f"reason: {record.error}")
        print(f"source: {json.dumps(record.source, sort_keys=True)}")
        print(f"mapped: {json.dumps(record.payload, sort_keys=True) if record.payload is not None else '-'}")
        _print_table(
            ["AT", "ACTION", "STATUS", "ATTEMPT", "REMOTE ID", "BY", "ERROR"],
            [
                [
                    _time(e.at),
                    e.action,
                    e.status.value,
                    str(e.attempt),
                    e.remote_id or "",
                    e.actor,
                    e.error or "",
                ]
                for e in events
            ],
        )
        print()
    return 0


def _record_json(record: StoredRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "run_key": record.run_key,
        "flow": record.flow,
        "entity": record.entity,
        "key": record.key,
        "status": record.status.value,
        "attempts": record.attempts,
        "remote_id": record.remote_id,
        "change": record.change,
        "error": record.error,
        "source": record.source,
        "payload": record.payload,
        "prerequisites": [p.describe(record.flow) for p in record.prerequisites],
        "touched_by": record.touched_by,
        "updated_at": record.updated_at,
    }


def _event_json(event: RecordEvent) -> dict[str, Any]:
    return {
        "at": event.at,
        "action": event.action,
        "status": event.status.value,
        "attempt": event.attempt,
        "remote_id": event.remote_id,
        "change": event.change,
        "error": event.error,
        "by": event.actor,
    }


def _time(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    # The last column (reasons) is left unpadded so long texts do not widen the table.
    print("  ".join(h.ljust(w) for h, w in zip(headers[:-1], widths, strict=False)) + "  " + headers[-1])
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1])


if __name__ == "__main__":
    sys.exit(main())
