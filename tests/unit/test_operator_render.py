"""What the operator CLI prints for people: batch bars, tables and the watch view, from the
API's JSON alone."""

from __future__ import annotations

from typing import Any

import pytest

from fleetwave.operator.bars import batch_line, cells, legend, tally
from fleetwave.operator.render import (
    event_line,
    events_table,
    policies_table,
    rollout_devices_table,
    rollout_view,
    rollouts_table,
    to_text,
    watch_view,
    when,
)


def rollout(**changes: Any) -> dict[str, Any]:
    detail = {
        "rollout_id": "r-1",
        "image_name": "iotistic/myapp",
        "old_tag": "v2.0.0",
        "new_tag": "v2.0.1",
        "strategy": "staged",
        "status": "in_progress",
        "auto_paused": False,
        "total_devices": 10,
        "batch_sizes": [1, 4, 5],
        "current_batch": 2,
        "failure_rate": 0.2,
        "progress_percentage": 30.0,
        "settings": {"max_failure_rate": 0.25},
        "waiting_for": None,
        "next_action_at": None,
        "batches": [
            {"batch": 1, "size": 1, "status": "done", "counts": {"completed": 1}},
            {
                "batch": 2,
                "size": 4,
                "status": "in_progress",
                "counts": {"completed": 1, "failed": 1, "updating": 1, "scheduled": 1},
            },
            {"batch": 3, "size": 5, "status": "waiting", "counts": {"pending": 5}},
        ],
    }
    return detail | changes


def event(number: int, kind: str, message: str, device: str | None = None) -> dict[str, Any]:
    return {
        "id": number,
        "rollout_id": "r-1",
        "device_uuid": device,
        "event_type": kind,
        "event_data": None,
        "message": message,
        "timestamp": f"2026-01-02T03:04:{number:02}Z",
    }


# --- bars ---------------------------------------------------------------------------------------


def test_statuses_fold_into_the_bar_categories_and_uncounted_devices_are_pending() -> None:
    counts = {"completed": 3, "rollback_failed": 1, "health_checking": 2, "scheduled": 1}
    assert tally(counts, size=9) == {
        "completed": 3,
        "failed": 1,
        "rolled_back": 0,
        "updating": 2,
        "skipped": 0,
        "pending": 3,
    }


@pytest.mark.parametrize(
    ("tallies", "width", "expected"),
    [
        pytest.param(
            {"completed": 5, "pending": 5}, 10, {"completed": 5, "pending": 5}, id="halves"
        ),
        pytest.param(
            {"completed": 1, "pending": 2}, 10, {"completed": 3, "pending": 7}, id="thirds"
        ),
        pytest.param(
            {"completed": 999, "failed": 1}, 20, {"completed": 19, "failed": 1}, id="one in 1000"
        ),
        pytest.param(
            {"completed": 0, "pending": 0}, 10, {"completed": 0, "pending": 0}, id="empty"
        ),
    ],
)
def test_cells_share_the_width_in_proportion(
    tallies: dict[str, int], width: int, expected: dict[str, int]
) -> None:
    assert cells(tallies, width) == expected


def test_cells_always_fill_the_width_and_show_every_category_with_devices() -> None:
    tallies = {"completed": 97, "failed": 1, "rolled_back": 1, "pending": 1}
    given = cells(tallies, 30)
    assert sum(given.values()) == 30
    assert all(given[name] >= 1 for name, count in tallies.items() if count)


def test_a_batch_line_shows_its_bar_finished_count_and_legend() -> None:
    line = batch_line(rollout()["batches"][1], width=8).plain
    assert line.startswith("batch 2")
    assert "██" in line and "▓" in line and "░" in line
    assert "2/4" in line  # completed and failed are finished; updating and scheduled are not
    assert "completed 1 · failed 1 · updating 1 · pending 1" in line
    assert "(in_progress)" in line


def test_the_legend_names_only_categories_with_devices() -> None:
    assert legend({"completed": 0, "failed": 2, "pending": 0}) == "failed 2"
    assert legend({"completed": 0}) == "no devices"


# --- tables and views ---------------------------------------------------------------------------


def test_the_watch_view_has_headline_progress_bars_and_the_newest_events() -> None:
    events = [event(1, "batch_started", "batch 2 of 3 started", None)]
    events.append(event(2, "device_failed", "1001/app is exited", "pump-3"))
    text = to_text(watch_view(rollout(), events))
    lines = text.splitlines()
    assert lines[0].startswith("rollout r-1  iotistic/myapp  v2.0.0 → v2.0.1  staged  in_progress")
    assert (
        "batch 2 of 3 · 30% of 10 devices finished · 0 failed · failure rate 20% (max 25%)"
        in (lines[1])
    )
    assert [line.split()[1] for line in lines if line.startswith("batch ")][1:] == ["1", "2", "3"]
    assert "03:04:02  device_failed" in text and "pump-3  1001/app is exited" in text


def test_the_watch_view_says_what_the_rollout_waits_for_and_a_failure_gate_pause() -> None:
    paused = rollout(
        status="paused",
        auto_paused=True,
        waiting_for="batch 3 starts after the 30-minute delay",
        next_action_at="2026-01-02T04:00:00Z",
    )
    text = to_text(watch_view(paused, []))
    assert "paused (failure gate)" in text
    assert "waiting: batch 3 starts after the 30-minute delay (until 2026-01-02 04:00:00)" in text
    plainly_paused = to_text(watch_view(rollout(status="paused", waiting_for="paused"), []))
    assert "waiting:" not in plainly_paused  # the headline says it already


def test_rollouts_table_lists_each_rollout_and_the_next_page() -> None:
    page = {"items": [rollout(status="completed")], "next_cursor": 7, "total": 60, "offset": 0}
    text = to_text(rollouts_table(page), width=200)
    row = next(line for line in text.splitlines() if line.startswith("r-1"))
    assert row.split() == [
        "r-1", "iotistic/myapp", "v2.0.0", "→", "v2.0.1", "completed", "2/3", "30%", "0",
        "20%", "/", "max", "25%", "-",
    ]  # fmt: skip
    assert "1–1 of 60 rollouts" in text and "more: --cursor 7" in text


def test_a_rollout_completed_with_failures_says_so_and_counts_rolled_back_ones_as_failed() -> None:
    done = rollout(
        status="completed",
        outcome="completed with 5 failures, all rolled back",
        failures=5,
        failed_devices=0,
        rolled_back_devices=5,
        old_images_label="v1.1.0 (25), v1.0.0 (5)",
        waiting_for=None,
    )
    listed = to_text(rollouts_table({"items": [done], "next_cursor": None}), width=240)
    assert "completed with 5 failures, all rolled back" in listed
    assert "5 (5 rolled back)" in listed
    assert "v1.1.0 (25), v1.0.0 (5) → v2.0.1" in listed
    shown = to_text(rollout_view(done), width=160)
    assert "completed with 5 failures, all rolled back" in shown
    assert "old images" in shown and "v1.1.0 (25), v1.0.0 (5)" in shown
    watched = to_text(watch_view(done, []), width=160)
    assert "completed with 5 failures, all rolled back" in watched.splitlines()[0]
    assert "5 failed" in watched


def test_the_watch_view_rounds_progress_as_the_dashboard_does() -> None:
    text = to_text(watch_view(rollout(progress_percentage=26.67, failure_rate=0.1667), []))
    assert "27% of 10 devices finished" in text and "failure rate 17% (max 25%)" in text


def test_empty_answers_say_so_instead_of_an_empty_table() -> None:
    assert to_text(rollouts_table({"items": [], "next_cursor": None})).strip() == "no rollouts"
    assert to_text(policies_table([])).strip() == "no policies"
    assert to_text(events_table({"items": [], "next_cursor": 0})).strip() == "no events"


def test_rollout_devices_table_shows_tags_health_retries_and_errors() -> None:
    device = {
        "device_uuid": "pump-3",
        "batch_number": 2,
        "status": "failed",
        "old_image_tag": "v2.0.0",
        "new_image_tag": "v2.0.1",
        "current_image_tag": "v2.0.1",
        "health_check_passed": False,
        "retry_count": 3,
        "max_retries": 3,
        "error_message": "exit code 1",
        "health_check_attempts": 3,
        "online": False,
        "last_seen_at": "2026-01-02T03:04:05Z",
    }
    page = {"items": [device], "total": 12, "next_cursor": "pump-3"}
    text = to_text(rollout_devices_table(page), width=200)
    assert (
        "pump-3   2       failed   offline, seen 2026-01-02 03:04:05   v2.0.0 → v2.0.1   v2.0.1   "
        "failed after 3 attempts   3/3       exit code 1"
    ) in text
    assert "1 of 12 devices" in text and "more: --cursor pump-3" in text


def test_an_event_line_is_time_type_device_and_message() -> None:
    line = event_line(event(9, "rollback_triggered", "target set back", "pump-1")).plain
    assert line == "03:04:09  rollback_triggered   pump-1  target set back"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02T03:04:05.123456Z", "2026-01-02 03:04:05"),
        (None, "-"),
        ("not a time", "not a time"),
    ],
)
def test_timestamps_are_shortened_for_tables(value: str | None, expected: str) -> None:
    assert when(value) == expected
