"""What the device page shows, computed from the services' answers: the actions each rollout
of its history allows (from the domain's rules, so a disabled button says why), and when it
was last heard from. Pure functions, no HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleetwave.domain.controls import device_retry_refusal, device_rollback_refusal


@dataclass(frozen=True)
class DeviceAction:
    action: str  # the last segment of its form's URL: rollback, retry
    label: str
    question: str
    allowed: bool
    reason: str | None  # why not, when not allowed


def history_actions(uuid: str, row: Mapping[str, Any]) -> list[DeviceAction]:
    """Roll back and retry for one rollout of the device's history (a row of
    ``GET /api/v1/devices/{uuid}/rollouts``)."""
    back = device_rollback_refusal(row["status"], row["rollback_requested_at"] is not None)
    again = device_retry_refusal(
        row["rollout_status"], row["status"], row["retry_count"], row["max_retries"]
    )
    return [
        DeviceAction(
            "rollback",
            "Roll back",
            f"Roll {uuid} back to its images from before rollout {row['rollout_id'][:8]}?",
            back is None,
            back,
        ),
        DeviceAction(
            "retry",
            "Retry",
            f"Give {uuid} {row['new_image'] or 'the new image'} again?",
            again is None,
            again,
        ),
    ]


def finished_at(row: Mapping[str, Any]) -> datetime | None:
    """When the device's part in a rollout ended: healthy, or back on its old images."""
    ended: datetime | None = row.get("rolled_back_at") or row.get("update_completed_at")
    return ended
