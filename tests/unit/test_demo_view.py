"""What ``fleetwave demo`` shows, from the admin API's JSON: bars, lines, the final account."""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from fleetwave.registries.payloads import PushedImage, parse
from fleetwave.sim import view
from fleetwave.sim.demo import docker_hub_payload
from fleetwave.sim.display import PlainDisplay

CREATED = "2026-11-28T03:10:00.000000Z"
ORIGIN = datetime(2026, 11, 28, 3, 10, tzinfo=UTC)


def rollout(status: str = "in_progress", current: int = 2, **fields: Any) -> dict[str, Any]:
    return {
        "rollout_id": "4b680469-ffa6-4232-8ae3-528a55ab3886",
        "image_name": "iotistic/myapp",
        "old_tag": "v2.0.0",
        "new_tag": "v2.0.1",
        "status": status,
        "current_batch": current,
        "failure_rate": 0.04,
        "created_at": CREATED,
        "completed_at": None,
        "waiting_for": "batch 2 has 19 devices not finished",
        "settings": {"max_failure_rate": 0.2, "auto_rollback": True},
        "batches": [
            {"batch": 1, "size": 5, "status": "done", "counts": {"completed": 5}},
            {
                "batch": 2,
                "size": 20,
                "status": "running",
                "counts": {
                    "health_checking": 12,
                    "pulling": 3,
                    "failed": 1,
                    "rolled_back": 1,
                    "completed": 3,
                },
            },
            {"batch": 3, "size": 25, "status": "pending", "counts": {"pending": 25}},
        ],
    } | fields


def event(kind: str, seconds: float, device: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "event_type": kind,
        "device_uuid": device,
        "message": f"{kind} message",
        "event_data": data,
        "timestamp": f"2026-11-28T03:10:{seconds:09.6f}Z",
    }


# --- counting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        pytest.param({"completed": 3}, view.Tally(updated=3), id="completed is updated"),
        pytest.param(
            {"scheduled": 1, "pulling": 1, "updating": 1, "health_checking": 1},
            view.Tally(in_flight=4),
            id="every step of an update is in flight",
        ),
        pytest.param(
            {"failed": 1, "rollback_failed": 2}, view.Tally(failed=3), id="both failures are failed"
        ),
        pytest.param(
            {"rolled_back": 2, "skipped": 1, "pending": 4},
            view.Tally(rolled_back=2, skipped=1, pending=4),
            id="the rest by name",
        ),
        pytest.param({"someday_new": 1}, view.Tally(in_flight=1), id="an unknown status is moving"),
    ],
)
def test_device_statuses_are_counted_in_the_bars_parts(
    counts: dict[str, int], expected: view.Tally
) -> None:
    assert view.Tally.of(counts) == expected


def test_the_rollouts_tally_is_the_sum_of_its_batches() -> None:
    tally = view.rollout_tally(rollout())
    assert tally == view.Tally(updated=8, rolled_back=1, failed=1, in_flight=15, pending=25)
    assert tally.total == 50


@pytest.mark.parametrize("width", [1, 7, 10, 40, 50, 120])
def test_the_bar_fills_its_width_exactly_and_shows_every_part_that_has_devices(
    width: int,
) -> None:
    tally = view.Tally(updated=48, rolled_back=1, failed=1)
    cells = dict(view.bar_cells(tally, width))
    assert sum(cells.values()) == width
    if width >= 3:
        assert cells["rolled_back"] >= 1 and cells["failed"] >= 1
    assert list(cells) == [name for name in view.BAR_ORDER if name in cells]


def test_the_bar_is_proportional_and_reads_left_to_right_from_done_to_waiting() -> None:
    tally = view.Tally(updated=10, in_flight=10, pending=20)
    assert view.plain_bar(tally, 8) == "[##~~....]"
    assert view.plain_bar(view.Tally(), 4) == "[....]"


def test_counts_in_words_always_say_updated_and_leave_out_zeros() -> None:
    assert view.tally_words(view.Tally(pending=5)) == "0 updated · 5 pending"
    assert (
        view.tally_words(view.Tally(updated=48, rolled_back=1, failed=1))
        == "48 updated · 1 rolled back · 1 failed"
    )


def test_a_progress_line_has_the_bar_the_counts_the_batch_and_the_status() -> None:
    line = view.progress_line(rollout(), width=10)
    assert line.startswith("[#rx~~~....] ")  # one cell at least for each part with devices
    assert "8/50 · 8 updated · 1 rolled back · 1 failed · 15 in flight · 25 pending" in line
    assert line.endswith("| batch 2/3 · in_progress")


def test_a_batch_line_marks_the_batch_that_is_moving() -> None:
    detail = rollout()
    assert view.batch_line(detail["batches"][1], current=2).startswith("▸ batch 2 ( 20 devices)")
    assert view.batch_line(detail["batches"][0], current=2).startswith("  batch 1 (  5 devices)")


# --- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "device", "notable"),
    [
        ("batch_started", None, True),
        ("rollout_paused", None, True),
        ("device_failed", "d1", True),
        ("rollback_triggered", "d1", True),
        ("device_rolled_back", "d1", True),
        ("device_progress", "d1", False),
        ("health_check_passed", "d1", False),
    ],
)
def test_rollout_events_and_device_failures_are_news_device_progress_is_not(
    kind: str, device: str | None, notable: bool
) -> None:
    assert view.is_notable(event(kind, 1, device)) is notable


def test_an_event_line_gives_the_time_since_the_push_the_type_the_device_and_the_message() -> None:
    line = view.event_line(event("device_failed", 19.6, "sim-1"), ORIGIN)
    assert line == "+ 19.6s  device_failed        sim-1: device_failed message"
    assert view.event_line(event("batch_started", 0, batch=1), ORIGIN).startswith("+  0.0s  batch")


def test_batch_spans_come_from_the_batch_events() -> None:
    events = [
        event("batch_started", 0, batch=1),
        event("device_scheduled", 0, "d1", batch=1),
        event("batch_completed", 12.5, batch=1),
        event("batch_started", 12.5, batch=2),
    ]
    spans = view.batch_spans(events)
    assert spans[1] == (ORIGIN, datetime(2026, 11, 28, 3, 10, 12, 500000, tzinfo=UTC))
    assert spans[2][1] is None and set(spans) == {1, 2}


# --- the end -----------------------------------------------------------------------------------


def test_a_finished_rollout_is_settled_only_once_its_failed_devices_are_rolled_back() -> None:
    assert not view.settled(rollout())
    ended = rollout("completed", 3)
    assert view.rollbacks_pending(ended) == 1 and not view.settled(ended)
    ended["batches"][1]["counts"] = {"completed": 19, "rolled_back": 1}
    assert view.settled(ended)
    manual = rollout("completed", 3, settings={"auto_rollback": False})
    assert view.settled(manual)  # nothing will roll its failed device back


def test_the_summary_gives_each_batch_its_counts_and_times_and_what_the_devices_run() -> None:
    ended = rollout(
        "completed",
        3,
        completed_at="2026-11-28T03:10:37.300000Z",
        failures=2,
        outcome="completed with 2 failures, all rolled back",
    )
    ended["batches"][1]["counts"] = {"completed": 19, "rolled_back": 1}
    ended["batches"][2]["counts"] = {"completed": 24, "rolled_back": 1}
    events = [
        event("batch_started", 0, batch=1),
        event("batch_completed", 12.9, batch=1),
        event("batch_started", 12.9, batch=2),
    ]
    images = Counter({"iotistic/myapp:v2.0.1": 48, "iotistic/myapp:v2.0.0": 2})
    lines = view.summary_lines(ended, events, images, Counter({"running": 50}))
    assert lines[0].endswith("completed in 37.3 s (push → completed)")
    assert lines[1] == "  batch 1:   5 devices, 5 updated  +0.0 s → +12.9 s"
    assert lines[2] == "  batch 2:  20 devices, 19 updated · 1 rolled back  +12.9 s"
    assert lines[3] == "  batch 3:  25 devices, 24 updated · 1 rolled back"
    assert lines[4] == "  failure rate 4% (bound 20%): completed with 2 failures, all rolled back"
    assert lines[5] == "devices run: iotistic/myapp:v2.0.1 × 48, iotistic/myapp:v2.0.0 × 2"
    assert lines[6] == "containers: running × 50"


def test_the_live_panel_shows_the_rollout_its_batches_and_the_newest_events() -> None:
    console = Console(file=io.StringIO(), width=80, record=True, color_system=None)
    recent = [event("device_failed", 19.6, "sim-6"), event("batch_started", 12.9, batch=2)]
    console.print(view.live_panel(rollout(), recent, ORIGIN, width=40))
    text = console.export_text()
    assert "rollout 4b680469 iotistic/myapp:v2.0.0 → v2.0.1  in_progress" in text
    assert "batch 2/3 · failure rate 4% (bound 20%)" in text
    assert "▸ batch 2 ( 20)" in text and "  batch 3 ( 25)" in text
    assert "waiting for: batch 2 has 19 devices not finished" in text
    assert "sim-6: device_failed message" in text
    assert all(len(line) <= 80 for line in text.splitlines())


# --- the demo's plain display and its webhook ------------------------------------------------


def test_the_plain_display_prints_news_and_at_most_one_progress_line_a_second() -> None:
    out, now = io.StringIO(), [100.0]
    display = PlainDisplay(out, now=lambda: now[0])
    display.update(
        rollout(updated_at="2026-11-28T03:10:01Z"),
        [event("batch_started", 0, batch=2), event("device_progress", 1, "d")],
    )
    now[0] += 0.5
    moved = rollout(updated_at="2026-11-28T03:10:02.5Z")
    moved["batches"][1]["counts"] = {"completed": 18, "failed": 1, "rolled_back": 1}
    display.update(moved, [])  # too soon: no line
    now[0] += 0.6
    display.update(moved, [])
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("+  0.0s  batch_started")
    assert lines[1].startswith("+  1.0s  [") and "8/50" in lines[1]
    assert lines[2].startswith("+  2.5s  [") and "23/50" in lines[2]
    assert len(lines) == 3


def test_the_plain_displays_times_are_the_servers_and_never_go_backwards() -> None:
    """Events and progress lines on one clock: the local one only paces the lines (a slow
    poll that reads a late event and an earlier rollout update prints no earlier time)."""
    out, now = io.StringIO(), [0.0]
    display = PlainDisplay(out, now=lambda: now[0])
    display.update(rollout(updated_at="2026-11-28T03:10:04Z"), [event("batch_started", 3)])
    now[0] += 30.0  # the local clock runs far ahead of the server's: it does not show
    moved = rollout(updated_at="2026-11-28T03:10:05Z")
    moved["batches"][1]["counts"] = {"completed": 18, "failed": 1, "rolled_back": 1}
    display.update(moved, [event("device_failed", 9, "sim-6")])
    times = [float(line.split("s", 1)[0].lstrip("+")) for line in out.getvalue().splitlines()]
    assert times == sorted(times) and times == [3.0, 4.0, 9.0, 9.0]


def test_the_demos_webhook_is_a_docker_hub_push_of_the_new_tag() -> None:
    payload = docker_hub_payload("iotistic/myapp", "v2.0.1", 1_795_835_449)
    [pushed] = parse("dockerhub", payload, {})
    assert isinstance(pushed, PushedImage)
    assert (pushed.repository, pushed.tag) == ("iotistic/myapp", "v2.0.1")
