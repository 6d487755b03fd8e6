"""An upgrade in the middle of a rollout: the old process stops, the migration job brings the
schema from the previous revision to the new head under the rows of a rollout in flight, a new
process starts, and the rollout carries on from where the database says it was. Nothing of a
rollout lives in a process's memory."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fleetwave.agent.agent import Agent
from fleetwave.agent.client import DeviceClient
from fleetwave.agent.simulated import SimulatedRuntime
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.migrate import current_revision, downgrade, head_revision, upgrade
from fleetwave.users.passwords import Passwords
from tests.conftest import admin_client
from tests.integration.engine import device_rows, rollout, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import docker_hub_push, policy


async def no_sleep(_: float) -> None:
    return None


async def test_a_rollout_in_flight_completes_after_a_migration_and_a_restart(
    container: Container, settings: Settings, clock: ManualClock
) -> None:
    url = settings.resolved_database_url
    agents: list[tuple[str, str, SimulatedRuntime]] = []
    async with admin_client(container) as old:
        await policy(old, batch_delay_minutes=0, soak_seconds=0, staged_batches=2)
        for i in range(4):
            device = await register_device(
                old, uuid=f"up-{i}", apps=target_apps("iotistic/myapp:v2.0.0")
            )
            agents.append((device["uuid"], device["api_key"], SimulatedRuntime(now=clock.now)))
        await steps(old, agents)
        rid = (await docker_hub_push(old, "v2.0.1")).json()["rollout_id"]
        await steps(old, agents)
        clock.advance(timedelta(seconds=5))
        await tick(container)
        before = await device_rows(old, rid)
        assert (await rollout(old, rid))["status"] == "in_progress"
        assert sorted(r["status"] for r in before.values()).count("completed") < 4

    await container.db.dispose()  # the old process stops; the migration job runs alone
    previous = "0007"
    await asyncio.to_thread(downgrade, url, previous)  # as if the old release's schema
    assert current_revision(url) == previous
    await asyncio.to_thread(upgrade, url)
    assert current_revision(url) == head_revision()

    db = Database(url)  # the new process
    new = build(settings, clock=clock, db=db, passwords=Passwords(cheap=True))
    try:
        async with admin_client(new) as client:
            for _ in range(12):
                await steps(client, agents)
                clock.advance(timedelta(seconds=5))
                await tick(new)
                if (await rollout(client, rid))["status"] != "in_progress":
                    break
            assert (await rollout(client, rid))["status"] == "completed"
            rows = await device_rows(client, rid)
            assert {r["status"] for r in rows.values()} == {"completed"}
        for _uuid, _key, runtime in agents:
            [running] = await runtime.containers()
            assert running.image == "iotistic/myapp:v2.0.1"
    finally:
        await db.dispose()


async def steps(client: object, agents: list[tuple[str, str, SimulatedRuntime]]) -> None:
    for uuid, key, runtime in agents:
        agent = Agent(
            DeviceClient(client, uuid, key),  # type: ignore[arg-type]
            runtime,
            report_interval=0,
            sleep=no_sleep,
            long_poll=False,
        )
        await agent.step()
