"""A pushed image becomes a rollout: policy, tag rule, devices, batches, first targets."""

from __future__ import annotations

import asyncio

import httpx

from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import docker_hub_push, fleet, policy, rollouts, target_image


async def test_the_plans_scenario_makes_a_staged_rollout_with_its_first_batch_targeted(
    client: httpx.AsyncClient,
) -> None:
    await policy(client)
    uuids = await fleet(client, 10)
    response = await docker_hub_push(client, "v2.0.1")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "in_progress" and answer["affected_devices"] == 10
    assert answer["outcome"] == "rollout_created" and answer["rollout_id"]

    [rollout] = await rollouts(client)
    assert rollout["rollout_id"] == answer["rollout_id"]
    assert rollout["batch_sizes"] == [1, 4, 5]  # 10% / 40% / 50%
    assert (rollout["old_tag"], rollout["new_tag"], rollout["strategy"]) == (
        "v2.0.0",
        "v2.0.1",
        "staged",
    )
    assert rollout["current_batch"] == 1 and rollout["triggered_by"] == "webhook:dockerhub"
    detail = (await client.get(f"/api/v1/rollouts/{rollout['rollout_id']}")).json()
    assert [b["counts"] for b in detail["batches"]] == [
        {"scheduled": 1},
        {"pending": 4},
        {"pending": 5},
    ]
    first = (
        await client.get(f"/api/v1/rollouts/{rollout['rollout_id']}/devices", params={"batch": 1})
    ).json()["items"]
    assert [d["device_uuid"] for d in first] == [uuids[0]]
    assert await target_image(client, uuids[0]) == "iotistic/myapp:v2.0.1"
    state = (await client.get(f"/api/v1/devices/{uuids[0]}/target-state")).json()
    assert state["version"] == 2
    for uuid in uuids[1:]:
        assert await target_image(client, uuid) == "iotistic/myapp:v2.0.0"
    events = (await client.get(f"/api/v1/rollouts/{rollout['rollout_id']}/events")).json()
    assert [e["event_type"] for e in events["items"]] == [
        "webhook_received",
        "rollout_created",
        "rollout_started",
        "batch_started",
        "device_scheduled",
    ]


async def test_each_device_keeps_its_own_old_tag_and_every_matching_service_moves(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, update_strategy="auto")
    await register_device(client, uuid="old", apps=target_apps("iotistic/myapp:v1.9.0"))
    two_services = target_apps("iotistic/myapp:v2.0.0")
    sidecar = dict(two_services["1001"]["services"][0]) | {"serviceId": 2, "serviceName": "worker"}
    sidecar["config"] = dict(sidecar["config"]) | {"image": "docker.io/iotistic/myapp:v2.0.0"}
    sidecar["imageName"] = "docker.io/iotistic/myapp:v2.0.0"
    two_services["1001"]["services"].append(sidecar)
    two_services |= target_apps("index.docker.io/iotistic/myapp:v2.0.0", app_id=1002)
    two_services |= target_apps("postgres:16", app_id=1003)
    await register_device(client, uuid="multi", apps=two_services)

    answer = (await docker_hub_push(client, "v2.0.1")).json()
    assert answer["affected_devices"] == 2
    rows = (await client.get(f"/api/v1/rollouts/{answer['rollout_id']}/devices")).json()["items"]
    by_uuid = {r["device_uuid"]: r for r in rows}
    assert by_uuid["old"]["old_image_tag"] == "v1.9.0"
    assert by_uuid["multi"]["old_images"] == {
        "1001/app": "iotistic/myapp:v2.0.0",
        "1001/worker": "docker.io/iotistic/myapp:v2.0.0",
        "1002/app": "index.docker.io/iotistic/myapp:v2.0.0",
    }
    state = (await client.get("/api/v1/devices/multi/target-state")).json()["apps"]
    assert [s["imageName"] for s in state["1001"]["services"]] == [
        "iotistic/myapp:v2.0.1",
        "docker.io/iotistic/myapp:v2.0.1",
    ]
    moved = state["1002"]["services"][0]["config"]["image"]
    assert moved == "index.docker.io/iotistic/myapp:v2.0.1"
    assert state["1003"]["services"][0]["imageName"] == "postgres:16"


async def test_policy_filters_choose_the_devices(client: httpx.AsyncClient) -> None:
    await policy(client, update_strategy="auto", fleet_id="north", device_tags={"site": "lyon"})
    await fleet(client, 2, fleet_id="north", tags={"site": "lyon"}, prefix="in")
    await fleet(client, 2, fleet_id="north", tags={"site": "paris"}, prefix="paris")
    await fleet(client, 2, fleet_id="south", tags={"site": "lyon"}, prefix="south")
    answer = (await docker_hub_push(client, "v2.0.1")).json()
    assert answer["affected_devices"] == 2
    rows = (await client.get(f"/api/v1/rollouts/{answer['rollout_id']}/devices")).json()["items"]
    assert sorted(r["device_uuid"] for r in rows) == ["in-000", "in-001"]
    filters = (await rollouts(client))[0]["filters_applied"]
    assert filters["filters"]["fleet_id"] == "north"
    assert filters["filters"]["device_tags"] == {"site": "lyon"}


async def test_tag_rules_ignore_pushes_with_the_reason_recorded(client: httpx.AsyncClient) -> None:
    await policy(client, semver_policy="minor", exclude_tags=["*-debug"])
    await fleet(client, 3)
    major = (await docker_hub_push(client, "v3.0.0")).json()
    assert major["outcome"] == "ignored" and "major" in major["message"]
    latest = (await docker_hub_push(client, "latest")).json()
    assert latest["outcome"] == "ignored" and "not a semantic version" in latest["message"]
    debug = (await docker_hub_push(client, "v2.1.0-debug")).json()
    assert debug["outcome"] == "ignored" and "excluded" in debug["message"]
    pre = (await docker_hub_push(client, "v2.1.0-rc.1")).json()
    assert pre["outcome"] == "ignored" and "pre-release" in pre["message"]
    assert await rollouts(client) == []
    delivered = (await client.get("/api/v1/webhooks/deliveries")).json()
    assert {d["tag"]: d["outcome"] for d in delivered} == {
        "v3.0.0": "ignored",
        "latest": "ignored",
        "v2.1.0-debug": "ignored",
        "v2.1.0-rc.1": "ignored",
    }
    assert all(d["reason"] for d in delivered)
    minor = (await docker_hub_push(client, "v2.1.0")).json()
    assert minor["outcome"] == "rollout_created" and minor["affected_devices"] == 3


async def test_a_semver_rule_leaves_out_devices_too_far_behind(client: httpx.AsyncClient) -> None:
    await policy(client, semver_policy="minor", update_strategy="auto")
    await fleet(client, 2)
    await fleet(client, 1, image="iotistic/myapp:v1.4.0", prefix="v1")
    answer = (await docker_hub_push(client, "v2.1.0")).json()
    assert answer["affected_devices"] == 2
    excluded = (await rollouts(client))[0]["filters_applied"]["excluded"]
    [refusal] = excluded["refused_by_tag_policy"]
    assert refusal["devices"] == ["v1-000"] and "major" in refusal["reason"]
    assert await target_image(client, "v1-000") == "iotistic/myapp:v1.4.0"


async def test_pushes_nobody_needs_make_nothing_and_say_why(client: httpx.AsyncClient) -> None:
    unmatched = (await docker_hub_push(client, "v2.0.1")).json()
    assert unmatched["outcome"] == "ignored" and "no enabled policy" in unmatched["message"]
    await policy(client, update_strategy="auto")
    nobody = (await docker_hub_push(client, "v2.0.1", pushed_at=2)).json()
    assert nobody["outcome"] == "ignored" and "no device needs" in nobody["message"]
    await fleet(client, 2)
    done = (await docker_hub_push(client, "v2.0.1", pushed_at=3)).json()
    assert done["outcome"] == "rollout_created"
    again = (await docker_hub_push(client, "v2.0.1", pushed_at=4)).json()
    assert again["outcome"] == "duplicate" and done["rollout_id"] in again["message"]
    assert len(await rollouts(client)) == 1


async def test_redeliveries_and_bursts_make_one_rollout(client: httpx.AsyncClient) -> None:
    await policy(client)
    await fleet(client, 5)
    answers = await asyncio.gather(*(docker_hub_push(client, "v2.0.1") for _ in range(6)))
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["duplicate"] * 5 + ["rollout_created"]
    assert len(await rollouts(client)) == 1
    [delivery] = (await client.get("/api/v1/webhooks/deliveries")).json()
    assert delivery["deliveries"] == 6 and delivery["outcome"] == "rollout_created"


async def test_a_newer_version_supersedes_an_unfinished_rollout(client: httpx.AsyncClient) -> None:
    await policy(client)
    uuids = await fleet(client, 10)
    first = (await docker_hub_push(client, "v2.0.1")).json()
    second = (await docker_hub_push(client, "v2.0.2", pushed_at=2)).json()
    assert second["outcome"] == "rollout_created" and second["affected_devices"] == 10
    old = (await client.get(f"/api/v1/rollouts/{first['rollout_id']}")).json()
    assert old["status"] == "cancelled" and old["superseded_by"] == second["rollout_id"]
    assert old["error_message"] == f"superseded by {second['rollout_id']}"
    rows = (await client.get(f"/api/v1/rollouts/{second['rollout_id']}/devices")).json()["items"]
    moved_early = next(r for r in rows if r["device_uuid"] == uuids[0])
    # the device already sent to v2.0.1 would roll back to its own v2.0.0, not to v2.0.1
    assert moved_early["old_images"] == {"1001/app": "iotistic/myapp:v2.0.0"}
    assert await target_image(client, uuids[0]) == "iotistic/myapp:v2.0.2"
    kinds = [
        e["event_type"]
        for e in (await client.get(f"/api/v1/rollouts/{first['rollout_id']}/events")).json()[
            "items"
        ]
    ]
    assert kinds[-2:] == ["rollout_superseded", "rollout_cancelled"]


async def test_strategies_start_or_wait(client: httpx.AsyncClient) -> None:
    await fleet(client, 4)
    await policy(client, update_strategy="auto")
    auto = (await docker_hub_push(client, "v2.0.1")).json()
    detail = (await client.get(f"/api/v1/rollouts/{auto['rollout_id']}")).json()
    assert detail["batch_sizes"] == [4] and detail["batches"][0]["counts"] == {"scheduled": 4}

    await fleet(client, 4, image="iotistic/other:v1", prefix="other")
    await policy(client, image_pattern="iotistic/other", update_strategy="manual")
    manual = (await docker_hub_push(client, "v2", repo="iotistic/other")).json()
    assert manual["status"] == "awaiting_approval"
    assert await target_image(client, "other-000") == "iotistic/other:v1"

    await fleet(client, 2, image="iotistic/third:v1", prefix="third")
    await policy(
        client,
        image_pattern="iotistic/third",
        update_strategy="scheduled",
        maintenance_window_start="01:00",
        maintenance_window_end="03:00",
    )
    scheduled = (await docker_hub_push(client, "v2", repo="iotistic/third")).json()
    assert scheduled["status"] == "scheduled"
    assert await target_image(client, "third-000") == "iotistic/third:v1"


async def test_the_highest_priority_then_most_specific_policy_wins_and_says_why(
    client: httpx.AsyncClient,
) -> None:
    await fleet(client, 2)
    broad = await policy(client, image_pattern="iotistic/*", update_strategy="auto")
    narrow = await policy(client, image_pattern="iotistic/myapp:v2.*", update_strategy="staged")
    answer = (await docker_hub_push(client, "v2.0.1")).json()
    [rollout] = await rollouts(client)
    assert rollout["policy_id"] == narrow["id"] and rollout["strategy"] == "staged"
    explanation = rollout["filters_applied"]["policy"]
    assert explanation["chosen"] == narrow["id"]
    assert "most specific" in explanation["reason"]
    assert [p["policy_id"] for p in explanation["matching_policies"]] == [narrow["id"], broad["id"]]
    assert answer["affected_devices"] == 2


async def test_an_operator_triggers_an_update_with_filters(client: httpx.AsyncClient) -> None:
    await fleet(client, 3, tags={"ring": "canary"}, prefix="canary")
    await fleet(client, 3, prefix="rest")
    response = await client.post(
        "/api/v1/images/trigger-update",
        json={
            "image": "iotistic/myapp:v2.0.1",
            "strategy": "auto",
            "filters": {"device_tags": ["ring:canary"]},
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["affected_devices"] == 3
    [rollout] = await rollouts(client)
    assert rollout["triggered_by"] == "manual:admin-token" and rollout["policy_id"] is None
    assert await target_image(client, "canary-000") == "iotistic/myapp:v2.0.1"
    assert await target_image(client, "rest-000") == "iotistic/myapp:v2.0.0"
    bad = await client.post("/api/v1/images/trigger-update", json={"image": "Not An Image"})
    assert bad.status_code == 422 and "image" in bad.json()["error"]


async def test_the_event_log_pages_in_order_without_repeats(client: httpx.AsyncClient) -> None:
    await policy(client, update_strategy="auto")
    await fleet(client, 5)
    await docker_hub_push(client, "v2.0.1")
    seen, after = [], 0
    while True:
        page = (await client.get("/api/v1/events", params={"after": after, "limit": 2})).json()
        if not page["items"]:
            break
        seen += [e["id"] for e in page["items"]]
        after = page["next_cursor"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 9
    empty = (await client.get("/api/v1/events", params={"after": after})).json()
    assert empty == {"items": [], "next_cursor": after, "older_cursor": None}


async def test_rollout_reads_validate_and_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/rollouts/nope")).status_code == 404
    assert (await client.get("/api/v1/rollouts/nope/devices")).status_code == 404
    assert (await client.get("/api/v1/rollouts/nope/events")).status_code == 404
    bad = await client.get("/api/v1/rollouts", params={"status": "exploded"})
    assert bad.status_code == 422 and "status" in bad.json()["error"]
    assert (await client.get("/api/v1/rollouts/active")).json() == []
