"""The dependency planner: load stages from entity dependencies, and which records wait.

Two levels, both pure. Entities: "contact needs company" becomes stages (company first, then
contact, then association), which the DAG turns into task order. Records: a contact whose own
company did not make it into the target is held back (``failed``, "prerequisite company 42
failed") instead of being written half-linked; it is retried together with its prerequisite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


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
    """

    run_status: str | None
    remote_id: str | None


@dataclass(frozen=True)
class Readiness:
    """Either ``remote_ids`` for every prerequisite, or the ``reason`` the record waits."""

    remote_ids: Mapping[str, str]
    reason: str | None

    @property
    def ready(self) -> bool:
        return self.reason is None


def readiness(prerequisites: Mapping[str, PrerequisiteState]) -> Readiness:
    """Decide whether a record can be written, given its prerequisites (by description).

    A prerequisite that is part of the run must be ``loaded`` or ``unchanged`` in that run (the
    dependent may rely on the new state); one outside the run must be in the id map.
    """
    remote_ids: dict[str, str] = {}
    reasons: list[str] = []
    for described, state in prerequisites.items():
        if state.run_status is None:
            if state.remote_id is None:
                reasons.append(f"prerequisite {described} not found: not in this run and never loaded")
            else:
                remote_ids[described] = state.remote_id
        elif state.run_status in ("loaded", "unchanged") and state.remote_id is not None:
            remote_ids[described] = state.remote_id
        elif state.run_status in ("failed", "rejected"):
            reasons.append(f"prerequisite {described} {state.run_status}")
        else:
            reasons.append(f"prerequisite {described} not loaded (status {state.run_status})")
    return Readiness(remote_ids=remote_ids, reason="; ".join(reasons) or None)
