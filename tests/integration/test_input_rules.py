"""Bad input at every door is refused with 422 naming the field, on both databases, and
nothing is written: NUL characters, lone surrogates and control characters in bodies, paths,
query parameters and headers; numbers beyond their bounds; bogus cursors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.store.tables import metadata
from tests.conftest import ADMIN_TOKEN
from tests.integration.factories import as_device, register_device, report_body, target_apps
from tests.integration.webhooks import NO_ADMIN, load

TOO_BIG = 2**63  # one beyond a BIGINT
WEBHOOK_SECRET = "test-webhook-secret-0123456789"


@dataclass
class World:
    """What a bad request could damage: a device, a policy, a provisioning key, a rollout."""

    device: dict[str, Any]
    policy_id: int
    provisioning_key: str
    rollout_id: str


@pytest.fixture
async def world(client: httpx.AsyncClient) -> World:
    device = await register_device(client, fleet_id="north")
    policy = await client.post("/api/v1/image-policies", json={"image_pattern": "iotistic/myapp:*"})
    key = await client.post("/api/v1/provisioning-keys", json={"fleet_id": "north"})
    rollout = await client.post(
        "/api/v1/images/trigger-update", json={"image": "iotistic/myapp:v2.0.1"}
    )
    assert policy.status_code == 201 and key.status_code == 201, (policy.text, key.text)
    assert rollout.status_code == 200 and rollout.json()["rollout_id"], rollout.text
    return World(device, policy.json()["id"], key.json()["key"], rollout.json()["rollout_id"])


async def stored(container: Container) -> dict[str, list[str]]:
    """Every row of every table, as text: "nothing written" is this, unchanged."""
    async with container.db.read() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in await conn.execute(select(table)))
            for table in metadata.sorted_tables
        }


async def send(
    client: httpx.AsyncClient, method: str, url: str, body: Any = None, **headers: str
) -> httpx.Response:
    """JSON written with escapes (``\\u0000``, ``\\ud800``), as a client would send them."""
    content = None if body is None else json.dumps(body)
    if content is not None:
        headers = {"Content-Type": "application/json", **headers}
    return await client.request(method, url, content=content, headers=headers)


def fields_of(response: httpx.Response) -> list[str]:
    return [problem["field"] for problem in response.json()["detail"]]


def policy(**fields: Any) -> dict[str, Any]:
    return {"image_pattern": "iotistic/myapp:*"} | fields


def device(**fields: Any) -> dict[str, Any]:
    return {"device_name": "pi-2"} | fields


ADMIN_BODIES = [
    pytest.param(
        "POST", "/api/v1/devices", device(device_name="pi\x00"), "device_name", id="device name NUL"
    ),
    pytest.param(
        "POST",
        "/api/v1/devices",
        device(device_name="\ud800"),
        "device_name",
        id="device name surrogate",
    ),
    pytest.param(
        "POST",
        "/api/v1/devices",
        device(device_name="bell\x07"),
        "device_name",
        id="device name control character",
    ),
    pytest.param(
        "POST", "/api/v1/devices", device(fleet_id="no\x00rth"), "fleet_id", id="fleet id NUL"
    ),
    pytest.param(
        "POST",
        "/api/v1/devices",
        device(tags={"site": "ly\x00on"}),
        "tags.site",
        id="tag value NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/devices",
        device(tags={"si\x00te": "lyon"}),
        "tags.si\x00te.[key]",
        id="tag key NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/devices",
        device(apps=target_apps("fuzz/app:\x00v9")),
        "apps",
        id="target image NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/devices",
        device(config={"NOTE": "\ud800"}),
        "config",
        id="config surrogate",
    ),
    pytest.param(
        "PATCH",
        "/api/v1/devices/{uuid}",
        {"device_type": "pi\x00"},
        "device_type",
        id="device type NUL",
    ),
    pytest.param(
        "PUT",
        "/api/v1/devices/{uuid}/target-state",
        {"apps": target_apps("fuzz/app:\x00v9")},
        "apps",
        id="target state NUL",
    ),
    pytest.param(
        "PUT",
        "/api/v1/devices/{uuid}/target-state",
        {"apps": target_apps(), "config": {"k\x00": 1}},
        "config",
        id="target config key NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(image_pattern="fuzz/*:\x00*"),
        "image_pattern",
        id="pattern NUL",
    ),
    pytest.param(
        "PUT",
        "/api/v1/image-policies/{policy_id}",
        policy(image_pattern="a/\udc80"),
        "image_pattern",
        id="pattern surrogate on replace",
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(health_check_config={"checks": [{"type": "http", "url": "http://\x00"}]}),
        "health_check_config",
        id="health check NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(description="pumps\x00"),
        "description",
        id="description NUL",
    ),
    pytest.param(
        "POST", "/api/v1/image-policies", policy(fleet_id="\x00"), "fleet_id", id="policy fleet NUL"
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(device_tags={"site": "\x00"}),
        "device_tags.site",
        id="policy tag NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(include_tags=["v\x00*"]),
        "include_tags.0",
        id="include tag NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(maintenance_window_timezone="U\x00"),
        "maintenance_window_timezone",
        id="timezone NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(failure_rate_min_devices=10**18),
        "failure_rate_min_devices",
        id="min devices 1e18",
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(failure_rate_min_devices=1e30),
        "failure_rate_min_devices",
        id="min devices 1e30",
    ),
    pytest.param(
        "POST",
        "/api/v1/image-policies",
        policy(batch_percentages=[i / 1000 for i in range(1, 100_000)] + [100]),
        "batch_percentages",
        id="100,000 batches",
    ),
    pytest.param(
        "POST",
        "/api/v1/provisioning-keys",
        {"fleet_id": "no\x00rth"},
        "fleet_id",
        id="key fleet NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/provisioning-keys",
        {"fleet_id": "north", "expires_at": "9999-12-31T23:59:59-23:59"},
        "expires_at",
        id="expiry beyond 9999 in UTC",
    ),
    pytest.param(
        "POST",
        "/api/v1/provisioning-keys",
        {"fleet_id": "north", "expires_at": "0001-01-01T00:00:00+23:59"},
        "expires_at",
        id="expiry before year 1 in UTC",
    ),
    pytest.param(
        "POST",
        "/api/v1/provisioning-keys",
        {"fleet_id": "north", "max_uses": 1e30},
        "max_uses",
        id="max uses 1e30",
    ),
    pytest.param(
        "POST",
        "/api/v1/images/trigger-update",
        {"image": "fuzz/app:\x00v9"},
        "image",
        id="trigger image NUL",
    ),
    pytest.param(
        "POST",
        "/api/v1/images/trigger-update",
        {"image": "iotistic/myapp:v3", "filters": {"fleet_id": "\ud800"}},
        "filters.fleet_id",
        id="trigger fleet surrogate",
    ),
    pytest.param(
        "POST",
        "/api/v1/rollouts/{rollout_id}/pause",
        {"note": "ad\x00min"},
        "note",
        id="control note NUL",
    ),
]


@pytest.mark.parametrize(("method", "url", "body", "expected"), ADMIN_BODIES)
async def test_bad_admin_body_is_refused_naming_the_field_and_nothing_is_written(
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    method: str,
    url: str,
    body: Any,
    expected: str,
) -> None:
    url = url.format(
        uuid=world.device["uuid"], policy_id=world.policy_id, rollout_id=world.rollout_id
    )
    before = await stored(container)

    response = await send(client, method, url, body)

    assert response.status_code == 422, response.text
    assert expected in fields_of(response)
    assert await stored(container) == before


ADMIN_URLS = [
    pytest.param("GET", "/api/v1/devices/a%00b", "path", id="device path NUL"),
    pytest.param("DELETE", "/api/v1/devices/a%00b", "path", id="device delete NUL"),
    pytest.param("PATCH", "/api/v1/devices/a%07b", "path", id="device path control"),
    pytest.param("GET", "/api/v1/devices?fleet_id=no%00rth", "fleet_id", id="fleet query NUL"),
    pytest.param("GET", "/api/v1/devices?tag=site:%00", "tag", id="tag query NUL"),
    pytest.param("GET", "/api/v1/devices?cursor=%00", "cursor", id="device cursor NUL"),
    pytest.param("GET", "/api/v1/devices?cursor=!!!", "cursor", id="device cursor bogus"),
    pytest.param("GET", "/api/v1/devices?cursor=", "cursor", id="device cursor empty"),
    pytest.param(
        "GET",
        "/api/v1/rollouts/{rollout_id}/devices?cursor=..",
        "cursor",
        id="rollout device cursor bogus",
    ),
    pytest.param("GET", f"/api/v1/rollouts?cursor={TOO_BIG}", "cursor", id="rollout cursor 2^63"),
    pytest.param("GET", f"/api/v1/image-policies/{2**31}", "policy_id", id="policy id 2^31"),
    pytest.param("GET", f"/api/v1/events?after={2**31}", "after", id="events after 2^31"),
    pytest.param("GET", "/api/v1/rollouts?cursor=0", "cursor", id="rollout cursor 0"),
    pytest.param("GET", "/api/v1/devices?cursor=AAAAAAAA", "cursor", id="device cursor of no one"),
    pytest.param("GET", "/api/v1/rollouts?cursor=999999", "cursor", id="rollout cursor of none"),
    pytest.param(
        "GET",
        "/api/v1/rollouts/{rollout_id}/devices?cursor=AAAAAAAA",
        "cursor",
        id="rollout device cursor of no one",
    ),
    pytest.param("GET", "/api/v1/rollouts?image=fuzz/app:%00v9", "image", id="image query NUL"),
    pytest.param("GET", f"/api/v1/image-policies/{TOO_BIG}", "policy_id", id="policy id 2^63"),
    pytest.param("PUT", f"/api/v1/image-policies/{10**30}", "policy_id", id="policy id 1e30"),
    pytest.param(
        "DELETE", f"/api/v1/image-policies/{TOO_BIG}", "policy_id", id="policy delete 2^63"
    ),
    pytest.param("DELETE", f"/api/v1/provisioning-keys/{TOO_BIG}", "key_id", id="key id 2^63"),
    pytest.param("GET", "/api/v1/events?after=1e30", "after", id="events after 1e30"),
    pytest.param("GET", f"/api/v1/events?after={TOO_BIG}", "after", id="events after 2^63"),
    pytest.param("GET", f"/api/v1/events/stream?after={TOO_BIG}", "after", id="stream after 2^63"),
    pytest.param("GET", "/api/v1/events?rollout_id=%00", "rollout_id", id="events rollout NUL"),
    pytest.param(
        "GET",
        f"/api/v1/rollouts/{{rollout_id}}/events?after={TOO_BIG}",
        "after",
        id="rollout events after 2^63",
    ),
    pytest.param(
        "GET", "/api/v1/rollouts/{rollout_id}/devices?batch=101", "batch", id="batch beyond 100"
    ),
    pytest.param("GET", "/api/v1/rollouts/r%00/devices", "path", id="rollout path NUL"),
]


@pytest.mark.parametrize(("method", "url", "expected"), ADMIN_URLS)
async def test_bad_path_or_query_is_refused_naming_the_parameter_and_nothing_is_written(
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    method: str,
    url: str,
    expected: str,
) -> None:
    url = url.replace("{rollout_id}", world.rollout_id)
    body = policy() if method in ("PUT", "PATCH") else None
    before = await stored(container)

    response = await send(client, method, url, body)

    assert response.status_code == 422, response.text
    assert expected in fields_of(response)
    assert await stored(container) == before


@pytest.mark.parametrize(
    "last_event_id", [str(TOO_BIG), "9" * 40, "1e3"], ids=["2^63", "40 digits", "exponent"]
)
async def test_last_event_id_beyond_an_event_id_is_refused(
    client: httpx.AsyncClient, last_event_id: str
) -> None:
    response = await client.get("/api/v1/events/stream", headers={"Last-Event-ID": last_event_id})

    assert response.status_code == 422, response.text
    assert fields_of(response) == ["Last-Event-ID"]


REPORTS = [
    pytest.param({"cpu_usage": int("9" * 4000)}, "cpu_usage", id="4,000-digit cpu"),
    pytest.param({"cpu_usage": 250}, "cpu_usage", id="cpu over 100 percent"),
    pytest.param({"memory_usage": -1e20}, "memory_usage", id="negative memory"),
    pytest.param({"uptime": -1}, "uptime", id="negative uptime"),
    pytest.param({"os_version": "Debian\x0012"}, "os_version", id="os version NUL"),
    pytest.param({"config": {"NOTE": "\ud800"}}, "config.NOTE", id="config surrogate"),
    pytest.param({"extra": {"k\x00": 1}}, "extra", id="unknown field key NUL"),
]


@pytest.mark.parametrize(("extra", "expected"), REPORTS)
async def test_bad_device_report_is_refused_naming_the_field_and_nothing_is_written(
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    extra: dict[str, Any],
    expected: str,
) -> None:
    uuid = world.device["uuid"]
    before = await stored(container)

    response = await send(
        client,
        "PATCH",
        "/api/v1/device/state",
        report_body(uuid, **extra),
        **as_device(world.device),
    )

    assert response.status_code == 422, response.text
    assert fields_of(response) == [f"{uuid}.{expected}"]
    assert await stored(container) == before


async def test_bad_device_bodies_and_paths_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, container: Container, world: World
) -> None:
    uuid, key = world.device["uuid"], as_device(world.device)
    registration = {"Authorization": f"Bearer {world.provisioning_key}"}
    new_uuid = "d6a1c0de-0000-4000-8000-0000000000ff"
    before = await stored(container)

    answers = {
        "health check": await send(
            client,
            "POST",
            f"/api/v1/device/{uuid}/health",
            {"results": [{"check": "web\x00", "passed": True}]},
            **key,
        ),
        "registration": await send(
            client,
            "POST",
            "/api/v1/device/register",
            {"uuid": new_uuid, "deviceName": "pi\x00", "deviceApiKey": "k" * 32},
            **registration,
        ),
        "poll": await send(client, "GET", "/api/v1/device/a%00b/state", **key),
    }

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 422)
    assert fields_of(answers["health check"]) == ["results.0.check"]
    assert fields_of(answers["registration"]) == ["deviceName"]
    assert fields_of(answers["poll"]) == ["path"]
    assert await stored(container) == before


async def test_webhook_payload_with_a_nul_anywhere_is_refused_before_it_is_kept(
    client: httpx.AsyncClient, container: Container, world: World
) -> None:
    payload = load("dockerhub/push.json")
    payload["push_data"]["pusher"] = "ev\x00e"
    before = await stored(container)

    response = await send(
        client, "POST", f"/api/v1/webhooks/dockerhub/{WEBHOOK_SECRET}", payload, **NO_ADMIN
    )

    assert response.status_code == 422, response.text
    assert fields_of(response) == ["body.push_data.pusher"]
    assert await stored(container) == before


async def test_cursors_the_server_gave_still_page_on(client: httpx.AsyncClient) -> None:
    for name in ("pi-a", "pi-b", "pi-c"):
        await register_device(client, device_name=name)
    first = (await client.get("/api/v1/devices?limit=2")).json()

    second = await client.get(f"/api/v1/devices?limit=2&cursor={first['next_cursor']}")

    assert second.status_code == 200, second.text
    assert len(first["items"]) == 2 and len(second.json()["items"]) == 1


async def test_the_dashboards_forms_and_pages_refuse_bad_text_too(
    client: httpx.AsyncClient, container: Container, world: World
) -> None:
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test") as browser:
        await browser.post("/ui/login", data={"token": ADMIN_TOKEN})
        page = (await browser.get("/ui/rollouts")).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        before = await stored(container)

        answers = {
            "control note": await browser.post(
                f"/ui/rollouts/{world.rollout_id}/pause",
                data={"csrf_token": csrf.group(1), "note": "why\x00"},
            ),
            "policy form": await browser.post(
                "/ui/policies",
                data={"csrf_token": csrf.group(1), "image_pattern": "fuzz/*:\x00*"},
            ),
            "device cursor": await browser.get("/ui/devices?cursor=!!!"),
            "policy id": await browser.get(f"/ui/policies/{TOO_BIG}"),
        }

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 422)
    assert await stored(container) == before
