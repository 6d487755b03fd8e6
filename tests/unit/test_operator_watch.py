"""The watch loop against a scripted admin API: it shows every event once, ends with the
rollout's exit code, waits out a restarting server and gives up on a refusal — without
sleeping for real (sleep and clock are injected)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from fleetwave.operator.client import AdminClient, ApiError, Unreachable
from fleetwave.operator.outcomes import ExitCode
from fleetwave.operator.watch import Frame, Pace, RolloutFeed, watch

Reply = Callable[[], dict[str, Any]]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class ScriptedServer:
    """Each read of the rollout takes the next step: a status, and the events it wrote."""

    def __init__(self, steps: list[str | Exception], events_per_step: int = 2) -> None:
        self.steps: Iterator[str | Exception] = iter(steps)
        self.events: list[dict[str, Any]] = []
        self.per_step = events_per_step
        self.status = "in_progress"

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            after = int(request.url.params["after"])
            limit = int(request.url.params["limit"])
            items = [e for e in self.events if e["id"] > after][:limit]
            cursor = items[-1]["id"] if items else after
            return httpx.Response(200, json={"items": items, "next_cursor": cursor})
        step = next(self.steps)
        if isinstance(step, Exception):
            raise step
        if step.startswith("HTTP "):
            code = int(step.split()[1])
            return httpx.Response(code, json={"error": f"status {code}", "detail": None})
        self.status = step
        for _ in range(self.per_step):
            self._event(f"now {step}")
        return httpx.Response(200, json={"rollout_id": "r-1", "status": step})

    def _event(self, message: str) -> None:
        number = len(self.events) + 1
        self.events.append({"id": number, "event_type": "device_progress", "message": message})


def run(
    steps: list[str | Exception], *, through_pause: bool = False, **pace: Any
) -> tuple[ExitCode, list[Frame], FakeTime]:
    server, time = ScriptedServer(steps), FakeTime()
    frames: list[Frame] = []
    client = AdminClient("http://fleetwave.test", "t", transport=httpx.MockTransport(server.handle))
    feed = RolloutFeed(client, "r-1", keep=3)
    code = watch(
        feed, frames.append, Pace(time.sleep, time.clock, **pace), through_pause=through_pause
    )
    return code, frames, time


def test_watch_polls_until_completed_and_shows_each_event_once() -> None:
    code, frames, time = run(["in_progress", "in_progress", "completed"], interval=0.5)
    assert code == ExitCode.OK
    assert [f.rollout["status"] for f in frames] == ["in_progress", "in_progress", "completed"]
    assert [e["id"] for f in frames for e in f.new] == [1, 2, 3, 4, 5, 6]
    assert [e["id"] for e in frames[-1].latest] == [4, 5, 6]  # keep=3: the newest
    assert frames[-1].new[-1]["message"] == "now completed"  # the ending comes with its event
    assert time.sleeps == [0.5, 0.5]


@pytest.mark.parametrize(
    ("ending", "code"),
    [
        ("failed", ExitCode.FAILED),
        ("cancelled", ExitCode.CANCELLED),
        ("rolled_back", ExitCode.ROLLED_BACK),
        ("paused", ExitCode.PAUSED),
    ],
)
def test_watch_ends_with_the_code_of_how_the_rollout_ended(ending: str, code: ExitCode) -> None:
    assert run(["in_progress", ending])[0] == code


def test_through_pause_keeps_watching_a_paused_rollout_until_it_ends() -> None:
    code, frames, _ = run(["paused", "paused", "in_progress", "failed"], through_pause=True)
    assert code == ExitCode.FAILED
    assert len(frames) == 4


def test_a_timeout_ends_an_unfinished_watch() -> None:
    code, frames, time = run(["awaiting_approval"] * 10, interval=1.0, timeout=2.5)
    assert code == ExitCode.TIMED_OUT
    assert len(frames) == 4  # read at 0, 1, 2 and 3 seconds
    assert time.now == 3.0


def test_a_server_gone_for_a_moment_is_waited_for_with_growing_pauses() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    code, frames, time = run(
        ["in_progress", refused, "HTTP 503", "completed"], interval=1.0, patience=5
    )
    assert code == ExitCode.OK
    assert time.sleeps == [1.0, 1.0, 2.0]
    assert len(frames) == 2


def test_a_server_gone_for_good_ends_the_watch_as_unreachable() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    with pytest.raises(Unreachable, match="connection refused"):
        run(["in_progress", refused, refused, refused], patience=2)


def test_no_answer_at_the_first_read_ends_the_watch_at_once() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    with pytest.raises(Unreachable):
        run([refused, "completed"], patience=5)


@pytest.mark.parametrize("status", [401, 404])
def test_a_refusal_ends_the_watch_at_once(status: int) -> None:
    with pytest.raises(ApiError) as refused:
        run([f"HTTP {status}", "completed"])
    assert refused.value.status == status


def test_the_feed_reads_a_long_event_history_page_by_page() -> None:
    server = ScriptedServer(["in_progress"], events_per_step=1200)
    client = AdminClient("http://fleetwave.test", "t", transport=httpx.MockTransport(server.handle))
    feed = RolloutFeed(client, "r-1", keep=5)
    frame = feed.read()
    assert [e["id"] for e in frame.new] == list(range(1, 1201))
    assert [e["id"] for e in frame.latest] == [1196, 1197, 1198, 1199, 1200]
    assert feed.cursor == 1200
