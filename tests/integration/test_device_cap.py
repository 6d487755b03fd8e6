"""The fleet-wide cap (``FLEETWAVE_MAX_UPDATING_DEVICES``): a batch larger than the cap
starts in part, says so in ``waiting_for``, and is topped up in its order as devices finish;
never more devices in flight than the cap, across rollouts."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from fleetwave.bootstrap import Container
from fleetwave.domain.device_cap import IN_FLIGHT_STATUSES
from fleetwave.settings import Settings
from fleetwave.store.tables import device_rollout_status
from tests.integration.engine import NEW, ScriptedDevice, device_rows, fleet_of, push, rollout, tick
from tests.integration.pipeline import policy

CAP = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_updating_devices": CAP})


async def in_flight(container: Container) -> int:
    rows = device_rollout_status.c
    async with container.db.read() as conn:
        count: int = (
            await conn.execute(select(func.count()).where(rows.status.in_(IN_FLIGHT_STATUSES)))
        ).scalar_one()
    return count


async def started(client: httpx.AsyncClient, rollout_id: str) -> list[str]:
    rows = await device_rows(client, rollout_id)
    return sorted(u for u, row in rows.items() if row["status"] != "pending")


async def test_a_batch_larger_than_the_cap_starts_in_part_and_is_topped_up_in_order(
    container: Container, client: httpx.AsyncClient
) -> None:
    await policy(client, update_strategy="auto", health_check_enabled=False)
    fleet = await fleet_of(client, 8)
    rollout_id = await push(client)
    assert await started(client, rollout_id) == ["dev-00", "dev-01", "dev-02"]
    await tick(container)
    detail = await rollout(client, rollout_id)
    assert detail["waiting_for"] == "batch 1: 3 of 8 devices started, fleet-wide cap 3"

    await fleet["dev-00"].apply_target()
    await tick(container)
    assert await started(client, rollout_id) == ["dev-00", "dev-01", "dev-02", "dev-03"]
    assert await fleet["dev-03"].target_image() == NEW
    assert await fleet["dev-04"].target_image() != NEW
    assert await in_flight(container) == CAP

    for _ in range(10):
        for device in fleet.values():
            if await device.target_image() == NEW:
                await device.apply_target()
        await tick(container)
        assert await in_flight(container) <= CAP
    detail = await rollout(client, rollout_id)
    assert detail["status"] == "completed", detail
    assert detail["healthy_devices"] == 8


async def test_the_cap_holds_across_rollouts_and_a_policy_cap_lower_still(
    container: Container, client: httpx.AsyncClient
) -> None:
    await policy(client, update_strategy="auto", health_check_enabled=False)
    await policy(
        client,
        image_pattern="iotistic/other:*",
        update_strategy="auto",
        health_check_enabled=False,
        max_concurrent_devices=1,
    )
    await fleet_of(client, 2)
    first = await push(client)
    assert len(await started(client, first)) == 2
    others = await _other_fleet(client, 3)
    response = await client.post(
        "/api/v1/webhooks/docker-registry",
        params={"secret": "test-webhook-secret-0123456789"},
        json={"repository": {"repo_name": "iotistic/other"}, "push_data": {"tag": "v2"}},
    )
    second = response.json()["rollout_id"]
    assert len(await started(client, second)) == 1  # the fleet has room for 1, the policy 1
    await tick(container)
    assert (await rollout(client, second))["waiting_for"] == (
        "batch 1: 1 of 3 devices started, policy cap 1"
    )
    await others[0].apply_target()
    await tick(container)
    assert await in_flight(container) == CAP
    assert len(await started(client, second)) == 2


async def _other_fleet(client: httpx.AsyncClient, count: int) -> list[ScriptedDevice]:
    from tests.integration.factories import register_device, target_apps

    devices = []
    for i in range(count):
        device = await register_device(
            client, uuid=f"other-{i}", apps=target_apps("iotistic/other:v1")
        )
        devices.append(ScriptedDevice(client, device))
        await devices[-1].report("iotistic/other:v1")
    return devices


@pytest.mark.parametrize("cap", [0, -5])
async def test_a_policy_cap_of_zero_or_below_is_refused(
    client: httpx.AsyncClient, cap: int
) -> None:
    response = await client.post(
        "/api/v1/image-policies",
        json={"image_pattern": "iotistic/myapp:*", "max_concurrent_devices": cap},
    )
    assert response.status_code == 422, response.text
    assert "max_concurrent_devices" in response.text
