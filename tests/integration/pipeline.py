"""Helpers for the update-pipeline tests: a fleet, a policy, a push."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.factories import register_device, target_apps

WEBHOOK_SECRET = "test-webhook-secret-0123456789"
PLAN_POLICY = {
    "image_pattern": "iotistic/myapp:*",
    "update_strategy": "staged",
    "staged_batches": 3,
    "batch_delay_minutes": 5,
    "health_check_enabled": True,
}


async def fleet(
    client: httpx.AsyncClient, count: int, image: str = "iotistic/myapp:v2.0.0", **fields: Any
) -> list[str]:
    uuids, prefix = [], fields.pop("prefix", "dev")
    for i in range(count):
        device = await register_device(
            client, uuid=f"{prefix}-{i:03}", apps=target_apps(image), **fields
        )
        uuids.append(device["uuid"])
    return uuids


async def policy(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/image-policies", json=PLAN_POLICY | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def docker_hub_push(
    client: httpx.AsyncClient,
    tag: str,
    repo: str = "iotistic/myapp",
    pushed_at: int = 1_732_700_000,
    secret: str = WEBHOOK_SECRET,
) -> httpx.Response:
    body = {"repository": {"repo_name": repo}, "push_data": {"tag": tag, "pushed_at": pushed_at}}
    return await client.post(
        "/api/v1/webhooks/docker-registry", params={"secret": secret}, json=body
    )


async def target_image(client: httpx.AsyncClient, uuid: str, app: str = "1001") -> str:
    state = (await client.get(f"/api/v1/devices/{uuid}/target-state")).json()
    service = state["apps"][app]["services"][0]
    assert service["imageName"] == service["config"]["image"]
    image: str = service["imageName"]
    return image


async def rollouts(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/rollouts", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
