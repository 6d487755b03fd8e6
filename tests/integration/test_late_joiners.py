"""Late joiners: a device that appears on a rollout's old image after it was planned joins
it — into the running batch, into the next one between batches, directly after completion
(a continuous rollout) — while one on an unrelated image, or one appearing after a rollout
was cancelled, does not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.settings import Settings
from tests.integration.engine import (
    NEW,
    OLD,
    ScriptedDevice,
    device_rows,
    fleet_of,
    push,
    rollout,
    tick,
)
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import policy


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"late_joiner_interval": 0})  # a look every tick


async def newcomer(
    client: httpx.AsyncClient, uuid: str, image: str = OLD, **fields: Any
) -> ScriptedDevice:
    device = ScriptedDevice(
        client, await register_device(client, uuid=uuid, apps=target_apps(image), **fields)
    )
    await device.report(image)
    return device


async def joined_events(client: httpx.AsyncClient, rollout_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/rollouts/{rollout_id}/events", params={"limit": 1000})
    return [e for e in response.json()["items"] if e["event_type"] == "device_joined"]


async def test_a_device_registered_mid_batch_joins_the_running_batch(
    container: Container, client: httpx.AsyncClient
) -> None:
    await policy(client, health_check_enabled=False)
    await fleet_of(client, 10)
    rollout_id = await push(client)
    assert (await rollout(client, rollout_id))["batches"][0]["size"] == 1
    late = await newcomer(client, "late-1")
    await tick(container)

    detail = await rollout(client, rollout_id)
    assert detail["total_devices"] == 11
    assert [b["size"] for b in detail["batches"]] == [2, 4, 5]
    row = (await device_rows(client, rollout_id))["late-1"]
    assert row["batch_number"] == 1 and row["status"] == "scheduled"
    assert row["old_images"] == {"1001/app": OLD}
    assert await late.target_image() == NEW
    [event] = await joined_events(client, rollout_id)
    assert event["device_uuid"] == "late-1" and event["event_data"]["batch"] == 1


async def test_a_device_registered_between_batches_joins_the_next_batch(
    container: Container, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await policy(client, health_check_enabled=False)
    fleet = await fleet_of(client, 10)
    rollout_id = await push(client)
    await fleet["dev-00"].apply_target()
    await tick(container)  # batch 1 finished; batch 2 waits for the 5 min delay
    late = await newcomer(client, "late-2")
    await tick(container)

    detail = await rollout(client, rollout_id)
    assert [b["size"] for b in detail["batches"]] == [1, 5, 5]
    row = (await device_rows(client, rollout_id))["late-2"]
    assert row["batch_number"] == 2 and row["status"] == "pending"
    assert await late.target_image() == OLD  # not before its batch
    clock.advance(timedelta(minutes=6))
    await tick(container)
    assert await late.target_image() == NEW


async def test_after_completion_a_device_on_the_old_image_gets_the_new_one_directly(
    container: Container, client: httpx.AsyncClient
) -> None:
    await policy(client, update_strategy="auto", health_check_enabled=False)
    fleet = await fleet_of(client, 2)
    rollout_id = await push(client)
    for device in fleet.values():
        await device.apply_target()
    await tick(container)
    assert (await rollout(client, rollout_id))["status"] == "completed"

    late = await newcomer(client, "late-3")
    await tick(container)
    detail = await rollout(client, rollout_id)
    assert detail["status"] == "in_progress" and detail["total_devices"] == 3
    assert await late.target_image() == NEW
    [event] = await joined_events(client, rollout_id)
    assert event["event_data"]["continuous"] is True
    await late.apply_target()
    await tick(container)
    detail = await rollout(client, rollout_id)
    assert detail["status"] == "completed" and detail["healthy_devices"] == 3


async def test_a_device_on_an_unrelated_image_or_after_a_cancel_does_not_join(
    container: Container, client: httpx.AsyncClient
) -> None:
    await policy(client, health_check_enabled=False)
    await fleet_of(client, 4)
    rollout_id = await push(client)
    other = await newcomer(client, "unrelated", "iotistic/other:v1.0.0")
    await tick(container)
    assert "unrelated" not in await device_rows(client, rollout_id)
    assert await other.target_image() == "iotistic/other:v1.0.0"

    cancelled = await client.post(f"/api/v1/rollouts/{rollout_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    await newcomer(client, "after-cancel")
    await tick(container)
    assert "after-cancel" not in await device_rows(client, rollout_id)
    assert (await rollout(client, rollout_id))["total_devices"] == 4


async def test_a_policy_not_continuous_leaves_a_completed_rollout_alone(
    container: Container, client: httpx.AsyncClient
) -> None:
    await policy(client, update_strategy="auto", health_check_enabled=False, continuous=False)
    fleet = await fleet_of(client, 1)
    rollout_id = await push(client)
    await fleet["dev-00"].apply_target()
    await tick(container)
    late = await newcomer(client, "late-4")
    await tick(container)
    assert (await rollout(client, rollout_id))["status"] == "completed"
    assert await late.target_image() == OLD


async def test_a_late_joiner_on_images_of_two_rollouts_joins_each_with_its_own_service(
    container: Container, client: httpx.AsyncClient
) -> None:
    await policy(client, update_strategy="auto", health_check_enabled=False)
    await policy(
        client, image_pattern="iotistic/other:*", update_strategy="auto", health_check_enabled=False
    )
    await fleet_of(client, 1)
    await newcomer(client, "other-0", "iotistic/other:v1.0.0")
    mine = await push(client)
    other = (
        await client.post("/api/v1/images/trigger-update", json={"image": "iotistic/other:v1.1.0"})
    ).json()["rollout_id"]
    apps = target_apps(OLD) | target_apps("iotistic/other:v1.0.0", app_id=1002)
    both = ScriptedDevice(client, await register_device(client, uuid="both", apps=apps))
    await tick(container)

    assert (await device_rows(client, mine))["both"]["old_images"] == {"1001/app": OLD}
    assert (await device_rows(client, other))["both"]["old_images"] == {
        "1002/app": "iotistic/other:v1.0.0"
    }
    target = await both.target()
    assert target["1001"]["services"][0]["imageName"] == NEW
    assert target["1002"]["services"][0]["imageName"] == "iotistic/other:v1.1.0"
