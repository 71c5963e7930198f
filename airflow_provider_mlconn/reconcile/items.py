"""Items: every JDE item (F4101 with its F4106 base prices) mapped by the items flow's own mapping
(the JDE-owned product fields a run would send) against every HubSpot product with a JDE item
number: missing on either side, two products with one item number, and each JDE-owned field whose
value differs. Fields HubSpot owns (setting ``hubspot_owns``) and the sync's own bookkeeping
(``jde_sync_status``, ``jde_sync_message``, ``jde_sync_fingerprint``) are not compared; a product
created in HubSpot that has no item number yet is the flow's next run's work, not a difference.
Reads: JDE 100 items per LIST query; HubSpot the product list (100 per page)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlconn.flows import items as flow
from airflow_provider_mlconn.hooks.hubspot import HubSpotHook
from airflow_provider_mlconn.hubspot.models import HubSpotRecord
from airflow_provider_mlconn.hubspot.objects import ObjectType
from airflow_provider_mlconn.jde.dates import JDE_STAMP
from airflow_provider_mlconn.reconcile.report import Finding, Kind, Tally, normalized
from airflow_provider_mlconn.rejection import Rejection
from airflow_provider_mlconn.sync.watermarks import Window, WindowMode

FLOW = "items"
KEY_PROPERTY = "jde_item_number"
_BOOKKEEPING = ("jde_sync_status", "jde_sync_message", "jde_sync_fingerprint")


class _Collector:
    def __init__(self) -> None:
        self.staged: dict[str, Mapping[str, Any]] = {}

    def stage(self, entity: str, key: str | int, payload: Mapping[str, Any]) -> None:
        if entity == "product":
            self.staged[str(key)] = payload

    def mark_complete(self, entity: str) -> None:
        return None


def compare_items() -> tuple[list[Tally], list[Finding]]:
    """Compare items and products; see the module docstring."""
    settings = flow.read_settings(fresh=True)
    collected = _Collector()
    end = datetime.now(timezone.utc)
    flow.extract_items(Window("jde", JDE_STAMP.name, None, end, WindowMode.RANGE), collected)
    expected: dict[str, dict[str, Any]] = {}
    refused: set[str] = set()
    for key, source in collected.staged.items():
        mapped = flow.map_product(source)
        if isinstance(mapped, Rejection):
            refused.add(key)
        else:
            expected[key] = {
                name: value for name, value in mapped["properties"].items() if name not in _BOOKKEEPING
            }
    held: dict[str, list[HubSpotRecord]] = defaultdict(list)
    total = 0
    with HubSpotHook(settings.hubspot_conn_id) as hook:
        for record in hook.iter_records(ObjectType.PRODUCTS, properties=flow.READ_PROPERTIES):
            total += 1
            key = (record.properties.get(KEY_PROPERTY) or "").strip()
            if key:
                held[key].append(record)
    tally = Tally(flow=FLOW, entity="product", jde=len(expected) + len(refused), hubspot=total)
    tally.not_sent = len(refused)
    findings: list[Finding] = []

    def found(kind: Kind, key: str, **details: Any) -> None:
        tally.add(kind)
        findings.append(Finding(flow=FLOW, entity="product", key=key, kind=kind, **details))

    for key in sorted(expected):
        records = held.get(key, [])
        if not records:
            found(Kind.MISSING_IN_HUBSPOT, key)
            continue
        if len(records) > 1:
            found(Kind.DUPLICATE, key, hubspot_ids=tuple(sorted((r.id for r in records), key=int)))
            continue
        [record] = records
        conflict = (record.properties.get("jde_sync_status") or "") == "conflict"
        differs = False
        for name, value in sorted(expected[key].items()):
            want, have = normalized(value), normalized(record.properties.get(name))
            if want != have:
                differs = True
                note = "the flow shows it as a conflict on the product (F15)" if conflict else ""
                found(
                    Kind.DRIFT, key, field=name, jde=want, hubspot=have, hubspot_ids=(record.id,), note=note
                )
        if not differs:
            tally.matched += 1
    for key, records in sorted(held.items()):
        if key in expected or key in refused:
            continue
        live = [r for r in records if (r.properties.get("jde_sync_status") or "") != "deleted"]
        if live:
            found(
                Kind.MISSING_IN_JDE,
                key,
                hubspot_ids=tuple(r.id for r in live),
                note="JDE has no such item and HubSpot does not show it deleted",
            )
    return [tally], findings
