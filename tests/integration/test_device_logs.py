"""Device logs over HTTP: the iotistic agent's NDJSON batches in, refusals that name the line
and the field, retention per device (count and age), and the admin API reading them back."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fleetwave.agent.agent import Agent
from fleetwave.agent.client import DeviceClient
from fleetwave.agent.log_shipper import LogShipper
from fleetwave.agent.simulated import Behaviour, SimulatedRuntime
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.domain.log_retention import Retention, StoredLine, retained
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.tables import device_logs
from tests.conftest import admin_client
from tests.integration.factories import as_device, register_device, target_apps

MS_2026 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def iotistic_line(message: str, n: int = 0, **fields: Any) -> dict[str, Any]:
    """A container's line as the iotistic agent's log monitor builds it."""
    return {
        "message": message,
        "timestamp": MS_2026 + n,
        "level": "info",
        "source": {"type": "container", "name": "app"},
        "serviceId": 1,
        "serviceName": "app",
        "containerId": "4f2a9c",
        "isStdErr": False,
        "isSystem": False,
    } | fields


def system_line(message: str, level: str = "info") -> dict[str, Any]:
    return {
        "message": message,
        "timestamp": MS_2026,
        "level": level,
        "source": {"type": "system", "name": "container-manager"},
        "isSystem": True,
    }


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    return ("\n".join(json.dumps(line) for line in lines) + "\n").encode()


async def ship(
    client: httpx.AsyncClient,
    device: dict[str, Any],
    lines: list[dict[str, Any]],
    *,
    gzipped: bool = True,
) -> httpx.Response:
    """POST as the iotistic agent's cloud backend does: NDJSON, gzipped, its key header."""
    headers = as_device(device) | {"Content-Type": "application/x-ndjson"}
    body = ndjson(lines)
    if gzipped:
        body, headers = gzip.compress(body), headers | {"Content-Encoding": "gzip"}
    return await client.post(f"/api/v1/device/{device['uuid']}/logs", content=body, headers=headers)


async def messages(client: httpx.AsyncClient, uuid: str, **params: Any) -> list[str]:
    page = await client.get(f"/api/v1/devices/{uuid}/logs", params=params)
    assert page.status_code == 200, page.text
    return [line["message"] for line in page.json()["items"]]


async def stored_rows(container: Container) -> int:
    async with container.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(device_logs))).scalar_one())


# --- in ------------------------------------------------------------------------------------


async def test_the_iotistic_agents_gzipped_ndjson_batch_is_stored_and_read_back(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="logs-1")
    batch = [
        iotistic_line("listening on :8080"),
        iotistic_line("Error: cannot open /data/db", 1, level="error", isStdErr=True),
        system_line("Container app started"),
    ]
    answer = await ship(client, device, batch)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ok", "received": 3, "stored": 3}

    page = (await client.get("/api/v1/devices/logs-1/logs")).json()
    first, crash, system = page["items"]
    assert page["next_cursor"] == system["id"]
    assert first["id"] < crash["id"] < system["id"]
    assert first["logged_at"].startswith("2026-01-01T00:00:00")
    assert (first["service"], first["source"], first["stream"], first["level"]) == (
        "app",
        "container",
        "stdout",
        "info",
    )
    assert (crash["level"], crash["stream"], crash["message"]) == (
        "error",
        "stderr",
        "Error: cannot open /data/db",
    )
    assert (system["service"], system["source"], system["stream"]) == (None, "system", None)


async def test_a_json_array_with_the_key_as_a_bearer_token_is_taken_too(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="logs-2")
    answer = await client.post(
        "/api/v1/device/logs-2/logs",
        json=[{"message": "plain"}, {"message": "loud", "level": "WARNING"}],
        headers={"Authorization": f"Bearer {device['api_key']}"},
    )
    assert answer.status_code == 200, answer.text
    lines = (await client.get("/api/v1/devices/logs-2/logs")).json()["items"]
    assert [(line["level"], line["source"]) for line in lines] == [
        ("info", "system"),
        ("warn", "system"),
    ]
    assert lines[0]["logged_at"] == lines[0]["received_at"]  # no timestamp: when received


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-Device-API-Key": "fwd_not-a-key"}, 401),
        ({"X-Device-API-Key": "OTHER"}, 403),
    ],
)
async def test_only_the_devices_own_key_ships_its_logs(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    await register_device(client, uuid="logs-3")
    other = await register_device(client, uuid="logs-3-other")
    if headers.get("X-Device-API-Key") == "OTHER":
        headers = {"X-Device-API-Key": other["api_key"]}
    answer = await client.post(
        "/api/v1/device/logs-3/logs",
        content=ndjson([iotistic_line("hello")]),
        headers=headers | {"Authorization": ""},
    )
    assert answer.status_code == status, answer.text
    assert await messages(client, "logs-3") == []


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (ndjson([iotistic_line("ok"), iotistic_line("a\u0000b")]), 422, "line 2.message"),
        (
            ndjson([iotistic_line("ok"), iotistic_line("x" * 16_385)]),
            422,
            "line 2.message: is longer than 16,384 characters",
        ),
        (ndjson([iotistic_line("ok", level="verbose")]), 422, "line 1.level: must be one of"),
        (ndjson([iotistic_line("ok", timestamp=-5)]), 422, "line 1.timestamp"),
        (ndjson([iotistic_line("ok", timestamp="yesterday")]), 422, "line 1.timestamp"),
        (ndjson([iotistic_line("ok", serviceId=2**64)]), 422, "line 1.serviceId"),
        (ndjson([iotistic_line("ok", serviceName="a\tb")]), 422, "line 1.serviceName"),
        (ndjson([{"level": "info"}]), 422, "line 1.message: is required"),
        (b'{"message": "ok"}\n{"message": \n', 422, "line 2: is not valid JSON"),
        (b'{"message": "ok"}\n\n["a list"]\n', 422, "line 3: must be a JSON object"),
        (b'{"message": "\xff"}', 422, "body: is not valid UTF-8"),
        (b'{"message": "x"}\n' * 10_001, 413, "at most 10,000 per request"),
    ],
)
async def test_a_bad_batch_is_refused_whole_naming_the_line_and_the_field(
    client: httpx.AsyncClient, container: Container, body: bytes, status: int, says: str
) -> None:
    device = await register_device(client, uuid="logs-4")
    answer = await client.post(
        "/api/v1/device/logs-4/logs",
        content=body,
        headers=as_device(device) | {"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]
    assert await stored_rows(container) == 0


async def test_a_content_type_it_cannot_read_is_415_and_a_json_object_is_422(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="logs-5")
    xml = await client.post(
        "/api/v1/device/logs-5/logs",
        content=b"<log/>",
        headers=as_device(device) | {"Content-Type": "application/xml"},
    )
    assert xml.status_code == 415 and "application/x-ndjson" in xml.json()["error"]
    not_a_list = await client.post(
        "/api/v1/device/logs-5/logs", json={"message": "x"}, headers=as_device(device)
    )
    assert not_a_list.status_code == 422
    assert "must be a JSON array" in not_a_list.json()["error"]


# --- retention -------------------------------------------------------------------------------


@pytest.fixture
async def small(settings: Settings, clock: ManualClock) -> AsyncIterator[Container]:
    """A server that keeps 5 lines per device for 7 days."""
    kept = settings.model_copy(update={"device_log_lines": 5})
    db = Database(kept.resolved_database_url)
    yield build(kept, clock=clock, db=db)
    await db.dispose()


async def test_a_device_keeps_its_newest_lines_and_a_big_batch_writes_only_those(
    small: Container,
) -> None:
    async with admin_client(small) as client:
        device = await register_device(client, uuid="keep-1")
        other = await register_device(client, uuid="keep-2")
        await ship(client, other, [iotistic_line("other's")])
        await ship(client, device, [iotistic_line(f"a{i}") for i in range(3)])
        await ship(client, device, [iotistic_line(f"b{i}") for i in range(4)])
        assert await messages(client, "keep-1") == ["a2", "b0", "b1", "b2", "b3"]

        answer = await ship(client, device, [iotistic_line(f"c{i}") for i in range(8)])
        assert answer.json() == {"status": "ok", "received": 8, "stored": 5}
        assert await messages(client, "keep-1") == [f"c{i}" for i in range(3, 8)]
        assert await messages(client, "keep-2") == ["other's"]


async def test_lines_older_than_the_age_limit_go_with_the_next_batch_or_the_monitors_sweep(
    small: Container, clock: ManualClock
) -> None:
    async with admin_client(small) as client:
        talking = await register_device(client, uuid="age-1")
        silent = await register_device(client, uuid="age-2")
        await ship(client, talking, [iotistic_line("old")])
        await ship(client, silent, [iotistic_line("old and silent")])
        clock.advance(timedelta(days=6))
        await ship(client, talking, [iotistic_line("recent")])
        clock.advance(timedelta(days=1, seconds=1))

        await ship(client, talking, [iotistic_line("new")])
        assert await messages(client, "age-1") == ["recent", "new"]
        assert await messages(client, "age-2") == ["old and silent"]

        done = await small.monitor.tick()
        assert any("deleted 1 device log lines" in " ".join(a.events) for a in done), done
        assert await messages(client, "age-2") == []
        assert await small.monitor.tick() == []  # the sweep waits a minute before it runs again


async def test_pruning_in_sql_keeps_exactly_what_the_retention_rule_says(
    small: Container, clock: ManualClock
) -> None:
    start = clock.now()
    async with admin_client(small) as client:
        device = await register_device(client, uuid="rule-1")
        for day in range(9):
            await ship(client, device, [iotistic_line(f"d{day}-{i}") for i in range(day % 3 + 1)])
            async with small.db.read() as conn:
                rows = (
                    await conn.execute(
                        select(device_logs.c.id, device_logs.c.received_at).order_by(
                            device_logs.c.id
                        )
                    )
                ).all()
            stored = [StoredLine(row.id, row.received_at) for row in rows]
            assert [line.id for line in stored] == retained(
                stored, Retention(5, timedelta(days=7)), clock.now()
            )
            clock.advance(timedelta(hours=20))
    assert clock.now() - start > timedelta(days=7)


async def test_deleting_a_device_deletes_its_logs(
    client: httpx.AsyncClient, container: Container
) -> None:
    device = await register_device(client, uuid="gone-1")
    await ship(client, device, [iotistic_line("bye")])
    assert await stored_rows(container) == 1
    assert (await client.delete("/api/v1/devices/gone-1")).status_code == 204
    assert await stored_rows(container) == 0
    again = await ship(client, device, [iotistic_line("still here?")])
    assert again.status_code == 401


# --- out -------------------------------------------------------------------------------------


async def test_logs_are_filtered_by_service_level_and_time_and_tailed(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="read-1")
    await ship(
        client,
        device,
        [
            iotistic_line("app debug", 0, level="debug"),
            iotistic_line("db warn", 60_000, level="warn", serviceName="db"),
            iotistic_line("app error", 120_000, level="error"),
            system_line("system info"),
        ],
    )
    assert await messages(client, "read-1", service="app") == ["app debug", "app error"]
    assert await messages(client, "read-1", level="warn") == ["db warn", "app error"]
    assert await messages(client, "read-1", since="2026-01-01T00:01:00Z") == [
        "db warn",
        "app error",
    ]
    assert await messages(client, "read-1", since="2026-01-01T00:01:00") == [
        "db warn",
        "app error",
    ]
    assert await messages(client, "read-1", tail=2) == ["app error", "system info"]
    assert await messages(client, "read-1", tail=1, level="error") == ["app error"]


async def test_a_follower_pages_by_after_and_misses_and_repeats_nothing(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="follow-1")
    await ship(client, device, [iotistic_line(f"l{i}") for i in range(5)])
    first = (await client.get("/api/v1/devices/follow-1/logs", params={"limit": 3})).json()
    assert [line["message"] for line in first["items"]] == ["l0", "l1", "l2"]
    rest = await messages(client, "follow-1", after=first["next_cursor"])
    assert rest == ["l3", "l4"]

    tail = (await client.get("/api/v1/devices/follow-1/logs", params={"tail": 1})).json()
    await ship(client, device, [iotistic_line("l5")])
    assert await messages(client, "follow-1", after=tail["next_cursor"]) == ["l5"]
    quiet = (await client.get("/api/v1/devices/follow-1/logs", params={"after": 10**12})).json()
    assert quiet == {"items": [], "next_cursor": 10**12}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 5, "tail": 5}, "tail"),
        ({"level": "verbose"}, "level"),
        ({"tail": 0}, "tail"),
        ({"after": -1}, "after"),
        ({"since": "yesterday"}, "since"),
    ],
)
async def test_a_bad_query_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    await register_device(client, uuid="query-1")
    answer = await client.get("/api/v1/devices/query-1/logs", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["field"] == field


async def test_the_logs_of_an_unknown_device_are_404_and_need_the_admin_token(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/api/v1/devices/nobody/logs")).status_code == 404
    device = await register_device(client, uuid="admin-1")
    as_it = await client.get("/api/v1/devices/admin-1/logs", headers=as_device(device))
    assert as_it.status_code == 401


async def no_sleep(_: float) -> None:
    return None


async def test_fleetwaves_own_agent_ships_a_crashed_containers_last_words(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    device = await register_device(
        client, uuid="agent-1", apps=target_apps("iotistic/myapp:v2.0.1")
    )
    crashes = Behaviour(exits_after_start=True, crash_output="Error: missing DATABASE_URL")
    runtime = SimulatedRuntime({"v2.0.1": crashes}, now=clock.now)
    device_client = DeviceClient(client, "agent-1", device["api_key"])
    shipper = LogShipper(device_client, runtime, wall=lambda: clock.now().timestamp())
    agent = Agent(
        device_client, runtime, report_interval=0, sleep=no_sleep, long_poll=False, logs=shipper
    )
    await agent.step()
    await shipper.round()

    page = await client.get("/api/v1/devices/agent-1/logs", params={"level": "error"})
    [crash] = page.json()["items"]
    assert (crash["service"], crash["source"], crash["stream"], crash["message"]) == (
        "app",
        "container",
        "stderr",
        "Error: missing DATABASE_URL",
    )
    assert crash["logged_at"] == crash["received_at"] == "2026-01-01T00:00:00Z"
