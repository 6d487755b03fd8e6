"""Agents that report container states only, and agents that stall (issue 13, part 4), with
replayed iotistic-shaped reports on both databases.

The iotistic agent never reports ``pulling`` or ``updating``: a device running its target's
image is updated, a container that exited (or that its restart policy keeps restarting) is a
failure and is rolled back. Its apply loop can stall while it goes on polling and reporting
(on Podman it waits for a silent container's first log line): such a device is flagged "not
applying its target" in the rollout's ``waiting_for``, on the device and by one event, instead
of sitting in ``scheduled`` in silence until the update timeout.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.conftest import ADMIN_TOKEN
from tests.integration.engine import NEW, OLD, device_rows, push, rollout, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.iotistic import IotisticDevice
from tests.integration.pipeline import policy


async def iotistic_fleet(client: httpx.AsyncClient, *uuids: str) -> list[IotisticDevice]:
    fleet = []
    for uuid in uuids:
        device = IotisticDevice(
            client, await register_device(client, uuid=uuid, apps=target_apps(OLD))
        )
        await device.report(OLD, metrics=True)
        fleet.append(device)
    return fleet


async def dashboard(container: Container, *paths: str) -> list[str]:
    """The pages, as a logged-in operator sees them."""
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test") as browser:
        assert (await browser.post("/ui/login", data={"token": ADMIN_TOKEN})).status_code == 303
        pages = [await browser.get(path) for path in paths]
    assert all(page.status_code == 200 for page in pages)
    return [page.text for page in pages]


async def events_of(client: httpx.AsyncClient, rid: str, kind: str) -> list[dict[str, Any]]:
    page = await client.get(
        "/api/v1/events", params={"rollout_id": rid, "event_type": kind, "limit": 1000}
    )
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def test_an_agent_reporting_container_states_only_is_judged_by_them(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, update_strategy="auto", soak_seconds=60, max_retries=0, max_failure_rate=1)
    good, crashing, looping = await iotistic_fleet(client, "io-good", "io-exits", "io-loops")
    rid = await push(client)

    assert await good.apply_target() == NEW  # scheduled → running the new image
    await crashing.apply_target("exited")  # the container ended at once
    await looping.apply_target()  # running, for a moment…
    rows = await device_rows(client, rid)
    assert rows["io-good"]["status"] == rows["io-loops"]["status"] == "health_checking"
    assert rows["io-exits"]["status"] == "failed"
    assert rows["io-exits"]["error_message"] == "1001/app is exited"
    await looping.report(NEW, "restarting")  # …then restarted by its policy: a crash
    row = (await device_rows(client, rid))["io-loops"]
    assert row["status"] == "failed"
    assert row["error_message"] == (
        "1001/app is restarting (it exited; its restart policy starts it again)"
    )

    for sick in (crashing, looping):  # rolled back to their own old image
        assert await sick.target_image() == OLD
        await sick.report(OLD)
    clock.advance(timedelta(seconds=60))
    await tick(container)
    rows = await device_rows(client, rid)
    assert {uuid: row["status"] for uuid, row in rows.items()} == {
        "io-good": "completed",
        "io-exits": "rolled_back",
        "io-loops": "rolled_back",
    }
    detail = await rollout(client, rid)
    assert (detail["healthy_devices"], detail["rolled_back_devices"]) == (1, 2)


async def test_a_stalled_agent_is_seen_not_applying_its_target_said_once(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client,
        update_strategy="auto",
        update_timeout_minutes=30,
        soak_seconds=60,
        max_retries=1,
        max_failure_rate=1,
    )
    late, stuck, _silent = await iotistic_fleet(client, "io-late", "io-stuck", "io-silent")
    rid = await push(client)
    await tick(container)  # online when told: their update timers start
    assert (await rollout(client, rid))["waiting_for"] == "the last batch is still running"

    for _ in range(2):  # its apply loop stalled; its report loop goes on, metrics every 5 min
        clock.advance(timedelta(minutes=5))
        for device in (late, stuck):
            await device.poll()  # it keeps polling: it has the new target
            await device.report(OLD, metrics=True)
        await tick(container)
    # 10 minutes on: flagged, in the rollout's wait, on the device, and by one event each;
    # the silent one, not heard from for 10 minutes, is offline
    detail = await rollout(client, rid)
    assert detail["waiting_for"] == (
        "the last batch is still running (3 devices not finished, 1 of them offline); "
        "2 devices not applying their target"
    )
    rows = await device_rows(client, rid)
    assert rows["io-stuck"]["status"] == "scheduled"
    assert rows["io-stuck"]["not_applying_since"] is not None
    assert rows["io-silent"]["not_applying_since"] is None  # not heard from: not this
    device = (await client.get("/api/v1/devices/io-stuck")).json()
    assert device["not_applying_target"] == {
        "rollout_id": rid,
        "image": NEW,
        "since": rows["io-stuck"]["not_applying_since"],
    }
    assert (await client.get("/api/v1/devices/io-silent")).json()["not_applying_target"] is None
    listed = (await client.get("/api/v1/devices")).json()["items"]
    assert [d["uuid"] for d in listed if d["not_applying_target"]] == ["io-late", "io-stuck"]
    rollout_page, devices_page = await dashboard(container, f"/ui/rollouts/{rid}", "/ui/devices")
    assert "2 devices not applying their target" in rollout_page
    assert rollout_page.count("data-not-applying") == devices_page.count("data-not-applying") == 2
    assert "container states only" in devices_page  # what an agent declaring nothing is

    for _ in range(3):  # more reports, more ticks: nothing more said
        clock.advance(timedelta(minutes=1))
        await stuck.report(OLD, metrics=True)
        await tick(container)
    flagged = await events_of(client, rid, "device_not_applying")
    assert sorted(e["device_uuid"] for e in flagged) == ["io-late", "io-stuck"]
    assert flagged[0]["message"].startswith(
        "not applying its target: heard from, but nothing applied for 10 min"
    )
    assert "first log line" in flagged[0]["message"]

    # the late one gets going at last: no longer counted
    assert await late.apply_target() == NEW
    await tick(container)
    assert (await rollout(client, rid))["waiting_for"] == (
        "the last batch is still running (3 devices not finished, 1 of them offline); "
        "1 device not applying its target"
    )
    assert (await client.get("/api/v1/devices/io-late")).json()["not_applying_target"] is None

    # the update timeout fails the stuck one, saying it was heard from, and sends it back
    clock.advance(timedelta(minutes=30))
    await tick(container)
    rows = await device_rows(client, rid)
    assert rows["io-late"]["status"] == "completed"
    assert rows["io-stuck"]["status"] == "failed"
    assert rows["io-stuck"]["error_message"] == (
        "heard from, but did not apply its target within 0:30:00"
    )
    assert rows["io-silent"]["error_message"] == "did not run the new image within 0:30:00"
    failures = {e["device_uuid"]: e for e in await events_of(client, rid, "device_failed")}
    assert failures["io-stuck"]["event_data"] == {"reason": "timeout", "not_applying": True}
    assert await stuck.target_image() == OLD

    # a retry tells it again: it is watched afresh
    retried = await client.post(
        f"/api/v1/rollouts/{rid}/retry-failed",
    )
    assert retried.status_code == 200, retried.text
    await tick(container)
    row = (await device_rows(client, rid))["io-stuck"]
    assert row["status"] == "scheduled" and row["not_applying_since"] is None
    assert (await client.get("/api/v1/devices/io-stuck")).json()["not_applying_target"] is None
