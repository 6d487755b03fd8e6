"""Online means reported online and heard from within offline_after; touches are rationed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetwave.domain.presence import is_online, needs_touch, touch_interval

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("reported", "last_seen", "offline_after", "expected"),
    [
        pytest.param(True, NOW, FIVE_MINUTES, True, id="just heard from"),
        pytest.param(True, NOW - timedelta(minutes=4), FIVE_MINUTES, True, id="4 min ago"),
        pytest.param(True, NOW - FIVE_MINUTES, FIVE_MINUTES, True, id="exactly at the limit"),
        pytest.param(True, NOW - FIVE_MINUTES - TICK, FIVE_MINUTES, False, id="just past limit"),
        pytest.param(True, NOW - timedelta(hours=1), FIVE_MINUTES, False, id="an hour ago"),
        pytest.param(True, None, FIVE_MINUTES, False, id="never seen"),
        pytest.param(False, NOW, FIVE_MINUTES, False, id="said offline just now"),
        pytest.param(False, None, FIVE_MINUTES, False, id="said offline, never seen"),
        pytest.param(
            True, NOW - timedelta(seconds=59), timedelta(minutes=1), True, id="short threshold"
        ),
        pytest.param(
            True, NOW - timedelta(seconds=61), timedelta(minutes=1), False, id="short, past"
        ),
    ],
)
def test_is_online(
    reported: bool, last_seen: datetime | None, offline_after: timedelta, expected: bool
) -> None:
    assert is_online(reported, last_seen, NOW, offline_after) is expected


@pytest.mark.parametrize(
    ("offline_after", "expected"),
    [
        pytest.param(FIVE_MINUTES, timedelta(seconds=75), id="5 min: a quarter is 75 s"),
        pytest.param(timedelta(minutes=10), timedelta(seconds=150), id="10 min: 150 s"),
        pytest.param(timedelta(hours=1), timedelta(minutes=15), id="1 h: 15 min"),
        pytest.param(timedelta(seconds=10), timedelta(seconds=2.5), id="10 s: 2.5 s"),
    ],
)
def test_touch_interval_is_a_quarter_of_offline_after(
    offline_after: timedelta, expected: timedelta
) -> None:
    assert touch_interval(offline_after) == expected


@pytest.mark.parametrize(
    ("reported", "last_seen", "offline_after", "expected"),
    [
        pytest.param(True, NOW, FIVE_MINUTES, False, id="just written"),
        pytest.param(
            True, NOW - timedelta(seconds=75) + TICK, FIVE_MINUTES, False, id="just under 75 s"
        ),
        pytest.param(True, NOW - timedelta(seconds=75), FIVE_MINUTES, True, id="exactly 75 s"),
        pytest.param(True, NOW - timedelta(minutes=10), FIVE_MINUTES, True, id="long stale"),
        pytest.param(False, NOW, FIVE_MINUTES, True, id="stored as offline"),
        pytest.param(True, None, FIVE_MINUTES, True, id="never seen"),
        pytest.param(False, None, FIVE_MINUTES, True, id="offline and never seen"),
        pytest.param(
            True, NOW - timedelta(seconds=24), timedelta(seconds=100), False, id="100 s: 24 s old"
        ),
        pytest.param(
            True, NOW - timedelta(seconds=25), timedelta(seconds=100), True, id="100 s: 25 s old"
        ),
    ],
)
def test_needs_touch(
    reported: bool, last_seen: datetime | None, offline_after: timedelta, expected: bool
) -> None:
    assert needs_touch(reported, last_seen, NOW, offline_after) is expected


def test_a_device_polling_every_minute_writes_on_at_most_every_other_poll() -> None:
    last_written, writes = NOW, 0
    for minute in range(1, 11):
        now = NOW + timedelta(minutes=minute)
        if needs_touch(True, last_written, now, FIVE_MINUTES):
            last_written, writes = now, writes + 1
        assert is_online(True, last_written, now, FIVE_MINUTES)
    assert writes == 5


def test_a_device_that_needs_no_touch_is_still_online() -> None:
    # the rationed write must never let a polling device look offline
    offline_after = FIVE_MINUTES
    last_seen = NOW - touch_interval(offline_after) + TICK

    assert needs_touch(True, last_seen, NOW, offline_after) is False
    assert is_online(True, last_seen, NOW, offline_after) is True
