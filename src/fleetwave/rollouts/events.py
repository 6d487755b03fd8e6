"""The rollout event log: appended in the transaction of the change it records.

Readers page through it by id (``GET /api/v1/events?after=<id>``). For that to never skip an
event, ids must become visible in increasing order: on PostgreSQL, writers take a transaction
advisory lock just before appending, so a later id cannot commit before an earlier one (SQLite
already has one writer at a time). Use cases therefore collect their events and append them
once, as the last thing before commit, so that the lock is held for as short a time as can be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.schemas import MAX_ROW_ID
from fleetwave.store.db import publish
from fleetwave.store.queries import insert_rows
from fleetwave.store.tables import rollout_events

EVENT_LOG_LOCK = 0x0F1EE7  # any constant shared by every writer of the log
# NOTIFYed in the appending transaction (so sent on commit) for live streams on other replicas.
EVENTS_CHANNEL = "fleetwave_events"


@dataclass(frozen=True)
class Event:
    rollout_id: str
    event_type: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    device_uuid: str | None = None


async def append(conn: AsyncConnection, events: Sequence[Event], now: datetime) -> None:
    if not events:
        return
    publish(conn, events)
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOG_LOCK})
    await insert_rows(
        conn,
        rollout_events,
        [
            {
                "rollout_id": e.rollout_id,
                "device_uuid": e.device_uuid,
                "event_type": e.event_type,
                "event_data": e.data,
                "message": e.message,
                "timestamp": now,
            }
            for e in events
        ],
    )
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"NOTIFY {EVENTS_CHANNEL}"))


async def read(
    conn: AsyncConnection,
    *,
    after: int = 0,
    before: int | None = None,
    limit: int = 100,
    rollout_id: str | None = None,
    device_uuid: str | None = None,
    event_type: str | None = None,
    newest: bool = False,
) -> list[dict[str, Any]]:
    """Events after ``after`` (and before ``before``), oldest first: the first ``limit`` of
    them, or with ``newest`` the last ``limit`` (a page of history read backwards)."""
    query = select(rollout_events).where(rollout_events.c.id > after)
    if before is not None and before <= MAX_ROW_ID:  # above, every id is before it
        query = query.where(rollout_events.c.id < before)
    if rollout_id is not None:
        query = query.where(rollout_events.c.rollout_id == rollout_id)
    if device_uuid is not None:
        query = query.where(rollout_events.c.device_uuid == device_uuid)
    if event_type is not None:
        query = query.where(rollout_events.c.event_type == event_type)
    order = rollout_events.c.id.desc() if newest else rollout_events.c.id
    rows = (await conn.execute(query.order_by(order).limit(limit))).all()
    return [dict(row._mapping) for row in (reversed(rows) if newest else rows)]
