"""Deployment rings (issue 16, part 4): named selectors a policy rolls out through, in order.

A device takes the first ring selecting it; devices in no ring are left out and listed as
such; a ring selecting nothing is a warning in the preview, not an error; unknown rings are
refused (422) and a ring a policy lists cannot be deleted (409).
"""

from __future__ import annotations

from typing import Any

import httpx

from fleetwave.bootstrap import Container
from tests.integration.engine import NEW, OLD, batch_devices, fleet_of, push, rollout, tick
from tests.integration.pipeline import fleet, policy


async def ring(client: httpx.AsyncClient, name: str, **selector: Any) -> dict[str, Any]:
    answer = await client.post("/api/v1/rings", json={"name": name} | selector)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_rings_are_created_counted_listed_replaced_and_deleted(
    client: httpx.AsyncClient,
) -> None:
    await fleet(client, 2, tags={"ring": "canary"}, prefix="canary")
    await fleet(client, 3)

    created = await ring(client, "canary", device_tags={"ring": "canary"})
    assert created["devices"] == 2
    again = await client.post("/api/v1/rings", json={"name": "canary"})
    assert again.status_code == 409
    replaced = await client.put("/api/v1/rings/canary", json={"device_uuids": ["dev-000"]})
    assert replaced.json()["devices"] == 1
    assert [r["name"] for r in (await client.get("/api/v1/rings")).json()] == ["canary"]
    assert (await client.delete("/api/v1/rings/canary")).status_code == 204
    assert (await client.get("/api/v1/rings/canary")).status_code == 404
    audit = (await client.get("/api/v1/audit", params={"object_type": "ring"})).json()
    assert sorted(e["action"] for e in audit["items"]) == ["created", "deleted", "updated"]


async def test_a_policy_with_an_unknown_ring_is_refused_and_a_used_ring_is_kept(
    client: httpx.AsyncClient,
) -> None:
    await ring(client, "canary", device_tags={"ring": "canary"})

    refused = await client.post(
        "/api/v1/image-policies",
        json={"image_pattern": "iotistic/myapp:*", "rings": ["canary", "nope"]},
    )
    assert refused.status_code == 422
    assert "nope" in refused.text
    listed = await policy(client, rings=["canary"])
    kept = await client.delete("/api/v1/rings/canary")
    assert kept.status_code == 409
    assert str(listed["id"]) in kept.json()["error"]


async def test_a_ringed_rollout_goes_ring_by_ring_as_its_preview_said(
    client: httpx.AsyncClient,
) -> None:
    await fleet(client, 2, tags={"ring": "canary"}, fleet_id="early", prefix="canary")
    await fleet(client, 3, fleet_id="early", prefix="early")
    await fleet(client, 4, prefix="late")
    await fleet(client, 1, fleet_id="lab", prefix="lab")
    await ring(client, "canary", device_tags={"ring": "canary"})
    await ring(client, "early", fleet_id="early")
    await ring(client, "late", device_uuids=[f"late-{i:03}" for i in range(4)])
    await ring(client, "ghost", device_tags={"ring": "ghost"})
    await policy(client, rings=["canary", "ghost", "early", "late"])

    shown = (
        await client.post("/api/v1/rollouts/preview", json={"image": "iotistic/myapp:v2.1.0"})
    ).json()

    assert [(b["ring"], b["devices"]) for b in shown["batches"]] == [
        ("canary", 2),  # in canary and early: the first ring wins
        ("early", 3),
        ("late", 4),
    ]
    assert shown["excluded"]["in_no_ring"] == {"count": 1, "devices": ["lab-000"]}
    assert shown["warnings"] == ["ring 'ghost' selects none of the devices the policy covers"]

    created = await client.post(
        "/api/v1/images/trigger-update", json={"image": "iotistic/myapp:v2.1.0"}
    )
    rollout_id = created.json()["rollout_id"]
    assert (await client.get(f"/api/v1/rollouts/{rollout_id}")).json()["batch_sizes"] == [2, 3, 4]
    rows = (await client.get(f"/api/v1/rollouts/{rollout_id}/devices?limit=100")).json()
    batches = {d["device_uuid"]: d["batch_number"] for d in rows["items"]}
    assert batches == {
        **{f"canary-{i:03}": 1 for i in range(2)},
        **{f"early-{i:03}": 2 for i in range(3)},
        **{f"late-{i:03}": 3 for i in range(4)},
    }


async def test_the_failure_gate_stops_a_ringed_rollout_after_its_canary_ring(
    client: httpx.AsyncClient, container: Container
) -> None:
    devices = await fleet_of(client, 4)  # dev-00 … dev-03, online on the old image
    await ring(client, "canary", device_uuids=["dev-02"])
    await ring(client, "everyone")
    await policy(client, rings=["canary", "everyone"], batch_delay_minutes=0, max_retries=0)
    rollout_id = await push(client)
    assert await batch_devices(client, rollout_id, 1) == ["dev-02"]

    await devices["dev-02"].apply_target("exited")  # the canary crashes: 100% failed
    await tick(container)

    detail = await rollout(client, rollout_id)
    assert detail["status"] == "paused" and detail["auto_paused"] is True
    assert detail["current_batch"] == 1  # the next ring never started
    assert {await devices[u].target_image() for u in ("dev-00", "dev-01", "dev-03")} == {OLD}


async def test_a_healthy_canary_ring_lets_the_next_ring_start(
    client: httpx.AsyncClient, container: Container
) -> None:
    devices = await fleet_of(client, 3)
    await ring(client, "canary", device_uuids=["dev-01"])
    await ring(client, "everyone")
    await policy(
        client, rings=["canary", "everyone"], batch_delay_minutes=0, health_check_enabled=False
    )
    rollout_id = await push(client)

    await devices["dev-01"].apply_target()
    await tick(container)

    assert (await rollout(client, rollout_id))["current_batch"] == 2
    assert await batch_devices(client, rollout_id, 2) == ["dev-00", "dev-02"]
    assert await devices["dev-00"].target_image() == NEW
