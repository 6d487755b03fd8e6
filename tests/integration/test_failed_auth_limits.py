"""Wrong-key floods: failed device authentications are limited per source address and per
uuid (429 with Retry-After, from memory), and devices with their right keys are never."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.settings import Settings
from tests.integration.factories import as_device, register_device, report_body, target_apps
from tests.integration.replicas import Replica, notifications_arrived

PER_ADDRESS, PER_UUID = 6, 3
WRONG_KEY = {"X-Device-API-Key": "w" * 43, "Authorization": ""}
ATTACKER, FLEET_NAT = "203.0.113.9", "198.51.100.7"

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "device_auth_failures_per_address": PER_ADDRESS,
            "device_auth_failures_per_uuid": PER_UUID,
            "device_auth_failure_window": 60,
        }
    )


@pytest.fixture
async def from_address(here: Replica) -> AsyncIterator[Client]:
    """HTTP clients of the same app, each from its own source address."""
    app = create_app(here.container)
    clients: list[httpx.AsyncClient] = []

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test"))
        return clients[-1]

    yield client
    for made in clients:
        await made.aclose()


@contextmanager
def statements_run(container: Container) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = container.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def flood(client: httpx.AsyncClient, times: int) -> list[int]:
    """Wrong-key polls, each of another (unknown) uuid; their statuses."""
    return [
        (await client.get(f"/api/v1/device/guess-{n}/state", headers=WRONG_KEY)).status_code
        for n in range(times)
    ]


async def test_wrong_keys_past_the_address_limit_get_429_with_retry_after_from_memory(
    here: Replica, from_address: Client, clock: ManualClock
) -> None:
    attacker = from_address(ATTACKER)
    assert await flood(attacker, PER_ADDRESS) == [401] * PER_ADDRESS
    clock.advance(timedelta(seconds=15))

    with statements_run(here.container) as statements:
        refused = await attacker.get("/api/v1/device/guess-new/state", headers=WRONG_KEY)
        waited = await attacker.get("/api/v1/device/guess-0/state?wait=0", headers=WRONG_KEY)
        reported = await attacker.patch(
            "/api/v1/device/state", headers=WRONG_KEY, json=report_body("guess-0")
        )

    assert refused.status_code == waited.status_code == reported.status_code == 429
    assert refused.headers["retry-after"] == "45"
    assert "too many failed device authentications" in refused.json()["error"]
    assert statements == []
    other = from_address("203.0.113.10")
    assert (await other.get("/api/v1/device/guess-0/state", headers=WRONG_KEY)).status_code == 401


async def test_an_address_is_allowed_again_once_its_window_has_passed(
    from_address: Client, clock: ManualClock
) -> None:
    attacker = from_address(ATTACKER)
    await flood(attacker, PER_ADDRESS)
    assert (await flood(attacker, 1)) == [429]
    clock.advance(timedelta(seconds=59))
    assert (await flood(attacker, 1)) == [429]

    clock.advance(timedelta(seconds=1))

    assert (await flood(attacker, PER_ADDRESS)) == [401] * PER_ADDRESS
    assert (await flood(attacker, 1)) == [429]


async def test_a_device_with_its_right_key_behind_a_limited_address_is_still_served(
    here: Replica, from_address: Client
) -> None:
    """The rule: a key the poll cache confirms passes any limit; from a limited address,
    anything memory cannot vouch for waits out the window (no database work for it)."""
    device = await register_device(here.client, uuid="behind-nat")
    await notifications_arrived(here.container)  # PostgreSQL: else the first read is not kept
    nat = from_address(FLEET_NAT)
    first = await nat.get("/api/v1/device/behind-nat/state", headers=as_device(device))
    assert first.status_code == 200 and here.caches("behind-nat")
    assert await flood(nat, PER_ADDRESS) == [401] * PER_ADDRESS  # a misbehaving neighbour

    etag = {"if-none-match": first.headers["etag"]}
    poll = await nat.get("/api/v1/device/behind-nat/state", headers=as_device(device) | etag)
    full = await nat.get("/api/v1/device/behind-nat/state?wait=0", headers=as_device(device))
    report = await nat.patch(
        "/api/v1/device/state", headers=as_device(device), json=report_body("behind-nat")
    )
    assert (poll.status_code, full.status_code, report.status_code) == (304, 200, 200)

    await here.client.put(
        "/api/v1/devices/behind-nat/target-state",
        json={"apps": target_apps("iotistic/myapp:v2.0.1")},
    )  # the cache forgets the device: memory cannot vouch for its key until it is read again
    waiting = await nat.get("/api/v1/device/behind-nat/state", headers=as_device(device) | etag)
    assert waiting.status_code == 429 and int(waiting.headers["retry-after"]) > 0


async def test_a_uuid_attacked_from_many_addresses_refuses_wrong_keys_but_not_its_device(
    here: Replica, from_address: Client
) -> None:
    device = await register_device(here.client, uuid="target")
    await notifications_arrived(here.container)
    addresses = [f"192.0.2.{n}" for n in range(1, PER_UUID + 3)]
    statuses = [
        (await from_address(a).get("/api/v1/device/target/state", headers=WRONG_KEY)).status_code
        for a in addresses
    ]
    assert statuses == [401] * PER_UUID + [429, 429]

    own = await from_address("10.1.1.1").get(
        "/api/v1/device/target/state", headers=as_device(device)
    )
    assert own.status_code == 200  # not cached yet: its key is checked in the database
    assert here.caches("target")
    again = await from_address("10.1.1.1").get(
        "/api/v1/device/target/state",
        headers=as_device(device) | {"if-none-match": own.headers["etag"]},
    )
    assert again.status_code == 304
    stranger = await from_address("192.0.2.200").get(
        "/api/v1/device/target/state", headers=WRONG_KEY
    )
    assert stranger.status_code == 429
    assert "too many failed authentications for device target" in stranger.json()["error"]
    elsewhere = await from_address("192.0.2.200").get(
        "/api/v1/device/elsewhere/state", headers=WRONG_KEY
    )
    assert elsewhere.status_code == 401  # that address itself is not limited


async def test_another_devices_key_counts_as_a_failure_too(
    here: Replica, from_address: Client
) -> None:
    mine = await register_device(here.client, uuid="mine")
    await register_device(here.client, uuid="theirs")
    await notifications_arrived(here.container)
    client = from_address(ATTACKER)
    statuses = [
        (await client.get("/api/v1/device/theirs/state", headers=as_device(mine))).status_code
        for _ in range(PER_UUID + 1)
    ]
    assert statuses == [403] * PER_UUID + [429]
    own = await client.get("/api/v1/device/mine/state", headers=as_device(mine))
    assert own.status_code == 200


async def test_wrong_keys_on_health_results_count_against_the_address(
    from_address: Client,
) -> None:
    attacker = from_address(ATTACKER)
    body = {"results": [{"check": "running", "passed": True}]}
    answers = [
        (
            await attacker.post(f"/api/v1/device/g{n}/health", headers=WRONG_KEY, json=body)
        ).status_code
        for n in range(PER_ADDRESS + 1)
    ]
    assert answers == [401] * PER_ADDRESS + [429]
