"""Starting a batch: its devices get the new image in their target state, all at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.vocabulary import devices
from fleetwave.rollouts.device_cap import at_most, count_pending, schedule_pending
from fleetwave.rollouts.device_moves import retarget_devices
from fleetwave.rollouts.events import Event
from fleetwave.store.tables import image_rollouts


async def start_batch(
    conn: AsyncConnection,
    rollout: Any,
    batch_number: int,
    now: datetime,
    limit: int | None = None,
    chunk: int | None = None,
) -> list[Event]:
    """Move the pending devices of ``batch_number`` (at most ``limit`` of them, the room a cap
    leaves) to the new image; returns the events to append (the caller appends them last, see
    ``events``). With a ``chunk``, only that many move now: the caller tops the batch up with
    the rest in transactions of its own, and the batch's event counts them all."""
    pending = await count_pending(conn, rollout.rollout_id, batch_number)
    starting = pending if limit is None else min(pending, limit)
    uuids = await schedule_pending(conn, rollout, batch_number, at_most(starting, chunk), now)
    return await batch_started(conn, rollout, batch_number, uuids, now, starting=starting)


async def batch_started(
    conn: AsyncConnection,
    rollout: Any,
    batch_number: int,
    uuids: list[str],
    now: datetime,
    *,
    starting: int | None = None,
) -> list[Event]:
    """The batch's devices, now ``scheduled``, get the new image in their targets and the
    rollout is on that batch (a new rollout's first batch is written ``scheduled`` directly).
    ``starting``: how many the batch starts in all, when the rest follow in later
    transactions (``uuids`` are the first of them)."""
    starting = len(uuids) if starting is None else starting
    await retarget_devices(conn, rollout, uuids, now)
    await conn.execute(
        update(image_rollouts)
        .where(image_rollouts.c.rollout_id == rollout.rollout_id)
        .values(
            status="in_progress",
            current_batch=batch_number,
            started_at=rollout.started_at or now,
            updated_at=now,
        )
    )
    total_batches = len(rollout.batch_sizes or [])
    events = [
        Event(
            rollout.rollout_id,
            "batch_started",
            f"batch {batch_number} of {total_batches} started: {devices(starting)}",
            {"batch": batch_number, "devices": starting},
        )
    ]
    events += [
        Event(
            rollout.rollout_id,
            "device_scheduled",
            f"target set to {rollout.new_image}",
            {"batch": batch_number},
            device_uuid=uuid,
        )
        for uuid in uuids
    ]
    return events
