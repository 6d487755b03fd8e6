"""A device that speaks as the iotistic agent does, for the engine tests (the request-by-request
replay of a whole session is ``test_iotistic_agent_replay.py``).

From the agent's ``src/api-binder.ts`` and ``src/compose/container-manager.ts``: it polls with
``X-Device-API-Key`` and a lowercase ``if-none-match``; its reports carry ``apps`` (each service
with Docker's or Podman's container state, lowercased, never ``pulling`` or ``updating``),
``is_online``, ``os_version`` and ``supervisor_version``, plus its metrics and ``local_ip``
every 5 minutes; it never sends ``capabilities`` and never posts health results.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

METRICS = {"memory_usage": 412, "memory_total": 3796, "temperature": 48.3, "uptime": 86_400}


class IotisticDevice:
    def __init__(
        self, client: httpx.AsyncClient, device: dict[str, Any], ip: str | None = "192.168.1.42"
    ) -> None:
        self.client, self.uuid, self.ip = client, device["uuid"], ip
        self.headers = {"X-Device-API-Key": device["api_key"], "Authorization": ""}
        self.etag: str | None = None
        self.cpu = itertools.count(5)  # metrics differ from one report to the next

    async def poll(self) -> dict[str, Any] | None:
        """The target's apps if it changed since the last poll, else None (304)."""
        headers = self.headers | {"Content-Type": "application/json"}
        if self.etag:
            headers["if-none-match"] = self.etag
        response = await self.client.get(f"/api/v1/device/{self.uuid}/state", headers=headers)
        if response.status_code == 304:
            return None
        assert response.status_code == 200, response.text
        self.etag = response.headers["etag"]
        apps: dict[str, Any] = response.json()[self.uuid]["apps"]
        return apps

    async def target_image(self) -> str:
        self.etag = None
        apps = await self.poll()
        assert apps is not None
        image: str = apps["1001"]["services"][0]["imageName"]
        return image

    async def report(self, image: str, state: str = "running", *, metrics: bool = False) -> None:
        """``reportCurrentState``: state only, or with the 5-minute metrics and ``local_ip``."""
        service = {
            "serviceId": 1,
            "serviceName": "app",
            "imageName": image,
            "appId": 1001,
            "appName": "web",
            "containerId": "4f2a" * 16,
            "status": state,
            "config": {"image": image, "ports": ["8080:80"], "networks": [], "environment": {}},
        }
        body: dict[str, Any] = {
            "apps": {"1001": {"appId": 1001, "appName": "web", "services": [service]}},
            "is_online": True,
            "os_version": "Raspbian GNU/Linux 12 (bookworm)",
            "supervisor_version": "1.0.0",
        }
        if metrics:
            body |= METRICS | {"cpu_usage": float(next(self.cpu) % 100)}
            if self.ip is not None:
                body["local_ip"] = self.ip
        response = await self.client.patch(
            "/api/v1/device/state",
            json={self.uuid: body},
            headers=self.headers | {"Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text

    async def apply_target(self, state: str = "running") -> str:
        """Poll, run what the target says, report the container's state (no pulling, no
        updating: the agent reports none)."""
        image = await self.target_image()
        await self.report(image, state)
        return image
