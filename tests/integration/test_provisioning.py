"""Fleet provisioning keys and device self-registration, as the iotistic agent does it."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.clock import ManualClock


def registration(uuid: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uuid": uuid,
        "deviceName": f"dev-{uuid}",
        "deviceType": "raspberrypi4-64",
        "applicationId": 7,
        "macAddress": "dc:a6:32:00:00:01",
        "osVersion": "balenaOS 5",
        "supervisorVersion": "1.0.0",
    }
    if key is not None:
        body["deviceApiKey"] = key
    return body | extra


async def make_key(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/provisioning-keys", json={"fleet_id": "f1"} | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def register(
    client: httpx.AsyncClient, provisioning_key: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        "/api/v1/device/register",
        json=body,
        headers={"Authorization": f"Bearer {provisioning_key}"},
    )


async def test_a_device_registers_with_its_own_key_and_confirms_it(
    client: httpx.AsyncClient,
) -> None:
    provisioning = await make_key(client, max_uses=10, description="line 1")
    device_key = secrets.token_hex(32)
    response = await register(client, provisioning["key"], registration("u-1", device_key))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["id"] == answer["uuid"] == "u-1" and "deviceApiKey" not in answer
    device = (await client.get("/api/v1/devices/u-1")).json()
    assert device["fleet_id"] == "f1" and device["os_version"] == "balenaOS 5"
    exchange = await client.post(
        "/api/v1/device/u-1/key-exchange",
        json={"uuid": "u-1", "deviceApiKey": device_key},
        headers={"Authorization": f"Bearer {device_key}"},
    )
    assert exchange.status_code == 200 and exchange.json()["status"] == "ok"
    poll = await client.get("/api/v1/device/u-1/state", headers={"X-Device-API-Key": device_key})
    assert poll.status_code == 200
    keys = (await client.get("/api/v1/provisioning-keys")).json()
    assert keys[0]["uses"] == 1 and "key" not in keys[0] and "key_hash" not in keys[0]


async def test_a_device_without_a_key_of_its_own_receives_one_once(
    client: httpx.AsyncClient,
) -> None:
    provisioning = await make_key(client)
    answer = (await register(client, provisioning["key"], registration("u-2"))).json()
    generated = answer["deviceApiKey"]
    poll = await client.get("/api/v1/device/u-2/state", headers={"X-Device-API-Key": generated})
    assert poll.status_code == 200


async def test_registering_again_with_the_same_key_is_harmless_but_another_key_conflicts(
    client: httpx.AsyncClient,
) -> None:
    provisioning = await make_key(client)
    key = secrets.token_urlsafe(32)
    assert (
        await register(client, provisioning["key"], registration("u-3", key))
    ).status_code == 201
    again = await register(client, provisioning["key"], registration("u-3", key))
    assert again.status_code == 201
    other = await register(client, provisioning["key"], registration("u-3", secrets.token_hex(32)))
    assert other.status_code == 409 and "u-3" in other.json()["error"]
    keys = (await client.get("/api/v1/provisioning-keys")).json()
    assert keys[0]["uses"] == 1


@pytest.mark.parametrize(
    ("weak", "words"),
    [("short", "at least 32"), ("a" * 40, "random"), ("é" * 40, "letters"), ("ab" * 20, "random")],
)
async def test_weak_device_keys_are_refused(
    client: httpx.AsyncClient, weak: str, words: str
) -> None:
    provisioning = await make_key(client)
    response = await register(client, provisioning["key"], registration("u-4", weak))
    assert response.status_code == 422
    assert "deviceApiKey" in response.json()["error"] and words in response.json()["error"]
    assert (await client.get("/api/v1/devices/u-4")).status_code == 404


async def test_expired_revoked_used_up_and_unknown_keys_are_refused(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    expiring = await make_key(client, expires_at=(clock.now() + timedelta(hours=1)).isoformat())
    once = await make_key(client, max_uses=1)
    revoked = await make_key(client)
    assert (await client.delete(f"/api/v1/provisioning-keys/{revoked['id']}")).json()["revoked_at"]

    assert (await register(client, once["key"], registration("u-5"))).status_code == 201
    used_up = await register(client, once["key"], registration("u-6"))
    assert used_up.status_code == 403 and "used" in used_up.json()["error"]
    refused = await register(client, revoked["key"], registration("u-7"))
    assert refused.status_code == 403 and "revoked" in refused.json()["error"]
    clock.advance(timedelta(hours=2))
    expired = await register(client, expiring["key"], registration("u-8"))
    assert expired.status_code == 403 and "expired" in expired.json()["error"]
    unknown = await register(client, "fwp_" + "z" * 40, registration("u-9"))
    assert unknown.status_code == 401
    missing = await client.post("/api/v1/device/register", json=registration("u-9"))
    assert missing.status_code == 401
    for uuid in ("u-6", "u-7", "u-8", "u-9"):
        assert (await client.get(f"/api/v1/devices/{uuid}")).status_code == 404


async def test_provisioning_keys_are_validated_and_admin_only(client: httpx.AsyncClient) -> None:
    no_fleet = await client.post("/api/v1/provisioning-keys", json={})
    assert no_fleet.status_code == 422 and "fleet_id" in no_fleet.json()["error"]
    zero = await client.post("/api/v1/provisioning-keys", json={"fleet_id": "f", "max_uses": 0})
    assert zero.status_code == 422 and "max_uses" in zero.json()["error"]
    past = await client.post(
        "/api/v1/provisioning-keys", json={"fleet_id": "f", "expires_at": "2000-01-01T00:00:00Z"}
    )
    assert past.status_code == 422 and "expires_at" in past.json()["error"]
    anonymous = await client.get("/api/v1/provisioning-keys", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert (await client.delete("/api/v1/provisioning-keys/999")).status_code == 404


async def test_key_exchange_refuses_a_key_that_is_not_the_devices(
    client: httpx.AsyncClient,
) -> None:
    provisioning = await make_key(client)
    key = secrets.token_hex(32)
    await register(client, provisioning["key"], registration("u-10", key))
    stranger = secrets.token_hex(32)
    refused = await client.post(
        "/api/v1/device/u-10/key-exchange",
        json={"uuid": "u-10", "deviceApiKey": stranger},
        headers={"Authorization": f"Bearer {stranger}"},
    )
    assert refused.status_code == 401
    mismatch = await client.post(
        "/api/v1/device/u-10/key-exchange",
        json={"uuid": "u-10", "deviceApiKey": key},
        headers={"Authorization": f"Bearer {stranger}"},
    )
    assert mismatch.status_code == 422
    wrong_path = await client.post(
        "/api/v1/device/other/key-exchange",
        json={"uuid": "u-10", "deviceApiKey": key},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert wrong_path.status_code == 422 and "uuid" in wrong_path.json()["error"]


async def test_registration_is_rate_limited_per_client(
    client: httpx.AsyncClient, container: Any, clock: ManualClock
) -> None:
    from fleetwave.ratelimit import RateLimiter

    container.registration_limiter = RateLimiter(clock, limit=3)
    statuses = [
        (await client.post("/api/v1/device/register", json=registration(f"rl-{i}"))).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    limited = await client.post("/api/v1/device/register", json=registration("rl-x"))
    assert int(limited.headers["Retry-After"]) >= 1
    clock.advance(timedelta(minutes=1, seconds=1))
    assert (
        await client.post("/api/v1/device/register", json=registration("rl-y"))
    ).status_code == 401
