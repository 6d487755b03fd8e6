"""Two API replicas on one database, for the poll cache's coherence tests: the test's own
app (``here``) and a second one (``replica``) with its own pool, cache and listener (the
fixtures are in this folder's conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import event, func, select

from fleetwave.bootstrap import Container
from fleetwave.devices.targets import TARGETS_CHANNEL
from tests.integration.factories import as_device

NEW = "iotistic/myapp:v2.0.1"


@dataclass
class Replica:
    container: Container
    client: httpx.AsyncClient

    def caches(self, uuid: str) -> bool:
        return self.container.target_watch.cache.get(uuid) is not None


async def until(condition: Callable[[], bool], within: float = 5) -> None:
    """Until the notification has arrived (at once on SQLite: the next look sees the file)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def notifications_arrived(container: Container) -> None:
    """Until every NOTIFY committed so far has reached ``container``'s relay (PostgreSQL sends a
    listener its notifications in commit order, so a marker sent now arrives after them)."""
    if container.db.dialect != "postgresql":
        return
    marker = f"arrived-{uuid.uuid4().hex}"  # a uuid no device has: waking it wakes no one else
    async with container.target_watch.watch(marker) as heard:
        async with container.db.transaction() as conn:
            await conn.execute(select(func.pg_notify(TARGETS_CHANNEL, marker)))
        assert await heard.wait(10), "the relay did not pass the marker on within 10 s"


def poll(replica: Replica, device: dict[str, Any], etag: str | None = None) -> Any:
    headers = as_device(device) | ({"if-none-match": etag} if etag else {})
    return replica.client.get(f"/api/v1/device/{device['uuid']}/state", headers=headers)


async def cached_etag(replica: Replica, device: dict[str, Any]) -> str:
    """Poll until the replica answers 304 from memory; the ETag it holds."""
    first = await poll(replica, device)
    assert first.status_code == 200, first.text
    etag: str = first.headers["etag"]
    assert (await poll(replica, device, etag)).status_code == 304
    assert replica.caches(device["uuid"])
    return etag


def record_statements(container: Container) -> list[str]:
    """The SQL statements ``container`` runs from now on (for the rest of the test)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SELECT 1")):
            statements.append(" ".join(statement.split()))

    event.listen(container.db.engine.sync_engine, "before_cursor_execute", record)
    return statements
