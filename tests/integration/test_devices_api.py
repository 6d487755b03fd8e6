"""The device registry's admin API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from fleetwave.clock import ManualClock
from tests.integration.factories import as_device, register_device, report_body, target_apps


async def test_registering_a_device_returns_its_key_once_and_stores_only_a_hash(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="pi-0001", fleet_id="f1", tags={"site": "a"})
    assert device["uuid"] == "pi-0001"
    assert device["api_key"].startswith("fwd_") and len(device["api_key"]) >= 40
    fetched = (await client.get("/api/v1/devices/pi-0001")).json()
    assert "api_key" not in fetched and "api_key_hash" not in fetched
    assert fetched["tags"] == {"site": "a"} and fetched["fleet_id"] == "f1"


async def test_a_device_without_uuid_gets_one(client: httpx.AsyncClient) -> None:
    device = await register_device(client)
    assert len(device["uuid"]) == 32


async def test_registering_an_existing_uuid_is_a_conflict(client: httpx.AsyncClient) -> None:
    await register_device(client, uuid="dup")
    response = await client.post("/api/v1/devices", json={"uuid": "dup", "device_name": "x"})
    assert response.status_code == 409
    assert "dup" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "device_name"),
        ({"device_name": ""}, "device_name"),
        ({"device_name": "a", "uuid": "bad uuid!"}, "uuid"),
        ({"device_name": "a", "ip_address": "300.1.1.1"}, "ip_address"),
        ({"device_name": "a", "tags": {"a:b": "c"}}, "tags"),
        ({"device_name": "a", "colour": "red"}, "colour"),
        (
            {"device_name": "a", "apps": {"1001": {"appId": 1002, "appName": "w"}}},
            "apps.1001.appId",
        ),
        (
            {"device_name": "a", "apps": {"1": {"appId": 1, "appName": "w", "services": [{}]}}},
            "apps.1.services[0].imageName",
        ),
    ],
)
async def test_bad_device_bodies_get_a_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/devices", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert field in error["error"]
    assert any(d["field"].startswith(field) for d in error["detail"])
    assert (await client.get("/api/v1/devices")).json()["total"] == 0


async def test_admin_endpoints_refuse_missing_or_wrong_tokens(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/devices", headers={"Authorization": ""})
    wrong = await client.get("/api/v1/devices", headers={"Authorization": "Bearer nope"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "admin token" in wrong.json()["error"]


async def test_devices_are_listed_by_fleet_tag_and_online(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    a = await register_device(client, uuid="a", fleet_id="north", tags={"site": "x", "hw": "pi4"})
    await register_device(client, uuid="b", fleet_id="north", tags={"site": "y"})
    await register_device(client, uuid="c", fleet_id="south", tags={"site": "x"})
    await client.get("/api/v1/device/a/state", headers=as_device(a))

    async def uuids(**params: object) -> list[str]:
        response = await client.get("/api/v1/devices", params=params)
        assert response.status_code == 200, response.text
        return [d["uuid"] for d in response.json()["items"]]

    assert await uuids(fleet_id="north") == ["a", "b"]
    assert await uuids(tag="site:x") == ["a", "c"]
    assert await uuids(tag=["site:x", "hw:pi4"]) == ["a"]
    assert await uuids(online="true") == ["a"]
    assert await uuids(online="false") == ["b", "c"]
    clock.advance(timedelta(minutes=6))
    assert await uuids(online="true") == []
    bad = await client.get("/api/v1/devices", params={"tag": "nocolon"})
    assert bad.status_code == 422 and "key:value" in bad.json()["error"]


async def test_device_list_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await register_device(client, uuid=f"d{i}")
    first = (await client.get("/api/v1/devices", params={"limit": 2})).json()
    assert [d["uuid"] for d in first["items"]] == ["d0", "d1"]
    assert first["total"] == 5 and first["next_cursor"] == "d1"
    second = (
        await client.get("/api/v1/devices", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [d["uuid"] for d in second["items"]] == ["d2", "d3"]
    last = (await client.get("/api/v1/devices", params={"limit": 2, "cursor": "d3"})).json()
    assert [d["uuid"] for d in last["items"]] == ["d4"] and last["next_cursor"] is None
    too_many = await client.get("/api/v1/devices", params={"limit": 501})
    assert too_many.status_code == 422 and "limit" in too_many.json()["error"]


async def test_a_device_is_renamed_retagged_and_deleted(client: httpx.AsyncClient) -> None:
    await register_device(client, uuid="r1", tags={"a": "1"})
    patched = await client.patch(
        "/api/v1/devices/r1", json={"device_name": "renamed", "tags": {"b": "2"}}
    )
    assert patched.status_code == 200
    assert patched.json()["device_name"] == "renamed" and patched.json()["tags"] == {"b": "2"}
    bad = await client.patch("/api/v1/devices/r1", json={"ip_address": "nope"})
    assert bad.status_code == 422 and "ip_address" in bad.json()["error"]
    assert (await client.delete("/api/v1/devices/r1")).status_code == 204
    assert (await client.get("/api/v1/devices/r1")).status_code == 404
    assert (await client.delete("/api/v1/devices/r1")).status_code == 404
    assert (await client.patch("/api/v1/devices/zz", json={"tags": {}})).status_code == 404


async def test_setting_the_target_state_validates_it_and_bumps_the_version(
    client: httpx.AsyncClient,
) -> None:
    await register_device(client, uuid="t1")
    before = (await client.get("/api/v1/devices/t1/target-state")).json()
    assert before["version"] == 1
    apps = target_apps("iotistic/myapp:v2.0.1")
    del apps["1001"]["services"][0]["imageName"]  # config.image alone is enough
    put = await client.put("/api/v1/devices/t1/target-state", json={"apps": apps})
    assert put.status_code == 200, put.text
    after = put.json()
    assert after["version"] == 2 and after["etag"] != before["etag"]
    service = after["apps"]["1001"]["services"][0]
    assert service["imageName"] == service["config"]["image"] == "iotistic/myapp:v2.0.1"
    assert (await client.get("/api/v1/devices/t1/target-state")).json() == after | {
        "updated_at": after["updated_at"]
    }
    bad = await client.put(
        "/api/v1/devices/t1/target-state", json={"apps": {"1001": {"appId": "x"}}}
    )
    assert bad.status_code == 422 and "apps.1001.appId" in bad.json()["error"]
    assert (await client.get("/api/v1/devices/t1/target-state")).json()["version"] == 2
    missing = await client.put("/api/v1/devices/nope/target-state", json={"apps": {}})
    assert missing.status_code == 404


async def test_current_state_is_what_the_device_last_reported(client: httpx.AsyncClient) -> None:
    device = await register_device(client, uuid="c1")
    assert (await client.get("/api/v1/devices/c1/current-state")).status_code == 404
    await client.patch("/api/v1/device/state", json=report_body("c1"), headers=as_device(device))
    current = (await client.get("/api/v1/devices/c1/current-state")).json()
    assert current["apps"]["1001"]["services"][0]["status"] == "running"
    assert current["system_info"]["cpu_usage"] == 12.5


async def test_rotating_a_key_retires_the_old_one(client: httpx.AsyncClient) -> None:
    device = await register_device(client, uuid="k1")
    rotated = (await client.post("/api/v1/devices/k1/rotate-key")).json()
    assert rotated["api_key"] != device["api_key"]
    old = await client.get("/api/v1/device/k1/state", headers=as_device(device))
    new = await client.get(
        "/api/v1/device/k1/state", headers={"X-Device-API-Key": rotated["api_key"]}
    )
    assert old.status_code == 401 and new.status_code == 200
    assert (await client.post("/api/v1/devices/none/rotate-key")).status_code == 404
