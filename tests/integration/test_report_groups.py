"""Reports that arrive together are written together: one transaction, set-based, for every
report that came in while the last group was being written (devices.report_groups)."""

from __future__ import annotations

import asyncio

import httpx

from fleetwave.bootstrap import Container
from tests.integration.engine import NEW, batch_devices, device_rows, fleet_of, push, rollout
from tests.integration.factories import recorded_statements
from tests.integration.pipeline import policy


async def test_a_batch_reporting_at_once_moves_every_device_in_a_few_transactions(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client, update_strategy="auto", health_check_enabled=False)
    devices = await fleet_of(client, 30)
    rid = await push(client)
    uuids = await batch_devices(client, rid, 1)
    assert len(uuids) == 30
    with recorded_statements(container.db.engine) as statements:
        await asyncio.gather(*(devices[uuid].report(NEW, "running") for uuid in uuids))
    rows = await device_rows(client, rid)
    assert {row["status"] for row in rows.values()} == {"completed"}
    detail = await rollout(client, rid)
    assert (detail["healthy_devices"], detail["updated_devices"]) == (30, 30)
    counters = [s for s in statements if s.startswith("UPDATE image_rollouts SET")]
    assert 1 <= len(counters) < 10, counters  # one per group, not one per report


async def test_a_device_reporting_twice_at_once_moves_in_the_order_it_reported(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client, update_strategy="auto", health_check_enabled=False)
    devices = await fleet_of(client, 2)
    rid = await push(client)
    uuid = (await batch_devices(client, rid, 1))[0]
    # pulling then running, sent together: the second waits for the next group
    await asyncio.gather(devices[uuid].report(NEW, "pulling"), devices[uuid].report(NEW, "running"))
    row = (await device_rows(client, rid))[uuid]
    assert row["status"] == "completed"
    assert row["update_started_at"] is not None
