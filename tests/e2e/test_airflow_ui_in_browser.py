"""A new user in Airflow's UI, in a real browser (headless Chromium from Debian, driven by Playwright):
`make airflow`, log in, open both connection forms, press Test on both (success, then a wrong
password, then an unreachable host), trigger the customers DAG as a dry run from the trigger form,
wait for it, open its report (the run's note and the commit task's log), and read a failed task's
log. Screenshots go to ``$MLCONN_SCREENSHOTS`` or to the
test's temporary directory (``screenshots/``), whose path the test prints.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``make browser`` installs it): skipped
without it, a failure under CI (``MLCONN_REQUIRE_SERVICES=1``). Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlconn.hubspot.connection import CONN_FIELDS as HUBSPOT_FIELDS
from airflow_provider_mlconn.jde.connection import CONN_FIELDS as JDE_FIELDS
from airflow_provider_mlconn.jde.connection import HOOK_NAME as JDE_HOOK_NAME
from airflow_provider_mlconn.plugins.api_server import DRY_RUN_ID_PREFIX, DRY_RUN_NOTE
from airflow_provider_mlconn.sync.report import NOTE_HEADING
from tests.conftest import REPO_ROOT, REQUIRE_SERVICES
from tests.support import free_port
from tests.support.airflow import CUSTOMERS_DAG, MakeAirflow, make_airflow, wait_for

pytestmark = pytest.mark.e2e

DEADLINE_S = 540
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 60_000


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"{CHROMIUM} is not installed (apt-get install chromium, or make browser)"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; MLCONN_REQUIRE_SERVICES=1 makes this a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MLCONN_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.set_default_timeout(UI_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


class Ui:
    """The few things the test does in Airflow's UI, by what a person sees (labels, buttons)."""

    def __init__(self, page: Any, airflow: MakeAirflow, screenshots: Path) -> None:
        self.page = page
        self.airflow = airflow
        self.screenshots = screenshots
        self.shot_count = 0

    def shot(self, name: str) -> None:
        self.shot_count += 1
        self.page.screenshot(path=str(self.screenshots / f"{self.shot_count:02d}-{name}.png"), full_page=True)

    def open(self, path: str) -> None:
        self.page.goto(f"{self.airflow.url}{path}", wait_until="networkidle")

    def log_in(self) -> None:
        self.open("/")
        self.page.get_by_label("Username").fill("admin")
        self.page.get_by_label("Password").fill(self.airflow.password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.airflow.url}/")

    def connection_row(self, conn_id: str) -> Any:
        self.open("/connections")
        return self.page.get_by_role("row").filter(has_text=conn_id)

    def test_connection(self, conn_id: str) -> tuple[str, str]:
        """Press the row's Test button; the toast's title and message."""
        row = self.connection_row(conn_id)
        with self.page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
            row.get_by_role("button", name="Test Connection").click()
        assert answer.value.status == 200, f"Test answered {answer.value.status}: {answer.value.text()}"
        message = str(answer.value.json()["message"])
        toast = self.page.locator("[data-scope=toast][data-part=root]").filter(has_text=message[:40]).first
        toast.wait_for()
        self.page.wait_for_timeout(600)  # the toast slides in: let the screenshot show it
        title = toast.locator("[data-part=title]").inner_text()
        shown = toast.locator("[data-part=description]").inner_text()
        return title, shown

    def edit_connection(self, conn_id: str) -> Any:
        self.connection_row(conn_id).get_by_role("button", name="Edit Connection").click()
        dialog = self.page.get_by_role("dialog")
        dialog.wait_for()
        return dialog

    def save_connection(self, conn_id: str, **fields: str) -> None:
        dialog = self.edit_connection(conn_id)
        for name, value in fields.items():
            dialog.locator(f"input[name={name}]").fill(value)
        with self.page.expect_response(lambda r: f"/api/v2/connections/{conn_id}" in r.url) as answer:
            dialog.get_by_role("button", name="Save").click()
        assert answer.value.ok, answer.value.text()
        dialog.wait_for(state="hidden")


def test_a_new_user_tests_both_connections_and_runs_a_dry_run_in_the_browser(
    tmp_path: Path, browser_page: Any, screenshots: Path
) -> None:
    deadline = time.monotonic() + DEADLINE_S
    with make_airflow(tmp_path, deadline=deadline) as airflow:
        airflow.wait_for_dags(deadline)
        ui = Ui(browser_page, airflow, screenshots)
        page = ui.page
        ui.log_in()
        ui.open("/dags")
        page.get_by_text(CUSTOMERS_DAG).first.wait_for()
        # Nine DAGs: a user finds the replay DAG with the list's search box; the list shows a
        # description on hover.
        page.get_by_placeholder("Search Dags").fill("mlconn_replay")
        page.get_by_text(CUSTOMERS_DAG).first.wait_for(state="detached")
        page.get_by_text("mlconn_replay").first.hover()
        page.get_by_role("tooltip").filter(has_text="Re-map and load failed or rejected").wait_for()
        ui.shot("dags-list")

        # The replay form: entity and statuses are selects.
        ui.open("/dags/mlconn_replay")
        page.get_by_role("button", name="Trigger").first.click()
        form = page.get_by_role("dialog")
        form.get_by_text("every entity of the flow", exact=True).wait_for()
        assert form.locator("textarea[name=element_statuses]").count() == 0, "statuses: a select, not text"
        ui.shot("replay-form")
        form.get_by_role("button", name="Close").first.click()

        # Both connection forms: the type's name as the README says it, every extra field shown.
        for conn_id, fields, type_name in (
            ("jde_ais_default", JDE_FIELDS, JDE_HOOK_NAME),
            ("hubspot_default", HUBSPOT_FIELDS, "HubSpot"),
        ):
            dialog = ui.edit_connection(conn_id)
            assert type_name in dialog.inner_text()
            assert type_name in (REPO_ROOT / "README.md").read_text()
            dialog.get_by_role("button", name="Extra Fields", exact=True).click()
            for name in fields:
                dialog.locator(f"[name=element_{name}]").first.wait_for(state="attached")
            ui.shot(f"edit-{conn_id}")
            dialog.get_by_role("button", name="Close").first.click()

        # The Test button, as the connections are stored by make airflow.
        title, message = ui.test_connection("jde_ais_default")
        assert title == "Test Connection Successful", message
        assert message.startswith("Connected to") and airflow.jde_url in message
        ui.shot("test-jde-ok")
        title, message = ui.test_connection("hubspot_default")
        assert title == "Test Connection Successful", message
        ui.shot("test-hubspot-ok")

        # A dry run from the trigger form; the runs list tells it apart.
        ui.open(f"/dags/{CUSTOMERS_DAG}")
        page.get_by_role("button", name="Trigger").first.click()
        form = page.get_by_role("dialog")
        form.wait_for()
        optional = form.locator("label", has_text="Only these address numbers").first
        assert optional.get_attribute("data-required") is None, "address numbers must not be required"
        dry_run = form.locator('[id="switch:element_dry_run"]')
        dry_run.click()
        assert dry_run.get_attribute("data-state") == "checked"
        ui.shot("trigger-dry-run")
        with page.expect_response(
            lambda r: r.url.endswith(f"/dags/{CUSTOMERS_DAG}/dagRuns") and r.request.method == "POST"
        ) as answer:
            form.get_by_role("button", name="Trigger").click()
        run = answer.value.json()
        assert answer.value.ok, run
        assert run["conf"]["dry_run"] is True and run["dag_run_id"].startswith(DRY_RUN_ID_PREFIX)
        assert run["note"] == DRY_RUN_NOTE

        def finished() -> bool:
            state = airflow.api("GET", f"/dags/{CUSTOMERS_DAG}/dagRuns/{run['dag_run_id']}")["state"]
            assert state != "failed", f"the dry run failed; see {airflow.home / 'logs'}"
            return state == "success"

        wait_for("the dry run to finish", finished, deadline)
        ui.open(f"/dags/{CUSTOMERS_DAG}/runs")
        page.get_by_text(run["dag_run_id"]).first.wait_for()
        ui.shot("runs-list")

        # The run's report: its note (set by the plugin's listener when the run ended; the dry-run note
        # gave way to it) says what the dry run would write; the commit task's log has the whole report.
        note = airflow.api("GET", f"/dags/{CUSTOMERS_DAG}/dagRuns/{run['dag_run_id']}")["note"]
        assert note.startswith(f"{NOTE_HEADING} (dry run, nothing written): "), note
        # The trigger form unpaused the DAG: its scheduled run may have loaded first, so the dry run
        # would create the 20 companies or find them unchanged.
        assert re.search(r"\| company \| \d+ \| \d+ \| \d+ \| \d+ \| 0 \| 0 \|", note), note
        ui.open(f"/dags/{CUSTOMERS_DAG}/runs/{run['dag_run_id']}")
        page.get_by_text("(dry run, nothing written)").first.wait_for()  # the note's first line
        page.get_by_role("button", name="Edit note").click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        dialog.get_by_text("API calls: JDE AIS").first.wait_for()
        ui.shot("dry-run-note-report")
        dialog.get_by_role("button", name="Close").first.click()
        report = [
            str(line.get("event"))
            for line in task_log(airflow, run["dag_run_id"], "commit_watermark")
            if str(line.get("event", "")).startswith("Run report")
        ]
        assert len(report) == 1 and "(DRY RUN: nothing was written)" in report[0], report
        assert re.search(r"\n   company +\d+ +\d+ +\d+ +\d+ +0 +0\n", report[0]), report
        assert "API calls: JDE AIS" in report[0] and "time per step: plan_window" in report[0], report
        ui.open(f"/dags/{CUSTOMERS_DAG}/runs/{run['dag_run_id']}/tasks/commit_watermark")
        page.get_by_text("DRY RUN: nothing was written").first.wait_for()
        ui.shot("dry-run-report-log")

        # Wrong credentials: the message names the stored connection and the refusal, not the secret.
        ui.save_connection("jde_ais_default", password="not-the-password")
        title, message = ui.test_connection("jde_ais_default")
        assert title == "Test Connection Failed", message
        assert "'jde_ais_default'" in message and "403" in message and "not-the-password" not in message
        ui.shot("test-jde-wrong-password")
        ui.save_connection("hubspot_default", password="pat-na1-not-the-token")
        title, message = ui.test_connection("hubspot_default")
        assert title == "Test Connection Failed", message
        assert "'hubspot_default'" in message and "401" in message and "pat-na1-not-the-token" not in message
        ui.shot("test-hubspot-wrong-token")

        # A task that meets the refused login ends with one line in its log, no traceback.
        failing = airflow.api("POST", f"/dags/{CUSTOMERS_DAG}/dagRuns", {"logical_date": None, "conf": {}})

        def extract_failed() -> bool:
            state = airflow.api("GET", f"/dags/{CUSTOMERS_DAG}/dagRuns/{failing['dag_run_id']}")["state"]
            return state == "failed"

        wait_for("the run with the refused login to fail", extract_failed, deadline)
        log = task_log(airflow, failing["dag_run_id"], "extract")
        errors = [line for line in log if line.get("level") == "error"]
        assert len(errors) == 1 and "error_detail" not in errors[0], errors
        line = str(errors[0].get("exit_code"))
        assert line.startswith("JDE AIS: login of user 'JDE'") and "'jde_ais_default'" in line, errors
        ui.open(f"/dags/{CUSTOMERS_DAG}/runs/{failing['dag_run_id']}/tasks/extract")
        page.get_by_text("Task exited").first.wait_for()
        ui.shot("failed-task-log")

        # An unreachable host: which one, and why.
        dead_port = free_port()
        ui.save_connection("jde_ais_default", host=f"http://127.0.0.1:{dead_port}", password="whatever")
        title, message = ui.test_connection("jde_ais_default")
        assert title == "Test Connection Failed", message
        assert f"cannot reach http://127.0.0.1:{dead_port} (connection refused)" in message, message
        assert "'jde_ais_default'" in message
        ui.shot("test-jde-unreachable")

        output = airflow.output.read_text(errors="replace")
        assert "RFC3986" not in output and "too short" not in output
    assert sorted(path.name for path in screenshots.glob("*.png")), "no screenshot saved"


def task_log(airflow: MakeAirflow, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """A task's first try's log as Airflow's REST API gives it (structured lines)."""
    response = airflow.http.get(
        f"{airflow.url}/api/v2/dags/{CUSTOMERS_DAG}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1",
        headers={"Accept": "application/json"},
        params={"full_content": "true"},
        timeout=60,
    )
    response.raise_for_status()
    content = response.json()["content"]
    return [line for line in content if isinstance(line, dict)]


def test_chromium_lookup_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(f"{__name__}.REQUIRE_SERVICES", False)
    with pytest.raises(pytest.skip.Exception, match=re.escape("apt-get install chromium")):
        chromium_or_skip()
