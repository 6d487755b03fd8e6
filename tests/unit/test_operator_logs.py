"""``fleetwave devices logs`` against a scripted admin API: every line once, in order, pages
read to the end, a restarting server waited out, and lines made safe for a terminal — without
sleeping for real."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fleetwave.operator.args import parse_level, parse_since
from fleetwave.operator.client import AdminClient, ApiError
from fleetwave.operator.logs import PAGE, LogFeed, follow, log_line
from fleetwave.operator.watch import Pace


class Stop(Exception):
    """What the fake sleep raises when the test has seen enough (Ctrl-C, in real life)."""


class ScriptedDevice:
    """The admin API's logs of one device; each sleep may add lines or break the server."""

    def __init__(self, lines: int = 0) -> None:
        self.lines: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self.failing: int | None = None  # answer this status until cleared
        self.add(lines)

    def add(self, count: int) -> None:
        for _ in range(count):
            n = len(self.lines) + 1
            self.lines.append({"id": n * 10, "message": f"line {n}", "level": "info"})

    def handle(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.requests.append(params)
        if self.failing is not None:
            return httpx.Response(self.failing, json={"error": "busy", "detail": None})
        after = int(params["after"])
        items = [line for line in self.lines if line["id"] > after]
        items = items[-int(params["tail"]) :] if "tail" in params else items[: int(params["limit"])]
        cursor = items[-1]["id"] if items else after
        return httpx.Response(200, json={"items": items, "next_cursor": cursor})


def feed_of(device: ScriptedDevice, **filters: Any) -> LogFeed:
    client = AdminClient("http://fleetwave.test", "t", transport=httpx.MockTransport(device.handle))
    return LogFeed(client, "pump-1", filters)


def test_all_lines_are_read_page_by_page_oldest_first() -> None:
    device = ScriptedDevice(PAGE + 3)
    lines = feed_of(device).first(None)
    assert [line["id"] for line in lines] == [line["id"] for line in device.lines]
    assert [r["after"] for r in device.requests] == ["0", str(PAGE * 10)]


def test_tail_reads_the_last_lines_and_filters_go_with_every_request() -> None:
    device = ScriptedDevice(5)
    feed = feed_of(device, level="warn", service="app", since=None)
    assert [line["message"] for line in feed.first(2)] == ["line 4", "line 5"]
    device.add(1)
    assert [line["message"] for line in feed.rest()] == ["line 6"]
    assert all(r["level"] == "warn" and r["service"] == "app" for r in device.requests)
    assert all("since" not in r for r in device.requests)


def test_a_follower_shows_each_new_line_once_and_waits_out_a_restart() -> None:
    device = ScriptedDevice(2)
    feed, shown, sleeps = feed_of(device), [], []
    script = [
        lambda: device.add(1),
        lambda: setattr(device, "failing", 503),
        lambda: (setattr(device, "failing", None), device.add(2)),
        lambda: None,
    ]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if not script:
            raise Stop
        script.pop(0)()

    shown.extend(line["message"] for line in feed.first(None))
    with pytest.raises(Stop):
        follow(feed, lambda lines: shown.extend(line["message"] for line in lines),
               Pace(sleep, lambda: 0.0, interval=0.5))  # fmt: skip
    assert shown == ["line 1", "line 2", "line 3", "line 4", "line 5"]
    assert sleeps == [0.5, 0.5, 1.0, 0.5, 0.5]  # after a miss it waits longer


def test_a_follower_stops_at_a_refusal_or_when_the_server_stays_away() -> None:
    device = ScriptedDevice(1)
    feed = feed_of(device)
    feed.first(None)
    device.failing = 404
    with pytest.raises(ApiError):
        follow(feed, lambda _: None, Pace(lambda _: None, lambda: 0.0))
    device.failing = 503
    with pytest.raises(ApiError):
        follow(feed, lambda _: None, Pace(lambda _: None, lambda: 0.0, patience=3))
    assert len(device.requests) == 1 + 1 + 4


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            {
                "logged_at": "2026-01-01T12:00:00.500000+00:00",
                "service": "app",
                "level": "error",
                "message": "boom",
            },
            "2026-01-01 12:00:00.500  app          error  boom",
        ),
        (
            {"logged_at": None, "source": "system", "level": "info", "message": "x"},
            "-----------------------  [system]     info   x",
        ),
        (
            {"service": "app", "level": "warn", "message": "\x1b[31mred\x1b[0m\r\n\tnext"},
            "-----------------------  app          warn   \\x1b[31mred\\x1b[0m\\x0d\n\tnext",
        ),
    ],
)
def test_a_line_for_people_has_time_service_level_and_no_terminal_control(
    line: dict[str, Any], shown: str
) -> None:
    assert log_line(line) == shown


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "since"),
    [
        ("10m", "2026-03-01T11:50:00+00:00"),
        ("1.5h", "2026-03-01T10:30:00+00:00"),
        ("2d", "2026-02-27T12:00:00+00:00"),
        ("30s", "2026-03-01T11:59:30+00:00"),
        ("2026-01-01T12:00Z", "2026-01-01T12:00:00+00:00"),
        ("2026-01-01 12:00", "2026-01-01T12:00:00+00:00"),
        ("2026-01-01T14:00+02:00", "2026-01-01T12:00:00+00:00"),
    ],
)
def test_since_is_a_time_or_how_long_ago(given: str, since: str) -> None:
    assert parse_since(given, NOW) == since


@pytest.mark.parametrize("given", ["yesterday", "10 minutes", "-5m", "999999999999d"])
def test_a_since_that_says_no_time_is_a_usage_error_naming_the_flag(given: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(given, NOW)


@pytest.mark.parametrize(
    ("given", "level"), [("error", "error"), ("WARNING", "warn"), ("Fatal", "error")]
)
def test_levels_are_given_in_any_case_with_common_aliases(given: str, level: str) -> None:
    assert parse_level(given) == level
