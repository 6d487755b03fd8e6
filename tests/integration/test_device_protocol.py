"""The device-facing protocol (poll with ETag, state reports), as the iotistic agent uses it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.integration.factories import as_device, register_device, report_body, target_apps


async def test_a_poll_answers_200_with_the_target_then_304_while_it_is_unchanged(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="p1")
    first = await client.get(
        "/api/v1/device/p1/state",
        headers=as_device(device) | {"Content-Type": "application/json"},
    )
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    body = first.json()
    assert list(body) == ["p1"]
    assert body["p1"]["apps"]["1001"]["services"][0]["imageName"] == "iotistic/myapp:v2.0.0"
    assert body["p1"]["config"] == {}
    second = await client.get(
        "/api/v1/device/p1/state", headers=as_device(device) | {"if-none-match": etag}
    )
    assert second.status_code == 304 and second.content == b""
    assert second.headers["etag"] == etag


async def test_a_new_target_changes_the_etag_so_the_next_poll_gets_it(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="p2")
    etag = (await client.get("/api/v1/device/p2/state", headers=as_device(device))).headers["etag"]
    await client.put(
        "/api/v1/devices/p2/target-state", json={"apps": target_apps("iotistic/myapp:v2.0.1")}
    )
    poll = await client.get(
        "/api/v1/device/p2/state", headers=as_device(device) | {"if-none-match": etag}
    )
    assert poll.status_code == 200 and poll.headers["etag"] != etag
    assert poll.json()["p2"]["apps"]["1001"]["services"][0]["config"]["image"].endswith("v2.0.1")


async def test_a_device_key_works_as_a_bearer_token_too(client: httpx.AsyncClient) -> None:
    device = await register_device(client, uuid="p3")
    poll = await client.get(
        "/api/v1/device/p3/state", headers={"Authorization": f"Bearer {device['api_key']}"}
    )
    assert poll.status_code == 200


async def test_polls_without_a_key_or_with_a_wrong_one_are_refused(
    client: httpx.AsyncClient,
) -> None:
    await register_device(client, uuid="p4")
    missing = await client.get("/api/v1/device/p4/state", headers={"Authorization": ""})
    wrong = await client.get("/api/v1/device/p4/state", headers={"X-Device-API-Key": "x" * 40})
    admin = await client.get("/api/v1/device/p4/state")  # the admin token is no device key
    assert missing.status_code == wrong.status_code == admin.status_code == 401
    unknown = await client.get("/api/v1/device/ghost/state", headers={"X-Device-API-Key": "x"})
    assert unknown.status_code == 401


async def test_a_device_cannot_read_or_write_another_devices_state(
    client: httpx.AsyncClient,
) -> None:
    mine = await register_device(client, uuid="mine")
    await register_device(client, uuid="theirs")
    read = await client.get("/api/v1/device/theirs/state", headers=as_device(mine))
    assert read.status_code == 403 and "mine" in read.json()["error"]
    write = await client.patch(
        "/api/v1/device/state", json=report_body("theirs"), headers=as_device(mine)
    )
    assert write.status_code == 403
    both = report_body("mine") | report_body("theirs")
    assert (
        await client.patch("/api/v1/device/state", json=both, headers=as_device(mine))
    ).status_code == 403
    assert (await client.get("/api/v1/devices/theirs/current-state")).status_code == 404
    assert (await client.get("/api/v1/devices/mine/current-state")).status_code == 404


async def test_polls_and_reports_mark_a_device_online_until_it_goes_silent(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    device = await register_device(client, uuid="on1")
    assert (await client.get("/api/v1/devices/on1")).json()["is_online"] is False
    await client.get("/api/v1/device/on1/state", headers=as_device(device))
    seen = (await client.get("/api/v1/devices/on1")).json()
    assert seen["is_online"] is True and seen["last_connectivity_event"] is not None
    clock.advance(timedelta(minutes=4, seconds=59))
    assert (await client.get("/api/v1/devices/on1")).json()["is_online"] is True
    clock.advance(timedelta(seconds=2))
    assert (await client.get("/api/v1/devices/on1")).json()["is_online"] is False
    await client.patch("/api/v1/device/state", json=report_body("on1"), headers=as_device(device))
    assert (await client.get("/api/v1/devices/on1")).json()["is_online"] is True


async def test_a_report_stores_current_state_and_the_device_facts(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="r1")
    response = await client.patch(
        "/api/v1/device/state", json=report_body("r1"), headers=as_device(device)
    )
    assert response.status_code == 200, response.text
    facts = (await client.get("/api/v1/devices/r1")).json()
    assert facts["os_version"] == "Debian 12" and facts["supervisor_version"] == "1.4.0"
    assert facts["ip_address"] == "192.168.1.20"
    # A later report without apps (metrics only) keeps the apps reported before.
    await client.patch(
        "/api/v1/device/state",
        json={"r1": {"cpu_usage": 50, "temperature": 61.5}},
        headers=as_device(device),
    )
    current = (await client.get("/api/v1/devices/r1/current-state")).json()
    assert current["apps"]["1001"]["services"][0]["containerId"] == "c0ffee"
    assert current["system_info"] == {"cpu_usage": 50, "temperature": 61.5}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ([1, 2], 422, "body"),
        ({}, 422, "body"),
        ({"r2": "running"}, 422, "r2"),
        ({"r2": {"apps": []}}, 422, "r2.apps"),
        ({"r2": {"apps": {"1": {"services": {}}}}}, 422, "r2.apps.1.services"),
        ({"r2": {"apps": {"1": {"services": [{"status": 3}]}}}}, 422, "services[0].status"),
        ({"r2": {"cpu_usage": "high"}}, 422, "r2.cpu_usage"),
        ({"r2": {"is_online": "yes"}}, 422, "r2.is_online"),
        ({"r2": {"local_ip": "not-an-ip"}}, 422, "r2.local_ip"),
        ({"unknown-device": {"is_online": True}}, 403, "unknown-device"),
    ],
)
async def test_malformed_reports_are_refused_whole_and_change_nothing(
    client: httpx.AsyncClient, body: Any, status: int, words: str
) -> None:
    device = await register_device(client, uuid="r2")
    response = await client.patch("/api/v1/device/state", json=body, headers=as_device(device))
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert (await client.get("/api/v1/devices/r2/current-state")).status_code == 404
    assert (await client.get("/api/v1/devices/r2")).json()["last_connectivity_event"] is None


async def test_a_report_that_is_not_json_or_too_large_is_refused(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="r3")
    headers = as_device(device) | {"Content-Type": "application/json"}
    garbage = await client.patch("/api/v1/device/state", content=b"{nope", headers=headers)
    assert garbage.status_code == 422 and "JSON" in garbage.json()["error"]
    not_a_number = b'{"r3": {"cpu_usage": NaN}}'
    nan = await client.patch("/api/v1/device/state", content=not_a_number, headers=headers)
    assert nan.status_code == 422 and "NaN" in nan.json()["error"]
    huge = {"r3": {"apps": {}, "padding": "x" * (1024 * 1024)}}
    too_large = await client.patch("/api/v1/device/state", json=huge, headers=headers)
    assert too_large.status_code == 413 and "larger" in too_large.json()["error"]

    async def chunks() -> Any:  # no Content-Length: the limit must still hold
        for _ in range(20):
            yield b" " * 100_000

    streamed = await client.patch("/api/v1/device/state", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert (await client.get("/api/v1/devices/r3/current-state")).status_code == 404


async def test_an_unchanged_poll_is_answered_from_memory_and_last_seen_is_written_behind(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await register_device(client, uuid="hot")
    await container.target_watch.listening()  # PostgreSQL: the cache trusts NOTIFYs only
    etag = (await client.get("/api/v1/device/hot/state", headers=as_device(device))).headers["etag"]
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SELECT 1")):
            statements.append(" ".join(statement.split()))

    event.listen(container.db.engine.sync_engine, "before_cursor_execute", record)
    try:
        headers = as_device(device) | {"if-none-match": etag}
        assert (await client.get("/api/v1/device/hot/state", headers=headers)).status_code == 304
        assert statements == []
        clock.advance(timedelta(seconds=76))  # last-seen now worth refreshing: written behind
        assert (await client.get("/api/v1/device/hot/state", headers=headers)).status_code == 304
        assert statements == [] and container.last_seen.pending == 1
        assert await container.last_seen.flush() == 1
        assert [s.split()[0] for s in statements] == ["UPDATE"]
    finally:
        event.remove(container.db.engine.sync_engine, "before_cursor_execute", record)
    seen = (await client.get("/api/v1/devices/hot")).json()["last_connectivity_event"]
    assert seen.startswith(clock.now().isoformat()[:19])
