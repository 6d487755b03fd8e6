"""How many more devices may start updating now: the fleet-wide cap and a policy's own.

``FLEETWAVE_MAX_UPDATING_DEVICES`` bounds the devices in flight (scheduled, pulling, updating,
health checking) across all rollouts, to protect shared bandwidth and a registry's pull rate;
a policy's ``max_concurrent_devices`` bounds its rollout's own. A batch larger than the room
left starts in part and is topped up, in the batch's order, as devices finish.
"""

from __future__ import annotations

from dataclasses import dataclass

IN_FLIGHT_STATUSES = ("scheduled", "pulling", "updating", "health_checking")


@dataclass(frozen=True)
class DeviceCap:
    fleet: int | None = None  # FLEETWAVE_MAX_UPDATING_DEVICES
    rollout: int | None = None  # the policy's max_concurrent_devices

    @property
    def applies(self) -> bool:
        return self.fleet is not None or self.rollout is not None

    def room(self, fleet_in_flight: int, rollout_in_flight: int) -> int | None:
        """Devices that may start now; None without a cap."""
        rooms = []
        if self.fleet is not None:
            rooms.append(self.fleet - fleet_in_flight)
        if self.rollout is not None:
            rooms.append(self.rollout - rollout_in_flight)
        return max(0, min(rooms)) if rooms else None

    def note(self) -> str | None:
        """The binding cap in words, for ``waiting_for`` (the lower one; the fleet's on a tie)."""
        if self.rollout is not None and (self.fleet is None or self.rollout < self.fleet):
            return f"policy cap {self.rollout}"
        if self.fleet is not None:
            return f"fleet-wide cap {self.fleet}"
        return None


def partly_started(batch: int, started: int, size: int, note: str) -> str:
    """``batch 2: 40 of 400 devices started, fleet-wide cap 40``."""
    return f"batch {batch}: {started} of {size} devices started, {note}"
