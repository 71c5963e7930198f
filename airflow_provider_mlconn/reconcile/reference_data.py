"""GL accounts: the options of the line-item properties ``jde_gl_account`` and ``jde_business_unit``
as the GL accounts flow would send them (JDE's F0901 and F0006 read whole, mapped by the flow's own
mapping) against the options HubSpot holds: an option missing in HubSpot, a label or hidden flag
that differs, and a shown option JDE does not have (the flow keeps those hidden). One property read
per list, two JDE queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mlconn.flows import gl_accounts as flow
from airflow_provider_mlconn.hooks.hubspot import PROPERTIES, HubSpotHook
from airflow_provider_mlconn.http import RequestRejectedError
from airflow_provider_mlconn.hubspot.properties import PropertySpec
from airflow_provider_mlconn.reconcile.report import Finding, Kind, Tally

FLOW = "gl_accounts"
_LISTS = (
    ("gl_account_options", flow.GL_ACCOUNT_PROPERTY, flow.map_account_options),
    ("business_unit_options", flow.BUSINESS_UNIT_PROPERTY, flow.map_business_unit_options),
)


def compare_gl_accounts() -> tuple[list[Tally], list[Finding]]:
    """Compare both option lists; see the module docstring."""
    settings = flow.read_settings(fresh=True)
    sources = flow.read_reference_data()
    tallies: list[Tally] = []
    findings: list[Finding] = []
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        for entity, spec, map_options in _LISTS:
            expected = list(map_options(sources[entity])["options"])
            held = _options_held(hook, spec)
            tallies.append(_compare(entity, expected, held, findings))
    return tallies, findings


def _options_held(hook: HubSpotHook, spec: PropertySpec) -> list[Mapping[str, Any]]:
    try:
        found = hook.request("GET", f"{PROPERTIES}/{spec.object_type.value}/{spec.name}") or {}
    except RequestRejectedError as error:
        if error.status == 404:
            return []  # the property was never created: every option is missing
        raise
    return list(found.get("options") or [])


def _compare(
    entity: str,
    expected: Sequence[Mapping[str, Any]],
    held: Sequence[Mapping[str, Any]],
    findings: list[Finding],
) -> Tally:
    by_value = {str(option.get("value")): option for option in held}
    tally = Tally(flow=FLOW, entity=entity, jde=len(expected), hubspot=len(held))

    def found(kind: Kind, key: str, **details: Any) -> None:
        tally.add(kind)
        findings.append(Finding(flow=FLOW, entity=entity, key=key, kind=kind, **details))

    wanted = set()
    for option in expected:
        value = str(option["value"])
        wanted.add(value)
        have = by_value.get(value)
        if have is None:
            found(Kind.MISSING_IN_HUBSPOT, value)
            continue
        same = True
        pairs = (
            ("label", str(option["label"]), str(have.get("label") or "")),
            ("hidden", _flag(option.get("hidden")), _flag(have.get("hidden"))),
        )
        for name, want, got in pairs:
            if want != got:
                same = False
                found(Kind.DRIFT, value, field=name, jde=want, hubspot=got)
        if same:
            tally.matched += 1
    for value, option in sorted(by_value.items()):
        if value not in wanted and not option.get("hidden"):
            found(
                Kind.MISSING_IN_JDE, value, note="shown in HubSpot; JDE has no such value (the flow hides it)"
            )
    return tally


def _flag(value: Any) -> str:
    """A hidden flag as ``true``/``false`` (HubSpot answers a boolean; a string is taken as written)."""
    return str(value).strip().lower() if isinstance(value, str) else str(bool(value)).lower()
