"""The statuses, strategies and event types every layer speaks (DESIGN.md §4).

The seed's CHECK lists are widened where its own code emitted more (approval, cancellation,
rollback events); the database CHECK constraints are built from these tuples.
"""

from __future__ import annotations

UPDATE_STRATEGIES = ("auto", "staged", "manual", "scheduled")

ROLLOUT_STATUSES = (
    "pending",
    "awaiting_approval",
    "scheduled",
    "in_progress",
    "paused",
    "completed",
    "failed",
    "cancelled",
    "rolled_back",
)
ACTIVE_ROLLOUT_STATUSES = ("pending", "awaiting_approval", "scheduled", "in_progress", "paused")

DEVICE_ROLLOUT_STATUSES = (
    "pending",
    "scheduled",
    "pulling",
    "updating",
    "health_checking",
    "completed",
    "failed",
    "rolled_back",
    "rollback_failed",
    "skipped",
)

UNFINISHED_DEVICE_STATUSES = ("pending", "scheduled", "pulling", "updating", "health_checking")

ROLLOUT_EVENT_TYPES = (
    # the seed's
    "rollout_created",
    "rollout_started",
    "batch_started",
    "batch_completed",
    "device_scheduled",
    "device_updated",
    "device_failed",
    "health_check_passed",
    "health_check_failed",
    "rollback_triggered",
    "rollout_paused",
    "rollout_resumed",
    "rollout_completed",
    "rollout_failed",
    # what the seed's code emitted beyond its CHECK, and what our controls add
    "awaiting_approval",
    "rollout_approved",
    "rollout_rejected",
    "rollout_scheduled",
    "rollout_promoted",
    "rollout_cancelled",
    "rollout_superseded",
    "rollout_rolled_back",
    "device_progress",
    "device_retried",
    "device_skipped",
    "device_rolled_back",
    "rollback_failed",
    "webhook_received",
    "retry_requested",
    # agents that run no device-side checks, and agents that stall (issue 13)
    "health_check_not_runnable",
    "device_not_applying",
    # a device that appeared on an old image after the rollout was planned (issue 16)
    "device_joined",
)

SEMVER_RULES = ("major", "minor", "patch", "all")

# "pending": recorded and answered, not planned yet (see rollouts/deliveries.py).
WEBHOOK_OUTCOMES = ("rollout_created", "duplicate", "ignored", "rejected", "pending")

LOG_LEVELS = ("debug", "info", "warn", "error")  # device log lines, least to most severe


def devices(n: int) -> str:
    """``1 device``, ``2 devices``: counts in messages people read."""
    return f"{n} device" if n == 1 else f"{n} devices"


ROLES = ("viewer", "operator", "admin")  # users and their tokens (domain.roles), least first
