"""The simulator writes a JSON line for every target a device's poll brought (a 200, never a
304), timed when the answer was read, and the bench reads the lines back."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fleetwave.sim import received
from fleetwave.sim.received import ReceivedLog, RecordingClient, read_received

AT = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
TARGET = {
    "apps": {
        "1001": {
            "appId": 1001,
            "services": [
                {"serviceName": "web", "imageName": "iotistic/myapp:v2.0.1"},
                {"serviceName": "db", "imageName": "postgres:16"},
            ],
        }
    },
    "config": {},
}


def poll_server(etag: str) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        return httpx.Response(200, json={"dev-1": TARGET}, headers={"ETag": etag})

    return httpx.MockTransport(answer)


def test_a_received_target_is_one_line_with_its_device_time_and_images() -> None:
    out = io.StringIO()
    ReceivedLog(out, now=lambda: AT).record("dev-1", TARGET)
    assert json.loads(out.getvalue()) == {
        "device": "dev-1",
        "at": "2025-03-01T12:00:00.250000+00:00",
        "images": ["iotistic/myapp:v2.0.1", "postgres:16"],
    }
    assert read_received(out.getvalue().splitlines()) == [
        ("dev-1", AT, ["iotistic/myapp:v2.0.1", "postgres:16"])
    ]


async def test_only_polls_that_bring_a_target_are_recorded() -> None:
    out = io.StringIO()
    log = ReceivedLog(out, now=lambda: AT)
    async with httpx.AsyncClient(transport=poll_server('"e2"'), base_url="http://fw") as http:
        client = RecordingClient(http, "dev-1", "fwd_key", log)
        answers: list[Any] = [
            await client.poll('"e1"'),
            await client.poll('"e2"'),
            await client.poll('"e2"', wait=30),
        ]
    assert answers == [('"e2"', TARGET), ('"e2"', None), ('"e2"', None)]
    assert log.count == 1
    assert [device for device, _at, _images in read_received(out.getvalue().splitlines())] == [
        "dev-1"
    ]


class FakeTime:
    """A monotonic clock that ``asyncio.sleep`` (patched) moves on, with a hook for what
    happens meanwhile."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.meanwhile: Callable[[], None] = lambda: None

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds
        self.meanwhile()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(received.asyncio, "sleep", fake.sleep)
    return fake


async def test_a_device_acts_at_once_when_no_other_target_came_in_lately(clock: FakeTime) -> None:
    log = ReceivedLog(io.StringIO(), now=lambda: AT, monotonic=clock.monotonic)
    await log.burst_over()
    clock.now += 1
    log.record("dev-1", TARGET)
    clock.now += received.QUIET_SECONDS
    await log.burst_over()
    assert clock.slept == []


async def test_a_device_waits_until_the_burst_of_targets_is_over(clock: FakeTime) -> None:
    log = ReceivedLog(io.StringIO(), now=lambda: AT, monotonic=clock.monotonic)
    log.record("dev-1", TARGET)
    clock.now += 0.005
    arrivals = ["dev-2", "dev-3"]  # two more arrive while it waits, then none

    def one_more() -> None:
        if arrivals:
            log.record(arrivals.pop(0), TARGET)

    clock.meanwhile = one_more
    await log.burst_over()
    assert clock.now == pytest.approx(log.last_received + received.QUIET_SECONDS)
    assert log.count == 3


async def test_an_endless_burst_defers_a_device_for_two_seconds_at_most(clock: FakeTime) -> None:
    log = ReceivedLog(io.StringIO(), now=lambda: AT, monotonic=clock.monotonic)
    log.record("dev-1", TARGET)
    clock.meanwhile = lambda: log.record("dev-2", TARGET)  # a target after every wait
    began = clock.now
    await log.burst_over()
    assert clock.now - began == pytest.approx(received.LONGEST_DEFERRAL)
