"""The preview of a push (issue 16, part 1): the trigger's own decision, written nowhere.

It must show what the trigger then really does — the same batches, the same first devices —
and leave the database as it was; its times follow the policy's delay, timeout, soak and
maintenance window, on the injected clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from fleetwave.clock import ManualClock
from tests.integration.pipeline import fleet, policy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def preview(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await client.post("/api/v1/rollouts/preview", json=body)
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


async def test_preview_shows_the_batches_the_trigger_then_creates_and_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, priority=7, batch_delay_minutes=5, soak_seconds=60)
    await fleet(client, 10)
    await fleet(client, 2, image="iotistic/myapp:v2.1.0", prefix="current")

    shown = await preview(client, image="iotistic/myapp:v2.1.0")

    assert shown["outcome"] == "would_create"
    assert shown["policy"]["matching_policies"][0]["priority"] == 7
    assert shown["policy"]["reason"] == "the only enabled policy whose pattern matches"
    assert [b["devices"] for b in shown["batches"]] == [1, 4, 5]
    assert shown["excluded"]["already_on_new_version"]["count"] == 2
    assert {"image": "iotistic/myapp:v2.0.0", "devices": 10} in shown["current_images"]
    first, second, _ = shown["batches"]
    assert first["starts_at"] == "2026-01-01T00:00:00Z"
    assert first["ends_by"] == "2026-01-01T00:31:00Z"  # the 30 min timeout, the 60 s soak
    assert second["starts_at"] == "2026-01-01T00:36:00Z"  # then the 5 min batch delay
    assert second["waits_for"] == ["batch_delay"]
    listed = (await client.get("/api/v1/rollouts")).json()
    assert listed["total"] == 0  # the preview wrote no rollout

    created = await client.post(
        "/api/v1/images/trigger-update", json={"image": "iotistic/myapp:v2.1.0"}
    )
    detail = (await client.get(f"/api/v1/rollouts/{created.json()['rollout_id']}")).json()
    assert detail["batch_sizes"] == [1, 4, 5]
    devices = (
        await client.get(f"/api/v1/rollouts/{detail['rollout_id']}/devices?limit=100")
    ).json()
    in_first = [d["device_uuid"] for d in devices["items"] if d["batch_number"] == 1]
    assert in_first == first["sample"]


async def test_preview_of_a_scheduled_policy_waits_for_the_next_window_in_its_time_zone(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await policy(
        client,
        update_strategy="scheduled",
        maintenance_window_start="02:00",
        maintenance_window_end="04:00",
        maintenance_window_timezone="Europe/Paris",
    )
    await fleet(client, 3)

    shown = await preview(client, image="iotistic/myapp:v2.1.0")

    window = shown["maintenance_window"]
    assert window["timezone"] == "Europe/Paris"
    assert window["next_opening"] == "2026-01-01T01:00:00+00:00"  # 02:00 in Paris, in winter
    assert shown["batches"][0]["starts_at"] == "2026-01-01T01:00:00Z"
    assert "maintenance_window" in shown["batches"][0]["waits_for"]


async def test_preview_of_a_manual_policy_counts_the_approvals_it_needs(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, update_strategy="manual", approve_each_batch=True)
    await fleet(client, 10)

    shown = await preview(client, image="iotistic/myapp:v2.1.0")

    assert shown["approvals_needed"] == 3
    assert all("approval" in b["waits_for"] for b in shown["batches"])


async def test_preview_says_why_no_device_would_take_a_push(client: httpx.AsyncClient) -> None:
    await policy(client)
    await fleet(client, 2, image="iotistic/myapp:v2.1.0")

    shown = await preview(client, image="iotistic/myapp:v2.1.0")

    assert shown["outcome"] == "ignored"
    assert shown["batches"] == []
    assert shown["excluded"]["already_on_new_version"]["count"] == 2


async def test_preview_of_a_bad_image_is_a_422(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/v1/rollouts/preview", json={"image": "UPPER CASE:??"})
    assert answer.status_code == 422


async def test_preview_lists_the_checks_to_be_judged_and_warns_of_a_batch_larger_than_the_cap(
    client: httpx.AsyncClient,
) -> None:
    hot = {"type": "metric", "name": "hot", "metric": "temperature", "max": 70}
    errors = {
        "type": "prometheus",
        "name": "errors",
        "url": "http://prom:9090",
        "query": "up",
        "min": 1,
    }
    await policy(
        client, max_concurrent_devices=3, health_check_config=[hot, errors], soak_seconds=0
    )
    await fleet(client, 10)

    shown = await preview(client, image="iotistic/myapp:v2.1.0")

    assert [c["type"] for c in shown["health_checks"]] == ["metric", "prometheus"]
    assert shown["device_cap"] == {"fleet": None, "policy": 3}
    assert [b["devices"] for b in shown["batches"]] == [1, 4, 5]
    assert shown["warnings"] == [
        f"batch {n}: {size} devices, at most 3 updating at once (policy cap 3); it starts in "
        "part and is topped up as devices finish"
        for n, size in ((2, 4), (3, 5))
    ]
