"""A backfill over a range through Airflow's REST API (``POST /api/v2/backfills``, what the UI's
backfill form sends), run by a real scheduler (`make airflow`): it reads exactly that range, in
consecutive runs, and leaves the watermark where it was.

The customers DAG runs every minute here (Variable ``mlconn_customers_schedule``) so a range fits
in two minutes: four customers are created in the JDE sandbox, each stamped with the time of its
creation (UPMJ/UPMT), one before the range, one in each of its two runs, one after it. The range
starts and ends between two cron times, so its first and last runs are shorter than a minute.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.airflow import CUSTOMERS_DAG, MakeAirflow, make_airflow

pytestmark = pytest.mark.e2e

DEADLINE_S = 600
WATERMARK = "mlconn_watermark__customers__jde"
FUTURE_MARK = '{"at": "2099-01-01T00:00:00+00:00"}'  # scheduled runs read nothing past it


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(timezone.utc)).total_seconds()))


def _new_customer(airflow: MakeAirflow, name: str, at: datetime) -> tuple[int, datetime]:
    """Create a customer in JDE at ``at``; its address number and the stamp JDE gave it."""
    _sleep_until(at)
    response = requests.post(
        f"{airflow.jde_url}/_sandbox/customers",
        json={"name": name, "address": {"lines": ["1 Main Street"], "city": "Austin", "country": "US"}},
        timeout=30,
    )
    response.raise_for_status()
    answer = response.json()
    stamped = datetime.fromisoformat(answer["touched"][0]["updated_at"]).astimezone(timezone.utc)
    return int(answer["address_number"]), stamped


def _plan(airflow: MakeAirflow, run_id: str) -> dict[str, Any]:
    entry = airflow.api(
        "GET", f"/dags/{CUSTOMERS_DAG}/dagRuns/{run_id}/taskInstances/plan_window/xcomEntries/return_value"
    )
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def _company_numbers(airflow: MakeAirflow) -> set[int]:
    numbers: set[int] = set()
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, "properties": "jde_address_number"}
        if after:
            params["after"] = after
        page = requests.get(
            f"{airflow.hubspot_url}/crm/v3/objects/companies",
            params=params,
            headers={"Authorization": "Bearer pat-na1-sandbox"},
            timeout=30,
        ).json()
        numbers |= {int(c["properties"]["jde_address_number"]) for c in page["results"]}
        after = (page.get("paging") or {}).get("next", {}).get("after")
        if not after:
            return numbers


def test_a_backfill_through_the_rest_api_reads_exactly_its_range(tmp_path: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    with make_airflow(
        tmp_path, deadline=deadline, env={"AIRFLOW_VAR_MLCONN_CUSTOMERS_SCHEDULE": "* * * * *"}
    ) as airflow:
        airflow.wait_for_dags(deadline)
        airflow.api("POST", "/variables", {"key": WATERMARK, "value": FUTURE_MARK})
        airflow.api("PATCH", f"/dags/{CUSTOMERS_DAG}", {"is_paused": False})

        now = datetime.now(timezone.utc)
        minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        before, first, second, after = (
            _new_customer(airflow, "Before the range", minute + timedelta(seconds=5)),
            _new_customer(airflow, "In the first run", minute + timedelta(seconds=30)),
            _new_customer(airflow, "In the second run", minute + timedelta(seconds=70)),
            _new_customer(airflow, "After the range", minute + timedelta(seconds=110)),
        )
        start, end = minute + timedelta(seconds=20), minute + timedelta(seconds=100)
        assert before[1] < start <= first[1] < minute + timedelta(minutes=1) <= second[1] < end <= after[1]

        backfill = airflow.api(
            "POST",
            "/backfills",
            {
                "dag_id": CUSTOMERS_DAG,
                "from_date": start.isoformat(),
                "to_date": end.isoformat(),
                "max_active_runs": 1,
                "dag_run_conf": {"safety_lag_minutes": 0},
            },
        )
        runs = airflow.wait_for_runs(CUSTOMERS_DAG, deadline, count=2, run_type="backfill")
        assert len(runs) == 2, [run["dag_run_id"] for run in runs]
        runs.sort(key=lambda run: run["data_interval_start"])

        windows = [_plan(airflow, run["dag_run_id"])["windows"]["jde"] for run in runs]
        bounds = [(datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])) for w in windows]
        assert bounds == [(start, minute + timedelta(minutes=1)), (minute + timedelta(minutes=1), end)]
        assert all(w["mode"] == "range" for w in windows)
        assert runs[0]["end_date"] <= runs[1]["start_date"], "the backfill's runs ran one after the other"

        synced = _company_numbers(airflow)
        assert {first[0], second[0]} <= synced, "a customer stamped inside the range was not synced"
        assert not {before[0], after[0]} & synced, "a customer stamped outside the range was synced"
        assert airflow.api("GET", f"/variables/{WATERMARK}")["value"] == FUTURE_MARK
        assert airflow.api("GET", f"/backfills/{backfill['id']}")["dag_id"] == CUSTOMERS_DAG
