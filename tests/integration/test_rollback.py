"""Rollbacks, driven by real health checks: the server probes each device at its own loopback
address (127.0.0.2, 127.0.0.3, …) where a tiny HTTP server answers 200 or 500 by the address
it was reached on. Devices run different old tags and each goes back to its own. Then the
operator's rollbacks (all devices, one device), device-side check results, and a rollback
that fails too. Both databases."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.domain.health import parse_checks
from tests.conftest import acting
from tests.integration.engine import ScriptedDevice, device_rows, rollout, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.health_helpers import HttpServer, Reply, Request, loopback
from tests.integration.pipeline import docker_hub_push, policy

REPO = "iotistic/myapp"
OLD_TAGS = ("v1.8.0", "v1.9.0")
NEW = f"{REPO}:v2.0.1"
FLEET = 20


@dataclass
class Device:
    scripted: ScriptedDevice
    old: str  # its own old image
    ip: str

    @property
    def uuid(self) -> str:
        return str(self.scripted.uuid)


@dataclass
class Health:
    """The devices' health endpoints: 500 from the addresses in ``failing``, else 200."""

    server: HttpServer
    failing: set[str] = field(default_factory=set)


@pytest.fixture
async def health() -> AsyncIterator[Health]:
    failing: set[str] = set()

    def answer(request: Request) -> Reply:
        if request.host in failing:
            return Reply(500, "unhealthy")
        return Reply(200, "ok")

    async with HttpServer(answer, hosts=[loopback(i) for i in range(FLEET)]) as server:
        yield Health(server, failing)


def server_check(port: int) -> dict[str, Any]:
    return {
        "type": "http",
        "name": "health",
        "url": f"http://{{device_ip}}:{port}/health",
        "run_on": "server",
        "retries": 0,
        "timeout_seconds": 2,
    }


async def fleet(client: httpx.AsyncClient, count: int = FLEET) -> dict[str, Device]:
    devices = {}
    for i in range(count):
        old, ip = f"{REPO}:{OLD_TAGS[i % 2]}", loopback(i)
        created = await register_device(
            client, uuid=f"dev-{i:02}", apps=target_apps(old), ip_address=ip
        )
        device = Device(ScriptedDevice(client, created), old, ip)
        await device.scripted.report(old)  # online, on its own old image
        devices[device.uuid] = device
    return devices


async def batch_of(client: httpx.AsyncClient, rid: str, batch: int) -> list[str]:
    return sorted(await device_rows(client, rid, batch=batch))


async def target_state(client: httpx.AsyncClient, uuid: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/devices/{uuid}/target-state")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


async def images_and_version(client: httpx.AsyncClient, uuid: str) -> tuple[str, str, int]:
    state = await target_state(client, uuid)
    service = state["apps"]["1001"]["services"][0]
    return service["imageName"], service["config"]["image"], state["version"]


async def events(client: httpx.AsyncClient, rid: str, **params: Any) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"rollout_id": rid, "limit": 1000} | params
    response = await client.get("/api/v1/events", params=query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@dataclass
class Staged:
    rid: str
    devices: dict[str, Device]
    first: list[str]
    second: list[str]
    bad: list[str]
    versions: dict[str, int]  # target versions while on the new image


async def through_batch_two(
    client: httpx.AsyncClient,
    container: Container,
    clock: ManualClock,
    health: Health,
    max_failure_rate: float,
) -> Staged:
    """A staged rollout over 20 devices (2, 8, 10): batch 1 healthy, then two devices of
    batch 2 (one on each old tag) fail the server's health check."""
    await policy(
        client,
        batch_delay_minutes=30,
        soak_seconds=0,
        max_retries=0,
        max_failure_rate=max_failure_rate,
        health_check_config=[server_check(health.server.port)],
    )
    devices = await fleet(client)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    detail = await rollout(client, rid)
    assert detail["batch_sizes"] == [2, 8, 10] and detail["old_tag"] in (*OLD_TAGS, None)

    first = await batch_of(client, rid, 1)
    for uuid in first:
        assert await devices[uuid].scripted.apply_target() == NEW
    await tick(container)  # the server probes them: 200
    rows = await device_rows(client, rid, batch=1)
    assert {r["status"] for r in rows.values()} == {"completed"}
    assert all(r["health_check_details"]["checks"]["health"]["passed"] for r in rows.values())
    clock.advance(timedelta(minutes=30))
    await tick(container)
    assert (await rollout(client, rid))["current_batch"] == 2

    second = await batch_of(client, rid, 2)
    assert len(second) == 8
    bad = [
        next(u for u in second if devices[u].old.endswith(tag)) for tag in OLD_TAGS
    ]  # one on each old tag
    health.failing.update(devices[u].ip for u in bad)
    versions = {}
    for uuid in second:
        assert await devices[uuid].scripted.apply_target() == NEW
        versions[uuid] = (await images_and_version(client, uuid))[2]
    await tick(container)
    return Staged(rid, devices, first, second, bad, versions)


async def assert_back_on_own_old_image(
    client: httpx.AsyncClient, device: Device, version_before: int
) -> None:
    image_name, config_image, version = await images_and_version(client, device.uuid)
    assert image_name == config_image == device.old, (device.uuid, image_name, config_image)
    assert version > version_before
    assert await device.scripted.target_image() == device.old  # what the device polls


async def test_failing_devices_go_back_to_their_own_old_tags_and_the_rollout_completes(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    staged = await through_batch_two(client, container, clock, health, max_failure_rate=0.3)
    rid, devices, bad = staged.rid, staged.devices, staged.bad
    assert {devices[u].old for u in bad} == {f"{REPO}:{tag}" for tag in OLD_TAGS}

    rows = await device_rows(client, rid, batch=2)
    for uuid in bad:
        row = rows[uuid]
        assert row["status"] == "failed" and row["health_check_passed"] is False
        details = row["health_check_details"]
        assert details["verdict"] == "failed" and details["failed_check"] == "health"
        assert details["checks"]["health"]["last_error"] == "HTTP 500, expected 200"
        await assert_back_on_own_old_image(client, devices[uuid], staged.versions[uuid])
    assert {rows[u]["status"] for u in staged.second if u not in bad} == {"completed"}
    triggered = await events(client, rid, event_type="rollback_triggered")
    assert {e["device_uuid"]: e["event_data"]["old_images"] for e in triggered} == {
        u: {"1001/app": devices[u].old} for u in bad
    }

    for uuid in bad:  # the agents apply their targets: their old images run again
        await devices[uuid].scripted.report(devices[uuid].old)
    rows = await device_rows(client, rid, batch=2)
    for uuid in bad:
        assert rows[uuid]["status"] == "rolled_back" and rows[uuid]["rolled_back_at"]
        assert rows[uuid]["current_image_tag"] == devices[uuid].old.split(":")[1]

    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "in_progress" and detail["auto_paused"] is False
    assert (detail["healthy_devices"], detail["rolled_back_devices"]) == (8, 2)
    assert detail["failure_rate"] == 0.2  # 2 of 10: under the explicit 30% bound

    clock.advance(timedelta(minutes=30))
    await tick(container)
    third = await batch_of(client, rid, 3)
    assert len(third) == 10
    for uuid in third:
        await devices[uuid].scripted.apply_target()
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "completed"
    assert (detail["healthy_devices"], detail["rolled_back_devices"]) == (18, 2)
    assert detail["failure_rate"] == 0.1
    # every device was probed once, at its own address
    hosts = Counter(r.host for r in health.server.requests)
    assert hosts == Counter({d.ip: 1 for d in devices.values()})


async def test_over_the_bound_the_rollout_pauses_and_rollback_all_restores_every_device(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    staged = await through_batch_two(client, container, clock, health, max_failure_rate=0.1)
    rid, devices, bad = staged.rid, staged.devices, staged.bad
    detail = await rollout(client, rid)
    assert detail["status"] == "paused" and detail["auto_paused"] is True
    assert detail["failure_rate"] == 0.2 and detail["current_batch"] == 2
    [paused] = await events(client, rid, event_type="rollout_paused")
    assert paused["event_data"]["auto"] is True
    assert (paused["event_data"]["failed"], paused["event_data"]["finished"]) == (2, 10)
    for uuid in bad:
        await devices[uuid].scripted.report(devices[uuid].old)

    moved = [u for u in staged.first + staged.second if u not in bad]
    before = {u: (await images_and_version(client, u))[2] for u in devices}
    third = await batch_of(client, rid, 3)
    alice = await acting(client, "alice")
    response = await client.post(f"/api/v1/rollouts/{rid}/rollback-all", headers=alice)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rolled_back"

    for uuid in moved:
        await assert_back_on_own_old_image(client, devices[uuid], before[uuid])
    for uuid in [*bad, *third]:  # already back, or never moved: targets untouched
        image_name, config_image, version = await images_and_version(client, uuid)
        assert image_name == config_image == devices[uuid].old and version == before[uuid]
    rows = await device_rows(client, rid)
    assert {rows[u]["status"] for u in third} == {"skipped"}

    for uuid in moved:
        await devices[uuid].scripted.report(devices[uuid].old)
    rows = await device_rows(client, rid)
    assert {rows[u]["status"] for u in moved + bad} == {"rolled_back"}
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "rolled_back" and detail["completed_at"]
    assert detail["rolled_back_devices"] == 10 and detail["healthy_devices"] == 0
    [summary] = await events(client, rid, event_type="rollout_rolled_back")
    assert summary["event_data"]["by"] == "alice" and summary["event_data"]["devices"] == 8

    again = await client.post(f"/api/v1/rollouts/{rid}/rollback-all")
    assert again.status_code == 409


async def test_one_device_can_be_rolled_back_only_if_the_rollout_moved_it(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    await policy(
        client,
        batch_delay_minutes=30,
        max_retries=0,
        health_check_config=[server_check(health.server.port)],
    )
    devices = await fleet(client)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    first = await batch_of(client, rid, 1)
    for uuid in first:
        await devices[uuid].scripted.apply_target()
    await tick(container)
    chosen = devices[first[1]]
    version = (await images_and_version(client, chosen.uuid))[2]

    url = f"/api/v1/rollouts/{rid}/devices/{chosen.uuid}/rollback"
    bob = await acting(client, "bob")
    response = await client.post(url, json={"note": "customer report"}, headers=bob)
    assert response.status_code == 200, response.text
    await assert_back_on_own_old_image(client, chosen, version)
    [event] = [
        e
        for e in await events(client, rid, event_type="rollback_triggered")
        if e["event_data"].get("by") == "bob"
    ]
    assert event["device_uuid"] == chosen.uuid and event["event_data"]["note"] == "customer report"
    await chosen.scripted.report(chosen.old)
    assert (await device_rows(client, rid))[chosen.uuid]["status"] == "rolled_back"
    other = (await device_rows(client, rid))[first[0]]
    assert other["status"] == "completed"  # the other device stays where it is

    twice = await client.post(url)
    assert twice.status_code == 409 and "rolled_back" in twice.json()["error"]
    waiting = (await batch_of(client, rid, 2))[0]
    not_moved = await client.post(f"/api/v1/rollouts/{rid}/devices/{waiting}/rollback")
    assert not_moved.status_code == 409 and "pending" in not_moved.json()["error"]
    assert (await images_and_version(client, waiting))[0] == devices[waiting].old
    stranger = await client.post(f"/api/v1/rollouts/{rid}/devices/nobody-00/rollback")
    assert stranger.status_code == 404
    no_rollout = await client.post(f"/api/v1/rollouts/nope/devices/{chosen.uuid}/rollback")
    assert no_rollout.status_code == 404


async def test_a_device_under_health_checks_can_be_rolled_back_by_hand(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    await policy(
        client, update_strategy="auto", health_check_config=[server_check(health.server.port)]
    )
    devices = await fleet(client, 2)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    device = devices["dev-01"]
    await device.scripted.apply_target()
    assert (await device_rows(client, rid))[device.uuid]["status"] == "health_checking"
    response = await client.post(f"/api/v1/rollouts/{rid}/devices/{device.uuid}/rollback")
    assert response.status_code == 200, response.text
    assert await device.scripted.target_image() == device.old == f"{REPO}:v1.9.0"
    await device.scripted.report(device.old)
    assert (await device_rows(client, rid))[device.uuid]["status"] == "rolled_back"


# --- device-side checks ---------------------------------------------------------------------

DEVICE_CHECK = {
    "type": "http",
    "name": "local",
    "url": "http://localhost:8080/health",
    "retries": 1,
    "timeout_seconds": 5,
}


async def served(client: httpx.AsyncClient, device: Device) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/device/{device.uuid}/state", headers=device.scripted.headers
    )
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()[device.uuid]
    return state


async def post_health(
    client: httpx.AsyncClient,
    device: Device,
    results: list[dict[str, Any]],
    rollout_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"results": results}
    if rollout_id is not None:
        body["rollout_id"] = rollout_id
    return await client.post(
        f"/api/v1/device/{device.uuid}/health",
        json=body,
        headers=device.scripted.headers if headers is None else headers,
    )


async def test_device_side_results_decide_the_verdict(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    await policy(
        client,
        update_strategy="auto",
        max_retries=0,
        max_failure_rate=1,
        health_check_timeout_seconds=120,
        health_check_config={"checks": [DEVICE_CHECK, server_check(health.server.port)]},
    )
    devices = await fleet(client, 4)
    healthy, sick, silent, idle = devices.values()
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]

    # the served state tells the agent which checks to run and where to report them
    state = await served(client, healthy)
    assert state["fleetwave"] == {
        "rollout_id": rid,
        # the server's own check is not the agent's business
        "health_checks": [parse_checks([DEVICE_CHECK])[0].as_json()],
        "health_report": f"/api/v1/device/{healthy.uuid}/health",
    }
    early = await post_health(client, healthy, [{"check": "local", "passed": True}], rid)
    assert early.json() == {"status": "ok", "recorded_for": 0}  # not running the new image yet

    for device in (healthy, sick, silent):
        await device.scripted.apply_target()
    ok = [{"check": "local", "passed": True, "detail": "HTTP 200"}]
    recorded = await post_health(client, healthy, ok, rid)
    assert recorded.status_code == 200 and recorded.json() == {"status": "ok", "recorded_for": 1}
    failing = [{"check": "local", "passed": False, "detail": "HTTP 503"}]
    assert (await post_health(client, sick, failing)).json()["recorded_for"] == 1
    other = await post_health(client, sick, failing, rollout_id="not-this-one")
    assert other.json()["recorded_for"] == 0

    # a device reports for itself only, with its own key
    anonymous = await post_health(client, sick, ok, rid, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    impostor = await post_health(client, sick, ok, rid, headers=healthy.scripted.headers)
    assert impostor.status_code in (401, 403)
    unchecked = await client.post(
        f"/api/v1/device/{sick.uuid}/health",
        json={"results": []},
        headers=sick.scripted.headers,
    )
    assert unchecked.status_code == 422

    await tick(container)
    rows = await device_rows(client, rid)
    assert rows[healthy.uuid]["status"] == "completed"
    assert rows[healthy.uuid]["health_check_details"]["checks"]["local"]["passed"] is True
    assert rows[sick.uuid]["status"] == "health_checking"  # one failure; one retry left
    assert rows[silent.uuid]["status"] == "health_checking"

    clock.advance(timedelta(seconds=10))
    await post_health(client, sick, failing, rid)
    await tick(container)
    rows = await device_rows(client, rid)
    row = rows[sick.uuid]
    assert row["status"] == "failed" and row["health_check_details"]["failed_check"] == "local"
    assert row["health_check_details"]["checks"]["local"]["last_error"] == "HTTP 503"
    assert row["health_check_attempts"] >= 2
    assert await sick.scripted.target_image() == sick.old
    assert "fleetwave" not in await served(client, sick)  # the rollout asks nothing more of it

    clock.advance(timedelta(seconds=111))  # 121 s since it ran the new image: past the timeout
    await tick(container)
    row = (await device_rows(client, rid))[silent.uuid]
    assert row["status"] == "failed" and row["health_check_details"]["verdict"] == "timeout"
    assert await silent.scripted.target_image() == silent.old
    assert (await device_rows(client, rid))[idle.uuid]["status"] == "scheduled"


async def test_a_device_whose_old_image_fails_too_is_rollback_failed(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    await policy(
        client,
        update_strategy="auto",
        max_retries=0,
        max_failure_rate=1,
        health_check_config=[server_check(health.server.port)],
    )
    devices = await fleet(client, 2)
    fine, broken = devices.values()
    health.failing.add(broken.ip)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    for device in devices.values():
        await device.scripted.apply_target()
    await tick(container)
    rows = await device_rows(client, rid)
    assert rows[fine.uuid]["status"] == "completed" and rows[broken.uuid]["status"] == "failed"
    assert await broken.scripted.target_image() == broken.old

    await broken.scripted.report(broken.old, "exited", error="exit code 1")
    row = (await device_rows(client, rid))[broken.uuid]
    assert row["status"] == "rollback_failed"
    assert "exited" in row["error_message"] and "exit code 1" in row["error_message"]
    [event] = await events(client, rid, event_type="rollback_failed")
    assert event["device_uuid"] == broken.uuid
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["failed_devices"] == 1 and detail["rolled_back_devices"] == 0
    assert detail["status"] == "completed"  # max_failure_rate 1


async def test_a_rollback_never_applied_times_out_while_the_rollout_is_paused(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    staged = await through_batch_two(client, container, clock, health, max_failure_rate=0.1)
    assert (await rollout(client, staged.rid))["status"] == "paused"
    clock.advance(timedelta(minutes=30))  # the policy's update timeout; the devices never act
    await tick(container)
    rows = await device_rows(client, staged.rid)
    assert {rows[u]["status"] for u in staged.bad} == {"rollback_failed"}
    stuck = await events(client, staged.rid, event_type="rollback_failed")
    assert sorted(e["device_uuid"] for e in stuck) == sorted(staged.bad)
    assert {e["event_data"]["reason"] for e in stuck} == {"rollback_timeout"}


async def test_a_rollback_never_applied_times_out_after_the_rollout_finished(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    """The failing device is in the last batch: the rollout concludes at once (a failed
    device is finished), yet its rollback is still outstanding and must still time out."""
    await policy(
        client,
        update_strategy="auto",
        max_retries=0,
        max_failure_rate=1,
        update_timeout_minutes=10,
        health_check_config=[server_check(health.server.port)],
    )
    [device] = (await fleet(client, 1)).values()
    health.failing.add(device.ip)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    await device.scripted.apply_target()
    await tick(container)
    assert (await device_rows(client, rid))[device.uuid]["status"] == "failed"
    assert (await rollout(client, rid))["status"] == "completed"
    clock.advance(timedelta(minutes=10))  # the device never applies its old target
    await tick(container)
    assert (await device_rows(client, rid))[device.uuid]["status"] == "rollback_failed"
    [event] = await events(client, rid, event_type="rollback_failed")
    assert event["event_data"]["reason"] == "rollback_timeout"


async def test_a_rollback_all_never_applied_times_out(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, health: Health
) -> None:
    await policy(
        client,
        update_strategy="auto",
        update_timeout_minutes=10,
        health_check_config=[server_check(health.server.port)],
    )
    devices = await fleet(client, 2)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    for device in devices.values():
        await device.scripted.apply_target()
    await tick(container)
    response = await client.post(f"/api/v1/rollouts/{rid}/rollback-all")
    assert response.status_code == 200 and response.json()["status"] == "rolled_back"
    back, never = devices.values()
    await back.scripted.report(back.old)
    clock.advance(timedelta(minutes=10))  # ``never`` never applies its old target
    await tick(container)
    rows = await device_rows(client, rid)
    assert rows[back.uuid]["status"] == "rolled_back"
    assert rows[never.uuid]["status"] == "rollback_failed"
    [event] = await events(client, rid, event_type="rollback_failed")
    assert event["device_uuid"] == never.uuid
