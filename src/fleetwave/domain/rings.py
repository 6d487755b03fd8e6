"""Deployment rings: named device selectors whose order is a rollout's batch order.

A ring selects devices by fleet, tags and uuids (all given parts must hold). A policy listing
rings rolls out ring by ring: a device takes the **first** ring that selects it; a device the
policy covers but no ring selects is not part of the rollout (excluded "in no ring").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ring:
    name: str
    fleet_id: str | None = None
    device_tags: Mapping[str, str] = field(default_factory=dict)
    device_uuids: frozenset[str] | None = None

    def selects(self, uuid: str, fleet_id: str | None, tags: Mapping[str, Any] | None) -> bool:
        if self.fleet_id is not None and fleet_id != self.fleet_id:
            return False
        if self.device_uuids is not None and uuid not in self.device_uuids:
            return False
        present = tags or {}
        return all(present.get(key) == value for key, value in self.device_tags.items())


def first_ring(
    rings: Sequence[Ring], uuid: str, fleet_id: str | None, tags: Mapping[str, Any] | None
) -> int | None:
    """The index of the first ring selecting the device, or None."""
    for index, ring in enumerate(rings):
        if ring.selects(uuid, fleet_id, tags):
            return index
    return None


def unknown_rings(asked: Sequence[str], known: set[str]) -> list[str]:
    return [name for name in asked if name not in known]
