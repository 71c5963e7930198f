"""The run report from the store (toy flow, engine level): counts, calls, time per step, records
not sent with their reasons, a dry run's diff; how calls are counted; progress lines; the note."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_mlconn.http import RateLimitedError, RequestMetrics, RetryPolicy, counting_calls
from airflow_provider_mlconn.operators.reporting import TaskRecorder, note_with_report
from airflow_provider_mlconn.plugins.api_server import DRY_RUN_NOTE
from airflow_provider_mlconn.plugins.run_notes import report_note
from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.errors import LoadIncomplete
from airflow_provider_mlconn.sync.masking import mask_reason, mask_value
from airflow_provider_mlconn.sync.report import (
    NOTE_HEADING,
    NOTE_LIMIT,
    asset_extra,
    build_report,
    render_note,
    render_text,
    run_changes,
)
from tests.support.sync import NOW, T0, DictVariables, EngineRun, ToyWorld, make_toy_flow

pytestmark = pytest.mark.unit


def _world(contacts: int = 4, bad_emails: int = 0) -> ToyWorld:
    """Four companies; ``contacts`` contacts, the first ``bad_emails`` of them "name at domain"
    (the toy mapping rejects them)."""
    world = ToyWorld()
    for number in range(1, 5):
        world.company(f"C{number}", f"Company {number}", T0 + timedelta(minutes=number))
    for number in range(1, contacts + 1):
        at = "at" if number <= bad_emails else "@"
        email = (
            f"person{number:02d} {at} example.com"
            if number <= bad_emails
            else f"person{number:02d}@example.com"
        )
        company = f"C{1 + number % 4}"
        world.contact(f"P{number:02d}", company, email, T0 + timedelta(minutes=10, seconds=number))
    return world


def _save_try(
    store: Any,
    run: EngineRun,
    task_id: str,
    seconds: float,
    *,
    map_index: int = -1,
    try_number: int = 1,
    state: str = "success",
    calls: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    started = NOW + timedelta(seconds=len(store.reports.tasks(run.ref.run_key)))
    store.reports.save_task(
        run.ref.run_key,
        run.actor(task_id, try_number, map_index=map_index),
        state=state,
        started_at=started,
        ended_at=started + timedelta(seconds=seconds),
        calls=calls or {},
        detail=detail,
    )


def test_the_report_counts_each_entity_and_names_each_record_not_sent_with_its_reason_capped(sqlite_store):
    world = _world(contacts=27, bad_emails=23)
    world.fail_always = {("company", "C4")}
    flow = make_toy_flow("reported", world)
    run = EngineRun(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    with pytest.raises(LoadIncomplete):
        run.load("company")
    with pytest.raises(LoadIncomplete):
        run.load("contact")

    report = build_report(sqlite_store, run.ref.run_key, entity_order=["company", "contact"], rows=20)

    counts = {row.entity: row for row in report.entities}
    assert (counts["company"].read, counts["company"].created, counts["company"].failed) == (4, 3, 1)
    contact = counts["contact"]
    assert (contact.read, contact.created, contact.rejected) == (27, 3, 23)
    assert contact.failed == 1  # P27 (a valid e-mail) needs C4, which failed: held back
    assert report.not_loaded_total == 25 and len(report.not_loaded) == 20
    first = report.not_loaded[0]
    assert (first.status, first.entity, first.key) == ("rejected", "contact", "P01")
    # Reasons are whole in the store, masked in the report (it goes to logs and notes).
    assert first.reason == "contact P01: e-mail 'p***' has no '@'; correct it in JDE"
    assert report.needs_attention
    text = render_text(report)
    assert "- rejected  contact P01: contact P01: e-mail 'p***' has no '@'" in text
    assert f"... 5 more; all of them: mlconn audit failures --run '{run.ref.run_key}'" in text
    assert "person01" not in text
    whole = build_report(sqlite_store, run.ref.run_key, rows=1, masked=False)
    assert (
        whole.not_loaded[0].reason
        == "contact P01: e-mail 'person01 at example.com' has no '@'; correct it in JDE"
    )
    assert report.headline().startswith("reported run: 23 rejected, 2 failed NOT SENT")


def test_calls_429s_retries_and_time_per_step_add_up_over_batches_and_tries(sqlite_store):
    world = _world()
    flow = make_toy_flow("timed", world)
    run = EngineRun.completed(flow, sqlite_store, DictVariables(), "run1")
    hubspot = {"HubSpot": {"calls": 10, "rate_limited": 2, "retries": 2, "waited_429": 3.5, "waited": 3.5}}
    _save_try(sqlite_store, run, "plan_window", 0.1, detail={"dry_run": False})
    _save_try(sqlite_store, run, "extract", 2.0, calls={"JDE AIS": {"calls": 7}})
    _save_try(sqlite_store, run, "company.load", 4.0, map_index=0, state="failed", calls=hubspot)
    _save_try(
        sqlite_store, run, "company.load", 1.5, map_index=0, try_number=2, calls={"HubSpot": {"calls": 3}}
    )
    _save_try(
        sqlite_store, run, "company.load", 2.5, map_index=1, calls={"HubSpot": {"calls": 4, "retries": 1}}
    )

    report = build_report(sqlite_store, run.ref.run_key, entity_order=["company", "contact"])

    calls = {row.system: row for row in report.calls}
    assert (calls["HubSpot"].calls, calls["HubSpot"].rate_limited, calls["HubSpot"].retries) == (17, 2, 3)
    assert calls["HubSpot"].waited_429 == 3.5 and calls["JDE AIS"].calls == 7
    steps = {step.task_id: step for step in report.steps}
    assert list(steps) == ["plan_window", "extract", "company.load"]
    load = steps["company.load"]
    assert (load.tries, load.batches, load.seconds, load.state) == (2, 2, 4.0, "success")  # latest tries
    text = render_text(report)
    assert (
        "API calls: HubSpot 17 (2 answered 429, waited 3.5 s, 3 retries), JDE AIS 7 (0 answered 429)" in text
    )
    assert "company.load 4.0 s, 2 batches, 2 tries" in text
    assert "nothing rejected, waiting or failed" in text and not report.needs_attention
    extra = asset_extra(report)
    json.dumps(extra)  # an asset event's extra is JSON
    assert extra["entities"]["company"]["created"] == 4 and extra["calls"]["HubSpot"]["calls"] == 17

    _save_try(sqlite_store, run, "contact.load", 0.5, map_index=0, state="failed")
    failed = build_report(sqlite_store, run.ref.run_key)
    assert failed.needs_attention and failed.headline().startswith(
        "timed run: contact.load failed (mlconn audit"
    )


def test_a_dry_run_lists_what_would_be_written_with_the_fields_that_change(
    sqlite_store, capsys, airflow_store
):
    from airflow_provider_mlconn.cli import main
    from airflow_provider_mlconn.operators.common import store_from_airflow

    store = store_from_airflow()
    world = _world()
    flow = make_toy_flow("previewed", world)
    EngineRun.completed(flow, store, DictVariables(), "run1")
    world.company("C1", "Company One", T0 + timedelta(minutes=30))
    world.contact("P01", "C2", "new.person@example.org", T0 + timedelta(minutes=31))
    world.company("C9", "Company Nine", T0 + timedelta(minutes=32))
    dry = EngineRun(flow, store, DictVariables(), "dry")
    dry.prepare()  # a dry run stops here: nothing is ordered into batches, nothing loaded
    _save_try(store, dry, "plan_window", 0.1, detail={"dry_run": True})  # as PlanWindowOperator does

    report = build_report(store, dry.ref.run_key, entity_order=["company", "contact"])

    counts = {row.entity: row for row in report.entities}
    assert (counts["company"].would_create, counts["company"].would_update) == (1, 1)
    assert (counts["contact"].would_create, counts["contact"].would_update) == (0, 1)
    assert [(c.action, c.entity, c.key) for c in report.changes] == [
        ("update", "company", "C1"),
        ("update", "contact", "P01"),
        ("create", "company", "C9"),
    ]
    # Names and e-mails are personal data: masked in the report, whole in `mlconn audit changes`.
    [name] = report.changes[0].fields
    assert (name.field, name.old, name.new) == ("name", "C***", "C***")
    [email] = report.changes[1].fields
    assert (email.field, email.old, email.new) == ("email", "p***@e***", "n***@e***")
    text = render_text(report)
    assert 'update contact P01: email "p***@e***" -> "n***@e***"' in text
    assert (
        "new.person" not in text and f"whole values: mlconn audit changes --run '{dry.ref.run_key}'" in text
    )
    changes, total = run_changes(store, "previewed", dry.ref.run_key, masked=False, limit=None)
    assert total == 3 and changes[0].fields[0].new == "Company One"

    capsys.readouterr()
    assert main(["audit", "changes", "--run", dry.ref.run_key, "--entity", "contact"]) == 0
    assert capsys.readouterr().out.strip() == (
        'update contact P01: email "person01@example.com" -> "new.person@example.org"'
    )
    assert main(["report", "--run", dry.ref.run_key]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Run report {dry.ref.run_key} (DRY RUN: nothing was written)")


def test_a_report_of_an_unknown_run_says_where_to_find_run_keys(airflow_store, capsys):
    from airflow_provider_mlconn.cli import main

    assert main(["report", "--run", "mlconn_x/nope"]) == 1
    assert "mlconn audit runs" in capsys.readouterr().err


def test_the_run_note_fits_airflow_and_keeps_what_the_trigger_wrote(sqlite_store):
    world = _world(contacts=40, bad_emails=40)
    flow = make_toy_flow("noted", world)
    run = EngineRun(flow, sqlite_store, DictVariables(), "run1")
    run.prepare()
    run.load("company")
    report = build_report(sqlite_store, run.ref.run_key, entity_order=["company", "contact"], rows=40)

    note = render_note(report)
    assert len(note) <= NOTE_LIMIT and note.startswith(f"{NOTE_HEADING} (run): **40 rejected NOT SENT**")
    assert (
        "| entity | read | created | updated | unchanged | rejected | waiting | failed | uncertain |" in note
    )
    assert "| contact | 40 | 0 | 0 | 0 | 40 | 0 | 0 | 0 |" in note
    assert "- rejected contact P01:" in note and "more: `mlconn report --run" in note

    # The trigger's note stays first; the commit task leaves room for it (a report of a clear run
    # replaces the report of the failed try before it).
    merged = note_with_report(DRY_RUN_NOTE, render_note(report, limit=NOTE_LIMIT - len(DRY_RUN_NOTE) - 2))
    assert merged.startswith(f"{DRY_RUN_NOTE}\n\n{NOTE_HEADING}") and len(merged) <= NOTE_LIMIT
    again = note_with_report(merged, render_note(report, limit=300))
    assert again.count(NOTE_HEADING) == 1 and again.startswith(DRY_RUN_NOTE) and len(again) <= 400
    crowded = note_with_report("x" * 900, note)
    assert len(crowded) <= NOTE_LIMIT and crowded.endswith(note)  # the report wins over a long note
    # At the end of the run the dry-run note of the trigger gives way to the report; a person's stays.
    short = render_note(report, limit=600)
    assert report_note(DRY_RUN_NOTE, short) == short
    assert report_note("checked by Ida", short) == f"checked by Ida\n\n{short}"


def test_calls_are_counted_per_system_with_429s_retries_and_the_wait_before_each_retry():
    hubspot, jde = RequestMetrics(system="HubSpot"), RequestMetrics(system="JDE AIS")
    answers = iter([429, 200])

    def call() -> str:
        status = next(answers)
        hubspot.record("POST", "/crm/v3/objects/companies/batch/upsert", status, 0.01)
        if status == 429:
            raise RateLimitedError("slow down", system="HubSpot", status=429, retry_after=0.25)
        return "ok"

    waits: list[float] = []
    outside = RequestMetrics(system="HubSpot")
    outside.record("GET", "/crm/v3/objects/contacts", 200, 0.01)  # before the block: not counted
    with counting_calls() as tally:
        attempts = 0

        def counted() -> str:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                hubspot.record_retry()
            return call()

        assert RetryPolicy(max_attempts=3).call(counted, sleep=waits.append) == "ok"
        jde.record("GET", "/jderest/v2/dataservice", 500, 0.02)
    outside.record("GET", "/crm/v3/objects/contacts", 200, 0.01)  # after: not counted

    counts = tally.snapshot()
    assert (counts["HubSpot"].calls, counts["HubSpot"].rate_limited, counts["HubSpot"].retries) == (2, 1, 1)
    assert counts["HubSpot"].waited_429 == waits[0] == 0.25
    assert (counts["JDE AIS"].calls, counts["JDE AIS"].errors) == (1, 1)


def test_a_long_load_logs_a_progress_line_every_interval(caplog):
    logger = logging.getLogger("test.progress")
    caplog.set_level(logging.INFO, logger="test.progress")
    saved: list[dict[str, Any]] = []
    actor = EngineRun(make_toy_flow("slow", ToyWorld()), None, None, "run1").actor(
        "company.load", map_index=3
    )
    hubspot = RequestMetrics(system="HubSpot")
    with TaskRecorder(actor, save=lambda *a, **k: saved.append(k), logger=logger, interval=0.05) as recorder:
        manifest = engine.LoadManifest(run_key="dag_slow/run1", entity="company", batch=3)
        recorder.started(manifest, 200)
        for step in range(4):
            hubspot.record("POST", "/crm/v3/objects/companies/batch/upsert", 429 if step == 1 else 200, 0.01)
            manifest.loaded += 50
            time.sleep(0.12)

    lines = [r.getMessage() for r in caplog.records if r.name == "test.progress"]
    assert len(lines) >= 4, lines
    done = [int(line.split(": ", 1)[1].split("/", 1)[0]) for line in lines]
    assert done == sorted(done) and done[-1] <= 200 and done[0] >= 50
    assert lines[-1].startswith("company.load batch 3: ") and "/200 records (" in lines[-1]
    assert (
        "/s; HubSpot 4 calls, 1 answered 429" in lines[-1] or "HubSpot 3 calls, 1 answered 429" in lines[-1]
    )
    [row] = saved
    assert row["state"] == "success" and row["detail"] == {"records": 200, "total": 200}
    assert row["calls"]["HubSpot"]["calls"] == 4 and row["calls"]["HubSpot"]["rate_limited"] == 1


def test_personal_data_is_masked_by_field_name_and_in_quoted_reason_values():
    assert mask_value("properties.email", "otto.berg@example.com") == "o***@e***"
    assert mask_value("phone", "+49 40 1234567") == "***67"
    assert mask_value("firstname", "Otto") == "O***" and mask_value("city", "Bremen") == "Bremen"
    assert mask_reason("e-mail 'otto.berg(at)example' is not valid; Who's Who line of otto@berg.de") == (
        "e-mail 'o***' is not valid; Who's Who line of o***@b***"
    )
