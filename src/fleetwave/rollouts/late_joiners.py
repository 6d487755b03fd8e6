"""Late joiners: devices that appear on a rollout's old image after it was planned join it.

The monitor looks for them (at most once a tick, ``FLEETWAVE_LATE_JOINER_INTERVAL`` apart),
not the request: a registration or a report adds no
statement to the device's hot path. It asks only about devices registered, or whose report
changed (a report that changes nothing is never written: ``DeviceProtocol.report``), since
its previous look — ``devices.created_at`` and ``device_current_state.reported_at`` after a
watermark, both indexed — with one set-based query over the joinable rollouts (the newest
rollout of each image, unfinished, or completed and continuous), then one for each rollout
that has newcomers. The first look after a worker
starts covers every device, so nothing is missed while no worker ran; a look overlaps the
previous one by a minute, so a report committed late is not missed either (joining twice is
impossible: a device already in the rollout is left out, under the rollout's lock).

Joiners are written ``pending`` into the batch ``domain.late_joiners`` chooses, the rollout's
totals and batch sizes grow, and each gets a ``device_joined`` event; the monitor's top-up
(within the caps) then gives them the new image as for any device of a running batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.images import parse_image
from fleetwave.domain.late_joiners import grown, joining_batch, joins
from fleetwave.domain.rollout_plan import PlannedDevice, plan_rollout
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import ACTIVE_ROLLOUT_STATUSES
from fleetwave.rollouts.events import Event, append
from fleetwave.rollouts.manager import candidate_rows, filters_of, grouped_by_device, tag_rule_of
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.tables import device_current_state, device_target_images, image_rollouts
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import devices as device_table

OVERLAP = timedelta(minutes=1)  # a look reaches back this far before the previous one


class LateJoiners:
    """Finds late joiners for the monitor, remembering when it last looked."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self.since: datetime | None = None  # None: the next look covers every device
        self.every = timedelta(seconds=settings.late_joiner_interval)

    async def join(self, now: datetime) -> list[Event]:
        """Join the devices that appeared since the last look; returns the events written.

        Each rollout is first looked at without a lock (the usual answer: nobody new), and
        locked only to write its joiners, so the monitor's turns are not held up. With a fast
        monitor, looks are spaced ``FLEETWAVE_LATE_JOINER_INTERVAL`` apart."""
        if self.since is not None and now < self.since + self.every:
            return []
        since = None if self.since is None else self.since - OVERLAP
        events: list[Event] = []
        async with self.db.read() as conn:
            rollouts = [r for r in await _joinable(conn) if self._joiners(r) is not None]
            touched = await _touched(conn, rollouts, since)
            found = [
                r.rollout_id
                for r in rollouts
                if r.rollout_id in touched and await self._plan(conn, r, since, now)
            ]
        for rollout_id in found:
            async with self.db.transaction() as conn:
                joined = await self._join_rollout(conn, rollout_id, since, now)
                await append(conn, joined, now)
            events += joined
        self.since = now
        return events

    def _joiners(self, rollout: Any) -> RolloutSettings | None:
        """The rollout's settings if it takes late joiners."""
        if not rollout.settings:
            return None
        settings = RolloutSettings.from_json(rollout.settings)
        return settings if joins(rollout.status, settings.continuous) else None

    async def _plan(
        self, conn: AsyncConnection, rollout: Any, since: datetime | None, now: datetime
    ) -> list[PlannedDevice]:
        """The devices that would join, planned as at push time (tag rule, old images)."""
        rows = await _newcomers(conn, rollout, since, now, self.settings)
        if not rows:
            return []
        candidates = await asyncio.to_thread(grouped_by_device, rows)
        plan = plan_rollout(
            candidates,
            new_tag=rollout.new_tag,
            new_digest=rollout.digest,
            rule=tag_rule_of(rollout),
            fractions=[1.0],
        )
        return plan.devices

    async def _join_rollout(
        self, conn: AsyncConnection, rollout_id: str, since: datetime | None, now: datetime
    ) -> list[Event]:
        rollout = await _lock(conn, rollout_id)
        settings = None if rollout is None else self._joiners(rollout)
        if settings is None:
            return []
        joiners = await self._plan(conn, rollout, since, now)  # again, under the lock
        return await _write(conn, rollout, settings, joiners, now) if joiners else []


async def _lock(conn: AsyncConnection, rollout_id: str) -> Any:
    """The rollout's row, locked as the monitor locks it (the order every writer follows)."""
    query = select(image_rollouts).where(image_rollouts.c.rollout_id == rollout_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def _joinable(conn: AsyncConnection) -> list[Any]:
    """The newest rollout of each image, unfinished or completed (``joins`` says the rest)."""
    newest = (
        select(func.max(image_rollouts.c.id))
        .group_by(image_rollouts.c.image_name)
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(image_rollouts).where(
            image_rollouts.c.id.in_(newest),
            image_rollouts.c.status.in_((*ACTIVE_ROLLOUT_STATUSES, "completed")),
        )
    )
    return list(rows)


def _changed_since(since: datetime) -> ColumnElement[bool]:
    """Devices registered, or whose report changed, since ``since`` (both indexed)."""
    reported = select(device_current_state.c.device_uuid).where(
        device_current_state.c.reported_at >= since
    )
    return or_(device_table.c.created_at >= since, device_table.c.uuid.in_(reported))


async def _touched(
    conn: AsyncConnection, rollouts: Sequence[Any], since: datetime | None
) -> set[str]:
    """The rollouts that devices changed since ``since`` run the repository of, without
    being in them — one query for all rollouts, the usual answer none (before the filters
    and the tag rule, which ``_newcomers`` and the plan then apply to those few)."""
    if not rollouts:
        return set()
    by_repository = {parse_image(r.image_name).repository: r.rollout_id for r in rollouts}
    rollout_of = case(by_repository, value=device_target_images.c.repository)
    query = (
        select(rollout_of)
        .join(device_table, device_table.c.uuid == device_target_images.c.device_uuid)
        .where(
            device_target_images.c.repository.in_(by_repository),
            ~exists().where(
                device_rows.c.rollout_id == rollout_of,
                device_rows.c.device_uuid == device_target_images.c.device_uuid,
            ),
        )
        .distinct()
    )
    if since is not None:
        query = query.where(_changed_since(since))
    return set((await conn.execute(query)).scalars())


async def _newcomers(
    conn: AsyncConnection, rollout: Any, since: datetime | None, now: datetime, settings: Settings
) -> Sequence[Any]:
    """Services of devices on the rollout's repository, within its filters, not in it yet,
    registered or reporting a change since ``since`` — one query."""
    repository = parse_image(rollout.image_name).repository
    query = candidate_rows(repository, filters_of(rollout), now, settings).where(
        ~exists().where(
            device_rows.c.rollout_id == rollout.rollout_id,
            device_rows.c.device_uuid == device_table.c.uuid,
        )
    )
    if since is not None:
        query = query.where(_changed_since(since))
    return list(await conn.execute(query.order_by(device_table.c.uuid)))


async def _write(
    conn: AsyncConnection,
    rollout: Any,
    settings: RolloutSettings,
    joiners: Sequence[Any],
    now: datetime,
) -> list[Event]:
    sizes = list(rollout.batch_sizes or [])
    joining = joining_batch(
        rollout.status, rollout.current_batch, len(sizes), rollout.current_batch_finished_at
    )
    await conn.execute(
        insert(device_rows),
        [
            {
                "rollout_id": rollout.rollout_id,
                "device_uuid": d.uuid,
                "batch_number": joining.batch,
                "status": "pending",
                "old_image_tag": d.old_tag,
                "old_images": d.old_images,
                "new_image_tag": rollout.new_tag,
                "new_image": rollout.new_image,
                "max_retries": settings.max_retries,
                "created_at": now,
                "updated_at": now,
            }
            for d in joiners
        ],
    )
    values: dict[str, Any] = {
        "total_devices": rollout.total_devices + len(joiners),
        "batch_sizes": grown(sizes, joining.batch, len(joiners)),
        "updated_at": now,
    }
    if joining.reopens:
        values |= {"current_batch_finished_at": None}
    if joining.continuous:
        values |= {"status": "in_progress", "completed_at": None}
    await conn.execute(
        update(image_rollouts)
        .where(image_rollouts.c.rollout_id == rollout.rollout_id)
        .values(**values)
    )
    how = "continuous rollout: " if joining.continuous else ""
    events = [
        Event(
            rollout.rollout_id,
            "device_joined",
            f"{how}joined batch {joining.batch} from {d.old_tag or 'its old image'}",
            {"batch": joining.batch, "continuous": joining.continuous},
            device_uuid=d.uuid,
        )
        for d in joiners
    ]
    return events
