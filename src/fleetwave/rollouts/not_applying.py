"""Seeing devices that keep talking but do not apply their target (``domain.not_applying``).

Each monitor tick, in the rollout's transaction: the rollout's devices still ``scheduled``
past the threshold and not yet flagged are read with when they were last heard from, the rule
picks those not applying their target, and one update flags them, with one event each. The
flag shows in the rollout's ``waiting_for``, on the device (``not_applying_target``) and on
its rollout row (``not_applying_since``); a retry clears it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.not_applying import Waiting, flag_message, not_applying
from fleetwave.rollouts.events import Event
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import devices


async def flag_not_applying(
    conn: AsyncConnection, rid: str, after: timedelta, now: datetime
) -> list[Event]:
    """Flag, once, the rollout's devices heard from but still not applying their target
    ``after`` they were told: one read of the candidates, the rule, one update."""
    c = device_rows.c
    candidates = await conn.execute(
        select(
            c.device_uuid,
            c.status,
            c.update_started_at,
            c.next_attempt_at,
            c.rollback_requested_at,
            devices.c.last_connectivity_event,
            devices.c.capabilities,
        )
        .join(devices, devices.c.uuid == c.device_uuid)
        .where(
            c.rollout_id == rid,
            c.status == "scheduled",
            c.not_applying_since.is_(None),
            c.update_started_at <= now - after,
        )
    )
    flagged = {
        row.device_uuid: frozenset(row.capabilities or ())
        for row in candidates
        if not_applying(
            Waiting(
                row.status,
                row.update_started_at,
                row.last_connectivity_event,
                retry_pending=row.next_attempt_at is not None,
                sent_back=row.rollback_requested_at is not None,
            ),
            now,
            after,
        )
    }
    if not flagged:
        return []
    await conn.execute(
        update(device_rows)
        .where(
            c.rollout_id == rid,
            c.device_uuid.in_(list(flagged)),
            c.status == "scheduled",
            c.not_applying_since.is_(None),
        )
        .values(not_applying_since=now, updated_at=now)
    )
    return [
        Event(
            rid,
            "device_not_applying",
            flag_message(after, capabilities),
            {"after_seconds": after.total_seconds()},
            device_uuid=uuid,
        )
        for uuid, capabilities in sorted(flagged.items())
    ]
