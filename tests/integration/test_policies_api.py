"""The image update policies API, with every column of the original plan."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PLAN_EXAMPLE = {
    "image_pattern": "iotistic/myapp:*",
    "update_strategy": "staged",
    "staged_batches": 3,
    "batch_delay_minutes": 5,
    "health_check_enabled": True,
}


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/image-policies", json=PLAN_EXAMPLE | fields)
    assert response.status_code == 201, response.text
    policy: dict[str, Any] = response.json()
    return policy


async def test_the_plans_example_policy_is_created_as_written(client: httpx.AsyncClient) -> None:
    policy = await create(client)
    assert policy["image_pattern"] == "iotistic/myapp:*"
    assert policy["update_strategy"] == "staged" and policy["staged_batches"] == 3
    assert policy["batch_delay_minutes"] == 5 and policy["health_check_enabled"] is True
    # what the body left out comes from the settings' defaults
    assert policy["health_check_timeout_seconds"] == 300
    assert policy["auto_rollback"] is True and policy["max_failure_rate"] == 0.2
    assert policy["enabled"] is True and policy["priority"] == 100
    assert policy["maintenance_window_timezone"] == "UTC" and policy["pin_digest"] is True
    fetched = (await client.get(f"/api/v1/image-policies/{policy['id']}")).json()
    assert fetched == policy


async def test_every_column_round_trips(client: httpx.AsyncClient) -> None:
    policy = await create(
        client,
        update_strategy="scheduled",
        batch_percentages=[5, 25, 100],
        health_check_timeout_seconds=120,
        auto_rollback=False,
        health_check_config={"checks": [{"type": "http", "url": "http://{device_ip}:8080/"}]},
        maintenance_window_start="02:00:00",
        maintenance_window_end="04:30:00",
        maintenance_window_timezone="Europe/Paris",
        fleet_id="north",
        device_tags=["site:lyon", "hw=pi4"],
        device_uuids=["a1", "b2"],
        enabled=False,
        priority=250,
        description="pumps",
        semver_policy="minor",
        allow_prerelease=True,
        include_tags=["v*"],
        exclude_tags=["*-debug"],
        max_failure_rate=0.05,
        pin_digest=False,
    )
    assert policy["staged_batches"] == 3 and policy["batch_percentages"] == [5, 25, 100]
    assert policy["device_tags"] == {"site": "lyon", "hw": "pi4"}
    assert policy["device_uuids"] == ["a1", "b2"]
    assert policy["maintenance_window_start"] == "02:00:00"
    assert policy["maintenance_window_end"] == "04:30:00"
    assert policy["semver_policy"] == "minor" and policy["max_failure_rate"] == 0.05
    assert policy["health_check_config"]["checks"][0]["type"] == "http"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"update_strategy": "yolo"}, "update_strategy"),
        ({"staged_batches": 0}, "staged_batches"),
        ({"update_strategy": "scheduled"}, "maintenance_window_start"),
        (
            {"maintenance_window_start": "02:00", "maintenance_window_end": "02:00"},
            "maintenance_window_end",
        ),
        ({"maintenance_window_start": "02:00"}, "maintenance_window_end"),
        (
            {
                "maintenance_window_start": "02:00",
                "maintenance_window_end": "03:00",
                "maintenance_window_timezone": "Mars/Olympus",
            },
            "maintenance_window_timezone",
        ),
        ({"image_pattern": "Bad Pattern"}, "image_pattern"),
        ({"image_pattern": "repo@sha256:abc"}, "image_pattern"),
        ({"image_pattern": "acme/[app"}, "image_pattern"),
        ({"batch_percentages": [50, 10, 100]}, "batch_percentages"),
        ({"batch_percentages": [10, 50]}, "batch_percentages"),
        ({"batch_percentages": [10, 100], "staged_batches": 3}, "batch_percentages"),
        ({"max_failure_rate": 1.5}, "max_failure_rate"),
        ({"semver_policy": "sometimes"}, "semver_policy"),
        ({"batch_delay_minutes": -1}, "batch_delay_minutes"),
        ({"device_tags": ["nocolon"]}, "device_tags"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_policies_get_a_422_naming_the_field(
    client: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/image-policies", json=PLAN_EXAMPLE | fields)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]
    assert (await client.get("/api/v1/image-policies")).json() == []


async def test_policies_are_listed_filtered_replaced_and_deleted(
    client: httpx.AsyncClient,
) -> None:
    low = await create(client, priority=10)
    high = await create(client, image_pattern="ghcr.io/acme/*:v2.*", priority=500, fleet_id="f")
    off = await create(client, image_pattern="nginx", enabled=False)
    ids = [p["id"] for p in (await client.get("/api/v1/image-policies")).json()]
    assert ids == [high["id"], off["id"], low["id"]]  # by priority, then age

    async def listed(**params: Any) -> list[int]:
        return [p["id"] for p in (await client.get("/api/v1/image-policies", params=params)).json()]

    assert await listed(enabled="false") == [off["id"]]
    assert await listed(fleet_id="f") == [high["id"]]
    assert await listed(image="ghcr.io/acme/tool:v2.1") == [high["id"]]
    assert await listed(image="docker.io/iotistic/myapp:v9") == [low["id"]]
    assert await listed(image="nginx:1.27") == [off["id"]]

    replaced = await client.put(
        f"/api/v1/image-policies/{low['id']}", json={"image_pattern": "iotistic/other"}
    )
    assert replaced.status_code == 200
    assert replaced.json()["image_pattern"] == "iotistic/other"
    assert replaced.json()["update_strategy"] == "staged"  # PUT replaces: defaults again
    bad = await client.put(f"/api/v1/image-policies/{low['id']}", json={"image_pattern": ""})
    assert bad.status_code == 422
    assert (await client.put("/api/v1/image-policies/999", json=PLAN_EXAMPLE)).status_code == 404
    assert (await client.delete(f"/api/v1/image-policies/{low['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/image-policies/{low['id']}")).status_code == 404
    assert (await client.delete(f"/api/v1/image-policies/{low['id']}")).status_code == 404


async def test_policies_need_the_admin_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/image-policies", headers={"Authorization": ""})
    assert response.status_code == 401
