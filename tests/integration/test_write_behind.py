"""Last-seen written behind: a device coming online is written at once, refreshes of a device
already online wait for the next flush (one UPDATE for all of them), a flush never moves
last-seen backwards, a failed one keeps its rows, and a clean shutdown writes what is pending.
Online and offline read exactly as they did before. Both databases, a manual clock."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from fleetwave.api import create_app
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.tables import devices
from tests.conftest import ADMIN_TOKEN
from tests.integration.factories import (
    as_device,
    recorded_statements,
    register_device,
    report_body,
)
from tests.integration.replicas import notifications_arrived

POLL = "/api/v1/device/{uuid}/state"


@pytest.fixture(autouse=True)
async def cache_trusted(container: Container) -> None:
    """On PostgreSQL the poll cache trusts NOTIFYs only: listen before the first poll."""
    await container.target_watch.listening()


class Device:
    """A device polling with the ETag it was last given, as the iotistic agent does."""

    def __init__(self, client: httpx.AsyncClient, created: dict[str, Any]) -> None:
        self.client, self.created, self.uuid = client, created, created["uuid"]
        self.headers = as_device(created)
        self.etag: str | None = None

    def through(self, client: httpx.AsyncClient) -> Device:
        """The same device, talking to another replica."""
        return Device(client, self.created)

    async def poll(self) -> int:
        headers = self.headers | ({"If-None-Match": self.etag} if self.etag else {})
        response = await self.client.get(POLL.format(uuid=self.uuid), headers=headers)
        assert response.status_code in (200, 304), response.text
        self.etag = response.headers["etag"]
        return response.status_code

    async def report(self, **fields: Any) -> None:
        body = report_body(self.uuid)
        body[self.uuid] |= fields
        response = await self.client.patch("/api/v1/device/state", json=body, headers=self.headers)
        assert response.status_code == 200, response.text


async def a_device(client: httpx.AsyncClient, uuid: str) -> Device:
    return Device(client, await register_device(client, uuid=uuid))


async def presence(client: httpx.AsyncClient, uuid: str) -> tuple[bool, datetime | None]:
    """Whether the API reads the device as online, and its last-seen time."""
    response = await client.get(f"/api/v1/devices/{uuid}")
    assert response.status_code == 200, response.text
    seen = response.json()["last_connectivity_event"]
    return response.json()["is_online"], datetime.fromisoformat(seen) if seen else None


def device_updates(statements: list[str]) -> list[str]:
    return [s for s in statements if s.upper().startswith("UPDATE DEVICES ")]


async def test_a_device_that_never_polled_goes_online_with_its_first_poll_at_once(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await a_device(client, "first")
    assert await presence(client, "first") == (False, None)
    assert await device.poll() == 200
    assert await presence(client, "first") == (True, clock.now())  # no flush needed
    assert container.last_seen.pending == 0


async def test_a_device_silent_past_offline_after_reads_offline_and_its_next_poll_brings_it_back(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await a_device(client, "quiet")
    await device.poll()
    first_seen = clock.now()
    clock.advance(container.settings.device_offline_after)
    assert await presence(client, "quiet") == (True, first_seen)  # exactly at the limit
    clock.advance(timedelta(seconds=1))
    assert await presence(client, "quiet") == (False, first_seen)
    assert await device.poll() == 304  # the same target: the cache knows it, not its absence
    assert await presence(client, "quiet") == (True, clock.now())
    assert container.last_seen.pending == 0


async def test_a_device_polling_every_minute_never_reads_offline_and_writes_on_few_polls(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await a_device(client, "steady")
    # the creation's NOTIFY, relayed before the first poll fills the cache, cannot empty it after
    await notifications_arrived(container)
    await device.poll()  # online now, with its target's ETag
    polls = 0
    from_cache = container.telemetry.value("fleetwave_device_polls_from_cache_total")
    with recorded_statements(container.db.engine) as statements:
        for second in range(5, 30 * 60 + 1, 5):  # the flush loop, every 5 s of clock time
            clock.advance(timedelta(seconds=5))
            if second % 60 == 0:
                assert await device.poll() == 304
                polls += 1
            await container.last_seen.flush()
            online, seen = await presence(client, "steady")
            assert online, f"read offline {second} s in (last seen {seen})"
    writes = device_updates(statements)
    assert polls == 30
    assert 1 <= len(writes) <= polls // 2, writes
    assert container.telemetry.value("fleetwave_device_polls_from_cache_total") - from_cache == 30


@pytest.fixture
def signal_handlers_restored() -> Iterator[None]:
    """The lifespan wraps SIGINT/SIGTERM (for uvicorn); put pytest's handlers back after."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


async def stored_last_seen(database_url: str, uuid: str) -> datetime | None:
    """Read from the table through an engine of its own, as another process would."""
    fresh = Database(database_url)
    try:
        async with fresh.read() as conn:
            seen: datetime | None = (
                await conn.execute(
                    select(devices.c.last_connectivity_event).where(devices.c.uuid == uuid)
                )
            ).scalar_one()
        return seen
    finally:
        await fresh.dispose()


@pytest.mark.usefixtures("signal_handlers_restored")
async def test_pending_last_seen_is_written_when_the_app_shuts_down_cleanly(
    container: Container, clock: ManualClock, database_url: str
) -> None:
    app = create_app(container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://fleetwave.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            await container.target_watch.listening()
            device = await a_device(client, "leaving")
            await device.poll()
            first_seen = clock.now()
            clock.advance(timedelta(seconds=90))  # stale enough to refresh, still online
            assert await device.poll() == 304
            assert container.last_seen.pending == 1
            assert await stored_last_seen(database_url, "leaving") == first_seen
    assert await stored_last_seen(database_url, "leaving") == clock.now()


async def test_a_flush_never_moves_last_seen_backwards(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await a_device(client, "both")
    await device.poll()
    clock.advance(timedelta(seconds=90))
    refreshed = clock.now()
    assert await device.poll() == 304
    assert container.last_seen.pending == 1  # a refresh from `refreshed`, waiting
    clock.advance(timedelta(seconds=10))
    await device.report()  # written through, 10 s later
    assert await container.last_seen.flush() == 1
    assert await presence(client, "both") == (True, refreshed + timedelta(seconds=10))


class DatabaseWentAway(Exception):
    pass


async def test_a_failed_flush_keeps_its_rows_for_the_next(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await a_device(client, "retry")
    await device.poll()
    first_seen = clock.now()
    clock.advance(timedelta(seconds=90))
    assert await device.poll() == 304
    engine = container.db.engine.sync_engine

    def fail_the_write(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE DEVICES"):
            raise DatabaseWentAway("the server closed the connection")

    event.listen(engine, "before_cursor_execute", fail_the_write)
    try:
        with pytest.raises(DatabaseWentAway):
            await container.last_seen.flush()
    finally:
        event.remove(engine, "before_cursor_execute", fail_the_write)
    assert container.last_seen.pending == 1
    assert await presence(client, "retry") == (True, first_seen)  # rolled back, nothing written
    clock.advance(timedelta(seconds=5))
    assert await container.last_seen.flush() == 1
    assert await presence(client, "retry") == (True, first_seen + timedelta(seconds=90))


async def test_a_device_that_reports_offline_reads_offline_and_its_next_poll_brings_it_back(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await a_device(client, "flaky")
    await device.poll()
    await device.report(is_online=True)
    assert await device.poll() == 304  # cached: online and fresh
    clock.advance(timedelta(seconds=10))
    await device.report(is_online=False)
    assert await presence(client, "flaky") == (False, clock.now())
    clock.advance(timedelta(seconds=10))
    assert await device.poll() == 304
    assert await presence(client, "flaky") == (True, clock.now())  # at once, no flush
    assert container.last_seen.pending == 0


async def test_a_device_that_reports_offline_while_a_refresh_is_pending_stays_offline(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await a_device(client, "leaving-soon")
    await device.poll()
    clock.advance(timedelta(seconds=90))
    assert await device.poll() == 304
    assert container.last_seen.pending == 1
    await device.report(is_online=False)  # at the very time of the pending refresh
    await container.last_seen.flush()
    assert await presence(client, "leaving-soon") == (False, clock.now())
    clock.advance(timedelta(seconds=1))
    assert await device.poll() == 304
    assert await presence(client, "leaving-soon") == (True, clock.now())


@pytest.fixture
async def other_replica(settings: Settings, clock: ManualClock) -> AsyncIterator[Container]:
    """A second server process on the same database, with a poll cache of its own."""
    replica = build(settings, clock=clock, db=Database(settings.resolved_database_url))
    await replica.target_watch.listening()
    yield replica
    await replica.target_watch.close()
    await replica.db.dispose()


async def test_a_device_that_reports_offline_to_another_replica_comes_back_online_here_at_once(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, other_replica: Container
) -> None:
    device = await a_device(client, "roaming")
    await device.poll()
    assert await device.poll() == 304  # cached here: online and fresh
    transport = httpx.ASGITransport(app=create_app(other_replica))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://replica.test") as there,
        container.target_watch.watch("roaming") as heard,
    ):
        clock.advance(timedelta(seconds=10))
        await device.through(there).report(is_online=False)
        if container.db.dialect == "postgresql":  # NOTIFY: wait until it is relayed here
            assert await heard.wait(10)
    assert await presence(client, "roaming") == (False, clock.now())
    clock.advance(timedelta(seconds=10))
    assert await device.poll() == 304
    assert await presence(client, "roaming") == (True, clock.now())
    assert container.last_seen.pending == 0


async def test_a_refresh_pending_for_a_deleted_device_is_not_written_to_one_re_created_in_its_place(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await a_device(client, "reborn")
    await device.poll()
    clock.advance(timedelta(seconds=90))
    assert await device.poll() == 304
    assert container.last_seen.pending == 1  # the old device's refresh, waiting
    assert (await client.delete("/api/v1/devices/reborn")).status_code == 204
    clock.advance(timedelta(seconds=1))
    await a_device(client, "reborn")  # a new device under the same uuid, never heard from
    await container.last_seen.flush()
    assert await presence(client, "reborn") == (False, None)
