"""``mlconn audit``: runs, a run's failures and rejections, one record's decrypted history."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_provider_mlconn.cli import main
from airflow_provider_mlconn.operators.common import store_from_airflow
from airflow_provider_mlconn.sync import engine
from airflow_provider_mlconn.sync.errors import LoadIncomplete
from tests.support.sync import T0, DictVariables, ToyWorld, actor_for, make_toy_flow

pytestmark = pytest.mark.unit

MLCONN = str(Path(sys.executable).with_name("mlconn"))


@pytest.fixture
def audited_run(airflow_store) -> str:
    """A run of the toy flow in the mlconn_store store: C2 failed, P2 held back, P5 rejected."""
    world = ToyWorld()
    for number in (1, 2):
        world.company(f"C{number}", f"Company {number}", T0)
        world.contact(f"P{number}", f"C{number}", f"p{number}@example.com", T0)
    world.contact("P5", "C1", "eve at example.com", T0)
    world.fail_always = {("company", "C2")}
    flow = make_toy_flow("audited", world)
    store = store_from_airflow()
    info = engine.RunInfo(
        dag_id="mlconn_audited", run_id="scheduled__1", data_interval_end=T0 + timedelta(hours=1)
    )
    run = info.ref(flow)
    plan = engine.plan_windows(flow, info, DictVariables(), now=T0 + timedelta(hours=1))
    engine.extract(flow, store, info, actor_for(run, "extract"), plan)
    engine.map_records(flow, store, run.run_key, actor_for(run, "map"))
    for entity in ("company", "contact"):
        engine.order_entity(flow, store, run, entity, max_map_length=10, actor=actor_for(run, "order"))
        with pytest.raises(LoadIncomplete):
            engine.load_batch(
                flow,
                store,
                run_key=run.run_key,
                entity_name=entity,
                batch=0,
                actor=actor_for(run, f"{entity}.load", map_index=0),
            )
    return run.run_key


def test_audit_runs_lists_each_run_with_counts_per_status(audited_run, capsys):
    assert main(["audit", "runs"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[:5] == ["RUN", "KEY", "FLOW", "TYPE", "CREATED"]
    assert row.startswith("mlconn_audited/scheduled__1  audited")
    # loaded, unchanged, rejected, waiting, failed, uncertain, mapped, staged
    assert row.split()[-8:] == ["2", "0", "1", "0", "2", "0", "0", "0"]


def test_audit_failures_shows_the_reasons_of_failed_and_rejected_records(audited_run, capsys):
    assert main(["audit", "failures", "--run", audited_run]) == 0
    out = capsys.readouterr().out
    assert "toy target: HTTP 503 writing company C2" in out
    assert "prerequisite company C2 failed" in out
    assert "e-mail 'eve at example.com' has no '@'" in out

    assert main(["audit", "failures", "--run", audited_run, "--status", "rejected", "--json"]) == 0
    [rejected] = json.loads(capsys.readouterr().out)
    assert (rejected["entity"], rejected["key"], rejected["status"]) == ("contact", "P5", "rejected")
    assert rejected["source"]["email"] == "eve at example.com"


def test_audit_failures_of_an_unknown_run_says_where_to_find_run_keys(airflow_store, capsys):
    assert main(["audit", "failures", "--run", "nope/nope"]) == 1
    assert "mlconn audit runs" in capsys.readouterr().err


def test_audit_record_shows_the_decrypted_history_of_one_record(audited_run, capsys):
    assert main(["audit", "record", "--flow", "audited", "--entity", "contact", "--key", "P2"]) == 0
    out = capsys.readouterr().out
    assert "== run mlconn_audited/scheduled__1: failed, 0 attempts" in out
    assert '"email": "p2@example.com"' in out
    assert "prerequisite company C2 failed" in out
    assert "mlconn_audited/scheduled__1/contact.load[0] try 1" in out

    assert main(["audit", "record", "--flow", "audited", "--entity", "contact", "--key", "P2", "--json"]) == 0
    [history] = json.loads(capsys.readouterr().out)
    assert [event["action"] for event in history["events"]] == ["stage", "map", "load"]
    assert history["prerequisites"] == ["company C2"]


def test_the_console_script_runs_and_reads_the_same_store(audited_run):
    result = subprocess.run(
        [MLCONN, "audit", "runs", "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [run] = json.loads(result.stdout)
    assert run["run_key"] == audited_run
    assert run["counts"] == {"failed": 2, "loaded": 2, "rejected": 1}


def test_webhook_stats_count_requests_per_outcome_and_events_per_asset(airflow_store, capsys):
    from datetime import datetime, timezone

    from airflow_provider_mlconn.hubspot.webhooks import parse_events

    inbox = store_from_airflow().webhooks
    base = {"portalId": 7, "occurredAt": 1, "subscriptionType": "object.creation"}
    body = json.dumps(
        [
            {**base, "eventId": 1, "objectId": 5, "objectTypeId": "0-53"},
            {**base, "eventId": 2, "objectId": 6, "objectTypeId": "0-8"},
        ]
    ).encode()
    inbox.record("hubspot", parse_events(body), now=datetime.now(timezone.utc))
    inbox.log_request("hubspot", status=200, outcome="accepted", events=2, new_events=2)
    inbox.log_request("hubspot", status=401, outcome="bad_signature")
    assert main(["webhooks", "stats"]) == 0
    out = capsys.readouterr().out
    assert "requests: 1 accepted; refused or failed: bad_signature 1" in out
    assert "events hubspot://webhooks/invoices: 1" in out and "events ignored: 1" in out
    assert main(["webhooks", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == {"accepted": 1, "bad_signature": 1}
