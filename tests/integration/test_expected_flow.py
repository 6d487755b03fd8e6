"""The original plan's "Expected Flow", step by step, with scripted devices and a manual clock:
webhook → batch 1 (10%) → healthy → delay → batch 2 (50%) → one device fails and is rolled
back → the rate stays under 20% → batch 3 (100%) → completed. Then the same with too many
failures: the rollout pauses itself before its next batch and an operator resumes it."""

from __future__ import annotations

from datetime import timedelta

import httpx

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.conftest import acting
from tests.integration.engine import (
    NEW,
    OLD,
    batch_devices,
    device_rows,
    fleet_of,
    rollout,
    tick,
)
from tests.integration.pipeline import docker_hub_push, policy


async def test_the_expected_flow_completes_with_one_device_rolled_back(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=30, soak_seconds=60, max_retries=1)
    devices = await fleet_of(client, 20)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]

    # batch 1 (10%): two devices get v2.0.1, pull it, run it, pass the soak period
    first = await batch_devices(client, rid, 1)
    assert len(first) == 2
    for uuid in first:
        assert await devices[uuid].apply_target() == NEW
    rows = await device_rows(client, rid, batch=1)
    assert {r["status"] for r in rows.values()} == {"health_checking"}
    await tick(container)
    assert (await rollout(client, rid))["current_batch"] == 1
    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["batches"][0]["counts"] == {"completed": 2} and detail["healthy_devices"] == 2
    # the delay: batch 2 waits 30 minutes after batch 1 finished
    clock.advance(timedelta(minutes=29))
    await tick(container)
    assert (await rollout(client, rid))["current_batch"] == 1
    clock.advance(timedelta(minutes=1))
    await tick(container)
    assert (await rollout(client, rid))["current_batch"] == 2

    # batch 2 (to 50%): eight devices; one crashes on v2.0.1, twice (retries: 1)
    second = await batch_devices(client, rid, 2)
    assert len(second) == 8
    bad, good = second[0], second[1:]
    for uuid in good:
        await devices[uuid].apply_target()
    assert await devices[bad].target_image() == NEW
    await devices[bad].report(NEW, "exited", error="exit code 1")
    assert (await device_rows(client, rid))[bad]["status"] == "scheduled"  # a retry
    clock.advance(timedelta(seconds=31))
    await tick(container)
    target = await devices[bad].target()
    labels = target["1001"]["services"][0]["config"]["labels"]
    assert labels["io.fleetwave.attempt"] == "1"  # a new target, so the agent applies it again
    await devices[bad].report(NEW, "exited", error="exit code 1")
    row = (await device_rows(client, rid))[bad]
    assert row["status"] == "failed" and row["retry_count"] == 1
    # handled: rolled back to its own old image, which it reports running
    assert await devices[bad].target_image() == OLD
    await devices[bad].report(OLD)
    assert (await device_rows(client, rid))[bad]["status"] == "rolled_back"

    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["healthy_devices"] == 9 and detail["rolled_back_devices"] == 1
    assert detail["failure_rate"] == 0.1  # 1 of 10 finished: under the 20% bound
    assert detail["status"] == "in_progress"
    clock.advance(timedelta(minutes=30))
    await tick(container)

    # batch 3 (to 100%): the last ten devices update, and the rollout completes
    third = await batch_devices(client, rid, 3)
    assert len(third) == 10
    for uuid in third:
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "completed" and detail["completed_at"]
    assert (detail["healthy_devices"], detail["rolled_back_devices"]) == (19, 1)
    assert detail["failure_rate"] == 0.05 and detail["updated_devices"] == 19
    [active] = [r for r in (await client.get("/api/v1/rollouts/active")).json()] or [None]
    assert active is None  # the view lists unfinished rollouts only
    kinds = [
        e["event_type"]
        for e in (
            await client.get(f"/api/v1/rollouts/{rid}/events", params={"limit": 1000})
        ).json()["items"]
        if e["device_uuid"] is None
    ]
    assert kinds == [
        "webhook_received",
        "rollout_created",
        "rollout_started",
        "batch_started",
        "batch_completed",
        "batch_started",
        "batch_completed",
        "batch_started",
        "batch_completed",
        "rollout_completed",
    ]


async def test_too_many_failures_pause_the_rollout_until_an_operator_resumes_it(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=30, soak_seconds=60, max_retries=0)
    devices = await fleet_of(client, 20)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    for uuid in await batch_devices(client, rid, 1):
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    clock.advance(timedelta(minutes=30))
    await tick(container)
    second = await batch_devices(client, rid, 2)
    for uuid in second[:3]:  # three of ten finished devices fail: 30% > 20%
        await devices[uuid].apply_target("exited")
    for uuid in second[3:]:
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "paused" and detail["auto_paused"] is True
    assert detail["failure_rate"] == 0.3 and detail["current_batch"] == 2
    pause = (await client.get("/api/v1/events", params={"event_type": "rollout_paused"})).json()
    [event] = pause["items"]
    assert (
        event["event_data"]["failure_rate"] == 0.3
        and event["event_data"]["max_failure_rate"] == 0.2
    )
    clock.advance(timedelta(hours=2))
    await tick(container)
    assert (await rollout(client, rid))["current_batch"] == 2  # no further batch

    alice = await acting(client, "alice")
    refused = await client.post(f"/api/v1/rollouts/{rid}/resume", headers=alice)
    assert refused.status_code == 409 and "force" in refused.json()["error"]
    resumed = await client.post(
        f"/api/v1/rollouts/{rid}/resume",
        json={"force": True, "note": "known flake"},
        headers=alice,
    )
    assert resumed.status_code == 200, resumed.text
    detail = resumed.json()
    assert detail["status"] == "in_progress" and detail["auto_paused"] is False
    assert detail["current_batch"] == 3 and detail["resumed_at"]
    resume_events = (
        await client.get("/api/v1/events", params={"event_type": "rollout_resumed"})
    ).json()
    assert resume_events["items"][0]["event_data"]["by"] == "alice"
