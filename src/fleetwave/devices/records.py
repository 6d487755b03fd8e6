"""Reading and writing device rows; helpers that take a connection and never commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.presence import is_online
from fleetwave.errors import NotFound
from fleetwave.store.tables import device_rollout_status, devices

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
    values["capabilities"] = values.get("capabilities") or []
    values.setdefault("not_applying_target", None)
    return values


async def not_applying_targets(
    conn: AsyncConnection, uuids: list[str]
) -> dict[str, dict[str, Any]]:
    """The devices among ``uuids`` seen not applying the target a rollout gave them (see
    ``domain.not_applying``), in one query: rollout, image and since when."""
    rows = device_rollout_status.c
    found = await conn.execute(
        select(rows.device_uuid, rows.rollout_id, rows.new_image, rows.not_applying_since)
        .where(
            rows.device_uuid.in_(uuids),
            rows.status == "scheduled",
            rows.not_applying_since.is_not(None),
        )
        .order_by(rows.not_applying_since)
    )
    return {
        row.device_uuid: {
            "rollout_id": row.rollout_id,
            "image": row.new_image,
            "since": row.not_applying_since,
        }
        for row in found
    }


async def load_device(conn: AsyncConnection, uuid: str) -> Any:
    row = (await conn.execute(select(*PUBLIC_COLUMNS).where(devices.c.uuid == uuid))).first()
    if row is None:
        raise NotFound(f"device {uuid} not found")
    return row
