"""The fleet-wide cap with three ``fleetwave worker`` processes on PostgreSQL: devices in
flight (scheduled, pulling, updating, health checking) across all rollouts never exceed
``FLEETWAVE_MAX_UPDATING_DEVICES``, sampled all along, while every rollout completes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fleetwave.bootstrap import Container
from fleetwave.domain.device_cap import IN_FLIGHT_STATUSES
from fleetwave.store.tables import device_rollout_status
from tests.conftest import truncate_all
from tests.e2e.test_engine_workers import all_settled, create_policy, fleetwave_app, trigger
from tests.e2e.workers import Devices, Worker, describe, directory

pytestmark = pytest.mark.postgres

CAP, ROLLOUTS, DEVICES = 4, 6, 5


async def in_flight(container: Container) -> int:
    rows = device_rollout_status.c
    async with container.db.read() as conn:
        count: int = (
            await conn.execute(select(func.count()).where(rows.status.in_(IN_FLIGHT_STATUSES)))
        ).scalar_one()
    return count


async def test_three_workers_never_exceed_the_fleet_wide_cap_on_postgres(
    postgres_database: str, tmp_path: Path
) -> None:
    url = postgres_database
    truncate_all(url)
    capped = {"max_updating_devices": CAP}
    async with fleetwave_app(url, directory(tmp_path / "app"), **capped) as (container, client):
        fleet = Devices(container, client)
        for i in range(ROLLOUTS):
            await create_policy(client, f"acme/capped{i}:*", health_check_enabled=False)
            for j in range(DEVICES):
                await fleet.register(f"capped{i}-{j}", f"acme/capped{i}:1.0.0")
        here = directory(tmp_path / "worker")
        env = {"FLEETWAVE_MAX_UPDATING_DEVICES": str(CAP)}
        workers = [await Worker.start(f"fw-cap-{k}", url, here, env=env) for k in range(3)]
        stop = asyncio.Event()
        driver: asyncio.Task[None] | None = None
        samples: list[int] = []
        loop = asyncio.get_running_loop()
        try:
            for worker in workers:
                await worker.wait_ready()
            for i in range(ROLLOUTS):  # the trigger starts what room the cap leaves
                await trigger(client, f"acme/capped{i}:2.0.0", DEVICES)
                samples.append(await in_flight(container))
            driver = asyncio.create_task(fleet.run(stop))
            deadline = loop.time() + 60
            while not await all_settled(container):
                samples.append(await in_flight(container))
                if loop.time() > deadline or driver.done():
                    pytest.fail("rollouts not over within 60 s:\n" + await describe(container))
                await asyncio.sleep(0.01)
            await asyncio.gather(*(worker.stop() for worker in workers))
        finally:
            stop.set()
            if driver is not None:
                await driver
            for worker in workers:
                await worker.kill()
        assert fleet.errors == []
        assert [w.failures() for w in workers if w.failures()] == []
        print(f"{len(samples)} samples of devices in flight, at most {max(samples)}")
        assert max(samples) == CAP, samples  # reached, never exceeded
        assert len(samples) > 20
