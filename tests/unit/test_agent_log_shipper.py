"""The agent ships its containers' output: each line once, within its budget with the drops
said, kept while the server is away, and read before a container is removed.

Fakes only for what we own: a device client that keeps what it is sent (or fails as told),
the simulated runtime, and a wall clock that only moves when told.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest

from fleetwave.agent.agent import Agent
from fleetwave.agent.client import DeviceClient
from fleetwave.agent.log_shipper import BATCH_BYTES, MAX_WAITING, READ_LIMIT, LogShipper
from fleetwave.agent.runtime import ServiceSpec
from fleetwave.agent.simulated import Behaviour, SimulatedRuntime
from fleetwave.domain.log_lines import parse_log_lines, read_ndjson

START = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def wall(self) -> float:
        return self.now.timestamp()


class LogServer:
    """Takes log batches as the server does (the same parser), or fails as told."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.failing: int | Exception | None = None

    async def send_logs(self, ndjson: bytes) -> None:
        if isinstance(self.failing, Exception):
            raise self.failing
        if self.failing is not None:
            request = httpx.Request("POST", "http://fleetwave.test/api/v1/device/d/logs")
            response = httpx.Response(self.failing, request=request)
            raise httpx.HTTPStatusError("refused", request=request, response=response)
        parse_log_lines(read_ndjson(ndjson))  # what the server would refuse, the test refuses
        self.batches.append([json.loads(row) for row in ndjson.splitlines()])

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [line for batch in self.batches for line in batch]

    def messages(self) -> list[str]:
        return [line["message"] for line in self.lines]


def spec(name: str, image: str = "acme/app:v1") -> ServiceSpec:
    return ServiceSpec(f"1001/{name}", "1001", name, 1, image)


async def device(
    budget: int = 200, **behaviours: Behaviour
) -> tuple[SimulatedRuntime, LogServer, LogShipper, Clock]:
    clock, server = Clock(), LogServer()
    runtime = SimulatedRuntime(behaviours, images={"acme/app:v1", "acme/app:v2"}, now=clock)
    shipper = LogShipper(
        cast(DeviceClient, server), runtime, interval=5, lines_per_interval=budget, wall=clock.wall
    )
    return runtime, server, shipper, clock


async def test_a_crashed_containers_last_words_reach_the_server_once() -> None:
    runtime, server, shipper, clock = await device(v2=Behaviour(exits_after_start=True))
    await runtime.start(spec("app", "acme/app:v2"))
    await shipper.round()
    await shipper.round()  # nothing new: nothing sent again
    starting, crash = server.lines
    assert starting["message"] == "starting acme/app:v2"
    assert crash == {
        "message": "Error: the application exited (exit code 1)",
        "timestamp": int(START.timestamp() * 1000),
        "level": "error",
        "source": {"type": "container", "name": "app"},
        "serviceName": "app",
        "isStdErr": True,
    }
    clock.now += timedelta(seconds=1)
    runtime.write_output("1001/app", "one more")
    await shipper.round()
    assert server.messages()[-1] == "one more" and len(server.lines) == 3


async def test_a_chatty_service_keeps_its_newest_lines_and_says_how_many_it_dropped() -> None:
    runtime, server, shipper, clock = await device(budget=50)
    await runtime.start(spec("app"))
    await runtime.start(spec("db"))
    await shipper.round()  # the two "starting" lines
    for i in range(500):
        clock.now += timedelta(milliseconds=1)
        runtime.write_output("1001/app", f"request {i}")
    runtime.write_output("1001/db", "[ERROR] disk full", stderr=True)
    await shipper.round()
    last = server.batches[-1]
    app = [line["message"] for line in last if line["serviceName"] == "app"]
    assert app[0] == (
        "fleetwave agent: dropped 451 lines of app (at most 50 lines per 5 s are sent)"
    )
    assert app[1:] == [f"request {i}" for i in range(451, 500)]
    assert [line["message"] for line in last if line["serviceName"] == "db"] == [
        "[ERROR] disk full"
    ]
    notice = last[0]
    assert (notice["level"], notice["source"]["type"]) == ("warn", "agent")
    assert notice["timestamp"] == last[1]["timestamp"]  # where the gap is


async def test_lines_wait_while_the_server_is_away_and_the_oldest_go_first_counted() -> None:
    runtime, server, shipper, _ = await device(budget=MAX_WAITING)
    await runtime.start(spec("app"))
    server.failing = httpx.ConnectError("connection refused")
    await shipper.round()  # "starting" waits
    server.failing = 503
    for i in range(MAX_WAITING // 2):
        runtime.write_output("1001/app", f"line {i}")
    await shipper.round()
    for i in range(MAX_WAITING // 2, MAX_WAITING + 10):
        runtime.write_output("1001/app", f"line {i}")
    await shipper.round()
    assert server.lines == []

    server.failing = None
    await shipper.round()
    sent = server.messages()
    assert sent[0] == (
        "fleetwave agent: dropped 11 log lines the server could not take in time "
        f"(at most {MAX_WAITING} wait)"
    )
    assert sent[1:] == [f"line {i}" for i in range(10, MAX_WAITING + 10)]
    await shipper.round()
    assert len(server.lines) == MAX_WAITING + 1  # nothing twice, the notice once


async def test_a_container_that_wrote_more_than_a_read_takes_is_said_to_have_lost_lines() -> None:
    runtime, server, shipper, clock = await device(budget=100)
    await runtime.start(spec("app"))
    await shipper.round()
    clock.now += timedelta(seconds=2)
    for i in range(READ_LIMIT + 5):
        runtime.write_output("1001/app", f"line {i}")
    await shipper.round()
    sent = server.messages()
    assert sent[1:3] == [
        f"fleetwave agent: dropped lines of app unread (it wrote more than {READ_LIMIT} "
        "lines between two reads)",
        "fleetwave agent: dropped 1900 lines of app (at most 100 lines per 5 s are sent)",
    ]
    assert sent[3:] == [f"line {i}" for i in range(READ_LIMIT - 95, READ_LIMIT + 5)]


async def test_a_batch_the_server_refuses_as_invalid_is_dropped_not_sent_for_ever() -> None:
    runtime, server, shipper, _ = await device()
    await runtime.start(spec("app"))
    server.failing = 422
    await shipper.round()
    server.failing = None
    await shipper.round()
    assert server.lines == []


async def test_big_output_goes_in_several_requests_each_within_the_servers_limit() -> None:
    runtime, server, shipper, _ = await device()
    await runtime.start(spec("app"))
    await shipper.round()
    for _ in range(100):
        runtime.write_output("1001/app", "y" * 10_000)
    await shipper.round()
    assert len(server.batches) > 1
    for batch in server.batches:
        assert sum(len(json.dumps(line)) + 1 for line in batch) <= BATCH_BYTES
    assert len(server.lines) == 101


async def test_output_that_cannot_be_stored_is_cleaned_and_an_engine_failure_waits() -> None:
    runtime, server, shipper, _ = await device()
    await runtime.start(spec("app"))
    runtime.write_output("1001/app", "nul \x00 and \ud800")
    broken = SimulatedRuntime.logs

    async def engine_down(*_: Any, **__: Any) -> Any:
        raise OSError("engine restarting")

    runtime.logs = engine_down  # type: ignore[method-assign]
    await shipper.round()  # logged, not raised: the agent goes on
    runtime.logs = broken.__get__(runtime)  # type: ignore[method-assign]
    await shipper.round()
    assert server.messages()[-1] == "nul \ufffd and ?"


class PollingClient(LogServer):
    """The agent's server: a target to poll, reports taken, and log batches kept."""

    def __init__(self, image: str) -> None:
        super().__init__()
        self.uuid, self.long_poll_max = "dev-1", None
        self.serve(image)

    def serve(self, image: str) -> None:
        service = {"serviceName": "app", "serviceId": 1, "imageName": image, "config": {}}
        self.etag = image
        self.state = {"apps": {"1001": {"appId": 1001, "services": [service]}}, "config": {}}

    async def poll(self, etag: str | None, **_: Any) -> tuple[str | None, Any]:
        return (etag, None) if etag == self.etag else (self.etag, self.state)

    async def report(self, state: dict[str, Any]) -> None:
        pass


async def test_the_agent_reads_a_crashed_container_before_its_rollback_removes_it() -> None:
    clock, client = Clock(), PollingClient("acme/app:v2")
    behaviours = {"v2": Behaviour(exits_after_start=True, crash_output="panic: no config")}
    runtime = SimulatedRuntime(behaviours, images={"acme/app:v1", "acme/app:v2"}, now=clock)
    shipper = LogShipper(cast(DeviceClient, client), runtime, wall=clock.wall)
    agent = Agent(cast(DeviceClient, client), runtime, report_interval=0, logs=shipper)
    await agent.step()  # v2 starts and crashes
    client.serve("acme/app:v1")  # the server rolls it back before the shipper's next round
    await agent.step()
    assert [c.image for c in await runtime.containers()] == ["acme/app:v1"]
    await shipper.round()
    assert "panic: no config" in client.messages()


@pytest.mark.parametrize("raw", [b"", b"\n"])
async def test_the_client_sends_gzipped_ndjson_with_the_devices_key(raw: bytes) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok", "received": 1, "stored": 1})

    async with httpx.AsyncClient(
        base_url="http://fleetwave.test", transport=httpx.MockTransport(handle)
    ) as http:
        await DeviceClient(http, "dev-1", "fwd_key").send_logs(b'{"message": "hi"}\n' + raw)
    [request] = seen
    assert request.url.path == "/api/v1/device/dev-1/logs"
    assert request.headers["x-device-api-key"] == "fwd_key"
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.content).startswith(b'{"message": "hi"}\n')
