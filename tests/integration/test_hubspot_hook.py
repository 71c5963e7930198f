"""HubSpotHook against the HubSpot sandbox: volume under the rate limit, storms, faults, windows, errors."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.http import AuthenticationError, QuotaExhaustedError
from airflow_provider_mlconn.hubspot.models import AssociationLink, WriteStatus
from airflow_provider_mlconn.hubspot.objects import (
    CONTACT_TO_COMPANY,
    CONTACT_TO_COMPANY_PRIMARY,
    INVOICE_TO_LINE_ITEM,
    ObjectType,
)
from airflow_provider_mlconn.hubspot.properties import (
    COMPANY_ADDRESS_NUMBER,
    CONTACT_KEY,
    PropertySpec,
    jde_group,
)
from airflow_provider_mlconn.hubspot.throttle import MachineWindowThrottle
from tests.support.hubspot import SandboxControl
from tests.support.processes import run_spawned

pytestmark = pytest.mark.integration

Sandbox = Callable[..., SandboxControl]
Hook = Callable[..., HubSpotHook]


def companies(count: int, start: int = 100_000) -> dict[str, dict[str, str]]:
    return {
        str(start + i): {
            "name": f"Customer {start + i}",
            "city": "Rotterdam",
            "domain": f"c{start + i}.example.com",
        }
        for i in range(count)
    }


def assert_each_key_once(sandbox: SandboxControl, keys: set[str], prop: str = "jde_address_number") -> None:
    stored = Counter(r["properties"].get(prop) for r in sandbox.records("companies"))
    duplicated = sorted(k for k, n in stored.items() if n > 1)
    assert duplicated == [], f"duplicated keys {duplicated[:10]}"
    assert set(stored) == keys, f"lost {len(keys - set(stored))} records"


def test_25000_upserts_under_190_per_10s_lose_and_duplicate_nothing_without_a_429(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox(rate_limit=190)
    hook = hubspot_hook(sandbox)
    hook.ensure_properties([COMPANY_ADDRESS_NUMBER])
    records = companies(25_000)
    outcomes = hook.upsert_records(ObjectType.COMPANIES, records, id_property="jde_address_number")
    assert Counter(o.status for o in outcomes.values()) == {WriteStatus.CREATED: 25_000}
    assert len({o.record_id for o in outcomes.values()}) == 25_000
    assert_each_key_once(sandbox, set(records))
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0
    assert stats["requests"]["POST /crm/v3/objects/companies/batch/upsert"] == {"200": 250}
    assert hook.metrics.rate_limited == 0


def test_a_repeated_upsert_updates_the_same_records(hubspot_sandbox: Sandbox, hubspot_hook: Hook) -> None:
    sandbox = hubspot_sandbox()
    hook = hubspot_hook(sandbox)
    hook.ensure_properties([COMPANY_ADDRESS_NUMBER])
    first = hook.upsert_records("companies", companies(150), id_property="jde_address_number")
    second = hook.upsert_records("companies", companies(150), id_property="jde_address_number")
    assert {o.status for o in second.values()} == {WriteStatus.UPDATED}
    assert {k: o.record_id for k, o in first.items()} == {k: o.record_id for k, o in second.items()}


def test_a_429_storm_and_another_app_using_the_budget_still_converge(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox(rate_limit=100)
    hook = hubspot_hook(sandbox, extra={"rate_limit_per_10s": 100})
    hook.ensure_properties([COMPANY_ADDRESS_NUMBER])
    sandbox.control("POST", "storm", {"seconds": 2.5})
    sandbox.control("POST", "burst", {"requests": 60})
    records = companies(4_000)
    outcomes = hook.upsert_records("companies", records, id_property="jde_address_number")
    assert all(o.ok for o in outcomes.values())
    assert_each_key_once(sandbox, set(records))
    assert hook.metrics.rate_limited > 0 and hook.metrics.retries > 0


def test_a_fault_rate_of_10_percent_still_converges_without_duplicates(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox(fault_rate=0.1, seed=11, rate_limit=500)
    hook = hubspot_hook(sandbox, extra={"rate_limit_per_10s": 500})
    hook.ensure_properties([COMPANY_ADDRESS_NUMBER])
    records = companies(5_000)
    outcomes = hook.upsert_records("companies", records, id_property="jde_address_number")
    assert all(o.ok for o in outcomes.values()), [o.error for o in outcomes.values() if not o.ok][:3]
    assert sandbox.stats()["faults"] > 0 and hook.metrics.retries > 0
    seeded = {c["properties"].get("jde_address_number") for c in sandbox.records("companies")} - {None}
    assert seeded == set(records)
    assert_each_key_once_among_keyed(sandbox, set(records))


def assert_each_key_once_among_keyed(sandbox: SandboxControl, keys: set[str]) -> None:
    stored = Counter(r["properties"].get("jde_address_number") for r in sandbox.records("companies"))
    stored.pop(None, None)  # the seeded, HubSpot-origin companies carry no JDE key
    assert set(stored) == keys and max(stored.values()) == 1


def test_a_search_over_30000_records_changed_in_one_window_returns_each_once(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox(search_rate_limit=50)
    hook = hubspot_hook(sandbox, search_rate_limit_per_s=40, search_safety_lag=timedelta(0))
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    same_instant = (start + timedelta(minutes=1)).isoformat()
    sandbox.control(
        "POST",
        "objects/companies/generate",
        {"count": 30_000, "properties": {"name": "Changed {n}"}, "at": same_instant},
    )
    sandbox.control(
        "POST",
        "objects/companies/generate",
        {"count": 5, "properties": {"name": "Before"}, "at": (start - timedelta(seconds=1)).isoformat()},
    )
    ids = [
        r.id
        for r in hook.iter_changed_records(
            "companies", start=start, end=hook.search_horizon(), properties=["name"]
        )
    ]
    assert len(ids) == 30_000 and len(set(ids)) == 30_000
    assert hook.metrics.count(path_prefix="/crm/v3/objects/companies/search", status=200) == 150
    assert hook.metrics.count(status=400) == 0


def test_a_window_that_ends_inside_the_search_lag_is_refused(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    hook = hubspot_hook(hubspot_sandbox(), search_safety_lag=timedelta(seconds=30))
    now = datetime.now(timezone.utc)
    with pytest.raises(ValueError, match="search horizon"):
        next(hook.iter_changed_records("companies", start=now - timedelta(hours=1), end=now))
    assert hook.metrics.total_calls == 0


def test_a_wrong_token_fails_fast_with_a_readable_error(hubspot_sandbox: Sandbox, hubspot_hook: Hook) -> None:
    sandbox = hubspot_sandbox()
    wrong = "pat-na1-00000000-wrong-token"
    hook = hubspot_hook(sandbox, token=wrong)
    with pytest.raises(AuthenticationError) as raised:
        hook.upsert_records("companies", companies(300), id_property="jde_address_number")
    message = str(raised.value)
    assert "was refused" in message and hook.hubspot_conn_id in message and wrong not in message
    assert hook.metrics.total_calls <= hook.max_workers  # no retries: each worker's first call fails
    ok, why = hook.test_connection()
    assert not ok and "refused" in why and wrong not in why


def test_test_connection_succeeds_with_the_right_token(hubspot_sandbox: Sandbox, hubspot_hook: Hook) -> None:
    ok, message = hubspot_hook(hubspot_sandbox()).test_connection()
    assert ok, message


def test_a_contact_whose_email_belongs_to_another_contact_fails_alone_with_the_existing_id(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox()
    hook = hubspot_hook(sandbox)
    hook.ensure_properties([CONTACT_KEY])
    existing = sandbox.control("POST", "objects/contacts", {"properties": {"email": "shared@acme.test"}})
    contacts = {f"4242-{i}": {"email": f"person{i}@acme.test", "firstname": f"P{i}"} for i in range(40)}
    contacts["4242-17"]["email"] = "Shared@acme.test"
    outcomes = hook.upsert_records("contacts", contacts, id_property="jde_contact_key")
    failed = {k: o for k, o in outcomes.items() if not o.ok}
    assert list(failed) == ["4242-17"]
    error = failed["4242-17"].error
    assert error is not None and error.existing_id == existing["id"] and error.category == "CONFLICT"
    assert sum(o.status is WriteStatus.CREATED for o in outcomes.values()) == 39
    assert hook.metrics.count(path_prefix="/crm/v3/objects/contacts/batch/upsert") <= 1 + 2 * 6


def test_an_invalid_value_fails_only_its_record(hubspot_sandbox: Sandbox, hubspot_hook: Hook) -> None:
    sandbox = hubspot_sandbox()
    hook = hubspot_hook(sandbox)
    hook.ensure_properties([COMPANY_ADDRESS_NUMBER])
    records = companies(120)
    records["100050"]["numberofemployees"] = "a few"
    outcomes = hook.upsert_records("companies", records, id_property="jde_address_number")
    failed = [k for k, o in outcomes.items() if not o.ok]
    assert failed == ["100050"]
    error = outcomes["100050"].error
    assert error is not None and error.category == "VALIDATION_ERROR" and error.code == "INVALID_INTEGER"
    assert hook.metrics.count(path_prefix="/crm/v3/objects/companies/batch/upsert") == 2


def test_records_sharing_a_key_are_merged_into_one_write(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox()
    hook = hubspot_hook(sandbox)
    hook.ensure_properties([COMPANY_ADDRESS_NUMBER])
    outcomes = hook.upsert_records(
        "companies",
        [("9", {"name": "Old name"}), ("9 ", {"city": "Delft"}), ("9", {"name": "New name"})],
        id_property="jde_address_number",
    )
    assert list(outcomes) == ["9"]
    (stored,) = sandbox.records("companies")
    assert stored["properties"]["name"] == "New name" and stored["properties"]["city"] == "Delft"
    assert hook.upsert_records("companies", {}, id_property="jde_address_number") == {}


def test_ensure_properties_creates_once_and_refuses_a_key_property_without_unique_values(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox()
    hook = hubspot_hook(sandbox)
    assert hook.ensure_properties([COMPANY_ADDRESS_NUMBER, CONTACT_KEY]) == {
        "companies.jde_address_number": "created",
        "contacts.jde_contact_key": "created",
    }
    assert hubspot_hook(sandbox).ensure_properties([COMPANY_ADDRESS_NUMBER]) == {
        "companies.jde_address_number": "exists"
    }
    group = sandbox.api("GET", "/crm/v3/properties/companies/groups/jd_edwards").json()
    assert group["label"] == "JD Edwards"
    plain = PropertySpec(
        object_type=ObjectType.COMPANIES,
        name="jde_plain",
        label="Plain",
        group=jde_group(ObjectType.COMPANIES),
    )
    hook.ensure_properties([plain])
    with pytest.raises(ValueError, match="hasUniqueValue"):
        hook.ensure_properties([plain.model_copy(update={"has_unique_value": True})])


def test_associations_default_and_primary_are_written_and_read_back(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox()
    hook = hubspot_hook(sandbox)
    hook.ensure_properties([COMPANY_ADDRESS_NUMBER, CONTACT_KEY])
    company = hook.upsert_records("companies", companies(1), id_property="jde_address_number")["100000"]
    contacts = hook.upsert_records(
        "contacts",
        {f"100000-{i}": {"email": f"p{i}@c.test"} for i in range(3)},
        id_property="jde_contact_key",
    )
    ids = [o.record_id or "" for o in contacts.values()]
    links = [
        AssociationLink(
            from_id=ids[0],
            to_id=company.record_id or "",
            types=(CONTACT_TO_COMPANY, CONTACT_TO_COMPANY_PRIMARY),
        ),
        AssociationLink(from_id=ids[1], to_id=company.record_id or "", types=(CONTACT_TO_COMPANY,)),
        AssociationLink(from_id="999999999", to_id=company.record_id or "", types=(CONTACT_TO_COMPANY,)),
    ]
    outcomes = hook.associate("contacts", "companies", links)
    assert [o.ok for o in outcomes] == [True, True, False]
    assert outcomes[0].labels == ("Primary",) and outcomes[2].error is not None
    read = hook.read_associations("contacts", "companies", ids)
    assert set(read[ids[0]][0].type_ids) == {1, 279}
    assert read[ids[1]][0].type_ids == (279,) and read[ids[2]] == []
    with pytest.raises(ValueError, match="not from contacts to companies"):
        hook.associate(
            "contacts", "companies", [AssociationLink(from_id="1", to_id="2", types=(INVOICE_TO_LINE_ITEM,))]
        )

    hook.dissociate("contacts", "companies", [(ids[0], company.record_id or ""), (ids[2], "999999999")])
    after = hook.read_associations("contacts", "companies", ids)
    assert after[ids[0]] == [], "every association of the pair is gone, primary included"
    assert after[ids[1]][0].type_ids == (279,), "other pairs keep theirs"


def test_seeded_invoices_are_read_with_their_line_items_and_payments(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox(seed=5)
    hook = hubspot_hook(sandbox, search_safety_lag=timedelta(0))
    start = datetime.now(timezone.utc) - timedelta(days=31)
    invoices = list(
        hook.iter_changed_records(
            "invoices",
            start=start,
            end=hook.search_horizon(),
            properties=["hs_invoice_status", "hs_currency"],
        )
    )
    assert len(invoices) == 12
    open_only = list(
        hook.iter_changed_records(
            "invoices",
            start=start,
            end=hook.search_horizon(),
            extra_filters=[{"propertyName": "hs_invoice_status", "operator": "EQ", "value": "open"}],
        )
    )
    assert {r.id for r in open_only} < {r.id for r in invoices}
    lines = hook.read_associations("invoices", "line_items", [r.id for r in invoices])
    assert all(lines[r.id] for r in invoices)
    items = hook.read_records(
        "line_items",
        [a.to_id for a in lines[invoices[0].id]],
        properties=["hs_sku", "quantity", "price", "amount", "hs_product_id"],
    )
    assert all(i.properties["hs_sku"] for i in items.values())
    full = hook.get_record("invoices", invoices[0].id, associations=["line_items", "contacts", "companies"])
    assert full is not None and full.associated_ids(ObjectType.LINE_ITEMS) == [
        a.to_id for a in lines[invoices[0].id]
    ]
    assert full.associated_ids(ObjectType.CONTACTS) and full.associated_ids(ObjectType.COMPANIES)
    payments = list(
        hook.iter_changed_records(
            "commerce_payments",
            start=start,
            end=hook.search_horizon(),
            properties=["hs_initial_amount", "hs_latest_status"],
        )
    )
    paid_for = hook.read_associations("commerce_payments", "invoices", [p.id for p in payments])
    assert all(paid_for[p.id][0].type_ids == (542,) for p in payments)
    assert hook.get_record("invoices", "123456789") is None


def test_list_paging_reads_every_record_once(hubspot_sandbox: Sandbox, hubspot_hook: Hook) -> None:
    sandbox = hubspot_sandbox()
    sandbox.control(
        "POST", "objects/products/generate", {"count": 250, "properties": {"name": "P{n}", "hs_sku": "S{n}"}}
    )
    hook = hubspot_hook(sandbox)
    products = list(hook.iter_records("products", properties=["hs_sku"]))
    assert len(products) == 250 and len({p.id for p in products}) == 250
    assert hook.metrics.count(path_prefix="/crm/v3/objects/products") == 3


def test_the_daily_limit_fails_the_call_without_retrying(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    hook = hubspot_hook(hubspot_sandbox(daily_limit=1))
    assert hook.get_record("companies", "1") is None
    with pytest.raises(QuotaExhaustedError, match="daily"):
        hook.get_record("companies", "1")
    assert hook.metrics.retries == 0


def test_hooks_of_one_portal_share_one_throttle(hubspot_sandbox: Sandbox, hubspot_hook: Hook) -> None:
    sandbox = hubspot_sandbox()
    first, second = hubspot_hook(sandbox), hubspot_hook(sandbox)
    assert first.throttles is second.throttles
    assert hubspot_hook(sandbox, token="pat-other").throttles is not first.throttles


def test_the_rate_budget_is_the_machines_unless_the_connection_says_process(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox()
    assert isinstance(hubspot_hook(sandbox).throttles.general, MachineWindowThrottle)
    alone = hubspot_hook(sandbox, token="pat-alone", extra={"rate_budget": "process"}).throttles
    assert not isinstance(alone.general, MachineWindowThrottle)
    with pytest.raises(
        ValueError, match=r"extra rate_budget must be one of machine, process, redis, got .cluster."
    ):
        _ = hubspot_hook(sandbox, extra={"rate_budget": "cluster"}).settings


def _load_companies_in_a_process(conn_id: str, start: int, count: int) -> None:
    hook = HubSpotHook(conn_id, max_workers=4)
    outcomes = hook.upsert_records("companies", companies(count, start), id_property="jde_address_number")
    if sum(o.ok for o in outcomes.values()) != count:
        raise SystemExit(f"{count - sum(o.ok for o in outcomes.values())} companies were not loaded")


def test_task_processes_of_one_host_stay_under_the_portal_limit_together(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    """Load tasks of a pool run in processes of their own (LocalExecutor, a Celery worker): each is free
    to send the whole limit at once, so only a budget they share keeps their sum under it."""
    sandbox = hubspot_sandbox(rate_limit=40)
    hook = hubspot_hook(sandbox, extra={"rate_limit_per_10s": 40})
    hook.ensure_properties([COMPANY_ADDRESS_NUMBER])
    run_spawned(_load_companies_in_a_process, [(hook.hubspot_conn_id, 100_000 * n, 1_500) for n in (1, 2, 3)])
    assert sandbox.stats()["rate_limited"] == 0


def test_concurrent_hooks_of_one_process_stay_under_the_portal_limit(
    hubspot_sandbox: Sandbox, hubspot_hook: Hook
) -> None:
    sandbox = hubspot_sandbox(rate_limit=60)
    hooks = [hubspot_hook(sandbox, extra={"rate_limit_per_10s": 60}, max_workers=4) for _ in range(3)]
    hooks[0].ensure_properties([COMPANY_ADDRESS_NUMBER])
    results: list[int] = []

    def load(hook: HubSpotHook, start: int) -> None:
        outcomes = hook.upsert_records("companies", companies(2_500, start), id_property="jde_address_number")
        results.append(sum(o.ok for o in outcomes.values()))

    threads = [threading.Thread(target=load, args=(h, 100_000 * (i + 1))) for i, h in enumerate(hooks)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == [2_500] * 3, f"after {time.monotonic() - began:.1f}s"
    assert sandbox.stats()["rate_limited"] == 0
