"""Device progress from reports: a device's rollout status follows what it says it runs.

Called in the transaction that stores a device's report. The rows of the rollouts the device
is in are locked rollout first (the order the monitor takes them in), the report is read
against each (``domain.device_progress``), and the moves, counters and events are written
with it. A move that changes anything wakes the monitor at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.device_progress import (
    after_failure,
    failure_message,
    next_status,
    observe,
    reported_services,
    reported_tag,
)
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.rollouts.device_moves import move, restore_devices
from fleetwave.rollouts.events import Event, append
from fleetwave.rollouts.monitor import lock_rollout
from fleetwave.rollouts.waker import Waker
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import image_rollouts

# A device's rollout rows that its reports can still move: those in flight (and skipped ones,
# which complete when the device comes back), and any it was sent back from.
IN_FLIGHT = ("scheduled", "pulling", "updating", "health_checking", "skipped", "failed")
LIVE = ("in_progress", "paused", "scheduled", "completed", "failed")
WATCHED = or_(
    and_(device_rows.c.status.in_(IN_FLIGHT), image_rollouts.c.status.in_(LIVE)),
    and_(
        device_rows.c.rollback_requested_at.is_not(None),
        device_rows.c.status.not_in(("rolled_back", "pending")),
    ),
)


class DeviceProgress:
    def __init__(self, waker: Waker) -> None:
        self.waker = waker

    async def device_reported(
        self, conn: AsyncConnection, uuid: str, apps: dict[str, Any], now: datetime
    ) -> Callable[[], Awaitable[None]]:
        """Move the device's rollout rows by its report; returns what to do last in the
        transaction (append the events: the event-log lock is taken only then, see events)."""
        rollout_ids = list(
            (
                await conn.execute(
                    select(device_rows.c.rollout_id)
                    .join(image_rollouts, image_rollouts.c.rollout_id == device_rows.c.rollout_id)
                    .where(device_rows.c.device_uuid == uuid, WATCHED)
                    .order_by(device_rows.c.rollout_id)
                )
            ).scalars()
        )
        services = reported_services(apps)
        events: list[Event] = []
        for rollout_id in rollout_ids:
            rollout = await lock_rollout(conn, rollout_id, skip_locked=False)
            row = (
                await conn.execute(
                    select(device_rows).where(
                        device_rows.c.rollout_id == rollout_id, device_rows.c.device_uuid == uuid
                    )
                )
            ).one()
            events += await self._follow(conn, rollout, row, services, now)

        async def finish() -> None:
            if events:
                await append(conn, events, now)
                await self.waker.signal(conn)

        return finish

    async def _follow(
        self, conn: AsyncConnection, rollout: Any, row: Any, services: Any, now: datetime
    ) -> list[Event]:
        rid, uuid = rollout.rollout_id, row.device_uuid
        old_images, new_image = row.old_images or {}, row.new_image or rollout.new_image
        observation = observe(services, old_images, new_image)
        target = next_status(row.status, observation, row.rollback_requested_at is not None)
        await self._note_current_tag(conn, row, reported_tag(services, old_images, new_image))
        if target is None:
            return []
        settings = RolloutSettings.from_json(rollout.settings)
        here = device_rows.c.device_uuid == uuid
        if target == "failure":
            return await self._failed(
                conn, rollout, row, settings, failure_message(services, old_images), now
            )
        if target == "health_checking" and not settings.health_check_enabled:
            target = "completed"
        stamps_by_status: dict[str, dict[str, Any]] = {
            "pulling": {"update_started_at": row.update_started_at or now},
            "updating": {"update_started_at": row.update_started_at or now, "image_pulled_at": now},
            "health_checking": {
                "update_started_at": row.update_started_at or now,
                "image_pulled_at": row.image_pulled_at or now,
                "container_restarted_at": now,
            },
            "completed": {
                "update_completed_at": now,
                "container_restarted_at": row.container_restarted_at or now,
            },
            "rolled_back": {"rolled_back_at": now},
            "rollback_failed": {"error_message": failure_message(services, old_images)},
        }
        stamps = stamps_by_status[target]
        await move(conn, rid, row.status, target, here, now=now, **stamps)
        kind, message = {
            "pulling": ("device_progress", "pulling the new image"),
            "updating": ("device_progress", "restarting on the new image"),
            "health_checking": ("device_updated", "running the new image; checking its health"),
            "completed": ("device_updated", "running the new image"),
            "rolled_back": ("device_rolled_back", "running its old image again"),
            "rollback_failed": ("rollback_failed", "its old image fails too: needs attention"),
        }[target]
        return [Event(rid, kind, message, {"status": target}, device_uuid=uuid)]

    async def _failed(
        self,
        conn: AsyncConnection,
        rollout: Any,
        row: Any,
        settings: RolloutSettings,
        reason: str,
        now: datetime,
    ) -> list[Event]:
        rid, uuid = rollout.rollout_id, row.device_uuid
        here = device_rows.c.device_uuid == uuid
        outcome = after_failure(row.retry_count, row.max_retries, now)
        if outcome.status == "scheduled":
            await move(
                conn,
                rid,
                row.status,
                "scheduled",
                here,
                now=now,
                retry_count=outcome.retry_count,
                next_attempt_at=outcome.next_attempt_at,
                error_message=reason,
            )
            return [
                Event(
                    rid,
                    "device_retried",
                    f"{reason}; attempt {outcome.retry_count + 1} of {row.max_retries + 1} "
                    f"at {outcome.next_attempt_at:%H:%M:%S}",
                    {"retry_count": outcome.retry_count, "error": reason},
                    device_uuid=uuid,
                )
            ]
        await move(
            conn,
            rid,
            row.status,
            "failed",
            here,
            now=now,
            failure_reason="update_failed",
            error_message=reason,
        )
        events = [
            Event(rid, "device_failed", reason, {"reason": "update_failed"}, device_uuid=uuid)
        ]
        if settings.auto_rollback:
            events += await restore_devices(conn, rid, [uuid], now)
        return events

    async def _note_current_tag(self, conn: AsyncConnection, row: Any, tag: str | None) -> None:
        if tag is not None and tag != row.current_image_tag:
            await conn.execute(
                update(device_rows).where(device_rows.c.id == row.id).values(current_image_tag=tag)
            )
