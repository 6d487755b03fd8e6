"""Liveness, readiness, the API description, and errors that never become 500s."""

from __future__ import annotations

import logging

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container, build
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from tests.integration.factories import as_device, register_device, report_body


async def test_health_and_readiness_answer(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz", headers={"Authorization": ""})
    ready = await client.get("/readyz", headers={"Authorization": ""})
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_readiness_fails_when_the_database_is_unreachable(settings: Settings) -> None:
    unreachable = Database("postgresql://nobody@127.0.0.1:1/none")
    container = build(settings, db=unreachable)
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/readyz")
    await unreachable.dispose()
    assert response.status_code == 503 and response.json()["error"] == "database unreachable"


async def test_the_api_describes_itself(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/api/v1/devices",
        "/api/v1/devices/{uuid}/target-state",
        "/api/v1/device/{uuid}/state",
        "/api/v1/device/state",
        "/api/v1/device/register",
        "/api/v1/provisioning-keys",
    ):
        assert path in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_routes_and_methods_answer_json_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    wrong = await client.put("/healthz")
    assert wrong.status_code == 405 and "error" in wrong.json()


@pytest.mark.parametrize("body", [b"{", b"[]", b'"x"', b"null", b'{"device_name": 1}'])
async def test_garbage_bodies_get_422_not_500(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/api/v1/devices", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"].startswith("invalid request")


async def test_keys_and_tokens_never_reach_the_logs(
    client: httpx.AsyncClient, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    device = await register_device(client, uuid="secretive")
    await client.get("/api/v1/device/secretive/state", headers=as_device(device))
    await client.patch(
        "/api/v1/device/state", json=report_body("secretive"), headers=as_device(device)
    )
    await client.get("/api/v1/devices", headers={"Authorization": "Bearer wrong-token"})
    logged = caplog.text
    assert device["api_key"] not in logged and container.admin_token not in logged
    assert "wrong-token" not in logged
