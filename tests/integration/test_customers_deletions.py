"""A Who's Who line deleted in JDE leaves no stamp to poll: a full read finds it gone, and the
deletion rule runs once (the contact's ``jde_status`` becomes ``deleted`` and its association to
the company is removed; HubSpot records are never deleted by us)."""

from __future__ import annotations

import pytest

from tests.integration.test_customers_flow import hubspot_state, run_dag

pytestmark = pytest.mark.integration


def test_a_full_resync_after_a_whos_who_line_is_deleted_fires_the_deletion_rule_once(
    customer_sandboxes, airflow_store, airflow_db
):
    sandboxes = customer_sandboxes(jde={"customers": 20})
    run_dag()
    first = hubspot_state(sandboxes)
    by_key = first.contact_by_key()
    # A contact with a HubSpot record of its own (not linked to another person's mailbox).
    key = next(k for k in sorted(by_key) if list(by_key.values()).count(by_key[k]) == 1)
    an8, line = key.split("-")
    contact_id, company_id = by_key[key], first.company_ids[an8]
    assert (contact_id, company_id) in first.associations

    sandboxes.jde_control("DELETE", f"customers/{an8}/contacts/{line}")
    writes_before = sandboxes.hubspot_write_calls()
    run_dag({"safety_lag_minutes": 0})  # incremental: nothing to poll, nothing happens
    assert sandboxes.hubspot_write_calls() == writes_before

    run_dag({"full_resync": True})
    after = hubspot_state(sandboxes)
    contact = sandboxes.hubspot_api(
        "GET", f"/crm/v3/objects/contacts/{contact_id}", properties="jde_status,jde_contact_key"
    )
    assert contact["properties"]["jde_status"] == "deleted"
    assert (contact_id, company_id) not in after.associations
    untouched = {k: v for k, v in after.contacts.items() if k != contact_id}
    assert untouched == {k: v for k, v in first.contacts.items() if k != contact_id}
    assert after.companies == first.companies

    writes_before = sandboxes.hubspot_write_calls()
    run_dag({"full_resync": True})
    assert sandboxes.hubspot_write_calls() == writes_before, "the deletion rule fired once"
