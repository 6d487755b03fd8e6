"""Which rollouts take late joiners, and into which batch (domain.late_joiners)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetwave.domain.late_joiners import Joining, grown, joining_batch, joins

FINISHED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "continuous", "taken"),
    [
        ("in_progress", False, True),
        ("paused", True, True),
        ("awaiting_approval", True, True),
        ("completed", True, True),
        ("completed", False, False),
        ("failed", True, False),
        ("cancelled", True, False),
        ("rolled_back", True, False),
    ],
)
def test_only_unfinished_or_completed_continuous_rollouts_take_joiners(
    status: str, continuous: bool, taken: bool
) -> None:
    assert joins(status, continuous) is taken


@pytest.mark.parametrize(
    ("status", "current", "finished_at", "joining"),
    [
        ("awaiting_approval", 0, None, Joining(1, reopens=False, continuous=False)),
        ("in_progress", 2, None, Joining(2, reopens=False, continuous=False)),
        ("in_progress", 2, FINISHED, Joining(3, reopens=False, continuous=False)),
        ("in_progress", 3, FINISHED, Joining(3, reopens=True, continuous=False)),
        ("completed", 3, FINISHED, Joining(3, reopens=True, continuous=True)),
    ],
)
def test_joiners_go_into_the_running_batch_or_the_next(
    status: str, current: int, finished_at: datetime | None, joining: Joining
) -> None:
    assert joining_batch(status, current, 3, finished_at) == joining


def test_batch_sizes_grow_by_the_joiners() -> None:
    assert grown([1, 4, 5], 2, 3) == [1, 7, 5]
    assert grown([1, 4], 3, 2) == [1, 4, 2]
