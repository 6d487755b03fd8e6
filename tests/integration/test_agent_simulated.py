"""The real agent, on a simulated container runtime, takes a fleet through a rollout."""

from __future__ import annotations

from datetime import timedelta

import httpx

from fleetwave.agent.agent import Agent
from fleetwave.agent.client import DeviceClient
from fleetwave.agent.simulated import Behaviour, SimulatedRuntime
from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.integration.engine import device_rows, rollout, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import docker_hub_push, policy


async def no_sleep(_: float) -> None:
    return None


async def test_agents_pull_restart_report_and_roll_back_a_bad_device(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=0, soak_seconds=0, max_retries=0, max_failure_rate=0.5)
    agents: dict[str, tuple[Agent, SimulatedRuntime]] = {}
    for i in range(5):
        device = await register_device(
            client, uuid=f"sim-{i}", apps=target_apps("iotistic/myapp:v2.0.0")
        )
        bad = {"v2.0.1": Behaviour(exits_after_start=True)} if i == 2 else {}
        runtime = SimulatedRuntime(bad, now=clock.now)
        agent = Agent(
            DeviceClient(client, device["uuid"], device["api_key"]),
            runtime,
            report_interval=0,
            sleep=no_sleep,
            long_poll=False,  # a step answers at once (long-poll: test_long_poll.py)
        )
        agents[device["uuid"]] = (agent, runtime)
    for agent, runtime in agents.values():  # first contact: the agents start v2.0.0
        await agent.step()
        assert [c.image for c in await runtime.containers()] == ["iotistic/myapp:v2.0.0"]
    # each says what it does: http and tcp checks, progress (custom checks were not allowed)
    shown = (await client.get("/api/v1/devices/sim-0")).json()
    assert shown["capabilities"] == ["checks.http", "checks.tcp", "progress"]

    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    for _ in range(12):  # agents poll, the monitor ticks, until the rollout ends
        for agent, _runtime in agents.values():
            await agent.step()
        clock.advance(timedelta(seconds=5))
        await tick(container)
        if (await rollout(client, rid))["status"] not in ("in_progress", "paused"):
            break

    detail = await rollout(client, rid)
    rows = await device_rows(client, rid)
    assert rows["sim-2"]["status"] == "rolled_back"
    assert {u: r["status"] for u, r in rows.items() if u != "sim-2"} == dict.fromkeys(
        ["sim-0", "sim-1", "sim-3", "sim-4"], "completed"
    )
    assert detail["status"] == "completed" and detail["rolled_back_devices"] == 1
    _, bad_runtime = agents["sim-2"]
    [running] = await bad_runtime.containers()
    assert running.image == "iotistic/myapp:v2.0.0" and running.state == "running"
    assert bad_runtime.pulls.count("iotistic/myapp:v2.0.0") == 1  # the old image was kept
    for uuid in ("sim-0", "sim-4"):
        [running] = await agents[uuid][1].containers()
        assert running.image == "iotistic/myapp:v2.0.1"


async def test_an_agent_keeps_its_containers_through_a_server_outage(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    device = await register_device(client, uuid="steady", apps=target_apps())
    runtime = SimulatedRuntime(now=clock.now)
    agent = Agent(
        DeviceClient(client, "steady", device["api_key"]),
        runtime,
        poll_interval=60,
        long_poll=False,
    )
    await agent.step()

    def refuse(_: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    down = httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url="http://x")
    agent.client.http = down
    waits = [await agent.step() for _ in range(4)]
    assert waits == [15, 30, 60, 60]  # min(interval, 15 s · 2^n)
    assert [c.state for c in await runtime.containers()] == ["running"]
    agent.client.http = client
    assert 54 <= await agent.step() <= 66  # back to the poll interval, with jitter
