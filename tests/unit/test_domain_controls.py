"""Which controls apply to a rollout, as a table: the API's 409s and the dashboard's disabled
buttons both come from it."""

from __future__ import annotations

import pytest

from fleetwave.domain.controls import (
    CONTROL_STATUSES,
    RolloutPosition,
    control_options,
    device_can_roll_back,
)

ALL = tuple(CONTROL_STATUSES)


def allowed(position: RolloutPosition) -> set[str]:
    return {option.control for option in control_options(position) if option.allowed}


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        (RolloutPosition("awaiting_approval", 0, 3), {"approve", "reject", "cancel"}),
        (RolloutPosition("pending", 0, 3), {"cancel"}),
        (RolloutPosition("scheduled", 0, 3), {"pause", "cancel", "rollback-all"}),
        # batch 1 finished, no failures: promote starts batch 2 now; nothing to retry
        (
            RolloutPosition("in_progress", 1, 3),
            {"pause", "cancel", "promote", "rollback-all"},
        ),
        # batch 1 still running: no promote; a failure can be retried
        (
            RolloutPosition("in_progress", 1, 3, unfinished_in_current_batch=2, failed_devices=1),
            {"pause", "cancel", "retry-failed", "rollback-all"},
        ),
        # the last batch: nothing left to promote
        (RolloutPosition("in_progress", 3, 3), {"pause", "cancel", "rollback-all"}),
        (
            RolloutPosition("paused", 2, 3, failed_devices=2),
            {"resume", "cancel", "retry-failed", "rollback-all"},
        ),
        (RolloutPosition("completed", 3, 3), {"rollback-all"}),
        (RolloutPosition("failed", 3, 3, failed_devices=4), {"retry-failed", "rollback-all"}),
        (RolloutPosition("cancelled", 1, 3, failed_devices=1), set()),
        (RolloutPosition("rolled_back", 2, 3, failed_devices=1), set()),
    ],
)
def test_the_controls_a_rollout_allows_follow_its_status_and_batches(
    position: RolloutPosition, expected: set[str]
) -> None:
    assert allowed(position) == expected


def test_every_control_is_listed_once_in_a_stable_order_with_a_reason_when_refused() -> None:
    options = control_options(RolloutPosition("paused", 1, 3))
    assert [o.control for o in options] == list(ALL)
    refused = {o.control: o.reason for o in options if not o.allowed}
    assert refused["pause"] == (
        "cannot pause a rollout that is paused; pause applies to a rollout that is "
        "in_progress or scheduled"
    )
    assert refused["retry-failed"] == "no device of this rollout has failed"
    assert all(o.reason is None for o in options if o.allowed)


def test_promote_says_which_batch_is_unfinished_or_last() -> None:
    busy = control_options(RolloutPosition("in_progress", 2, 3, unfinished_in_current_batch=4))
    last = control_options(RolloutPosition("in_progress", 3, 3))
    assert next(o.reason for o in busy if o.control == "promote") == (
        "batch 2 still has 4 devices not finished"
    )
    assert next(o.reason for o in last if o.control == "promote") == (
        "batch 3 is the last; there is no batch to promote"
    )


@pytest.mark.parametrize(
    ("status", "sent_back", "expected"),
    [
        ("pending", False, False),
        ("scheduled", False, True),
        ("updating", False, True),
        ("health_checking", False, True),
        ("completed", False, True),
        ("failed", False, True),
        ("failed", True, False),
        ("rolled_back", False, False),
        ("rollback_failed", False, False),
        ("skipped", False, False),
    ],
)
def test_only_a_device_the_rollout_moved_and_not_yet_sent_back_can_be_rolled_back(
    status: str, sent_back: bool, expected: bool
) -> None:
    assert device_can_roll_back(status, sent_back) is expected
