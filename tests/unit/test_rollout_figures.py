"""The figures an operator reads about a rollout: failures, outcome, old images, percentages,
who paused it, offline devices, and when the failure gate starts judging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleetwave.domain.engine import RolloutSnapshot, Wait, decide
from fleetwave.domain.rollout_figures import (
    failure_clause,
    health_label,
    judged_after,
    old_image_spread,
    old_images_label,
    outcome,
    pause_reason,
    percent_label,
    trigger_label,
    waiting_devices,
)
from fleetwave.domain.rollout_settings import RolloutSettings


@pytest.mark.parametrize(
    ("value", "of", "label"),
    [
        pytest.param(26.67, 100, "27%", id="the watch's 26.67 reads as the dashboard's 27"),
        pytest.param(26.5, 100, "27%", id="a half rounds up, not to even"),
        pytest.param(0.0, 100, "0%", id="nothing is 0"),
        pytest.param(0.2, 100, "1%", id="something is never 0"),
        pytest.param(99.5, 100, "99%", id="not everything is never 100"),
        pytest.param(100.0, 100, "100%", id="everything is 100"),
        pytest.param(0.1667, 1, "17%", id="a fraction"),
        pytest.param(1.0, 1, "100%", id="1 of 1"),
        pytest.param(None, 100, "-", id="unknown"),
    ],
)
def test_a_share_rounds_to_whole_percent_the_same_on_every_screen(
    value: float | None, of: float, label: str
) -> None:
    assert percent_label(value, of) == label


@pytest.mark.parametrize(
    ("status", "counts", "said"),
    [
        pytest.param(
            "completed",
            {"completed": 25, "rolled_back": 5},
            "completed with 5 failures, all rolled back",
            id="5 of 30 rolled back: completed, and says so",
        ),
        pytest.param("completed", {"completed": 30}, "completed", id="no failure"),
        pytest.param(
            "completed",
            {"completed": 29, "rolled_back": 1},
            "completed with 1 failure, rolled back",
            id="one failure",
        ),
        pytest.param(
            "completed",
            {"completed": 27, "failed": 3},
            "completed with 3 failures, none rolled back",
            id="auto-rollback off",
        ),
        pytest.param(
            "completed",
            {"completed": 24, "rolled_back": 3, "failed": 2, "rollback_failed": 1},
            "completed with 6 failures: 3 rolled back, 1 whose rollback failed, 2 not rolled back",
            id="some put back, some not",
        ),
        pytest.param(
            "failed",
            {"completed": 2, "rolled_back": 3},
            "failed with 3 failures, all rolled back",
            id="failed above its bound",
        ),
        pytest.param(
            "rolled_back",
            {"rolled_back": 10},
            "rolled back with 10 failures, all rolled back",
            id="rolled back by an operator: still counted",
        ),
        pytest.param("in_progress", {"rolled_back": 2}, None, id="running: no outcome yet"),
        pytest.param("paused", {"failed": 2}, None, id="paused: no outcome yet"),
    ],
)
def test_a_finished_rollout_says_how_it_ended_failures_included(
    status: str, counts: dict[str, int], said: str | None
) -> None:
    assert outcome(status, counts) == said


def test_failed_devices_sent_back_are_being_rolled_back() -> None:
    counts = {"completed": 8, "rolled_back": 1, "failed": 2}
    assert outcome("completed", counts, rolling_back=1) == (
        "completed with 3 failures: 1 rolled back, 1 being rolled back, 1 not rolled back"
    )


def test_no_failure_is_said_plainly() -> None:
    assert failure_clause({"completed": 3, "skipped": 2}) == "no failures"


def test_the_old_images_are_listed_most_devices_first_only_when_they_differ() -> None:
    spread = old_image_spread({"v1.0.0": 5, "v1.1.0": 25, None: 0})
    assert spread == [{"tag": "v1.1.0", "devices": 25}, {"tag": "v1.0.0", "devices": 5}]
    assert old_images_label(spread) == "v1.1.0 (25), v1.0.0 (5)"
    assert old_images_label(old_image_spread({"v1.1.0": 30})) is None
    assert old_images_label(old_image_spread({None: 2, "v1": 2})) == "v1 (2), none (2)"


@pytest.mark.parametrize(
    ("triggered_by", "said"),
    [
        ("manual", "manual trigger"),
        ("manual:alice", "manual trigger by alice"),
        ("webhook:dockerhub", "dockerhub webhook"),
        ("alice", "triggered by alice"),
        (None, "unknown trigger"),
    ],
)
def test_the_trigger_reads_as_a_phrase(triggered_by: str | None, said: str) -> None:
    assert trigger_label(triggered_by) == said


@pytest.mark.parametrize(
    ("passed", "attempts", "said"),
    [
        (True, 0, "passed"),
        (True, 1, "passed"),
        (True, 2, "passed on attempt 2"),
        (False, 3, "failed after 3 attempts"),
        (False, 0, "failed"),
        (None, 0, "not checked"),
    ],
)
def test_a_health_verdict_never_reads_passed_after_zero_attempts(
    passed: bool | None, attempts: int, said: str
) -> None:
    assert health_label(passed, attempts) == said


@pytest.mark.parametrize(
    ("data", "message", "said"),
    [
        pytest.param(
            {
                "auto": True,
                "failure_rate": 0.4,
                "failed": 2,
                "finished": 5,
                "max_failure_rate": 0.2,
            },
            "paused automatically: …",
            "paused by the failure gate: failure rate 40% (2 of 5 finished) is above the 20% bound",
            id="the failure gate",
        ),
        pytest.param(
            {"by": "alice", "note": "checking the canary", "auto": False},
            "paused by alice; devices already updating finish",
            "paused by alice: checking the canary",
            id="an operator, with a note",
        ),
        pytest.param({"by": "dashboard", "note": None}, None, "paused by dashboard", id="no note"),
        pytest.param(None, "paused by someone", "paused by someone", id="only a message"),
    ],
)
def test_a_pause_says_who_paused_and_why(
    data: dict[str, Any] | None, message: str | None, said: str
) -> None:
    assert pause_reason(data, message) == said


@pytest.mark.parametrize(
    ("unfinished", "offline", "said"),
    [
        (3, 0, "3 devices not finished"),
        (3, 2, "3 devices not finished, 2 of them offline"),
        (2, 2, "2 devices not finished, all offline"),
        (1, 1, "1 device not finished, offline"),
    ],
)
def test_waiting_devices_say_how_many_are_offline(unfinished: int, offline: int, said: str) -> None:
    assert waiting_devices(unfinished, offline) == said


@pytest.mark.parametrize(
    ("explicit", "first_batch", "judged"),
    [
        pytest.param(None, 1, 1, id="a canary of 1: judged after it"),
        pytest.param(None, 3, 3, id="a first batch of 3: judged after it"),
        pytest.param(None, 50, 5, id="a big first batch: judged after 5"),
        pytest.param(None, 0, 1, id="never 0"),
        pytest.param(1, 50, 1, id="an explicit 1 is kept"),
        pytest.param(20, 3, 20, id="an explicit 20 is kept"),
    ],
)
def test_the_failure_gate_judges_a_rate_once_it_means_something(
    explicit: int | None, first_batch: int, judged: int
) -> None:
    assert judged_after(explicit, first_batch) == judged


# --- the engine's waiting_for names offline devices -------------------------------------------

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def waiting_snapshot(current: int, offline: int) -> RolloutSnapshot:
    return RolloutSnapshot(
        status="in_progress",
        strategy="staged",
        current_batch=current,
        batch_sizes=(2, 5),
        counts={1: {"completed": 2}, 2: {"completed": 2, "updating": 3}}
        if current == 2
        else {1: {"updating": 2}, 2: {"pending": 5}},
        settings=RolloutSettings(batch_delay=timedelta(0), min_finished=5),
        now=NOW,
        offline=offline,
    )


@pytest.mark.parametrize(
    ("current", "offline", "reason"),
    [
        pytest.param(1, 0, "batch 1 has 2 devices not finished", id="all online"),
        pytest.param(1, 1, "batch 1 has 2 devices not finished, 1 of them offline", id="one"),
        pytest.param(
            2,
            2,
            "the last batch is still running (3 devices not finished, 2 of them offline)",
            id="the last batch",
        ),
        pytest.param(2, 0, "the last batch is still running", id="the last batch, all online"),
    ],
)
def test_a_batch_waiting_on_offline_devices_says_how_many(
    current: int, offline: int, reason: str
) -> None:
    assert decide(waiting_snapshot(current, offline)) == [Wait(reason)]
