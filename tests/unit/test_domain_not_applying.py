"""A device heard from but not applying its target is flagged (``not_applying``), not left in
``scheduled`` in silence; the rollout's wait says so (``decide``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetwave.domain.engine import RolloutSnapshot, Wait, decide
from fleetwave.domain.not_applying import (
    Waiting,
    flag_after,
    flag_message,
    not_applying,
    waiting_note,
)
from fleetwave.domain.rollout_settings import RolloutSettings

TOLD = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AFTER = timedelta(minutes=10)


def minutes(n: float) -> datetime:
    return TOLD + timedelta(minutes=n)


@pytest.mark.parametrize(
    ("device", "now", "expected"),
    [
        pytest.param(
            Waiting("scheduled", TOLD, minutes(9)), minutes(10), True, id="heard from, 10 min on"
        ),
        pytest.param(
            Waiting("scheduled", TOLD, minutes(1)), minutes(25), True, id="heard from once since"
        ),
        pytest.param(
            Waiting("scheduled", TOLD, minutes(9)),
            minutes(10) - timedelta(seconds=1),
            False,
            id="a second too soon",
        ),
        pytest.param(
            Waiting("scheduled", TOLD, TOLD), minutes(12), False, id="not heard from since told"
        ),
        pytest.param(
            Waiting("scheduled", TOLD, TOLD - timedelta(minutes=3)),
            minutes(12),
            False,
            id="last heard before it was told",
        ),
        pytest.param(Waiting("scheduled", TOLD, None), minutes(12), False, id="never heard from"),
        pytest.param(
            Waiting("scheduled", None, minutes(5)), minutes(12), False, id="not told: offline"
        ),
        pytest.param(
            Waiting("scheduled", TOLD, minutes(9), retry_pending=True),
            minutes(12),
            False,
            id="waiting out a retry's backoff",
        ),
        pytest.param(
            Waiting("scheduled", TOLD, minutes(9), sent_back=True),
            minutes(12),
            False,
            id="sent back: the rollback is followed",
        ),
        pytest.param(Waiting("pulling", TOLD, minutes(9)), minutes(12), False, id="pulling"),
        pytest.param(Waiting("updating", TOLD, minutes(9)), minutes(12), False, id="updating"),
        pytest.param(
            Waiting("health_checking", TOLD, minutes(9)), minutes(12), False, id="applied"
        ),
        pytest.param(Waiting("pending", TOLD, minutes(9)), minutes(12), False, id="not its batch"),
        pytest.param(Waiting("failed", TOLD, minutes(9)), minutes(12), False, id="failed"),
    ],
)
def test_not_applying(device: Waiting, now: datetime, expected: bool) -> None:
    assert not_applying(device, now, AFTER) is expected


@pytest.mark.parametrize(
    ("setting", "update_timeout", "expected"),
    [
        pytest.param(timedelta(minutes=10), timedelta(minutes=30), timedelta(minutes=10), id="10"),
        pytest.param(
            timedelta(minutes=10),
            timedelta(minutes=12),
            timedelta(minutes=6),
            id="half a short update timeout: flagged before it fails",
        ),
        pytest.param(timedelta(minutes=2), timedelta(hours=2), timedelta(minutes=2), id="2"),
    ],
)
def test_flag_after(setting: timedelta, update_timeout: timedelta, expected: timedelta) -> None:
    assert flag_after(setting, update_timeout) == expected


def test_the_flag_says_what_the_silence_may_mean() -> None:
    iotistic = flag_message(AFTER, frozenset())
    assert iotistic.startswith("not applying its target: heard from, but nothing applied for 10")
    assert "container states only" in iotistic and "first log line" in iotistic
    fleetwave = flag_message(timedelta(minutes=6), frozenset({"progress", "checks.http"}))
    assert "6 min" in fleetwave and "reports no download or restart" in fleetwave


@pytest.mark.parametrize(
    ("flagged", "text"),
    [(1, "1 device not applying its target"), (3, "3 devices not applying their target")],
)
def test_waiting_note(flagged: int, text: str) -> None:
    assert waiting_note(flagged) == text


# --- what the rollout waits for ------------------------------------------------------------

NOW = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)


def snapshot(
    *batches: dict[str, int], current: int, status: str = "in_progress", flagged: int = 0
) -> RolloutSnapshot:
    return RolloutSnapshot(
        status=status,
        strategy="staged",
        current_batch=current,
        batch_sizes=tuple(sum(b.values()) for b in batches),
        counts={n: b for n, b in enumerate(batches, start=1)},
        settings=RolloutSettings(),
        now=NOW,
        not_applying=flagged,
    )


@pytest.mark.parametrize(
    ("rollout", "reason"),
    [
        pytest.param(
            snapshot(
                {"completed": 1},
                {"scheduled": 3, "completed": 1},
                {"pending": 5},
                current=2,
                flagged=2,
            ),
            "batch 2 has 3 devices not finished; 2 devices not applying their target",
            id="a batch waits on devices, two of them flagged",
        ),
        pytest.param(
            snapshot({"completed": 1}, {"scheduled": 3, "completed": 1}, {"pending": 5}, current=2),
            "batch 2 has 3 devices not finished",
            id="nothing flagged: as before",
        ),
        pytest.param(
            snapshot({"completed": 4}, {"scheduled": 1}, current=2, flagged=1),
            "the last batch is still running; 1 device not applying its target",
            id="the last batch",
        ),
        pytest.param(
            snapshot({"scheduled": 1}, {"pending": 4}, current=1, status="paused", flagged=1),
            "paused; 1 device not applying its target",
            id="paused",
        ),
    ],
)
def test_the_wait_names_the_devices_not_applying_their_target(
    rollout: RolloutSnapshot, reason: str
) -> None:
    [wait] = decide(rollout)
    assert wait == Wait(reason)
