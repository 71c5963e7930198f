"""Which flows exist, by name: every ``Flow`` registers itself when its module is imported.

The replay DAG and the audit CLI need a flow's callables without its DAG file, so flows live in
importable modules. Those are found through Airflow config ``[mlconn] flow_modules``
(``AIRFLOW__MLCONN__FLOW_MODULES``): comma-separated module or package names, default
``airflow_provider_mlconn.flows`` (a package: every module in it is imported).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from typing import TYPE_CHECKING

from airflow_provider_mlconn.sync.errors import FlowDefinitionError

if TYPE_CHECKING:
    from airflow_provider_mlconn.sync.flow import Flow

log = logging.getLogger(__name__)

DEFAULT_FLOW_MODULES = "airflow_provider_mlconn.flows"

_flows: dict[str, Flow] = {}
_lock = threading.Lock()


def register_flow(flow: Flow) -> None:
    """Called by ``Flow`` itself; a flow declared again under the same name (re-parse) replaces it."""
    with _lock:
        _flows[flow.name] = flow


def configured_flow_modules() -> list[str]:
    from airflow.sdk.configuration import conf

    text = conf.get("mlconn", "flow_modules", fallback=DEFAULT_FLOW_MODULES) or ""
    return [name.strip() for name in text.split(",") if name.strip()]


def import_flow_modules() -> None:
    """Import the configured flow modules so their flows register (a missing default is no error)."""
    for name in configured_flow_modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if name == DEFAULT_FLOW_MODULES and error.name == name:
                continue
            raise FlowDefinitionError(
                f"[mlconn] flow_modules names {name!r}, which cannot be imported: {error}"
            ) from error
        for submodule in pkgutil.iter_modules(getattr(module, "__path__", [])):
            importlib.import_module(f"{name}.{submodule.name}")


def known_flows() -> list[str]:
    import_flow_modules()
    with _lock:
        return sorted(_flows)


def get_flow(name: str) -> Flow:
    """The flow called ``name``; imports the configured flow modules if it is not registered yet."""
    with _lock:
        flow = _flows.get(name)
    if flow is not None:
        return flow
    import_flow_modules()
    with _lock:
        flow = _flows.get(name)
        known = sorted(_flows)
    if flow is None:
        raise FlowDefinitionError(
            f"no flow named {name!r} is registered (known: {known}); declare it in a module listed "
            "in [mlconn] flow_modules"
        )
    return flow
