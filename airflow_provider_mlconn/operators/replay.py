"""The ``mlconn_replay`` DAG: re-map failed or rejected records from their stored source and load them.

Triggered by hand with a form (flow, entity, statuses, run id or time range, dry run).
``select_records`` counts what the request covers and, for a dry run, logs what mapping would do
now; ``replay_records`` (skipped in a dry run) re-selects, re-maps, orders and loads, appending
every step to each record's audit trail. Only the latest row of each record is replayed.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseOperator, Param

from airflow_provider_mlconn.hooks.jde_ais import shared_sessions
from airflow_provider_mlconn.operators.common import (
    OneLineFailures,
    actor,
    optional_instant,
    optional_text,
    roomier_young_generation,
    store_from_airflow,
)
from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.registry import get_flow, known_flows

_PREVIEW_ROWS = 200


def replay_request(params: Any) -> engine.ReplayRequest:
    """The replay form's values as a validated request (empty strings mean "not given")."""
    return engine.ReplayRequest(
        flow=str(params.get("flow") or ""),
        entity=optional_text(params.get("entity")),
        statuses=list(params.get("statuses") or engine.REPLAYABLE),
        run_id=optional_text(params.get("run_id")),
        since=optional_instant(params.get("since"), "since"),
        until=optional_instant(params.get("until"), "until"),
        dry_run=bool(params.get("dry_run", True)),
        limit=int(params.get("limit") or 10_000),
        use_stored_source=bool(params.get("use_stored_source", False)),
    )


class SelectReplayOperator(OneLineFailures, BaseOperator):
    """Count the records a replay request covers; in a dry run, log what re-mapping would do."""

    def execute(self, context: Any) -> dict[str, Any]:
        request = replay_request(context["params"])
        flow = get_flow(request.flow)
        store = store_from_airflow()
        ids = engine.select_replay(flow, store, request)
        by_entity: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        preview: Counter[str] = Counter()
        lines: list[str] = []
        for chunk in store.records.iter(ids=ids):
            by_entity.update(record.entity for record in chunk)
            by_status.update(record.status.value for record in chunk)
            if request.dry_run:
                for record, result in zip(chunk, engine.preview_mapping(flow, store, chunk), strict=True):
                    preview[result.status.value] += 1
                    if len(lines) < _PREVIEW_ROWS:
                        # Keys and statuses only: reasons may quote personal data and logs are not encrypted.
                        lines.append(
                            f"{record.entity:<16} {record.key:<24} {record.status.value:<9} -> "
                            f"{'would load' if result.status.value == 'mapped' else result.status.value}"
                        )
        self.log.info(
            "replay %s: %d records selected (%s; %s)", flow.name, len(ids), dict(by_entity), dict(by_status)
        )
        if request.dry_run:
            self.log.info(
                "dry run, nothing is written. Re-mapping now gives %s:\n%s", dict(preview), "\n".join(lines)
            )
        return {
            "flow": flow.name,
            "selected": len(ids),
            "by_entity": dict(by_entity),
            "by_status": dict(by_status),
            "dry_run": request.dry_run,
            "preview": dict(preview),
        }


class ReplayRecordsOperator(OneLineFailures, BaseOperator):
    """Re-select, re-map and load the requested records (skipped for a dry run)."""

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        request = replay_request(context["params"])
        if request.dry_run:
            raise AirflowSkipException("dry run: nothing replayed (untick dry_run to replay)")
        flow = get_flow(request.flow)
        store = store_from_airflow()
        ids = engine.select_replay(flow, store, request)
        with shared_sessions(), roomier_young_generation():  # one AIS session for the replay's calls
            manifest = engine.replay(
                flow, store, ids, actor(context), use_stored_source=request.use_stored_source
            )
        self.log.info(
            "replayed %d records of %s: mapping %s, loads %s",
            manifest.selected,
            flow.name,
            manifest.mapped,
            [
                load.model_dump(include={"entity", "loaded", "rejected", "waiting", "failed", "held_back"})
                for load in manifest.loads
            ],
        )
        if manifest.still_not_loaded_count:
            # Keys, statuses and reasons: the reasons name fields and values a person must fix.
            lines = [
                f"  {row['entity']:<14} {row['key']:<20} {row['status']:<9} {row['reason']}"
                for row in manifest.still_not_loaded
            ]
            more = manifest.still_not_loaded_count - len(manifest.still_not_loaded)
            if more:
                lines.append(f"  ... and {more} more: mlconn audit record --flow {flow.name} ...")
            self.log.warning(
                "%d records are still not loaded (rejected or waiting); fix the cause, then replay "
                "them again:\n%s",
                manifest.still_not_loaded_count,
                "\n".join(lines),
            )
        return manifest.model_dump(mode="json")


def replay_params(flows: list[str]) -> dict[str, Param]:
    """The replay form. ``flow`` and ``entity`` are selects of the registered flows and their
    entities; ``statuses`` a multi-select."""
    entities = sorted({entity.name for name in flows for entity in get_flow(name).entities})
    flow_param: dict[str, Any] = {
        "type": "string",
        "title": "Flow",
        "description": "The flow whose records to replay.",
    }
    if flows:
        flow_param["enum"] = flows
    return {
        "flow": Param(flows[0] if flows else "", **flow_param),
        "entity": Param(
            None,
            type=["null", "string"],
            enum=[None, *entities],
            values_display={"null": "every entity of the flow"},  # the UI shows None as "null"
            title="Entity",
            description="Only this entity. Empty: every entity of the flow.",
        ),
        "statuses": Param(
            list(engine.REPLAYABLE),
            type="array",
            items={"type": "string", "enum": list(engine.REPLAYABLE)},
            examples=list(engine.REPLAYABLE),
            uniqueItems=True,
            minItems=1,
            title="Statuses to replay",
        ),
        "run_id": Param(
            None,
            type=["null", "string"],
            title="Run id",
            description="Only records of this run of the flow's DAG. Empty: any run.",
        ),
        "since": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Since",
            description="Only records last touched at or after this instant.",
        ),
        "until": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Until",
            description="Only records last touched before this instant.",
        ),
        "dry_run": Param(
            True,
            type="boolean",
            title="Dry run",
            description="Only list what would be replayed and what re-mapping gives now.",
        ),
        "limit": Param(10_000, type="integer", minimum=1, title="At most this many records"),
        "use_stored_source": Param(
            False,
            type="boolean",
            title="Use the stored source",
            description="Map the source as it was read then, instead of re-reading it from the source "
            "system now (entities that cannot re-read always use the stored copy).",
        ),
    }


def replay_dag(dag_id: str = "mlconn_replay") -> DAG:
    """The replay DAG; ``dags/mlconn_replay.py`` is this one call."""
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["mlconn", "replay"],
        description="Re-map and load failed or rejected sync records from the audit store.",
        params=replay_params(known_flows()),
        doc_md=__doc__,
        default_args={"retries": 0},
    ) as dag:
        SelectReplayOperator(task_id="select_records") >> ReplayRecordsOperator(task_id="replay_records")
    return dag
