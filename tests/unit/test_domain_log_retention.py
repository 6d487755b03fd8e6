"""Log retention as a rule over plain data: a device's newest lines, none too old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetwave.domain.log_retention import (
    Retention,
    StoredLine,
    retained,
    sweep_due,
    worth_storing,
)

NOW = datetime(2026, 1, 10, tzinfo=UTC)
WEEK = timedelta(days=7)


def lines(*days_ago: float) -> list[StoredLine]:
    """Lines with ids 1, 2, … received so many days before NOW."""
    return [StoredLine(i, NOW - timedelta(days=d)) for i, d in enumerate(days_ago, 1)]


@pytest.mark.parametrize(
    ("stored", "keep", "kept"),
    [
        ([], 3, []),
        (lines(1, 1), 3, [1, 2]),
        (lines(1, 1, 1, 1, 1), 3, [3, 4, 5]),
        (lines(8, 6, 5), 3, [2, 3]),  # too old, whatever the count
        (lines(8, 8, 1, 1, 1, 1), 3, [4, 5, 6]),
        (lines(7), 3, [1]),  # exactly the age limit: still kept
        (lines(7.0001), 3, []),
        (lines(1, 1), 1, [2]),
    ],
)
def test_a_device_keeps_its_newest_lines_that_are_not_too_old(
    stored: list[StoredLine], keep: int, kept: list[int]
) -> None:
    assert retained(stored, Retention(keep, WEEK), NOW) == kept


def test_the_newest_are_the_highest_ids_whatever_order_they_come_in() -> None:
    shuffled = [StoredLine(3, NOW), StoredLine(1, NOW), StoredLine(2, NOW)]
    assert retained(shuffled, Retention(2, WEEK), NOW) == [2, 3]


@pytest.mark.parametrize(
    ("count", "keep", "written"),
    [(0, 5, []), (3, 5, [0, 1, 2]), (5, 5, [0, 1, 2, 3, 4]), (8, 5, [3, 4, 5, 6, 7])],
)
def test_a_batch_writes_only_the_lines_its_device_can_keep(
    count: int, keep: int, written: list[int]
) -> None:
    assert list(range(count))[worth_storing(count, Retention(keep, WEEK))] == written


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [
        (None, NOW, True),
        (NOW, NOW, False),
        (NOW, NOW + timedelta(seconds=59), False),
        (NOW, NOW + timedelta(minutes=1), True),
        (NOW, NOW - timedelta(hours=1), True),  # the clock went back: do not wait an hour
    ],
)
def test_the_sweep_runs_once_a_minute(last: datetime | None, now: datetime, due: bool) -> None:
    assert sweep_due(last, now) is due
