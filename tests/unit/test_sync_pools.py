"""The load pools: created if missing (CLI or the scheduler-side listener), never resized."""

from __future__ import annotations

import pytest

from airflow_provider_mlconn.sync.pools import POOLS, ensure_pools

pytestmark = pytest.mark.unit


def test_every_target_the_engine_manages_has_a_pool_here():
    from airflow_provider_mlconn.sync.flow import MANAGED_POOL_TARGETS

    assert sorted(POOLS) == sorted(f"mlconn_{target}" for target in MANAGED_POOL_TARGETS)


def delete_pools() -> None:
    from airflow.models.pool import Pool

    for name in POOLS:
        if Pool.get_pool(name) is not None:
            Pool.delete_pool(name)


def slots() -> dict[str, int | None]:
    from airflow.models.pool import Pool

    return {name: getattr(Pool.get_pool(name), "slots", None) for name in POOLS}


def test_missing_pools_are_created_with_the_configured_sizes_and_existing_ones_kept(airflow_db, monkeypatch):
    from airflow.models.pool import Pool

    delete_pools()
    monkeypatch.setenv("AIRFLOW__MLCONN__POOL_SLOTS_HUBSPOT", "7")
    assert ensure_pools() == ["mlconn_hubspot", "mlconn_jde"]
    assert slots() == {"mlconn_hubspot": 7, "mlconn_jde": 2}

    Pool.create_or_update_pool("mlconn_jde", 5, "tuned by hand", include_deferred=False)
    assert ensure_pools() == []
    assert slots() == {"mlconn_hubspot": 7, "mlconn_jde": 5}
    delete_pools()


def test_a_starting_scheduler_job_creates_the_pools_through_the_plugin_listener(airflow_db):
    from airflow.jobs.job import Job
    from airflow.listeners.listener import get_listener_manager

    from airflow_provider_mlconn.sync import pools
    from airflow_provider_mlconn.sync.pools import MlconnSyncPlugin

    assert MlconnSyncPlugin.listeners == [pools]
    delete_pools()
    manager = get_listener_manager()
    manager.add_listener(pools)
    try:
        Job()
    finally:
        manager.pm.unregister(pools)
    assert slots() == {"mlconn_hubspot": 4, "mlconn_jde": 2}
    delete_pools()


def test_a_task_runner_starting_leaves_the_pools_alone(airflow_db):
    from airflow_provider_mlconn.sync.pools import on_starting

    delete_pools()
    on_starting(component=object())
    assert slots() == {"mlconn_hubspot": None, "mlconn_jde": None}
