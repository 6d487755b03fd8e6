"""Starting devices within the caps: how much room is left, taken under one lock.

Whoever starts devices (the manager's first batch, the monitor's next batch or its top-up of a
batch started in part) first takes the cap's lock — on PostgreSQL an advisory lock held to the
end of the transaction, so two workers cannot both count the same room; SQLite has one writer
at a time anyway — then counts the devices in flight and starts at most the room left, in the
batch's order (by device uuid). See ``domain.device_cap``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.device_cap import IN_FLIGHT_STATUSES, DeviceCap
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import ACTIVE_ROLLOUT_STATUSES
from fleetwave.store.queries import one_of, value_chunks
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import image_rollouts

CAP_LOCK = "fleetwave:device-cap"


def rollout_cap(fleet_cap: int | None, settings: RolloutSettings) -> DeviceCap:
    return DeviceCap(fleet=fleet_cap, rollout=settings.max_concurrent_devices)


async def room(conn: AsyncConnection, rollout_id: str, cap: DeviceCap) -> int | None:
    """Devices the rollout may start now (None: no cap). Takes the cap's lock first."""
    if not cap.applies:
        return None
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": CAP_LOCK})
    in_flight = device_rows.c.status.in_(IN_FLIGHT_STATUSES)
    fleet = 0
    if cap.fleet is not None:
        fleet = (
            await conn.execute(
                select(func.count())
                .select_from(device_rows)
                .join(image_rollouts, image_rollouts.c.rollout_id == device_rows.c.rollout_id)
                .where(image_rollouts.c.status.in_(ACTIVE_ROLLOUT_STATUSES), in_flight)
            )
        ).scalar_one()
    mine = 0
    if cap.rollout is not None:
        mine = (
            await conn.execute(
                select(func.count())
                .select_from(device_rows)
                .where(device_rows.c.rollout_id == rollout_id, in_flight)
            )
        ).scalar_one()
    return cap.room(fleet, mine)


async def schedule_pending(
    conn: AsyncConnection, rollout: Any, batch_number: int, limit: int | None, now: datetime
) -> list[str]:
    """Move up to ``limit`` pending devices of the batch (all without a limit) to
    ``scheduled``, first by uuid; returns their uuids, sorted."""
    if limit is not None and limit <= 0:
        return []
    pending = pending_in(rollout.rollout_id, batch_number)
    if limit is None:
        return sorted(await _schedule(conn, now, *pending))
    # the chosen uuids first, then the update: as one statement (``IN (SELECT … LIMIT)``) the
    # planner, misled by a rollout's rows not yet analysed, can join the batch with itself
    # row by row (1.5 s for 5,000 devices)
    chosen = list(
        (
            await conn.execute(
                select(device_rows.c.device_uuid)
                .where(*pending)
                .order_by(device_rows.c.device_uuid)
                .limit(limit)
            )
        ).scalars()
    )
    moved: list[str] = []
    for some in value_chunks(conn, chosen):
        moved += await _schedule(conn, now, *pending, one_of(conn, device_rows.c.device_uuid, some))
    return sorted(moved)


def pending_in(rollout_id: str, batch_number: int) -> tuple[ColumnElement[bool], ...]:
    """Where the batch's devices not started yet are."""
    return (
        device_rows.c.rollout_id == rollout_id,
        device_rows.c.batch_number == batch_number,
        device_rows.c.status == "pending",
    )


async def count_pending(conn: AsyncConnection, rollout_id: str, batch_number: int) -> int:
    count = (
        select(func.count()).select_from(device_rows).where(*pending_in(rollout_id, batch_number))
    )
    return int((await conn.execute(count)).scalar_one())


def at_most(*bounds: int | None) -> int | None:
    """The tightest of the bounds given (None: unbounded)."""
    given = [b for b in bounds if b is not None]
    return min(given) if given else None


async def _schedule(conn: AsyncConnection, now: datetime, *where: ColumnElement[bool]) -> list[str]:
    moved = await conn.execute(
        update(device_rows)
        .where(*where)
        .values(status="scheduled", scheduled_at=now, updated_at=now)
        .returning(device_rows.c.device_uuid)
    )
    return list(moved.scalars())
