"""A device that keeps talking but does not apply its target: seen, not left in silence.

The iotistic agent reports container states only (never ``pulling`` or ``updating``), and its
apply loop can stall while its poll and report loops go on (on Podman it waits for a new
container's first log line: a container that logs nothing holds it for ever). Such a device
sits in ``scheduled`` while its polls and reports keep coming. Once it has been heard from
after it was told to update, and has still not applied its target ``after`` that, it is
flagged "not applying its target": in the rollout's ``waiting_for``, on the device, and by one
event. It is not failed for it: the update timeout still decides that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fleetwave.domain.capabilities import PROGRESS
from fleetwave.domain.vocabulary import devices


@dataclass(frozen=True)
class Waiting:
    """A device's rollout row as the rule needs it."""

    status: str
    told_at: datetime | None  # when it was scheduled while online (its update timer started)
    heard_at: datetime | None  # its last poll or report
    retry_pending: bool = False  # waiting out a retry's backoff: not told yet
    sent_back: bool = False  # rolled back: the rollback is followed, not this


def flag_after(setting: timedelta, update_timeout: timedelta) -> timedelta:
    """How long a device may sit without applying before it is flagged: the setting, but
    never later than half the update timeout (the flag must come before the failure)."""
    return min(setting, update_timeout / 2)


def not_applying(device: Waiting, now: datetime, after: timedelta) -> bool:
    """Told to update ``after`` ago or more, heard from since, and still ``scheduled``."""
    if device.status != "scheduled" or device.retry_pending or device.sent_back:
        return False
    if device.told_at is None or device.heard_at is None:
        return False
    return device.heard_at > device.told_at and now - device.told_at >= after


def flag_message(after: timedelta, capabilities: frozenset[str]) -> str:
    """What the event says: how long, and what the agent's silence may mean."""
    minutes = f"{after.total_seconds() / 60:g} min"
    said = f"not applying its target: heard from, but nothing applied for {minutes}"
    if PROGRESS in capabilities:
        return f"{said} (its agent reports no download or restart)"
    return (
        f"{said} (its agent reports container states only: still downloading, or stalled, "
        "e.g. the iotistic agent on Podman waiting for a silent container's first log line)"
    )


def waiting_note(flagged: int) -> str:
    """What ``waiting_for`` adds while devices of the rollout are flagged."""
    whose = "its" if flagged == 1 else "their"
    return f"{devices(flagged)} not applying {whose} target"
