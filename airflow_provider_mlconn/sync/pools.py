"""The Airflow pools that cap concurrent load tasks per remote system, created if missing.

``mlconn_hubspot`` (default 4 slots: four load tasks each sending sequential 100-record batch
calls stay near HubSpot's 190 requests / 10 s burst limit, which the hook's throttle enforces)
and ``mlconn_jde`` (default 2: AIS orchestrations are heavy on the enterprise server).
Sizes: Airflow config ``[mlconn] pool_slots_hubspot`` / ``pool_slots_jde``
(``AIRFLOW__MLCONN__POOL_SLOTS_HUBSPOT``...). An existing pool is never resized: an operator's
change in the UI wins.

Pools live in the metadata database, which tasks cannot reach in Airflow 3, so they are created
by whoever can: this module's listener when a scheduler / dag-processor / triggerer job starts
(``MlconnSyncPlugin``, through the ``airflow.plugins`` entry point: provider-info plugins are
skipped while ``[core] lazy_discover_providers`` is on, the default), or ``mlconn pools ensure``
(CLI) at deployment.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

#: Pool name -> (config option, default slots, description), one per ``flow.MANAGED_POOL_TARGETS``.
POOLS: dict[str, tuple[str, int, str]] = {
    "mlconn_hubspot": ("pool_slots_hubspot", 4, "mlconn: concurrent load tasks writing to HubSpot"),
    "mlconn_jde": ("pool_slots_jde", 2, "mlconn: concurrent load tasks writing to JD Edwards AIS"),
}


def pool_slots(name: str) -> int:
    from airflow.configuration import conf

    option, default, _ = POOLS[name]
    return conf.getint("mlconn", option, fallback=default)


def ensure_pools() -> list[str]:
    """Create the mlconn pools that do not exist yet; returns the names created."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    created = []
    with create_session() as session:
        for name, (_, _, description) in POOLS.items():
            if Pool.get_pool(name, session=session) is None:
                Pool.create_or_update_pool(
                    name, pool_slots(name), description, include_deferred=False, session=session
                )
                created.append(name)
    if created:
        log.info("created Airflow pools %s", created)
    return created


@hookimpl
def on_starting(component: Any) -> None:
    """Listener: when a job with database access starts, make sure the pools exist.

    Task runners call this hook too; they have no database access and are left alone.
    """
    if type(component).__name__ != "Job" or type(component).__module__ != "airflow.jobs.job":
        return
    try:
        ensure_pools()
    except Exception:
        log.exception("could not create the mlconn pools; run `mlconn pools ensure`")


class MlconnSyncPlugin(AirflowPlugin):
    """Registers the pool listener (entry point group ``airflow.plugins``)."""

    name = "mlconn_sync"
    listeners = [sys.modules[__name__]]
