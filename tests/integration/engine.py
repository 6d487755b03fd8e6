"""Scripted devices for the engine tests: they poll and report as a real agent would."""

from __future__ import annotations

from typing import Any

import httpx

from fleetwave.bootstrap import Container
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import docker_hub_push

# What fleetwave's own agent declares in its reports (started without custom checks allowed).
FLEETWAVE_AGENT = ["checks.http", "checks.tcp", "progress"]


class ScriptedDevice:
    """A device that polls and reports as fleetwave's agent does (its ``capabilities`` in
    every report); ``capabilities=None`` reports none, as the iotistic agent."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        device: dict[str, Any],
        capabilities: list[str] | None = FLEETWAVE_AGENT,
    ) -> None:
        self.client, self.uuid = client, device["uuid"]
        self.headers = {"X-Device-API-Key": device["api_key"], "Authorization": ""}
        self.capabilities = capabilities

    async def target(self) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/device/{self.uuid}/state", headers=self.headers)
        assert response.status_code == 200, response.text
        apps: dict[str, Any] = response.json()[self.uuid]["apps"]
        return apps

    async def target_image(self) -> str:
        image: str = (await self.target())["1001"]["services"][0]["imageName"]
        return image

    async def report(
        self,
        image: str,
        status: str = "running",
        readings: dict[str, Any] | None = None,
        **service: Any,
    ) -> None:
        """``readings``: metrics beside ``apps`` (``cpu_usage``, ``metrics``: {...})."""
        body: dict[str, Any] = {
            self.uuid: {
                "apps": {
                    "1001": {
                        "appId": 1001,
                        "services": [
                            {"serviceName": "app", "imageName": image, "status": status} | service
                        ],
                    }
                },
                "is_online": True,
            }
        }
        if self.capabilities is not None:
            body[self.uuid]["capabilities"] = self.capabilities
        body[self.uuid] |= readings or {}
        response = await self.client.patch("/api/v1/device/state", json=body, headers=self.headers)
        assert response.status_code == 200, response.text

    async def apply_target(self, status: str = "running") -> str:
        """Poll, then report running whatever the target says (a healthy agent)."""
        image = await self.target_image()
        await self.report(image, "pulling")
        await self.report(image, status)
        return image


async def tick(container: Container) -> list[str]:
    return [m for advanced in await container.monitor.tick() for m in advanced.events]


async def rollout(client: httpx.AsyncClient, rollout_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/rollouts/{rollout_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


async def device_rows(client: httpx.AsyncClient, rollout_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/rollouts/{rollout_id}/devices", params={"limit": 1000} | params
    )
    return {row["device_uuid"]: row for row in response.json()["items"]}


OLD, NEW = "iotistic/myapp:v2.0.0", "iotistic/myapp:v2.0.1"


async def fleet_of(client: httpx.AsyncClient, count: int) -> dict[str, ScriptedDevice]:
    """``count`` devices, online and running the old image."""
    devices = {}
    for i in range(count):
        device = await register_device(client, uuid=f"dev-{i:02}", apps=target_apps(OLD))
        devices[device["uuid"]] = ScriptedDevice(client, device)
        await devices[device["uuid"]].report(OLD)
    return devices


async def push(client: httpx.AsyncClient, tag: str = "v2.0.1") -> str:
    """Docker Hub announces ``tag``; returns the rollout it made."""
    response = await docker_hub_push(client, tag)
    assert response.status_code == 200, response.text
    rollout_id: str = response.json()["rollout_id"]
    assert rollout_id
    return rollout_id


async def batch_devices(client: httpx.AsyncClient, rollout_id: str, batch: int) -> list[str]:
    return sorted(await device_rows(client, rollout_id, batch=batch))
