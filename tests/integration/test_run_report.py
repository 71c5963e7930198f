"""The run report of the customers DAG (dag.test() against both sandboxes): where an Airflow user
looks (the commit task's log, the DAG run note, the run's asset event, `mlconn report`), what it
says (counts per entity, calls per system, time per step, rejected and waiting records with their
reasons), progress lines of a slow load, and a dry run's diff: what would be written, field by field.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from airflow_provider_mlconn.cli import main
from airflow_provider_mlconn.sync.report import NOTE_HEADING, NOTE_LIMIT
from tests.integration.test_customers_flow import run_dag
from tests.integration.test_customers_waiting import _add_blank_customer
from tests.support.customers import Sandboxes

pytestmark = pytest.mark.integration


def _fresh_run(dag_run: Any) -> Any:
    """The run as the metadata database holds it now (its note is set when the run ends)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).one()
        return {"note": run.note, "state": str(run.state)}


def _asset_extras(uri: str, run_key: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri)
            .all()
        )
        return [dict(event.extra) for event in events if (event.extra or {}).get("run") == run_key]


def _report_json(run_key: str, capture: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capture.readouterr()
    assert main(["report", "--run", run_key, "--json"]) == 0
    result: dict[str, Any] = json.loads(capture.readouterr().out)
    return result


def test_a_run_with_a_rejected_customer_says_so_in_its_log_note_asset_event_and_mlconn_report(
    customer_sandboxes, airflow_store, airflow_db, monkeypatch, capfd
):
    # A slow HubSpot and progress every 0.2 s: the loads log progress lines while they run.
    monkeypatch.setenv("AIRFLOW__MLCONN__PROGRESS_INTERVAL_SECONDS", "0.2")
    sandboxes: Sandboxes = customer_sandboxes(jde={"customers": 12}, hubspot={"latency_ms": 150})
    blank = _add_blank_customer(sandboxes)

    dag_run = run_dag()  # green: a rejected record does not fail the run
    run_key = f"{dag_run.dag_id}/{dag_run.run_id}"
    log = capfd.readouterr().out

    # The counts, from `mlconn report` (the same report the commit task logs).
    report = _report_json(run_key, capfd)
    counts = {row["entity"]: row for row in report["entities"]}
    assert [row["entity"] for row in report["entities"]] == ["company", "contact", "association"]
    assert counts["company"]["read"] == 13
    assert counts["company"]["created"] == 12 and counts["company"]["rejected"] == 1
    assert counts["association"]["waiting"] >= 1 and counts["contact"]["rejected"] == 0
    assert all(row["failed"] == 0 and row["uncertain"] == 0 for row in report["entities"])
    # Calls per system, as counted by the hooks, and what the sandboxes served.
    calls = {row["system"]: row for row in report["calls"]}
    assert set(calls) == {"JDE AIS", "HubSpot"}
    hubspot_served = sum(sum(by.values()) for by in sandboxes.hubspot_stats()["requests"].values())
    assert calls["HubSpot"]["calls"] == hubspot_served
    assert calls["HubSpot"]["rate_limited"] == 0 and calls["JDE AIS"]["calls"] > 0
    # Time per step: every task, in the order they ran.
    steps = [step["task_id"] for step in report["steps"]]
    assert steps[:3] == ["plan_window", "extract", "map"] and "company.load" in steps
    assert all(step["state"] == "success" for step in report["steps"])
    assert next(s for s in report["steps"] if s["task_id"] == "company.load")["seconds"] > 0.15
    # The records not sent, rejected first, each with its key and reason.
    assert report["not_loaded_total"] == counts["company"]["rejected"] + counts["association"]["waiting"]
    first = report["not_loaded"][0]
    assert (first["status"], first["entity"], first["key"]) == ("rejected", "company", str(blank))
    assert "F0101.ALPH (alpha name) is blank" in first["reason"]
    waiting = next(row for row in report["not_loaded"] if row["status"] == "waiting")
    assert waiting["key"] == f"{blank}-1" and waiting["reason"].startswith(f"waits for company {blank}")

    # The commit task's log: a WARNING headline, then the table and the reasons.
    assert re.search(
        rf"\[warning\s*\] customers run: 1 rejected, {counts['association']['waiting']} waiting NOT SENT", log
    )
    assert f"mlconn audit failures --run '{run_key}'" in log
    assert re.search(r"company\s+13\s+12\s+0\s+0\s+1\s+0\s+0\s+0", log), "the company row of the table"
    assert f"- rejected  company {blank}: customer {blank}: F0101.ALPH (alpha name) is blank" in log
    # The load log does not say "0 rejected" when map rejected one.
    load_line = next(line for line in log.splitlines() if "company batch 0:" in line and "loaded" in line)
    assert "of the run's company records: 1 rejected (0 by the target in this batch)" in load_line
    assert re.search(r"\[warning\s*\] after company\.load: 1 company records of this run rejected", log)
    # Progress lines of the slow loads: records done / total, the rate, calls, 429s.
    progress = re.findall(
        r"(company|contact|association)\.load batch 0: (\d+)/(\d+) records.*?/s; (.*?); \d+ s", log
    )
    assert progress, "no progress line while the loads ran"
    assert all(int(done) <= int(total) for _, done, total, _ in progress)
    assert ("company", "12") in {(entity, total) for entity, _, total, _ in progress}  # what the load claimed
    assert any("HubSpot" in calls_text and "answered 429" in calls_text for *_, calls_text in progress)

    # The DAG run note: the headline, the table and the reasons, in Airflow's 1,000 characters.
    note = _fresh_run(dag_run)["note"]
    assert note and note.startswith(NOTE_HEADING) and len(note) <= NOTE_LIMIT
    assert "**1 rejected" in note and f"mlconn audit failures --run '{run_key}'" in note
    assert "| company | 13 | 12 | 0 | 0 | 1 |" in note
    assert f"rejected company {blank}" in note

    # The run's asset event carries the report; the companies' asset event its batch's counts.
    [extra] = _asset_extras("mlconn://runs/customers", run_key)
    assert extra["entities"]["company"]["rejected"] == 1 and extra["needs_attention"] is True
    assert extra["calls"]["HubSpot"]["calls"] == hubspot_served
    assert extra["not_sent"][0]["key"] == str(blank)
    [companies] = _asset_extras("hubspot://crm/objects/companies", run_key)
    assert companies["loaded"] == 12 and companies["entity"] == "company"

    # The text report of the CLI is the one the log shows.
    capfd.readouterr()
    assert main(["report", "--run", run_key]) == 0
    text = capfd.readouterr().out
    assert (
        text.startswith(f"Run report {run_key}") and "API calls: HubSpot" in text and "time per step:" in text
    )


def test_a_dry_run_shows_what_would_be_written_field_by_field_masked_in_the_log_whole_in_mlconn_audit(
    customer_sandboxes, airflow_store, airflow_db, capfd
):
    sandboxes: Sandboxes = customer_sandboxes(jde={"customers": 8})
    first = run_dag()
    capfd.readouterr()
    companies = sorted(
        (r for r in _report_json(f"{first.dag_id}/{first.run_id}", capfd)["entities"]),
        key=lambda row: row["entity"],
    )
    assert companies and not any(row["would_create"] for row in companies)
    from airflow_provider_mlconn.operators.common import store_from_airflow

    loaded = store_from_airflow().records.of_run(f"{first.dag_id}/{first.run_id}")
    moved = sorted(int(r.key) for r in loaded if r.entity == "company")[0]
    contact = sorted(r.key for r in loaded if r.entity == "contact" and r.key.startswith(f"{moved}-"))[0]
    old_city = next(r for r in loaded if r.entity == "company" and r.key == str(moved)).payload["properties"][
        "city"
    ]
    sandboxes.jde_control(
        "POST",
        f"customers/{moved}/addresses",
        {"lines": ["Neue Strasse 5"], "city": "Bremen", "country": "DE"},
    )
    sandboxes.jde_control(
        "PUT",
        f"customers/{moved}/contacts/{contact.split('-')[1]}/email",
        {"email": "ida.neu@bremen.example"},
    )
    sandboxes.jde_control(
        "POST",
        "customers",
        {
            "name": "Nordwind Handel GmbH",
            "address": {"lines": ["Hafenweg 1"], "city": "Hamburg", "country": "DE"},
        },
    )
    time.sleep(1.1)  # past the edits' second (UPMT)
    writes = sandboxes.hubspot_write_calls()

    dry = run_dag({"dry_run": True})
    run_key = f"{dry.dag_id}/{dry.run_id}"
    log = capfd.readouterr().out

    assert sandboxes.hubspot_write_calls() == writes, "a dry run writes nothing"
    report = _report_json(run_key, capfd)
    assert report["dry_run"] is True
    counts = {row["entity"]: row for row in report["entities"]}
    assert counts["company"]["would_create"] == 1 and counts["company"]["would_update"] == 1
    assert counts["contact"]["would_update"] == 1 and counts["contact"]["would_create"] == 0
    changes = {(c["entity"], c["key"]): c for c in report["changes"]}
    city = next(f for f in changes[("company", str(moved))]["fields"] if f["field"] == "properties.city")
    assert (city["old"], city["new"]) == (old_city, "Bremen")  # not personal data: shown whole
    email = next(f for f in changes[("contact", contact)]["fields"] if f["field"] == "properties.email")
    assert email["new"] == "i***@b***" and "ida.neu" not in json.dumps(report)  # masked in the report
    assert [c["action"] for c in report["changes"]][-1] == "create"  # updates first

    # The commit task's log says what would be written, masked; the note too.
    assert "(DRY RUN: nothing was written)" in log
    assert f"update company {moved}: " in log and '"Bremen"' in log
    assert "ida.neu@bremen.example" not in log and '-> "i***@b***"' in log
    note = _fresh_run(dry)["note"]
    # Its first line (all the run's page shows of a note) says what the dry run would write.
    read = sum(row["read"] for row in counts.values())
    assert note.startswith(
        f"{NOTE_HEADING} (dry run, nothing written): {read} read: would create 1, update 2"
    )
    assert f"| company | {counts['company']['read']} | 1 | 1 |" in note and "dry run, nothing written" in note

    # `mlconn audit changes` shows them whole.
    capfd.readouterr()
    assert main(["audit", "changes", "--run", run_key, "--entity", "contact", "--json"]) == 0
    [whole] = [c for c in json.loads(capfd.readouterr().out) if c["key"] == contact]
    assert {
        "field": "properties.email",
        "old": whole["fields"][0]["old"],
        "new": "ida.neu@bremen.example",
    } in whole["fields"]


def test_replay_after_a_jde_fix_loads_the_fixed_customer_and_reports_the_one_still_rejected(
    customer_sandboxes, airflow_store, airflow_db
):
    from tests.integration.test_customers_waiting import _company_by_number, _replay_dag

    sandboxes: Sandboxes = customer_sandboxes(jde={"customers": 6})
    fixed, still_blank = _add_blank_customer(sandboxes), _add_blank_customer(sandboxes)
    flow_run = run_dag()
    assert _company_by_number(sandboxes, fixed) is None

    # A person enters the name in JDE; the replay re-reads the customer from JDE (not the stored copy).
    sandboxes.jde_control("PATCH", f"customers/{fixed}", {"name": "Quist Schiffsbedarf"})
    replay = _replay_dag().test(
        run_conf={
            "flow": "customers",
            "statuses": ["rejected", "waiting"],
            "run_id": flow_run.run_id,
            "dry_run": False,
        }
    )

    assert str(replay.state) == "success", "records still rejected end the replay green, with a report"
    company = _company_by_number(sandboxes, fixed)
    assert company is not None and company["properties"]["name"] == "Quist Schiffsbedarf"
    assert _company_by_number(sandboxes, still_blank) is None
    [ti] = [ti for ti in replay.get_task_instances() if ti.task_id == "replay_records"]
    manifest = ti.xcom_pull(task_ids="replay_records")
    assert manifest["refreshed"] >= 2
    still = {(row["entity"], row["key"]): row for row in manifest["still_not_loaded"]}
    assert still[("company", str(still_blank))]["status"] == "rejected"
    assert "F0101.ALPH (alpha name) is blank" in still[("company", str(still_blank))]["reason"]
    assert ("company", str(fixed)) not in still and ("association", f"{fixed}-1") not in still
