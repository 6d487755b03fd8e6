"""decide(): what a rollout does next, read as tables of snapshots and actions (DESIGN.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from fleetwave.domain.engine import (
    Action,
    AutoPause,
    Complete,
    Fail,
    FinishBatch,
    RolloutSnapshot,
    StartBatch,
    Wait,
    decide,
    failure_rate,
    gate_tripped,
)
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import (
    ROLLOUT_STATUSES,
    UNFINISHED_DEVICE_STATUSES,
    UPDATE_STRATEGIES,
)
from fleetwave.rollouts.controls import ALLOWED

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
DELAY = timedelta(minutes=30)
SETTINGS = RolloutSettings(batch_delay=DELAY, max_failure_rate=0.2, min_finished=1)
NO_DELAY = RolloutSettings(batch_delay=timedelta(0), max_failure_rate=0.2, min_finished=1)
EACH_BATCH = RolloutSettings(batch_delay=DELAY, approve_each_batch=True)

RUNNING = ("in_progress", "scheduled", "paused")
NOT_RUNNING = ("pending", "awaiting_approval", "completed", "failed", "cancelled", "rolled_back")

# A staged plan of three batches, 1 → 4 → 5 devices, at its three interesting moments.
FRESH = ({"pending": 1}, {"pending": 4}, {"pending": 5})
FIRST_DONE = ({"completed": 1}, {"pending": 4}, {"pending": 5})
SECOND_DONE = ({"completed": 1}, {"completed": 4}, {"pending": 5})
ALL_DONE = ({"completed": 1}, {"completed": 4}, {"completed": 5})


def snap(
    *batches: Mapping[str, int],
    status: str = "in_progress",
    strategy: str = "staged",
    current: int = 0,
    settings: RolloutSettings = SETTINGS,
    now: datetime = NOW,
    finished_at: datetime | None = None,
    approved: int = 0,
    accepted: int | None = None,
) -> RolloutSnapshot:
    """A snapshot whose plan is ``batches`` (device status → devices, batch 1 first)."""
    return RolloutSnapshot(
        status=status,
        strategy=strategy,
        current_batch=current,
        batch_sizes=tuple(sum(batch.values()) for batch in batches),
        counts={number: dict(batch) for number, batch in enumerate(batches, start=1)},
        settings=settings,
        now=now,
        current_batch_finished_at=finished_at,
        approved_batch=approved,
        gate_accepted_failures=accepted,
    )


def assert_decides(snapshot: RolloutSnapshot, expected: list[Action]) -> None:
    """A Wait's reason is prose: the expected Wait holds a fragment of it (``until`` is exact)."""
    actual = decide(snapshot)
    shown: list[Action] = [
        want
        if isinstance(got, Wait)
        and isinstance(want, Wait)
        and want.reason in got.reason
        and got.until == want.until
        else got
        for got, want in zip(actual, expected, strict=False)
    ] + actual[len(expected) :]
    assert shown == expected, f"actual: {actual}"


# --- statuses where nothing happens ---------------------------------------------------------


def test_the_tables_cover_every_rollout_status() -> None:
    assert sorted(RUNNING + NOT_RUNNING) == sorted(ROLLOUT_STATUSES)


@pytest.mark.parametrize(
    ("batches", "current", "finished_at"),
    [
        pytest.param(FRESH, 0, None, id="nothing started"),
        pytest.param(FIRST_DONE, 1, None, id="batch 1 just finished"),
        pytest.param(FIRST_DONE, 1, NOW - timedelta(days=1), id="delay long over"),
        pytest.param(ALL_DONE, 3, None, id="every device finished"),
    ],
)
@pytest.mark.parametrize("strategy", UPDATE_STRATEGIES)
@pytest.mark.parametrize("status", NOT_RUNNING)
def test_a_rollout_that_is_not_running_gets_no_action(
    status: str,
    strategy: str,
    batches: tuple[dict[str, int], ...],
    current: int,
    finished_at: datetime | None,
) -> None:
    snapshot = snap(
        *batches,
        status=status,
        strategy=strategy,
        current=current,
        finished_at=finished_at,
        approved=3,
        settings=NO_DELAY,
    )
    assert decide(snapshot) == []


@pytest.mark.parametrize(
    ("control", "status"),
    [
        pytest.param(control, status, id=f"{control} from {status}")
        for control in ("pause", "resume", "promote")
        for status in ALLOWED[control]
    ],
)
def test_a_status_an_operator_pauses_resumes_or_promotes_from_is_one_decide_acts_on(
    control: str, status: str
) -> None:
    # the monitor must go on acting on the rollout the operator steers (at least a Wait)
    assert decide(snap(*FIRST_DONE, status=status, current=1)) != []


# --- starting batches and waiting for them --------------------------------------------------

FINISHED = NOW - timedelta(minutes=10)


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(snap(*FRESH), [StartBatch(1)], id="staged, batch 0: start batch 1"),
        pytest.param(
            snap({"pending": 10}, strategy="auto"), [StartBatch(1)], id="auto, batch 0: start it"
        ),
        pytest.param(
            snap({"completed": 1}, {"completed": 1, "updating": 2}, {"pending": 5}, current=2),
            [Wait("batch 2 has 2 devices not finished")],
            id="current batch half done: wait",
        ),
        pytest.param(
            snap({"completed": 6, "health_checking": 4}, strategy="auto", current=1),
            [Wait("the last batch is still running")],
            id="auto, its only batch running: wait",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1),
            [FinishBatch(1), Wait("batch 2 starts after the 30 min delay", NOW + DELAY)],
            id="batch just finished: record it, wait for the delay",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, finished_at=FINISHED),
            [Wait("batch 2 starts after the 30 min delay", FINISHED + DELAY)],
            id="finished 10 min ago: wait 20 more, finish not recorded twice",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, finished_at=NOW - DELAY + TICK),
            [Wait("delay", NOW + TICK)],
            id="a microsecond before the delay ends: wait",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, finished_at=NOW - DELAY),
            [StartBatch(2)],
            id="exactly when the delay ends: start",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, finished_at=NOW - timedelta(days=2)),
            [StartBatch(2)],
            id="long after the delay: start",
        ),
        pytest.param(
            snap(*SECOND_DONE, current=2, finished_at=NOW - DELAY),
            [StartBatch(3)],
            id="batch 2 done and soaked: start batch 3",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, settings=NO_DELAY),
            [FinishBatch(1), StartBatch(2)],
            id="no delay: record the finish and start the next at once",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, approved=2),
            [FinishBatch(1), StartBatch(2, promoted=True)],
            id="promoted: no delay after the finish",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, finished_at=FINISHED, approved=2),
            [StartBatch(2, promoted=True)],
            id="promoted during the delay: start now",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, finished_at=FINISHED, approved=3),
            [StartBatch(2, promoted=True)],
            id="approved beyond the next batch counts as promoted",
        ),
        pytest.param(
            snap(*FIRST_DONE, current=1, finished_at=FINISHED, approved=1),
            [Wait("delay", FINISHED + DELAY)],
            id="approval of the current batch does not skip the delay",
        ),
        pytest.param(
            snap({"completed": 1}, {"scheduled": 4}, {"pending": 5}, current=2, approved=3),
            [Wait("batch 2 has 4 devices not finished")],
            id="promote never starts a batch over a running one",
        ),
        pytest.param(
            snap({"completed": 1}, {"completed": 3, "scheduled": 1}, {"pending": 5}, current=2),
            [Wait("batch 2 has 1 device not finished")],
            id="one device left is enough to wait",
        ),
    ],
)
def test_decide_starts_batches_and_waits(snapshot: RolloutSnapshot, expected: list[Action]) -> None:
    assert_decides(snapshot, expected)


@pytest.mark.parametrize("unfinished", UNFINISHED_DEVICE_STATUSES)
@pytest.mark.parametrize("strategy", UPDATE_STRATEGIES)
def test_a_device_still_in_flight_holds_the_batch_open(unfinished: str, strategy: str) -> None:
    snapshot = snap(
        {"completed": 3, unfinished: 1},
        {"pending": 4},
        strategy=strategy,
        current=1,
        settings=NO_DELAY,
        approved=2,
    )
    assert_decides(snapshot, [Wait("batch 1 has 1 device not finished")])


@pytest.mark.parametrize("finished", ["completed", "failed", "rolled_back", "rollback_failed"])
def test_a_batch_whose_devices_all_finished_is_recorded_finished(finished: str) -> None:
    snapshot = snap({finished: 1, "skipped": 1}, {"pending": 4}, current=1, settings=NO_DELAY)
    assert decide(snapshot)[0] == FinishBatch(1)


# --- the failure gate -------------------------------------------------------------------------


def gated(
    *first: tuple[str, int],
    settings: RolloutSettings = SETTINGS,
    accepted: int | None = None,
) -> RolloutSnapshot:
    """Batch 1 of three just finished with ``first``; batches 2 and 3 still pending."""
    return snap(
        dict(first), {"pending": 4}, {"pending": 5}, current=1, settings=settings, accepted=accepted
    )


SOAK = Wait("batch 2 starts after", NOW + DELAY)


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            gated(("completed", 3), ("failed", 1)),
            [FinishBatch(1), AutoPause(0.25, 1, 4, 0.2)],
            id="25% above 20%: pause with the numbers",
        ),
        pytest.param(
            gated(("completed", 4), ("failed", 1)),
            [FinishBatch(1), SOAK],
            id="20% equals the bound: not above, go on",
        ),
        pytest.param(
            gated(("completed", 3), ("failed", 1), settings=RolloutSettings(min_finished=5)),
            [FinishBatch(1), SOAK],
            id="4 finished, 5 needed to judge: go on",
        ),
        pytest.param(
            gated(("completed", 3), ("failed", 1), settings=RolloutSettings(min_finished=4)),
            [FinishBatch(1), AutoPause(0.25, 1, 4, 0.2)],
            id="exactly min_finished finished: judge, pause",
        ),
        pytest.param(
            gated(("completed", 3), ("rolled_back", 1)),
            [FinishBatch(1), AutoPause(0.25, 1, 4, 0.2)],
            id="rolled_back counts as failed",
        ),
        pytest.param(
            gated(("completed", 3), ("rollback_failed", 1)),
            [FinishBatch(1), AutoPause(0.25, 1, 4, 0.2)],
            id="rollback_failed counts as failed",
        ),
        pytest.param(
            gated(("completed", 1), ("failed", 1), ("rolled_back", 1), ("rollback_failed", 1)),
            [FinishBatch(1), AutoPause(0.75, 3, 4, 0.2)],
            id="every failed status adds up",
        ),
        pytest.param(
            gated(("completed", 3), ("failed", 1), ("skipped", 6)),
            [FinishBatch(1), AutoPause(0.25, 1, 4, 0.2)],
            id="skipped counts neither as completed nor failed",
        ),
        pytest.param(
            gated(
                ("completed", 3),
                ("failed", 1),
                ("skipped", 6),
                settings=RolloutSettings(min_finished=5),
            ),
            [FinishBatch(1), SOAK],
            id="skipped devices do not count toward min_finished",
        ),
        pytest.param(
            gated(("skipped", 4)),
            [FinishBatch(1), SOAK],
            id="a batch of skipped devices only is finished, rate 0",
        ),
        pytest.param(
            gated(("completed", 3), ("failed", 1), accepted=1),
            [FinishBatch(1), SOAK],
            id="forced past 1 failure, still 1: go on",
        ),
        pytest.param(
            gated(("completed", 3), ("failed", 2), accepted=1),
            [FinishBatch(1), AutoPause(0.4, 2, 5, 0.2)],
            id="forced past 1 failure, now 2: pause again",
        ),
        pytest.param(
            gated(("completed", 3), ("failed", 2), accepted=0),
            [FinishBatch(1), AutoPause(0.4, 2, 5, 0.2)],
            id="forced past 0 failures, now 2: pause again",
        ),
        pytest.param(
            gated(("completed", 9), ("failed", 1), settings=RolloutSettings(max_failure_rate=0.0)),
            [FinishBatch(1), AutoPause(0.1, 1, 10, 0.0)],
            id="bound 0: any failure pauses",
        ),
        pytest.param(
            gated(("failed", 4), settings=RolloutSettings(max_failure_rate=1.0, batch_delay=DELAY)),
            [FinishBatch(1), SOAK],
            id="bound 1: even all failed goes on",
        ),
        pytest.param(
            snap({"completed": 1}, {"failed": 2, "updating": 2}, {"pending": 5}, current=2),
            [AutoPause(2 / 3, 2, 3, 0.2)],
            id="above the bound mid-batch: pause before the next batch",
        ),
        pytest.param(
            snap(
                {"completed": 3, "failed": 1},
                {"completed": 2, "failed": 1, "updating": 1},
                {"pending": 5},
                current=2,
                accepted=1,
            ),
            [AutoPause(2 / 7, 2, 7, 0.2)],
            id="a new failure after a forced resume pauses mid-batch",
        ),
        pytest.param(
            snap(
                {"completed": 3, "failed": 1},
                {"completed": 2, "failed": 1, "updating": 1},
                {"pending": 5},
                current=2,
                accepted=2,
            ),
            [Wait("batch 2 has 1 device not finished")],
            id="failures all accepted: the batch runs on",
        ),
        pytest.param(
            snap({"completed": 1}, {"completed": 4}, {"failed": 4, "updating": 1}, current=3),
            [Wait("the last batch is still running")],
            id="the last batch runs to its end whatever the rate",
        ),
        pytest.param(
            replace(gated(("completed", 3), ("failed", 1)), strategy="manual", approved_batch=2),
            [FinishBatch(1), AutoPause(0.25, 1, 4, 0.2)],
            id="manual: promote never passes the gate",
        ),
    ],
)
def test_decide_pauses_above_the_failure_bound(
    snapshot: RolloutSnapshot, expected: list[Action]
) -> None:
    assert_decides(snapshot, expected)


# --- concluding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            snap({"completed": 10}, strategy="auto", current=1),
            [FinishBatch(1), Complete(0.0)],
            id="auto: its batch finished, completed",
        ),
        pytest.param(
            snap({"completed": 10}, strategy="auto", current=1, finished_at=FINISHED),
            [Complete(0.0)],
            id="finish already recorded: complete only",
        ),
        pytest.param(
            snap(*ALL_DONE, current=3),
            [FinishBatch(3), Complete(0.0)],
            id="staged: last batch finished",
        ),
        pytest.param(
            snap({"completed": 1}, {"completed": 4}, {"completed": 4, "failed": 1}, current=3),
            [FinishBatch(3), Complete(0.1)],
            id="10% failed: completed with its rate",
        ),
        pytest.param(
            snap(
                {"completed": 1},
                {"completed": 3, "failed": 1},
                {"completed": 4, "failed": 1},
                current=3,
            ),
            [FinishBatch(3), Complete(0.2)],
            id="20% equals the bound: completed",
        ),
        pytest.param(
            snap(
                {"completed": 1},
                {"completed": 3, "failed": 1},
                {"completed": 3, "failed": 2},
                current=3,
            ),
            [FinishBatch(3), Fail(0.3, 0.2)],
            id="30% above the bound: failed",
        ),
        pytest.param(
            snap(
                {"completed": 1},
                {"completed": 4},
                {"rolled_back": 3, "rollback_failed": 2},
                current=3,
            ),
            [FinishBatch(3), Fail(0.5, 0.2)],
            id="rolled back devices fail the rollout",
        ),
        pytest.param(
            snap({"completed": 1}, {"completed": 4}, {"skipped": 5}, current=3),
            [FinishBatch(3), Complete(0.0)],
            id="skipped devices do not fail it",
        ),
        pytest.param(
            snap({"skipped": 3}, strategy="auto", current=1),
            [FinishBatch(1), Complete(0.0)],
            id="everything skipped: completed, rate 0",
        ),
        pytest.param(
            snap(
                {"completed": 1},
                {"completed": 4},
                {"completed": 1, "failed": 4},
                current=3,
                accepted=5,
            ),
            [FinishBatch(3), Fail(0.4, 0.2)],
            id="a forced resume does not save the final verdict",
        ),
        pytest.param(
            snap({"scheduled": 1}, {"completed": 4}, {"completed": 5}, current=3),
            [FinishBatch(3), Wait("still running")],
            id="a retried device of an earlier batch holds the verdict",
        ),
        pytest.param(
            snap({"completed": 2}, {"completed": 3}, strategy="manual", current=2, approved=2),
            [FinishBatch(2), Complete(0.0)],
            id="manual: completed like any other",
        ),
        pytest.param(
            snap({"completed": 2}, {"completed": 3}, strategy="scheduled", current=2),
            [FinishBatch(2), Complete(0.0)],
            id="scheduled: completes outside its window",
        ),
        pytest.param(
            snap(strategy="auto"),
            [Complete(0.0)],
            id="no batches at all: nothing to do but complete",
        ),
    ],
)
def test_decide_concludes_when_every_device_is_finished(
    snapshot: RolloutSnapshot, expected: list[Action]
) -> None:
    assert_decides(snapshot, expected)


# --- paused -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            snap(*FIRST_DONE, status="paused", current=1),
            [FinishBatch(1), Wait("paused")],
            id="batch finished while paused: recorded, no start",
        ),
        pytest.param(
            snap(*FIRST_DONE, status="paused", current=1, finished_at=NOW - timedelta(days=1)),
            [Wait("paused")],
            id="delay long over: still no start",
        ),
        pytest.param(
            snap(*FIRST_DONE, status="paused", current=1, finished_at=FINISHED, approved=2),
            [Wait("paused")],
            id="promoted: still no start",
        ),
        pytest.param(
            snap(*FRESH, status="paused", strategy="scheduled"),
            [Wait("paused")],
            id="paused before its first batch",
        ),
        pytest.param(
            snap({"completed": 1}, {"updating": 4}, {"pending": 5}, status="paused", current=2),
            [Wait("paused")],
            id="devices in flight finish, nothing more",
        ),
        pytest.param(
            replace(gated(("completed", 1), ("failed", 3)), status="paused"),
            [FinishBatch(1), Wait("paused")],
            id="above the bound while paused: no second pause",
        ),
        pytest.param(
            snap(*ALL_DONE, status="paused", current=3),
            [FinishBatch(3), Complete(0.0)],
            id="everything finished while paused: completed",
        ),
        pytest.param(
            snap({"completed": 1}, {"completed": 4}, {"failed": 5}, status="paused", current=3),
            [FinishBatch(3), Fail(0.5, 0.2)],
            id="everything finished while paused, above the bound: failed",
        ),
        pytest.param(
            snap(*ALL_DONE, status="paused", current=3, finished_at=FINISHED),
            [Complete(0.0)],
            id="finish already recorded: complete only",
        ),
        pytest.param(
            snap({"completed": 1}, {"completed": 4}, {"updating": 5}, status="paused", current=3),
            [Wait("paused")],
            id="last batch still running while paused",
        ),
    ],
)
def test_a_paused_rollout_never_starts_a_batch_but_concludes(
    snapshot: RolloutSnapshot, expected: list[Action]
) -> None:
    assert_decides(snapshot, expected)


# --- manual strategy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            snap(*FRESH, strategy="manual"),
            [Wait("batch 1 waits for approval", None)],
            id="not approved: wait, no time set",
        ),
        pytest.param(
            snap(*FRESH, strategy="manual", approved=1),
            [StartBatch(1)],
            id="approved: start batch 1, not as a promotion",
        ),
        pytest.param(
            snap(*FIRST_DONE, strategy="manual", current=1, approved=1),
            [FinishBatch(1), Wait("batch 2 starts after", NOW + DELAY)],
            id="approved once: later batches follow the delay",
        ),
        pytest.param(
            snap(*FIRST_DONE, strategy="manual", current=1, approved=1, finished_at=NOW - DELAY),
            [StartBatch(2)],
            id="approved once, delay over: start batch 2",
        ),
        pytest.param(
            snap(*FIRST_DONE, strategy="manual", settings=EACH_BATCH, current=1, approved=1),
            [FinishBatch(1), Wait("batch 2 waits for promote", None)],
            id="each batch: batch 1 done, wait for promote",
        ),
        pytest.param(
            snap(
                *FIRST_DONE,
                strategy="manual",
                settings=EACH_BATCH,
                current=1,
                approved=1,
                finished_at=NOW - timedelta(days=1),
            ),
            [Wait("batch 2 waits for promote", None)],
            id="each batch: the delay alone is not enough",
        ),
        pytest.param(
            snap(
                *FIRST_DONE,
                strategy="manual",
                settings=EACH_BATCH,
                current=1,
                approved=2,
                finished_at=FINISHED,
            ),
            [StartBatch(2, promoted=True)],
            id="each batch: promoted, start batch 2 at once",
        ),
        pytest.param(
            snap(*SECOND_DONE, strategy="manual", settings=EACH_BATCH, current=2, approved=2),
            [FinishBatch(2), Wait("batch 3 waits for promote", None)],
            id="each batch: batch 3 needs its own promote",
        ),
        pytest.param(
            snap(*FRESH, strategy="manual", settings=EACH_BATCH),
            [Wait("batch 1 waits for approval", None)],
            id="each batch: batch 1 still needs approval",
        ),
        pytest.param(
            snap(
                {"completed": 1},
                {"updating": 4},
                {"pending": 5},
                strategy="manual",
                current=2,
                approved=3,
            ),
            [Wait("batch 2 has 4 devices not finished")],
            id="approved ahead: the running batch still finishes first",
        ),
    ],
)
def test_a_manual_rollout_waits_for_approval_and_promotes(
    snapshot: RolloutSnapshot, expected: list[Action]
) -> None:
    assert_decides(snapshot, expected)


# --- scheduled strategy: the maintenance window -----------------------------------------------


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(start: time, end: time, timezone: str = "UTC") -> RolloutSettings:
    return RolloutSettings(
        batch_delay=DELAY, window_start=start, window_end=end, window_timezone=timezone
    )


NIGHT_UTC = window(time(2), time(4))
ACROSS_MIDNIGHT = window(time(22), time(4))
PARIS_NIGHT = window(time(22), time(4), "Europe/Paris")
PARIS_SMALL_HOURS = window(time(2), time(4), "Europe/Paris")


def scheduled(settings: RolloutSettings, now: datetime) -> RolloutSnapshot:
    """A scheduled rollout before its first batch."""
    return snap(*FRESH, status="scheduled", strategy="scheduled", settings=settings, now=now)


WINDOW = Wait("batch 1 waits for the maintenance window")


def waits_until(until: datetime) -> list[Action]:
    return [Wait(WINDOW.reason, until)]


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            scheduled(NIGHT_UTC, utc(2026, 1, 5, 12)),
            waits_until(utc(2026, 1, 6, 2)),
            id="02-04 at noon: wait for tomorrow 02:00",
        ),
        pytest.param(
            scheduled(NIGHT_UTC, utc(2026, 1, 5, 2) - TICK),
            waits_until(utc(2026, 1, 5, 2)),
            id="02-04 a microsecond before: wait until 02:00",
        ),
        pytest.param(
            scheduled(NIGHT_UTC, utc(2026, 1, 5, 2)), [StartBatch(1)], id="02-04 at 02:00: start"
        ),
        pytest.param(
            scheduled(NIGHT_UTC, utc(2026, 1, 5, 4) - TICK),
            [StartBatch(1)],
            id="02-04 just before 04:00: start",
        ),
        pytest.param(
            scheduled(NIGHT_UTC, utc(2026, 1, 5, 4)),
            waits_until(utc(2026, 1, 6, 2)),
            id="02-04 at 04:00: closed, tomorrow",
        ),
        pytest.param(
            scheduled(ACROSS_MIDNIGHT, utc(2026, 1, 5, 22) - TICK),
            waits_until(utc(2026, 1, 5, 22)),
            id="22-04 just before 22:00: wait",
        ),
        pytest.param(
            scheduled(ACROSS_MIDNIGHT, utc(2026, 1, 5, 22)),
            [StartBatch(1)],
            id="22-04 at 22:00: start",
        ),
        pytest.param(
            scheduled(ACROSS_MIDNIGHT, utc(2026, 1, 6, 0)),
            [StartBatch(1)],
            id="22-04 at midnight: start",
        ),
        pytest.param(
            scheduled(ACROSS_MIDNIGHT, utc(2026, 1, 6, 4) - TICK),
            [StartBatch(1)],
            id="22-04 just before 04:00: start",
        ),
        pytest.param(
            scheduled(ACROSS_MIDNIGHT, utc(2026, 1, 6, 4)),
            waits_until(utc(2026, 1, 6, 22)),
            id="22-04 at 04:00: wait for 22:00 the same day",
        ),
        pytest.param(
            scheduled(PARIS_NIGHT, utc(2026, 3, 28, 12)),
            waits_until(utc(2026, 3, 28, 21)),
            id="Paris 22-04 in winter time: opens 21:00 UTC",
        ),
        pytest.param(
            scheduled(PARIS_NIGHT, utc(2026, 3, 28, 20, 30)),
            waits_until(utc(2026, 3, 28, 21)),
            id="Paris 21:30 CET: closed",
        ),
        pytest.param(
            scheduled(PARIS_NIGHT, utc(2026, 3, 29, 1, 30)),
            [StartBatch(1)],
            id="Paris 03:30 CEST, just after the clocks jumped: open",
        ),
        pytest.param(
            scheduled(PARIS_NIGHT, utc(2026, 3, 29, 12)),
            waits_until(utc(2026, 3, 29, 20)),
            id="Paris 22-04 on the day clocks go forward: opens 20:00 UTC",
        ),
        pytest.param(
            scheduled(PARIS_NIGHT, utc(2026, 3, 29, 20)),
            [StartBatch(1)],
            id="Paris 22:00 CEST: start",
        ),
        # 02:00 CET never shows on the clocks that night: they jump from 02:00 CET to 03:00 CEST
        # at 01:00 UTC, inside the window. ``until`` must be that instant, comparable with any
        # other (a wall time that does not exist compares neither equal, earlier nor later).
        pytest.param(
            scheduled(PARIS_SMALL_HOURS, utc(2026, 3, 29, 0, 30)),
            waits_until(utc(2026, 3, 29, 1)),
            id="Paris 02-04 on the night 02:00 does not exist: opens as clocks jump",
        ),
        pytest.param(
            scheduled(PARIS_NIGHT, utc(2026, 10, 24, 12)),
            waits_until(utc(2026, 10, 24, 20)),
            id="Paris 22-04 in summer time: opens 20:00 UTC",
        ),
        pytest.param(
            scheduled(PARIS_NIGHT, utc(2026, 10, 25, 12)),
            waits_until(utc(2026, 10, 25, 21)),
            id="Paris 22-04 on the day clocks go back: opens 21:00 UTC",
        ),
        # At 01:00 UTC the clocks go back from 03:00 CEST to 02:00 CET: window_is_open (and so
        # decide) says the window is open again from then until 01:30 UTC.
        pytest.param(
            scheduled(window(time(1), time(2, 30), "Europe/Paris"), utc(2026, 10, 25, 0, 45)),
            waits_until(utc(2026, 10, 25, 1)),
            id="Paris 01:00-02:30, 02:45 CEST as clocks go back: it reopens at 02:00 CET",
        ),
        pytest.param(
            scheduled(RolloutSettings(), NOW),
            [StartBatch(1)],
            id="scheduled strategy without a window: start",
        ),
    ],
)
def test_a_scheduled_rollout_starts_inside_its_window(
    snapshot: RolloutSnapshot, expected: list[Action]
) -> None:
    assert_decides(snapshot, expected)


@pytest.mark.parametrize(
    ("settings", "now"),
    [
        pytest.param(NIGHT_UTC, utc(2026, 1, 5, 12), id="02-04 UTC"),
        pytest.param(ACROSS_MIDNIGHT, utc(2026, 1, 6, 4), id="22-04 UTC"),
        pytest.param(PARIS_NIGHT, utc(2026, 3, 29, 12), id="Paris, spring forward"),
        pytest.param(PARIS_SMALL_HOURS, utc(2026, 3, 29, 0, 30), id="Paris, the lost hour"),
        pytest.param(PARIS_NIGHT, utc(2026, 10, 25, 12), id="Paris, fall back"),
        pytest.param(window(time(9), time(17), "America/New_York"), NOW, id="New York office"),
    ],
)
def test_the_window_wait_ends_exactly_when_the_batch_may_start(
    settings: RolloutSettings, now: datetime
) -> None:
    (wait,) = decide(scheduled(settings, now))
    assert isinstance(wait, Wait)
    assert wait.until is not None
    assert decide(scheduled(settings, wait.until)) == [StartBatch(1)]
    assert decide(scheduled(settings, wait.until - TICK)) == [Wait(wait.reason, wait.until)]


def later(
    settings: RolloutSettings,
    now: datetime,
    finished_at: datetime | None,
    approved: int = 0,
) -> RolloutSnapshot:
    """A scheduled rollout whose batch 1 finished at ``finished_at``."""
    return snap(
        *FIRST_DONE,
        strategy="scheduled",
        current=1,
        settings=settings,
        now=now,
        finished_at=finished_at,
        approved=approved,
    )


NOON, THREE_AM = utc(2026, 1, 5, 12), utc(2026, 1, 5, 3)
WINDOW_2 = "batch 2 waits for the maintenance window"


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            later(NIGHT_UTC, NOON, NOON - timedelta(hours=1)),
            [Wait(WINDOW_2, utc(2026, 1, 6, 2))],
            id="delay over, window closed: wait for it",
        ),
        pytest.param(
            later(NIGHT_UTC, THREE_AM, THREE_AM - timedelta(hours=1)),
            [StartBatch(2)],
            id="delay over, window open: start",
        ),
        pytest.param(
            later(NIGHT_UTC, THREE_AM, None),
            [FinishBatch(1), Wait("delay", THREE_AM + DELAY)],
            id="batch just finished in the window: the delay first",
        ),
        pytest.param(
            later(NIGHT_UTC, THREE_AM, THREE_AM - timedelta(minutes=5)),
            [Wait("delay", THREE_AM + timedelta(minutes=25))],
            id="window open, delay not over: wait for the delay",
        ),
        pytest.param(
            later(NIGHT_UTC, NOON, NOON - timedelta(minutes=5), approved=2),
            [Wait(WINDOW_2, utc(2026, 1, 6, 2))],
            id="promoted: skips the delay, not the window",
        ),
        pytest.param(
            later(NIGHT_UTC, THREE_AM, THREE_AM - timedelta(minutes=5), approved=2),
            [StartBatch(2, promoted=True)],
            id="promoted inside the window: start",
        ),
    ],
)
def test_later_batches_of_a_scheduled_rollout_wait_for_delay_and_window(
    snapshot: RolloutSnapshot, expected: list[Action]
) -> None:
    assert_decides(snapshot, expected)


# --- gate_tripped and failure_rate directly ---------------------------------------------------


@pytest.mark.parametrize(
    ("completed", "failed", "expected"),
    [
        pytest.param(0, 0, 0.0, id="nothing finished: 0, not a division by zero"),
        pytest.param(4, 0, 0.0, id="none failed"),
        pytest.param(3, 1, 0.25, id="one in four"),
        pytest.param(0, 2, 1.0, id="all failed"),
        pytest.param(1, 2, 2 / 3, id="two in three"),
    ],
)
def test_failure_rate_is_failed_over_finished(completed: int, failed: int, expected: float) -> None:
    assert failure_rate(completed, failed) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        pytest.param({"completed": 3, "failed": 1}, 0.25, id="failed"),
        pytest.param({"completed": 3, "rolled_back": 1}, 0.25, id="rolled_back"),
        pytest.param({"completed": 3, "rollback_failed": 1}, 0.25, id="rollback_failed"),
        pytest.param({"completed": 3, "failed": 1, "skipped": 4}, 0.25, id="skipped ignored"),
        pytest.param({"completed": 3, "failed": 1, "updating": 4}, 0.25, id="in flight ignored"),
        pytest.param({"skipped": 4, "pending": 2}, 0.0, id="nothing finished"),
    ],
)
def test_the_snapshot_failure_rate_counts_each_failed_status(
    batch: dict[str, int], expected: float
) -> None:
    assert snap(batch, current=1).failure_rate == pytest.approx(expected)


@pytest.mark.parametrize(
    ("batches", "settings", "accepted", "expected"),
    [
        pytest.param(({"completed": 3, "failed": 1},), SETTINGS, None, True, id="25% > 20%"),
        pytest.param(({"completed": 4, "failed": 1},), SETTINGS, None, False, id="20% = 20%"),
        pytest.param(({"completed": 9, "failed": 1},), SETTINGS, None, False, id="10% < 20%"),
        pytest.param(({"failed": 1},), SETTINGS, None, True, id="1 of 1 with min 1"),
        pytest.param(
            ({"failed": 2},), RolloutSettings(min_finished=3), None, False, id="2 of min 3"
        ),
        pytest.param(
            ({"failed": 3},), RolloutSettings(min_finished=3), None, True, id="3 of min 3"
        ),
        pytest.param(
            ({"failed": 2}, {"failed": 1}),
            RolloutSettings(min_finished=3),
            None,
            True,
            id="finished devices add up across batches",
        ),
        pytest.param(
            ({"failed": 2, "skipped": 5},),
            RolloutSettings(min_finished=3),
            None,
            False,
            id="skipped devices are not finished ones",
        ),
        pytest.param(({"completed": 3, "failed": 1},), SETTINGS, 1, False, id="1 accepted, 1"),
        pytest.param(({"completed": 3, "failed": 2},), SETTINGS, 1, True, id="1 accepted, 2"),
        pytest.param(({"completed": 3, "failed": 2},), SETTINGS, 0, True, id="0 accepted, 2"),
        pytest.param(({"completed": 1, "failed": 9},), SETTINGS, 9, False, id="9 accepted, 9"),
        pytest.param(({"completed": 7, "failed": 1},), SETTINGS, 0, False, id="accepted, low"),
        pytest.param(
            ({"completed": 3, "failed": 1},),
            RolloutSettings(max_failure_rate=0.25),
            None,
            False,
            id="at a 25% bound",
        ),
        pytest.param((), SETTINGS, None, False, id="no devices"),
        pytest.param(
            ({"completed": 0},), RolloutSettings(min_finished=0), None, False, id="min 0, none"
        ),
    ],
)
def test_gate_tripped(
    batches: tuple[dict[str, int], ...],
    settings: RolloutSettings,
    accepted: int | None,
    expected: bool,
) -> None:
    snapshot = snap(*batches, current=1, settings=settings, accepted=accepted)
    assert gate_tripped(snapshot) is expected
