"""docker-compose.airflow.yml, checked offline (no Docker engine here): it is a valid Compose file,
it has the production shape, and every command it runs exists in the installed package."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from airflow_provider_mlconn.get_provider_info import get_provider_info
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

COMPOSE_FILE = REPO_ROOT / "docker-compose.airflow.yml"
# The Compose specification's JSON schema (Apache-2.0, github.com/compose-spec/compose-spec).
COMPOSE_SCHEMA = Path(__file__).resolve().parent.parent / "fixtures" / "compose_spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(compose)
    ]
    assert errors == []


def test_stack_has_celery_airflow_with_postgres_redis_and_both_sandboxes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    commands = {name: _command(service)[:3] for name, service in services.items()}
    assert commands["airflow-apiserver"][:2] == ["airflow", "api-server"]
    assert commands["airflow-scheduler"] == ["airflow", "scheduler"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["airflow-triggerer"] == ["airflow", "triggerer"]
    assert commands["airflow-worker"] == ["airflow", "celery", "worker"]
    assert commands["jde-sandbox"][:2] == ["mlconn-sandbox", "jde"]
    assert commands["hubspot-sandbox"][:2] == ["mlconn-sandbox", "hubspot"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    worker_env = services["airflow-worker"]["environment"]
    assert worker_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert worker_env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    for name, service in services.items():
        if name.startswith("airflow-") and name != "airflow-init":
            assert "./dags:/opt/airflow/dags:ro" in service["volumes"], name
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", (
                name
            )


def test_every_airflow_command_in_the_stack_parses_with_the_installed_airflow(
    compose: dict[str, Any],
) -> None:
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name, service in compose["services"].items():
        command = _command(service)
        if command[:1] == ["airflow"]:
            args = parser.parse_args(command[1:])
            assert callable(args.func), name


def test_every_sandbox_command_in_the_stack_parses_with_mlconn_sandbox(compose: dict[str, Any]) -> None:
    from airflow_provider_mlconn.sandbox.cli import build_parser

    parser = build_parser()
    sandboxes = [s for s in compose["services"].values() if _command(s)[:1] == ["mlconn-sandbox"]]
    assert len(sandboxes) == 2
    for service in sandboxes:
        args = parser.parse_args(_command(service)[1:])
        assert args.host == "0.0.0.0"


def test_connections_in_the_stack_use_registered_types_and_point_at_the_sandboxes(
    compose: dict[str, Any],
) -> None:
    env = compose["services"]["airflow-worker"]["environment"]
    registered = {c["connection-type"] for c in get_provider_info()["connection-types"]} | {"generic"}
    services = set(compose["services"])
    for variable in (
        "AIRFLOW_CONN_JDE_AIS_DEFAULT",
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        "AIRFLOW_CONN_MLCONN_STORE",
    ):
        connection = json.loads(env[variable])
        assert connection["conn_type"] in registered, variable
        if host := connection.get("host"):
            assert re.match(r"https?://([\w-]+):\d+$", host), host
            assert host.split("//")[1].split(":")[0] in services, host


def test_dockerfile_copies_only_what_exists() -> None:
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO_ROOT / source).exists(), source
