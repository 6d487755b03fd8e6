"""Which operator controls apply to a rollout now, and which devices can be rolled back or
retried one by one.

One table for everyone: the API refuses a control outside it with a 409, the dashboard
disables the control's button and says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetwave.domain.vocabulary import devices

CONTROL_STATUSES: dict[str, tuple[str, ...]] = {
    "approve": ("awaiting_approval",),
    "reject": ("awaiting_approval",),
    "pause": ("in_progress", "scheduled"),
    "resume": ("paused",),
    "cancel": ("pending", "awaiting_approval", "scheduled", "in_progress", "paused"),
    "promote": ("in_progress",),
    "retry-failed": ("in_progress", "paused", "completed", "failed"),
    "rollback-all": ("in_progress", "paused", "scheduled", "completed", "failed"),
}
# Devices whose target the rollout moved, and that are not back on their old images yet.
MOVED_DEVICE_STATUSES = (
    "scheduled",
    "pulling",
    "updating",
    "health_checking",
    "completed",
    "failed",
)
FAILED_DEVICE_STATUSES = ("failed", "rolled_back", "rollback_failed")


@dataclass(frozen=True)
class RolloutPosition:
    """What the rules need to know of a rollout."""

    status: str
    current_batch: int
    total_batches: int
    unfinished_in_current_batch: int = 0
    failed_devices: int = 0
    retryable_devices: int | None = None  # failed devices with retries left (None: unknown)


@dataclass(frozen=True)
class ControlOption:
    control: str
    allowed: bool
    reason: str | None = None  # why not, when not allowed


def status_refusal(control: str, status: str) -> str | None:
    """Why ``control`` does not apply to a rollout in ``status`` (None if it does)."""
    allowed = CONTROL_STATUSES[control]
    if status in allowed:
        return None
    return (
        f"cannot {control} a rollout that is {status}; "
        f"{control} applies to a rollout that is {' or '.join(allowed)}"
    )


def control_options(rollout: RolloutPosition) -> list[ControlOption]:
    """Every control, in a stable order, each allowed or not with the reason."""
    return [
        ControlOption(control, reason is None, reason)
        for control in CONTROL_STATUSES
        for reason in [_refusal(control, rollout)]
    ]


def _refusal(control: str, rollout: RolloutPosition) -> str | None:
    refusal = status_refusal(control, rollout.status)
    if refusal is not None:
        return refusal
    if control == "promote":
        batch = rollout.current_batch
        if batch >= rollout.total_batches:
            return f"batch {batch} is the last; there is no batch to promote"
        if batch > 0 and rollout.unfinished_in_current_batch:
            unfinished = devices(rollout.unfinished_in_current_batch)
            return f"batch {batch} still has {unfinished} not finished"
    if control == "retry-failed" and rollout.failed_devices == 0:
        return "no device of this rollout has failed"
    if control == "retry-failed" and rollout.retryable_devices == 0:
        return "no failed device of this rollout has retries left"
    return None


def device_can_roll_back(status: str, rollback_requested: bool) -> bool:
    """Only a device the rollout moved, and not already sent back, can be rolled back."""
    return status in MOVED_DEVICE_STATUSES and not rollback_requested


def device_rollback_refusal(status: str, rollback_requested: bool) -> str | None:
    """Why one device cannot be rolled back (None if it can), in words for its page."""
    if rollback_requested:
        return f"it is {status} and already sent back to its old images"
    if status not in MOVED_DEVICE_STATUSES:
        return f"it is {status}; only a device the rollout moved can be rolled back"
    return None


def device_retry_refusal(
    rollout_status: str, status: str, retry_count: int, max_retries: int
) -> str | None:
    """Why one device of a rollout cannot be given the new image again (None if it can): the
    rollout must be one that retries apply to, the device failed or rolled back, and its
    retries not used up (the same rules as retry-failed, for one device)."""
    if status_refusal("retry-failed", rollout_status) is not None:
        allowed = " or ".join(CONTROL_STATUSES["retry-failed"])
        return f"the rollout is {rollout_status}; devices are retried only in a rollout {allowed}"
    if status not in FAILED_DEVICE_STATUSES:
        return f"it is {status}; only a failed or rolled-back device can be retried"
    if retry_count >= max_retries:
        if max_retries == 0:
            return "its rollout allows no retries (max_retries 0)"
        return f"it has no retries left ({retry_count} of {max_retries} used)"
    return None
