"""The dependency planner and the flow spec: stages, cycles, readiness, and what a flow may declare."""

from __future__ import annotations

from datetime import datetime

import pytest

from airflow_provider_mlconn.sync.errors import FlowDefinitionError
from airflow_provider_mlconn.sync.flow import Entity, Flow, Stream, WriteMode
from airflow_provider_mlconn.sync.ordering import PrerequisiteState, Verdict, load_stages, readiness
from airflow_provider_mlconn.sync.registry import get_flow
from tests.support.sync import make_toy_flow

pytestmark = pytest.mark.unit


def test_stages_put_every_entity_after_what_it_needs():
    stages = load_stages(
        {
            "invoice": ("customer", "line_item"),
            "customer": (),
            "product": (),
            "line_item": ("product",),
            "receipt": ("invoice",),
        }
    )
    assert stages == [("customer", "product"), ("line_item",), ("invoice",), ("receipt",)]


def test_a_dependency_cycle_is_refused_naming_its_members():
    with pytest.raises(ValueError, match=r"entities \['contact', 'company'\]|\['company', 'contact'\]"):
        load_stages({"company": ("contact",), "contact": ("company",), "product": ()})


def test_an_unknown_or_self_dependency_is_refused():
    with pytest.raises(ValueError, match="unknown entities"):
        load_stages({"contact": ("company",)})
    with pytest.raises(ValueError, match="depends on itself"):
        load_stages({"contact": ("contact",)})


def test_a_record_is_ready_when_each_prerequisite_is_in_the_target():
    verdict = readiness(
        {
            "company 1": PrerequisiteState("loaded", "co-1"),
            "company 2": PrerequisiteState("unchanged", "co-2"),
            "customers/company 3": PrerequisiteState(None, "co-3"),
        }
    )
    assert verdict.ready
    assert verdict.remote_ids == {"company 1": "co-1", "company 2": "co-2", "customers/company 3": "co-3"}


def test_a_record_is_held_back_for_a_failed_or_pending_prerequisite_and_says_why():
    verdict = readiness(
        {
            "company 1": PrerequisiteState("failed", None, latest_status="failed", error="HTTP 503"),
            "company 3": PrerequisiteState("mapped", None),
            "company 4": PrerequisiteState(None, None),
        }
    )
    assert verdict.verdict is Verdict.HOLD
    assert verdict.reason == (
        "prerequisite company 1 failed: HTTP 503; prerequisite company 3 not loaded (status mapped); "
        "waits for company 4, which is not in the target: never read or loaded"
    )


def test_a_record_waits_for_a_rejected_or_never_loaded_prerequisite_and_says_why():
    verdict = readiness(
        {
            "company 2": PrerequisiteState("rejected", None, latest_status="rejected", error="name is blank"),
            "company 4": PrerequisiteState(None, None),
            "company 5": PrerequisiteState(None, None, latest_status="waiting", error="waits for x"),
        }
    )
    assert verdict.verdict is Verdict.WAIT
    assert verdict.reason == (
        "waits for company 2, which is rejected: name is blank; "
        "waits for company 4, which is not in the target: never read or loaded; "
        "waits for company 5, which is waiting: waits for x"
    )


def test_a_rejected_prerequisite_that_an_earlier_run_loaded_is_taken_from_the_id_map():
    verdict = readiness({"company 2": PrerequisiteState("rejected", "co-2", latest_status="rejected")})
    assert verdict.ready
    assert verdict.remote_ids == {"company 2": "co-2"}


def test_a_prerequisite_whose_run_failed_wins_over_an_older_id_map_entry():
    verdict = readiness({"company 1": PrerequisiteState("failed", "co-1-from-last-week")})
    assert verdict.reason == "prerequisite company 1 failed"


def noop(*args):
    return {}


def entity(name, target, **options):
    """An entity whose behaviour does not matter to the test (a declaration check)."""
    return Entity(name, target, key="key", write=WriteMode.UPSERT, map=noop, load=noop, **options)


def stream(name="changes"):
    return Stream(name, extract=lambda window, writer: None)


def test_a_flow_with_an_entity_cycle_is_refused_when_declared():
    with pytest.raises(FlowDefinitionError, match=r"flow looped: entities .* cycle"):
        Flow(
            name="looped",
            streams=(stream(),),
            entities=(entity("a", "hubspot", depends_on=("b",)), entity("b", "hubspot", depends_on=("a",))),
        )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: entity("Contact", "hubspot"), "entity name 'Contact'"),
        (lambda: entity("contact", "hubspot", call_batch_size=200, task_batch_size=100), "call_batch_size"),
        (
            lambda: Entity("invoice", "jde", key="VR01", write=WriteMode.CREATE_ONCE, map=noop, load=noop),
            "creates once .* needs confirm",
        ),
        (lambda: Stream("F0101.UPMJ", extract=noop), "letters, digits"),
        (lambda: Stream("F0101", extract=noop, source_timezone="Mars/Olympus"), "not an IANA time zone"),
        (lambda: Stream("F0101", extract=noop, initial_start=datetime(2025, 1, 1)), "time zone"),
        (
            lambda: Flow(name="dup", streams=(stream(), stream()), entities=(entity("a", "jde"),)),
            r"stream \['changes'\] twice",
        ),
    ],
)
def test_wrong_declarations_say_what_is_wrong(make, message):
    with pytest.raises(FlowDefinitionError, match=message):
        make()


def test_entities_default_to_the_pool_of_their_target():
    assert entity("company", "hubspot").pool_name == "mlconn_hubspot"
    assert entity("invoice", "jde", pool="jde_orchestrations").pool_name == "jde_orchestrations"
    assert entity("ticket", "zendesk", pool="default_pool").pool_name == "default_pool"


def test_a_target_without_a_created_pool_needs_an_explicit_pool():
    with pytest.raises(FlowDefinitionError, match="no pool is created for target 'zendesk'"):
        entity("ticket", "zendesk")


def test_flows_register_by_name_and_an_unknown_name_lists_the_known_ones():
    flow = make_toy_flow("registered_flow")
    assert get_flow("registered_flow") is flow
    with pytest.raises(FlowDefinitionError, match=r"no flow named 'nope' .*registered_flow"):
        get_flow("nope")
