"""The dependency planner: load stages from entity dependencies, and which records wait.

Two levels, both pure. Entities: "contact needs company" becomes stages (company first, then
contact, then association), which the DAG turns into task order. Records: a contact whose own
company failed to load is held back (``failed``, "prerequisite company 42 failed") and retried
together with it; one whose company is rejected, or never reached the target, waits
(``waiting``, with the reason) without holding the run back. Nothing is written half-linked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum


def load_stages(dependencies: Mapping[str, Iterable[str]]) -> list[tuple[str, ...]]:
    """Group entities into stages; each stage only depends on earlier ones.

    ``dependencies`` maps each entity to the entities it needs first. Order inside a stage follows
    the mapping's order. Raises ValueError for an unknown entity or a cycle, naming them.
    """
    needs = {entity: tuple(required) for entity, required in dependencies.items()}
    for entity, required in needs.items():
        unknown = [name for name in required if name not in needs]
        if unknown:
            raise ValueError(f"entity {entity} depends on unknown entities {unknown}")
        if entity in required:
            raise ValueError(f"entity {entity} depends on itself")
    stages: list[tuple[str, ...]] = []
    placed: set[str] = set()
    while len(placed) < len(needs):
        stage = tuple(
            entity
            for entity, required in needs.items()
            if entity not in placed and all(name in placed for name in required)
        )
        if not stage:
            cycle = sorted(entity for entity in needs if entity not in placed)
            raise ValueError(f"entities {cycle} depend on each other in a cycle")
        stages.append(stage)
        placed.update(stage)
    return stages


@dataclass(frozen=True)
class PrerequisiteState:
    """What the store knows of one prerequisite.

    ``run_status`` is the status of the prerequisite's record in the same run (``None``: not part of
    the run); ``remote_id`` its target id, from the run's record or else from the id map.
    ``latest_status`` and ``error`` describe the prerequisite's latest record when it is not in the
    target: its status (in this run, or in an earlier one when the run does not have it) and the
    reason it did not load, so a dependent can say what it waits for.
    """

    run_status: str | None
    remote_id: str | None
    latest_status: str | None = None
    error: str | None = None


class Verdict(str, Enum):
    """What happens to a record when its turn to load comes."""

    #: Every prerequisite is in the target: load it.
    READY = "ready"
    #: A prerequisite is not in the target and will not get there by retrying this run (it is
    #: rejected, waits itself, or was never loaded): the record waits, the run goes on.
    WAIT = "wait"
    #: A prerequisite failed for a reason a retry may fix: hold the record back (``failed``), so the
    #: run fails and its retry loads both.
    HOLD = "hold"


@dataclass(frozen=True)
class Readiness:
    """The verdict, ``remote_ids`` for every prerequisite when ready, else the ``reason``."""

    remote_ids: Mapping[str, str]
    reason: str | None
    verdict: Verdict = Verdict.READY

    @property
    def ready(self) -> bool:
        return self.verdict is Verdict.READY


def _not_in_target(described: str, state: PrerequisiteState) -> str:
    status = state.latest_status
    why = f": {state.error}" if state.error else ""
    if status in ("rejected", "waiting"):
        return f"waits for {described}, which is {status}{why}"
    if status is None:
        if state.error:
            return f"waits for {described}: {state.error}"
        return f"waits for {described}, which is not in the target: never read or loaded"
    return f"waits for {described}, which is not in the target (its latest record is {status}{why})"


def readiness(prerequisites: Mapping[str, PrerequisiteState]) -> Readiness:
    """Decide whether a record can be written, given its prerequisites (by description).

    A prerequisite that is part of the run must be ``loaded`` or ``unchanged`` in that run (the
    dependent may rely on the new state); one outside the run must be in the id map. A failed or
    not yet loaded prerequisite of the run holds the record back (its retry loads both). A
    rejected or waiting one makes the record wait, unless the target has it from another run
    (``remote_id``); so does one the target never got (a person or a later run has to act first).
    """
    remote_ids: dict[str, str] = {}
    holds: list[str] = []
    waits: list[str] = []
    for described, state in prerequisites.items():
        if state.run_status is None:
            if state.remote_id is None:
                waits.append(_not_in_target(described, state))
            else:
                remote_ids[described] = state.remote_id
        elif state.run_status in ("loaded", "unchanged") and state.remote_id is not None:
            remote_ids[described] = state.remote_id
        elif state.run_status in ("rejected", "waiting"):
            if state.remote_id is None:
                waits.append(_not_in_target(described, state))
            else:
                # Not written by this run, but in the target all the same (an earlier run wrote it).
                remote_ids[described] = state.remote_id
        elif state.run_status == "failed":
            holds.append(f"prerequisite {described} failed" + (f": {state.error}" if state.error else ""))
        else:
            holds.append(f"prerequisite {described} not loaded (status {state.run_status})")
    if holds:
        return Readiness(remote_ids={}, reason="; ".join(holds + waits), verdict=Verdict.HOLD)
    if waits:
        return Readiness(remote_ids={}, reason="; ".join(waits), verdict=Verdict.WAIT)
    return Readiness(remote_ids=remote_ids, reason=None)
