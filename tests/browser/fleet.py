"""Devices the browser tests drive by hand over the device protocol, like a real agent would:
poll the target (long-polling until it changes), report pulling, then running or failing."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.browser.conftest import Server

OLD, NEW = "iotistic/myapp:v2.0.0", "iotistic/myapp:v2.0.1"


def apps(image: str, status: str | None = None) -> dict[str, Any]:
    service: dict[str, Any] = {"serviceId": 1, "serviceName": "app", "imageName": image}
    if status is None:
        service["config"] = {"image": image, "ports": ["8080:80"], "restart": "always"}
    else:
        service["status"] = status
    return {"1001": {"appId": 1001, "appName": "web", "services": [service]}}


class Device:
    def __init__(self, base: str, admin: httpx.Client, uuid: str, old: str = OLD) -> None:
        created = admin.post(
            "/api/v1/devices",
            json={
                "uuid": uuid,
                "device_name": f"pump {uuid}",
                "fleet_id": "north",
                "tags": {"site": "lyon"},
                "apps": apps(old),
            },
        )
        assert created.status_code == 201, created.text
        self.uuid = uuid
        self.http = httpx.Client(
            base_url=base, headers={"X-Device-API-Key": created.json()["api_key"]}, timeout=30
        )
        self.etag: str | None = None
        self.old = old
        self.report(old, "running")

    def wait_for_target(self, image: str) -> None:
        """Long-poll until the target names ``image`` (the server holds the poll until then)."""
        for _ in range(20):
            headers = {"if-none-match": self.etag} if self.etag else {}
            answer = self.http.get(
                f"/api/v1/device/{self.uuid}/state", params={"wait": 5}, headers=headers
            )
            if answer.status_code == 200:
                self.etag = answer.headers["etag"]
                services = answer.json()[self.uuid]["apps"]["1001"]["services"]
                if services[0]["imageName"].split("@")[0] == image:
                    return
        raise AssertionError(f"{self.uuid} was never told to run {image}")

    def report(self, image: str, status: str) -> None:
        body = {self.uuid: {"apps": apps(image, status), "is_online": True}}
        answer = self.http.patch("/api/v1/device/state", json=body)
        assert answer.status_code == 200, answer.text

    def ship_logs(self, *messages: str, level: str = "info") -> None:
        """Lines of its container, shipped as the iotistic agent ships them (NDJSON)."""
        lines = [{"message": m, "level": level, "serviceName": "app"} for m in messages]
        body = "".join(json.dumps(line) + "\n" for line in lines)
        answer = self.http.post(
            f"/api/v1/device/{self.uuid}/logs",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert answer.status_code == 200, answer.text

    def update(self, *, fail: bool = False) -> None:
        """Take the new image: pull it, then run it (or crash on it)."""
        self.wait_for_target(NEW)
        self.report(NEW, "pulling")
        self.report(NEW, "exited" if fail else "running")

    def start_pulling(self) -> None:
        self.wait_for_target(NEW)
        self.report(NEW, "pulling")

    def go_back(self) -> None:
        """Sent back to its old image: run it again."""
        self.wait_for_target(self.old)
        self.report(self.old, "running")


def staged_rollout(server: Server, devices: int) -> tuple[str, dict[str, Device]]:
    """A staged policy (batches 10% → 50% → 100%, no delay, no health checks), a fleet on
    v2.0.0, and v2.0.1 triggered."""
    policy = server.admin.post(
        "/api/v1/image-policies",
        json={
            "image_pattern": "iotistic/myapp:*",
            "update_strategy": "staged",
            "batch_percentages": [10, 50, 100],
            "batch_delay_minutes": 0,
            "health_check_enabled": False,
            "max_retries": 0,
            "max_failure_rate": 0.6,
        },
    )
    assert policy.status_code == 201, policy.text
    fleet = {f"pump-{i}": Device(server.base, server.admin, f"pump-{i}") for i in range(devices)}
    answer = server.admin.post("/api/v1/images/trigger-update", json={"image": NEW})
    assert answer.status_code == 200, answer.text
    rollout_id: str = answer.json()["rollout_id"]
    return rollout_id, fleet
