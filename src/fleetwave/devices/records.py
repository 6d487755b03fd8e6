"""Reading and writing device rows; helpers that take a connection and never commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.presence import is_online
from fleetwave.domain.target_state import state_etag
from fleetwave.errors import NotFound
from fleetwave.store.tables import device_target_state, devices

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


async def write_target_state(
    conn: AsyncConnection,
    uuid: str,
    apps: dict[str, Any],
    config: dict[str, Any],
    now: datetime,
) -> tuple[int, str]:
    """Replace a device's target state, bump its version and its ETag. Returns both."""
    etag = state_etag(apps, config)
    result = await conn.execute(
        update(device_target_state)
        .where(device_target_state.c.device_uuid == uuid)
        .values(apps=apps, config=config, version=device_target_state.c.version + 1, updated_at=now)
        .returning(device_target_state.c.version)
    )
    version = result.scalar_one_or_none()
    if version is None:
        raise NotFound(f"device {uuid} not found")
    await conn.execute(
        update(devices).where(devices.c.uuid == uuid).values(target_etag=etag, updated_at=now)
    )
    return version, etag
