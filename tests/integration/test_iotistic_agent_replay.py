"""One session of the original iotistic agent, replayed request by request: its headers, bodies
and order exactly as it sends them, and the server's answers checked the way the agent reads
them (status, ``etag``, ``{"<uuid>": {"apps", "config"}}``).

Replayed from the agent's source (dsamborschi/zemfyre-sensor, the iotistic agent before it
moved to Iotistica/iotistic):
- ``agent/src/provisioning/device-manager.ts`` (the version sending ``supervisorVersion``):
  ``registerWithAPI`` and ``exchangeKeys``; a uuid from ``crypto.randomUUID()``, a device key
  of ``randomBytes(32).toString('hex')``, ``deviceName`` defaulting to ``device-<uuid[:8]>``.
- ``agent/src/api-binder.ts`` (commit 0d7dde7e): ``pollTargetState`` (``Content-Type``,
  ``X-Device-API-Key``, lowercase ``if-none-match`` once it holds an ETag) and
  ``reportCurrentState``: the first report carries the metrics (every 5 minutes), later ones
  only ``apps``, ``is_online``, ``os_version`` and ``supervisor_version``.
- ``agent/src/compose/container-manager.ts``: ``getCurrentState`` — services with
  ``containerId``, Docker's ``status`` and a ``config`` of ``image`` and ``ports``.

The agent runs on Node's ``fetch``, which adds its own headers; they are sent here too.
"""

from __future__ import annotations

import gzip
import json
import secrets
import uuid as uuids
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container

IMAGE = "iotistic/myapp:v2.0.0"
# what Node's fetch (undici) adds to every request
NODE_FETCH_HEADERS = {
    "accept": "*/*",
    "accept-language": "*",
    "sec-fetch-mode": "cors",
    "user-agent": "node",
    "accept-encoding": "gzip, deflate",
}
METRICS = {
    "cpu_usage": 7.25,
    "memory_usage": 412,
    "memory_total": 3796,
    "storage_usage": 5120,
    "storage_total": 29820,
    "temperature": 48.3,
    "uptime": 86_400,
}


@pytest.fixture
async def agent_http(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends only what the agent sends: no admin token, fetch's own headers."""
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://fleetwave.test", headers=NODE_FETCH_HEADERS
    ) as http:
        yield http


class IotisticAgent:
    """The requests of the agent's DeviceManager and ApiBinder, nothing more."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.uuid = str(uuids.uuid4())  # crypto.randomUUID()
        self.device_api_key = secrets.token_bytes(32).hex()  # randomBytes(32).toString('hex')
        self.etag: str | None = None

    def registration(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "deviceName": f"device-{self.uuid[:8]}",
            "deviceType": "raspberrypi4-64",
            "deviceApiKey": self.device_api_key,
            "applicationId": 1,
            "macAddress": "dc:a6:32:1a:2b:3c",
            "osVersion": "Raspbian GNU/Linux 12 (bookworm)",
            "supervisorVersion": "1.0.0",
        }

    async def register(self, provisioning_api_key: str) -> httpx.Response:
        return await self.http.post(
            "/api/v1/device/register",
            json=self.registration(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {provisioning_api_key}",
            },
        )

    async def exchange_keys(self) -> httpx.Response:
        return await self.http.post(
            f"/api/v1/device/{self.uuid}/key-exchange",
            json={"uuid": self.uuid, "deviceApiKey": self.device_api_key},
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.device_api_key}",
            },
        )

    async def poll(self) -> httpx.Response:
        headers = {"Content-Type": "application/json", "X-Device-API-Key": self.device_api_key}
        if self.etag:
            headers["if-none-match"] = self.etag
        response = await self.http.get(f"/api/v1/device/{self.uuid}/state", headers=headers)
        if response.status_code == 200 and response.headers.get("etag"):
            self.etag = response.headers["etag"]
        return response

    async def report(self, apps: dict[str, Any], *, with_metrics: bool) -> httpx.Response:
        state: dict[str, Any] = {
            "apps": apps,
            "is_online": True,
            "os_version": "Raspbian GNU/Linux 12 (bookworm)",
            "supervisor_version": "1.0.0",
        }
        if with_metrics:
            state |= METRICS | {"local_ip": "192.168.1.42"}
        return await self.http.patch(
            "/api/v1/device/state",
            json={self.uuid: state},
            headers={"Content-Type": "application/json", "X-Device-API-Key": self.device_api_key},
        )


def running_apps(container_id: str, status: str = "running") -> dict[str, Any]:
    """``ContainerManager.getCurrentState()``: what the agent finds in Docker."""
    service = {
        "serviceId": 1,
        "serviceName": "app",
        "imageName": IMAGE,
        "appId": 1001,
        "appName": "web",
        "containerId": container_id,
        "status": status,
        "config": {"image": IMAGE, "ports": ["8080:80"]},
    }
    return {"1001": {"appId": 1001, "appName": "web", "services": [service]}}


def target_apps() -> dict[str, Any]:
    service = {
        "serviceId": 1,
        "serviceName": "app",
        "imageName": IMAGE,
        "appId": 1001,
        "appName": "web",
        "config": {"image": IMAGE, "ports": ["8080:80"], "restart": "always"},
    }
    return {"1001": {"appId": 1001, "appName": "web", "services": [service]}}


async def test_an_iotistic_agent_session_provisions_polls_and_reports_as_the_agent_expects(
    client: httpx.AsyncClient, agent_http: httpx.AsyncClient
) -> None:
    provisioning = await client.post(
        "/api/v1/provisioning-keys", json={"fleet_id": "north", "max_uses": 5}
    )
    agent = IotisticAgent(agent_http)

    # DeviceManager.provision: phase 1, register with the fleet's key; the agent keeps `id`
    registered = await agent.register(provisioning.json()["key"])
    assert registered.is_success, registered.text
    assert str(registered.json()["id"]) == agent.uuid
    # phase 2, the key exchange with its own key: ok and JSON
    exchanged = await agent.exchange_keys()
    assert exchanged.is_success and exchanged.json()["status"] == "ok"

    # ApiBinder.pollTargetState: a new device has nothing to run yet
    first = await agent.poll()
    assert first.status_code == 200 and first.headers["etag"].startswith('"')
    assert first.json() == {agent.uuid: {"apps": {}, "config": {}}}
    assert (await agent.poll()).status_code == 304

    # the operator gives it an app; the next poll, still sending the old ETag, gets it
    put = await client.put(
        f"/api/v1/devices/{agent.uuid}/target-state", json={"apps": target_apps()}
    )
    assert put.status_code == 200, put.text
    old_etag = agent.etag
    second = await agent.poll()
    assert second.status_code == 200 and agent.etag != old_etag
    body = second.json()
    assert list(body) == [agent.uuid] and set(body[agent.uuid]) >= {"apps", "config"}
    [service] = body[agent.uuid]["apps"]["1001"]["services"]
    assert service["imageName"] == service["config"]["image"] == IMAGE
    unchanged = await agent.poll()
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == agent.etag

    # ApiBinder.reportCurrentState: the first report carries the metrics
    container_id = secrets.token_hex(32)
    report = await agent.report(running_apps(container_id), with_metrics=True)
    assert report.status_code == 200, report.text
    device = (await client.get(f"/api/v1/devices/{agent.uuid}")).json()
    assert device["fleet_id"] == "north" and device["is_online"] is True
    assert device["device_name"] == f"device-{agent.uuid[:8]}"
    assert device["os_version"] == "Raspbian GNU/Linux 12 (bookworm)"
    assert device["supervisor_version"] == "1.0.0"
    assert device["ip_address"] == "192.168.1.42"
    assert device["capabilities"] == []  # it declares nothing: an agent running no checks
    current = (await client.get(f"/api/v1/devices/{agent.uuid}/current-state")).json()
    assert current["apps"] == running_apps(container_id)
    assert current["system_info"] == METRICS | {"local_ip": "192.168.1.42"}

    # ten seconds on, the container restarted: a state-only report (metrics come every 5 min)
    restarted = secrets.token_hex(32)
    assert (await agent.report(running_apps(restarted), with_metrics=False)).status_code == 200
    current = (await client.get(f"/api/v1/devices/{agent.uuid}/current-state")).json()
    assert current["apps"]["1001"]["services"][0]["containerId"] == restarted
    assert current["system_info"] == METRICS | {"local_ip": "192.168.1.42"}  # still visible
    assert (await agent.poll()).status_code == 304  # reporting changed nothing it must fetch


async def test_the_agent_registering_again_after_a_restart_keeps_its_device(
    client: httpx.AsyncClient, agent_http: httpx.AsyncClient
) -> None:
    """The agent provisions on start while it is not marked provisioned: a crash between
    registering and saving makes it send the same registration again, same uuid and key."""
    provisioning = await client.post("/api/v1/provisioning-keys", json={"fleet_id": "north"})
    agent = IotisticAgent(agent_http)
    assert (await agent.register(provisioning.json()["key"])).is_success
    again = await agent.register(provisioning.json()["key"])
    assert again.is_success, again.text
    assert str(again.json()["id"]) == agent.uuid
    assert (await agent.exchange_keys()).is_success
    assert (await agent.poll()).status_code == 200


async def test_the_newer_agents_gzipped_report_is_read_and_a_bomb_or_garbage_is_refused(
    client: httpx.AsyncClient, agent_http: httpx.AsyncClient
) -> None:
    """Iotistica/iotistic's newer api-binder gzips its report (``Content-Encoding: gzip``)."""
    provisioning = await client.post("/api/v1/provisioning-keys", json={"fleet_id": "north"})
    agent = IotisticAgent(agent_http)
    assert (await agent.register(provisioning.json()["key"])).is_success
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "X-Device-API-Key": agent.device_api_key,
    }
    state = {agent.uuid: {"apps": running_apps("c0ffee"), "is_online": True} | METRICS}

    sent = await agent_http.patch(
        "/api/v1/device/state", content=gzip.compress(json.dumps(state).encode()), headers=headers
    )
    assert sent.status_code == 200, sent.text
    current = (await client.get(f"/api/v1/devices/{agent.uuid}/current-state")).json()
    assert current["apps"]["1001"]["services"][0]["containerId"] == "c0ffee"

    bomb = gzip.compress(b" " * (2 * 1024 * 1024))  # 2 MiB of blanks in about 2 KiB
    refused = await agent_http.patch("/api/v1/device/state", content=bomb, headers=headers)
    assert refused.status_code == 413, refused.text
    garbage = await agent_http.patch("/api/v1/device/state", content=b"not gzip", headers=headers)
    assert garbage.status_code == 422 and "gzip" in garbage.json()["error"]
    brotli = await agent_http.patch(
        "/api/v1/device/state",
        content=b"{}",
        headers=headers | {"Content-Encoding": "br"},
    )
    assert brotli.status_code == 415 and "br" in brotli.json()["error"]
