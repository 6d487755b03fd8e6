"""Reading and writing device rows; helpers that take a connection and never commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.presence import is_online
from fleetwave.errors import NotFound
from fleetwave.store.tables import devices

PUBLIC_COLUMNS = [
    c for c in devices.c if c.name not in ("api_key_hash", "target_etag", "provisioning_key_id")
]


def online_clause(now: datetime, offline_after: timedelta) -> ColumnElement[bool]:
    """SQL twin of :func:`fleetwave.domain.presence.is_online`."""
    return and_(
        devices.c.is_online.is_(True),
        devices.c.last_connectivity_event >= now - offline_after,
    )


def device_view(row: Any, now: datetime, offline_after: timedelta) -> dict[str, Any]:
    values = dict(row._mapping)
    values["is_online"] = is_online(
        values["is_online"], values["last_connectivity_event"], now, offline_after
    )
    values["tags"] = values["tags"] or {}
    return values


async def load_device(conn: AsyncConnection, uuid: str) -> Any:
    row = (await conn.execute(select(*PUBLIC_COLUMNS).where(devices.c.uuid == uuid))).first()
    if row is None:
        raise NotFound(f"device {uuid} not found")
    return row
