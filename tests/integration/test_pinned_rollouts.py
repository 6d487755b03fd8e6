"""A digest-pinned rollout as real container engines see it (issue 13, part 1).

The rollout pins ``repo:v2.0.1@sha256:…``. Podman runs a container made from that as
``repo@sha256:…`` and reports it so, without the tag; an agent comparing names exactly (the
iotistic agent) must therefore be served the tagless form, or it recreates its container for
ever. Devices are served ``repo@sha256:…``; the admin API keeps the readable tag; a device
reporting either form is on the new image, and one back on a pinned old image is rolled back.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.engine import ScriptedDevice, device_rows
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import policy, target_image

REPO = "registry.example.com:5000/acme/app"
DIGEST = "sha256:" + "1d" * 32
OLD_DIGEST = "sha256:" + "0d" * 32
OLD = f"{REPO}:v2.0.0@{OLD_DIGEST}"  # the devices run a pinned image already
NEW = f"{REPO}:v2.0.1@{DIGEST}"


async def pinned_rollout(
    client: httpx.AsyncClient, *uuids: str
) -> tuple[str, list[ScriptedDevice]]:
    """Devices on ``OLD`` (each reporting it as Podman does), then a rollout of ``NEW``."""
    await policy(
        client,
        image_pattern=f"{REPO}:*",
        update_strategy="auto",
        health_check_enabled=False,
        max_retries=0,
        auto_rollback=True,
    )
    devices = []
    for uuid in uuids:
        device = ScriptedDevice(
            client, await register_device(client, uuid=uuid, apps=target_apps(OLD))
        )
        await device.report(f"{REPO}@{OLD_DIGEST}")
        devices.append(device)
    answer = await client.post("/api/v1/images/trigger-update", json={"image": NEW})
    assert answer.status_code == 200, answer.text
    rollout_id: str = answer.json()["rollout_id"]
    return rollout_id, devices


async def test_devices_are_served_a_pinned_image_without_its_tag_and_the_api_keeps_the_tag(
    client: httpx.AsyncClient,
) -> None:
    rollout_id, [device] = await pinned_rollout(client, "pinned-1")

    served: dict[str, Any] = (await device.target())["1001"]["services"][0]
    assert served["imageName"] == served["config"]["image"] == f"{REPO}@{DIGEST}"
    assert await target_image(client, "pinned-1") == NEW
    detail = (await client.get(f"/api/v1/rollouts/{rollout_id}")).json()
    assert (detail["old_tag"], detail["new_tag"], detail["new_image"]) == ("v2.0.0", "v2.0.1", NEW)
    row = (await device_rows(client, rollout_id))["pinned-1"]
    assert (row["old_images"], row["new_image"]) == ({"1001/app": OLD}, NEW)


async def test_a_device_reporting_the_pinned_image_without_its_tag_completes(
    client: httpx.AsyncClient,
) -> None:
    rollout_id, [podman, docker] = await pinned_rollout(client, "on-podman", "on-docker")

    await podman.report(await podman.target_image(), "running")  # repo@sha256:…, as served
    await docker.report(NEW, "running")  # Docker shows the reference it was given, any form

    rows = await device_rows(client, rollout_id)
    assert {uuid: row["status"] for uuid, row in rows.items()} == {
        "on-podman": "completed",
        "on-docker": "completed",
    }
    assert rows["on-podman"]["current_image_tag"] == "v2.0.1"


async def test_a_device_failing_on_the_pinned_image_is_rolled_back_to_its_pinned_old_one(
    client: httpx.AsyncClient,
) -> None:
    rollout_id, [device] = await pinned_rollout(client, "crashes")

    await device.report(f"{REPO}@{DIGEST}", "exited")
    assert (await device_rows(client, rollout_id))["crashes"]["status"] == "failed"
    assert await target_image(client, "crashes") == OLD
    assert await device.target_image() == f"{REPO}@{OLD_DIGEST}"

    await device.report(f"{REPO}@{OLD_DIGEST}", "running")
    row = (await device_rows(client, rollout_id))["crashes"]
    assert (row["status"], row["current_image_tag"]) == ("rolled_back", "v2.0.0")
