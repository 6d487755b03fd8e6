"""The SQL of device logs: append a request's lines, prune, sweep, read. Each function runs
in the caller's transaction and is one statement (or two: a lock, then the statement).

Ids grow with arrival, and a reader pages by id (``after``): for that never to skip a line,
one device's lines must become visible in id order. On PostgreSQL two requests of the same
device could commit out of order, so appending takes a transaction advisory lock on the
device first (SQLite has one writer at a time anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.log_lines import LogLine, levels_from
from fleetwave.domain.log_retention import Retention
from fleetwave.store.queries import insert_rows
from fleetwave.store.tables import device_logs

LOG_LOCK_CLASS = 0x10C5  # the first key of the device-log advisory locks (the second: the uuid)
COLUMNS = (
    device_logs.c.id,
    device_logs.c.logged_at,
    device_logs.c.received_at,
    device_logs.c.level,
    device_logs.c.source,
    device_logs.c.service,
    device_logs.c.stream,
    device_logs.c.message,
)


@dataclass(frozen=True)
class LogFilter:
    service: str | None = None
    level: str | None = None  # this level and the more severe ones
    since: datetime | None = None  # by the device's clock

    def conditions(self) -> list[ColumnElement[bool]]:
        found = []
        if self.service is not None:
            found.append(device_logs.c.service == self.service)
        if self.level is not None:
            found.append(device_logs.c.level.in_(levels_from(self.level)))
        if self.since is not None:
            found.append(device_logs.c.logged_at >= self.since)
        return found


async def append(conn: AsyncConnection, uuid: str, lines: Sequence[LogLine], now: datetime) -> None:
    """Write ``lines`` for device ``uuid`` as received ``now``: one insert for all."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:kind, hashtext(:uuid))"),
            {"kind": LOG_LOCK_CLASS, "uuid": uuid},
        )
    await insert_rows(
        conn,
        device_logs,
        [
            {
                "device_uuid": uuid,
                "received_at": now,
                "logged_at": line.timestamp or now,
                "level": line.level,
                "source": line.source,
                "service": line.service,
                "stream": line.stream,
                "message": line.message,
            }
            for line in lines
        ],
    )


async def prune(conn: AsyncConnection, uuid: str, retention: Retention, now: datetime) -> int:
    """Delete the device's lines past its retention (beyond its newest ``lines``, or too
    old): one DELETE over the device's index range. Returns how many went."""
    of_device = device_logs.c.device_uuid == uuid
    newest_kept = (
        select(device_logs.c.id)
        .where(of_device)
        .order_by(device_logs.c.id.desc())
        .offset(retention.lines - 1)
        .limit(1)
        .scalar_subquery()
    )
    result = await conn.execute(
        delete(device_logs).where(
            of_device,
            (device_logs.c.received_at < retention.cutoff(now)) | (device_logs.c.id < newest_kept),
        )
    )
    return int(result.rowcount or 0)


async def sweep(conn: AsyncConnection, cutoff: datetime, batch: int) -> int:
    """Delete up to ``batch`` lines, of any device, received before ``cutoff`` (devices
    that stopped sending are pruned here). Returns how many went."""
    expired = select(device_logs.c.id).where(device_logs.c.received_at < cutoff).limit(batch)
    result = await conn.execute(delete(device_logs).where(device_logs.c.id.in_(expired)))
    return int(result.rowcount or 0)


async def read(
    conn: AsyncConnection,
    uuid: str,
    where: LogFilter,
    *,
    after: int,
    limit: int,
    newest: bool,
) -> list[dict[str, Any]]:
    """The device's lines after id ``after`` that pass ``where``, oldest first: the first
    ``limit`` of them, or with ``newest`` the last ``limit``."""
    order = device_logs.c.id.desc() if newest else device_logs.c.id
    query = (
        select(*COLUMNS)
        .where(device_logs.c.device_uuid == uuid, device_logs.c.id > after, *where.conditions())
        .order_by(order)
        .limit(limit)
    )
    rows = [dict(row._mapping) for row in await conn.execute(query)]
    return rows[::-1] if newest else rows


async def last_lines(
    conn: AsyncConnection, uuids: Sequence[str], count: int
) -> dict[str, list[dict[str, Any]]]:
    """Each device's last ``count`` lines, oldest first, in one query."""
    if not uuids:
        return {}
    numbered = (
        select(
            device_logs.c.device_uuid,
            *COLUMNS,
            func.row_number()
            .over(partition_by=device_logs.c.device_uuid, order_by=device_logs.c.id.desc())
            .label("back"),
        )
        .where(device_logs.c.device_uuid.in_(uuids))
        .subquery()
    )
    query = (
        select(numbered)
        .where(numbered.c.back <= count)
        .order_by(numbered.c.device_uuid, numbered.c.id)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in await conn.execute(query):
        line = dict(row._mapping)
        del line["back"]
        found.setdefault(line.pop("device_uuid"), []).append(line)
    return found
