"""Failures a person must fix end a task with one clear line; unreachable servers are named."""

from __future__ import annotations

import socket

import pytest
import requests
from airflow.sdk.definitions.retry_policy import RetryAction

from airflow_provider_mlconn.http import AuthenticationError, network_failure
from airflow_provider_mlconn.operators.common import OneLineFailures, TaskFailed, failure_line
from airflow_provider_mlconn.operators.sync import LOAD_RETRY_POLICY, PlanWindowOperator
from airflow_provider_mlconn.sync.errors import LoadIncomplete, WindowError
from tests.support import free_port

pytestmark = pytest.mark.unit

REFUSED = AuthenticationError(
    "the token of connection 'hubspot_default' was refused: Authentication credentials not found",
    system="HubSpot",
    status=401,
    method="POST",
    url="/crm/v3/objects/companies/batch/upsert",
)


class _Raises(OneLineFailures):
    error: Exception

    def execute(self, context: object) -> None:
        raise self.error


def _run(error: Exception) -> None:
    operator = _Raises()
    operator.error = error
    operator.execute({})


def test_a_refused_token_ends_the_task_with_one_line_that_starts_with_the_reason() -> None:
    with pytest.raises(TaskFailed) as failed:
        _run(REFUSED)
    assert isinstance(failed.value, SystemExit)  # Airflow logs it as one "Task exited" line
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert failed.value.message == (
        "HubSpot: the token of connection 'hubspot_default' was refused: Authentication credentials not "
        "found [HTTP 401, POST /crm/v3/objects/companies/batch/upsert]"
    )


def test_a_bad_parameter_is_one_line_and_a_transient_failure_keeps_its_traceback_and_retries() -> None:
    with pytest.raises(TaskFailed, match=r"^window_end .* \[WindowError\]$"):
        _run(WindowError("window_end 2026-01-01 must be after window_start 2026-02-01"))
    with pytest.raises(LoadIncomplete):
        _run(LoadIncomplete("2 records failed", failed=2, held_back=0))


def test_load_tasks_do_not_retry_what_a_person_must_fix() -> None:
    decision = LOAD_RETRY_POLICY.evaluate(TaskFailed(failure_line(REFUSED)), try_number=1, max_tries=3)
    assert decision.action == RetryAction.FAIL


def test_flow_operators_end_expected_failures_in_one_line() -> None:
    assert getattr(PlanWindowOperator.execute, "one_line_failures", False)


def test_an_unreachable_server_is_named_with_the_reason() -> None:
    port = free_port()
    url = f"http://user:secret@127.0.0.1:{port}/jderest/v2/tokenrequest?token=abc"
    with pytest.raises(requests.RequestException) as error:
        requests.get(url, timeout=5)
    assert network_failure(error.value, url) == f"cannot reach http://127.0.0.1:{port} (connection refused)"


def test_a_server_that_never_answers_is_named_with_the_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/crm/v3/objects/contacts"
        with pytest.raises(requests.RequestException) as error:
            requests.get(url, timeout=0.5)
    assert network_failure(error.value, url).endswith("(no response before the timeout)")
