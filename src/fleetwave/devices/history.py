"""A device's rollout history: every rollout it was part of, newest first, with what the
rollout asked of it and what became of it. One query per page (a join of its rollout rows
with their rollouts), paged by the rollout's id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.errors import UNKNOWN_CURSOR, InvalidInput
from fleetwave.store.queries import names_a_row
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import image_rollouts as rollouts

# What a history row carries: the rollout's identity and state, then the device's own row.
ROLLOUT_COLUMNS = (
    rollouts.c.id.label("rollout_row_id"),
    rollouts.c.rollout_id,
    rollouts.c.status.label("rollout_status"),
    rollouts.c.image_name,
    rollouts.c.strategy,
    rollouts.c.triggered_by,
    rollouts.c.created_at.label("rollout_created_at"),
    rollouts.c.completed_at.label("rollout_completed_at"),
)
DEVICE_COLUMNS = tuple(
    device_rows.c[name]
    for name in (
        "batch_number",
        "status",
        "old_image_tag",
        "new_image_tag",
        "current_image_tag",
        "old_images",
        "new_image",
        "health_check_passed",
        "health_check_details",
        "health_check_attempts",
        "scheduled_at",
        "update_started_at",
        "update_completed_at",
        "rolled_back_at",
        "rollback_requested_at",
        "error_message",
        "failure_reason",
        "retry_count",
        "max_retries",
    )
)


async def rollout_history(
    conn: AsyncConnection, uuid: str, *, limit: int, cursor: int | None
) -> dict[str, Any]:
    """A page of ``uuid``'s rollouts, newest first; ``cursor`` is the previous page's
    ``next_cursor`` (a rollout's row id)."""
    mine = device_rows.c.device_uuid == uuid
    total = (
        await conn.execute(select(func.count()).select_from(device_rows).where(mine))
    ).scalar_one()
    query = (
        select(*ROLLOUT_COLUMNS, *DEVICE_COLUMNS)
        .join(rollouts, rollouts.c.rollout_id == device_rows.c.rollout_id)
        .where(mine)
        .order_by(rollouts.c.id.desc())
    )
    if cursor is not None:
        if not await names_a_row(conn, rollouts.c.id == cursor):
            raise InvalidInput.one("cursor", UNKNOWN_CURSOR)
        query = query.where(rollouts.c.id < cursor)
    rows = (await conn.execute(query.limit(limit + 1))).all()
    items = [dict(row._mapping) for row in rows[:limit]]
    next_cursor = items[-1]["rollout_row_id"] if len(rows) > limit else None
    for item in items:
        del item["rollout_row_id"]
    return {"items": items, "total": total, "limit": limit, "next_cursor": next_cursor}
