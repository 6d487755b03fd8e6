"""``metric`` health checks through the API, on both databases: devices report their metrics
in their state reports; those that run hot on the new image are failed and rolled back, the
others complete; a bound relative to the device's own baseline; too few reports is unknown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.devices.metric_samples import MAX_AGE, prune
from fleetwave.store.tables import device_metric_samples
from tests.integration.engine import ScriptedDevice, device_rows, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import docker_hub_push, policy

OLD, NEW = "iotistic/myapp:v2.0.0", "iotistic/myapp:v2.0.1"
ONE_BATCH = {"update_strategy": "auto", "max_failure_rate": 1, "max_retries": 0}


async def devices(client: httpx.AsyncClient, *uuids: str) -> list[ScriptedDevice]:
    found = []
    for uuid in uuids:
        device = ScriptedDevice(
            client, await register_device(client, uuid=uuid, apps=target_apps(OLD))
        )
        await device.report(OLD)
        found.append(device)
    return found


async def report_every_10_s(
    clock: ManualClock, by_device: dict[ScriptedDevice, list[dict[str, Any]]], image: str
) -> None:
    """Each device reports its readings in turn, 10 s apart."""
    for step in range(max(len(r) for r in by_device.values())):
        clock.advance(timedelta(seconds=10))
        for device, readings in by_device.items():
            if step < len(readings):
                await device.report(image, readings=readings[step])


async def test_devices_that_run_hot_on_the_new_image_are_rolled_back_the_others_complete(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    check = {"type": "metric", "name": "cpu", "metric": "cpu_usage", "max": 80}
    await policy(client, **ONE_BATCH, health_check_config=[check | {"window_seconds": 60}])
    hot, cool = await devices(client, "dev-hot", "dev-cool")
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    for device in (hot, cool):
        assert await device.apply_target() == NEW
    await report_every_10_s(
        clock,
        {
            hot: [{"cpu_usage": 91 + i, "temperature": 70} for i in range(5)],
            cool: [{"cpu_usage": 30 + i, "temperature": 50} for i in range(5)],
        },
        NEW,
    )
    await tick(container)  # 50 s: the 60 s window is still open
    assert {r["status"] for r in (await device_rows(client, rid)).values()} == {"health_checking"}
    clock.advance(timedelta(seconds=10))
    await tick(container)
    rows = await device_rows(client, rid)
    assert rows["dev-cool"]["status"] == "completed"
    judged = rows["dev-cool"]["health_check_details"]["checks"]["cpu"]
    assert judged["passed"] is True and judged["value"] == 32 and judged["reports"] == 5
    failed = rows["dev-hot"]
    assert failed["status"] == "failed"
    assert failed["error_message"] == "a health check failed past its retries"
    details = failed["health_check_details"]
    assert details["failed_check"] == "cpu" and details["checks"]["cpu"]["value"] == 93
    assert "above max 80" in details["checks"]["cpu"]["last_error"]
    assert await hot.target_image() == OLD  # auto-rollback sends it back
    assert await cool.target_image() == NEW


async def test_a_relative_bound_compares_with_the_devices_own_baseline(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    check = {
        "type": "metric",
        "name": "memory",
        "metric": "memory_usage",
        "max_increase_percent": 25,
        "window_seconds": 60,
    }
    await policy(client, **ONE_BATCH, health_check_config=[check])
    leaky, steady = await devices(client, "dev-leaky", "dev-steady")
    # the baseline: both use about 400 MB before the update, a minute's worth of reports
    await report_every_10_s(
        clock, {d: [{"memory_usage": 400 + i} for i in range(5)] for d in (leaky, steady)}, OLD
    )
    clock.advance(timedelta(seconds=5))
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    for device in (leaky, steady):
        await device.apply_target()
    await report_every_10_s(
        clock,
        {
            leaky: [{"memory_usage": 520 + 10 * i} for i in range(5)],  # +35 % and growing
            steady: [{"memory_usage": 450 + i} for i in range(5)],  # +12 %
        },
        NEW,
    )
    clock.advance(timedelta(seconds=10))
    await tick(container)
    rows = await device_rows(client, rid)
    assert rows["dev-steady"]["status"] == "completed"
    memory = rows["dev-leaky"]["health_check_details"]["checks"]["memory"]
    assert rows["dev-leaky"]["status"] == "failed"
    assert memory["baseline"] == 402 and memory["value"] == 540
    assert "25 % above the baseline 402" in memory["last_error"]


async def test_too_few_reports_is_unknown_and_fails_as_a_health_timeout(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    check = {"type": "metric", "name": "temp", "metric": "metrics.board_temp", "max": 70}
    await policy(client, **ONE_BATCH, health_check_config=[check | {"window_seconds": 60}])
    [quiet] = await devices(client, "dev-quiet")
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    await quiet.apply_target()
    await report_every_10_s(clock, {quiet: [{"metrics": {"board_temp": 40}}]}, NEW)
    clock.advance(timedelta(seconds=50))
    await tick(container)
    row = (await device_rows(client, rid))["dev-quiet"]
    assert row["status"] == "failed" and row["error_message"].startswith("no health verdict")
    assert row["health_check_details"]["checks"]["temp"]["reports"] == 1
    assert (
        "1 reports with metrics.board_temp"
        in row["health_check_details"]["checks"]["temp"]["unknown"]
    )


async def test_samples_are_pruned_by_age_and_count(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    [device] = await devices(client, "dev-p")
    await report_every_10_s(clock, {device: [{"cpu_usage": v} for v in (1, 2, 3)]}, OLD)
    clock.advance(MAX_AGE - timedelta(seconds=5))  # the first two are now too old
    async with container.db.transaction() as conn:
        assert await prune(conn, clock.now(), per_device=3) == 2
    await report_every_10_s(clock, {device: [{"cpu_usage": v} for v in (4, 5, 6)]}, OLD)
    async with container.db.transaction() as conn:
        assert await prune(conn, clock.now(), per_device=3) == 1  # the oldest beyond 3
        kept = list(await conn.execute(select(device_metric_samples.c.samples)))
    assert sorted(row.samples["cpu_usage"] for row in kept) == [4, 5, 6]


async def test_a_metric_window_longer_than_the_health_timeout_is_refused(
    client: httpx.AsyncClient,
) -> None:
    check = {"type": "metric", "metric": "cpu_usage", "max": 80, "window_seconds": 600}
    response = await client.post(
        "/api/v1/image-policies",
        json={
            "image_pattern": "iotistic/myapp:*",
            "health_check_timeout_seconds": 300,
            "health_check_config": {"checks": [check]},
        },
    )
    assert response.status_code == 422, response.text
    assert "health_check_config.checks[0].window_seconds" in response.text
    assert "shorter than health_check_timeout_seconds (300)" in response.text
