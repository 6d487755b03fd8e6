"""The fleet simulator: N real agents on simulated runtimes, some failing on a given tag."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.sim.received import ReceivedLog, read_received
from fleetwave.sim.simulator import (
    FleetSimulator,
    describe,
    parse_failures,
    parse_seconds_range,
)
from tests.conftest import ADMIN_TOKEN
from tests.integration.engine import device_rows, rollout, tick
from tests.integration.pipeline import docker_hub_push, policy


async def roll_out_to(
    fleet: FleetSimulator,
    client: httpx.AsyncClient,
    container: Container,
    clock: ManualClock,
    done: Callable[[str], Awaitable[bool]],
) -> str:
    """Run the fleet's agents, push v2.0.1 once every agent runs v2.0.0, and tick the monitor
    (a second of the injected clock per tick) until ``done(rollout_id)``."""
    stop = asyncio.Event()
    agents = asyncio.create_task(fleet.run(stop))
    try:
        for _ in range(200):
            await asyncio.sleep(0.02)
            if (await fleet.summary())["images"]["iotistic/myapp:v2.0.0"] == fleet.count:
                break
        rid: str = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
        for _ in range(400):
            await asyncio.sleep(0.02)
            clock.advance(timedelta(seconds=1))
            await tick(container)
            if await done(rid):
                break
    finally:
        stop.set()
        await agents
    return rid


def test_failure_rates_are_read_as_tag_and_rate() -> None:
    assert parse_failures(["v2.0.1:0.1", "v3:1"]) == {"v2.0.1": 0.1, "v3": 1.0}
    for bad in ("v2.0.1", "v2:1.5", ":0.1", "v2:x"):
        with pytest.raises(ValueError, match="TAG:RATE"):
            parse_failures([bad])


def test_pull_times_are_read_as_seconds_or_a_range() -> None:
    assert parse_seconds_range("0") == (0.0, 0.0)
    assert parse_seconds_range("2.5") == (2.5, 2.5)
    assert parse_seconds_range("2-10") == (2.0, 10.0)
    for bad in ("", "x", "-1", "5-2", "1-x", "0-4000"):
        with pytest.raises(ValueError, match="SECONDS or MIN-MAX"):
            parse_seconds_range(bad)


async def test_each_simulated_device_pulls_for_its_own_time_within_the_range(
    client: httpx.AsyncClient,
) -> None:
    fleet = FleetSimulator(
        client,
        ADMIN_TOKEN,
        count=4,
        image="iotistic/myapp:v2.0.0",
        failures={"v2.0.1": 1.0},
        seed=2,
        pull_seconds=(2.0, 10.0),
    )
    await fleet.register()
    times = [
        (d.runtime.behaviour("a/b:v9").pull_seconds, d.runtime.behaviour("a/b:v2.0.1").pull_seconds)
        for d in fleet.devices
    ]
    assert all(2.0 <= usual == crashing <= 10.0 for usual, crashing in times)
    assert len({usual for usual, _ in times}) == 4  # drawn per device


async def test_a_simulated_fleet_takes_a_staged_rollout_with_its_failures(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=0, soak_seconds=0, max_retries=0, max_failure_rate=0.5)
    fleet = FleetSimulator(
        client,
        ADMIN_TOKEN,
        count=10,
        image="iotistic/myapp:v2.0.0",
        failures={"v2.0.1": 0.2},
        poll_interval=0.05,
        report_interval=0.05,
        seed=3,
    )
    await fleet.register()
    bad = sum(1 for d in fleet.devices if "v2.0.1" in d.bad_tags)
    assert 0 < bad < 10

    async def ended(rid: str) -> bool:
        return (await rollout(client, rid))["status"] not in ("in_progress", "paused")

    rid = await roll_out_to(fleet, client, container, clock, ended)
    detail = await rollout(client, rid)
    assert detail["status"] in ("completed", "failed", "paused")
    assert detail["healthy_devices"] + detail["rolled_back_devices"] > 0
    summary = await fleet.summary()
    assert sum(summary["images"].values()) == 10
    assert "iotistic/myapp:v2.0.1" in describe(summary)


async def test_a_long_polling_fleet_records_when_each_device_received_each_target(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=0, soak_seconds=0, max_retries=0)
    out = io.StringIO()
    fleet = FleetSimulator(
        client,
        ADMIN_TOKEN,
        count=6,
        image="iotistic/myapp:v2.0.0",
        poll_interval=0.3,
        report_interval=0.05,
        seed=1,
        long_poll=True,
        received=ReceivedLog(out),
    )
    await fleet.register()

    async def ended(rid: str) -> bool:
        return (await rollout(client, rid))["status"] not in ("in_progress", "paused")

    rid = await roll_out_to(fleet, client, container, clock, ended)
    assert (await rollout(client, rid))["status"] == "completed"
    assert all(d.agent.client.long_poll_max for d in fleet.devices)  # offered, so held
    received = read_received(out.getvalue().splitlines())
    assert {device for device, _at, _images in received} == {d.uuid for d in fleet.devices}
    new = {device for device, _at, images in received if images == ["iotistic/myapp:v2.0.1"]}
    assert new == {d.uuid for d in fleet.devices}
    for device in new:
        old, new_at = (
            min(at for d, at, i in received if d == device and i == [image])
            for image in ("iotistic/myapp:v2.0.0", "iotistic/myapp:v2.0.1")
        )
        assert old < new_at


async def test_unregistered_devices_are_registered_as_their_agents_start_over_the_spread(
    client: httpx.AsyncClient,
) -> None:
    out = io.StringIO()
    fleet = FleetSimulator(
        client,
        ADMIN_TOKEN,
        count=12,
        image="iotistic/myapp:v2.0.0",
        poll_interval=30,
        start_spread=0.6,
        seed=4,
        received=ReceivedLog(out),
    )
    stop = asyncio.Event()
    agents = asyncio.create_task(fleet.run(stop))
    for _ in range(250):  # every agent's first poll brought its target
        await asyncio.sleep(0.02)
        if len(read_received(out.getvalue().splitlines())) == 12:
            break
    stop.set()
    await agents
    assert sorted(d.uuid for d in fleet.devices) == [
        f"sim-{i:05d}-{fleet.suffix}" for i in range(12)
    ]
    first = read_received(out.getvalue().splitlines())
    assert {device for device, _at, _images in first} == {d.uuid for d in fleet.devices}
    # spread over the 0.6 s, not all at once (the plan: wall-clock arrivals bunch up under
    # load), nor over one poll interval (30 s)
    assert 0.3 < fleet.starts[-1] - fleet.starts[0] <= 0.6
    span = (first[-1][1] - first[0][1]).total_seconds()
    assert span < 1.5


async def test_the_simulators_transport_holds_requests_in_its_own_queue() -> None:
    from fleetwave.sim.transport import QueuedTransport
    from tests.integration.health_helpers import HttpServer

    async with HttpServer(delay=0.05) as server:
        transport = QueuedTransport(limit=3)
        async with httpx.AsyncClient(transport=transport) as http:
            answers = await asyncio.gather(*(http.get(server.url("/x")) for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert server.max_in_flight == 3


async def test_held_polls_go_around_the_request_slots_each_device_on_its_own_connection() -> None:
    from fleetwave.sim.transport import QueuedTransport
    from tests.integration.health_helpers import HttpServer, Reply, Request

    released = asyncio.Event()

    async def answer(request: Request) -> Reply:
        if "wait=" in request.path:
            await released.wait()  # the server holds the poll until the target changes
        return Reply()

    async with HttpServer(answer=answer) as server:
        transport = QueuedTransport(limit=2, hold_polls=True)
        async with httpx.AsyncClient(transport=transport) as http:
            held = [
                asyncio.create_task(http.get(server.url(f"/api/v1/device/d{i}/state?wait=60")))
                for i in range(10)
            ]
            await server.wait_for(10)
            assert transport.holding == 10
            reports = await asyncio.wait_for(
                asyncio.gather(*(http.patch(server.url("/api/v1/device/state")) for _ in range(6))),
                timeout=5,
            )
            assert [r.status_code for r in reports] == [200] * 6
            assert server.max_in_flight <= 10 + 2  # every held poll, and at most two slots
            assert len(transport.held) == 10  # a connection per device
            released.set()
            assert [(await poll).status_code for poll in held] == [200] * 10
            again = await http.get(server.url("/api/v1/device/d3/state?wait=60"))
            assert again.status_code == 200
            assert len(transport.held) == 10  # a device keeps its connection
            assert transport.describe() == (
                "held polls 0 (11 answered), waiting for a slot 0 (6 answered)"
            )


async def test_devices_whose_new_service_answers_its_checks_badly_are_rolled_back(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    check = {"type": "http", "url": "http://{device_ip}:8080/health", "retries": 0}
    await policy(
        client,
        batch_delay_minutes=0,
        soak_seconds=0,
        max_retries=0,
        max_failure_rate=1,
        health_check_config=[check],
    )
    fleet = FleetSimulator(
        client,
        ADMIN_TOKEN,
        count=6,
        image="iotistic/myapp:v2.0.0",
        unhealthy={"v2.0.1": 0.5},
        poll_interval=0.05,
        report_interval=0.05,
        seed=2,
    )
    await fleet.register()
    sick = {d.uuid for d in fleet.devices if "v2.0.1" in d.bad_tags}
    assert 0 < len(sick) < 6

    async def judged(rid: str) -> bool:
        rows = await device_rows(client, rid)
        return all(r["status"] in ("completed", "rolled_back") for r in rows.values())

    rid = await roll_out_to(fleet, client, container, clock, judged)
    rows = await device_rows(client, rid)
    assert {u for u, r in rows.items() if r["status"] == "rolled_back"} == sick
    assert {r["status"] for u, r in rows.items() if u not in sick} == {"completed"}
    failed = rows[sorted(sick)[0]]["health_check_details"]
    assert "answers HTTP 503" in str(failed)


async def test_the_summary_counts_devices_per_status_busy_agents_by_what_they_do() -> None:
    from fleetwave.agent.agent import Agent
    from fleetwave.agent.client import DeviceClient
    from fleetwave.agent.runtime import ServiceSpec
    from fleetwave.agent.simulated import SimulatedRuntime
    from fleetwave.sim.simulator import SimulatedDevice

    http = httpx.AsyncClient(base_url="http://unused")
    fleet = FleetSimulator(http, ADMIN_TOKEN, count=3, image="app:v1")
    for i, busy in enumerate((None, "pulling", None)):
        runtime = SimulatedRuntime(images={"app:v1"})
        if i < 2:
            await runtime.start(ServiceSpec("1001/app", "1001", "app", 1, "app:v1"))
        agent = Agent(DeviceClient(http, f"d{i}", "key"), runtime)
        if busy:
            agent.progress = {"1001/app": (busy, None, "app:v2")}
        fleet.devices.append(SimulatedDevice(f"d{i}", agent, runtime))
    summary = await fleet.summary()
    assert summary["states"] == {"running": 1, "pulling": 1, "none": 1}
    assert summary["images"] == {"app:v1": 2, "(nothing yet)": 1}
    assert describe(summary) == "(nothing yet): 1, app:v1: 2 | none: 1, pulling: 1, running: 1"
    await http.aclose()
