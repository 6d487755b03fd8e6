"""Device progress from reports: a device's rollout status follows what it says it runs.

Called in the transaction that stores a group of reports (``devices.report_groups``). The
rollouts the devices are in are locked first, in rollout order (the order the monitor takes
them in), then each device's row is read against its report (``domain.device_progress``, in
:func:`follow`, pure) and the moves, counters and events of the whole group are written with
a fixed number of set-based statements. A move that changes anything wakes the monitor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.device_progress import (
    ServiceReport,
    after_failure,
    failure_message,
    next_status,
    observe,
    reported_services,
    reported_tag,
)
from fleetwave.domain.report import ReportedApps
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.rollouts.device_moves import count, restore_devices
from fleetwave.rollouts.events import Event, append
from fleetwave.rollouts.waker import Waker
from fleetwave.store.queries import update_rows
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


@dataclass
class Step:
    """What one report does to one of the device's rollout rows."""

    row_id: int
    rollout_id: str
    uuid: str
    before: str
    after: str | None = None  # the status it moves to, if it moves
    values: dict[str, Any] = field(default_factory=dict)  # written with the move
    current_tag: str | None = None  # the tag it now runs, if that changed
    events: list[Event] = field(default_factory=list)
    roll_back: bool = False  # failed for good: put it back on its old images


class DeviceProgress:
    def __init__(self, waker: Waker) -> None:
        self.waker = waker

    async def devices_reported(
        self, conn: AsyncConnection, reports: Sequence[ReportedApps]
    ) -> Callable[[], Awaitable[None]]:
        """Move the devices' rollout rows by their reports; returns what to do last in the
        transaction (append the events: the event-log lock is taken only then, see events)."""
        by_uuid = {report.uuid: report for report in reports}
        rollouts = await _lock_rollouts(conn, await _watching(conn, list(by_uuid)))
        rows = await _watched_rows(conn, list(by_uuid), list(rollouts)) if rollouts else []
        services = {uuid: reported_services(report.apps) for uuid, report in by_uuid.items()}
        settings = {rid: RolloutSettings.from_json(r.settings) for rid, r in rollouts.items()}
        steps = [
            follow(
                row,
                rollouts[row.rollout_id],
                settings[row.rollout_id],
                services[row.device_uuid],
                by_uuid[row.device_uuid].now,
            )
            for row in rows
        ]
        now = max((report.now for report in reports), default=None)
        events = await _apply(conn, steps, now) if now is not None else []

        async def finish() -> None:
            if events and now is not None:
                await append(conn, events, now)
                await self.waker.signal(conn)

        return finish


def follow(
    row: Any,
    rollout: Any,
    settings: RolloutSettings,
    services: Mapping[str, ServiceReport],
    now: datetime,
) -> Step:
    """What a report does to the device's row in a rollout (no I/O)."""
    rid, uuid = rollout.rollout_id, row.device_uuid
    old_images, new_image = row.old_images or {}, row.new_image or rollout.new_image
    tag = reported_tag(services, old_images, new_image)
    step = Step(row.id, rid, uuid, row.status)
    step.current_tag = tag if tag is not None and tag != row.current_image_tag else None
    target = next_status(
        row.status, observe(services, old_images, new_image), row.rollback_requested_at is not None
    )
    if target is None:
        return step
    if target == "failure":
        return _failed(step, row, settings, failure_message(services, old_images), now)
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
    kind, message = {
        "pulling": ("device_progress", "pulling the new image"),
        "updating": ("device_progress", "restarting on the new image"),
        "health_checking": ("device_updated", "running the new image; checking its health"),
        "completed": ("device_updated", "running the new image"),
        "rolled_back": ("device_rolled_back", "running its old image again"),
        "rollback_failed": ("rollback_failed", "its old image fails too: needs attention"),
    }[target]
    step.after, step.values = target, stamps_by_status[target]
    step.events = [Event(rid, kind, message, {"status": target}, device_uuid=uuid)]
    return step


def _failed(step: Step, row: Any, settings: RolloutSettings, reason: str, now: datetime) -> Step:
    """The new image failed on the device: a retry while retries are left, else failed (and
    back to its old images, with auto-rollback)."""
    rid, uuid = step.rollout_id, step.uuid
    outcome = after_failure(row.retry_count, row.max_retries, now)
    if outcome.status == "scheduled":
        step.after = "scheduled"
        step.values = {
            "retry_count": outcome.retry_count,
            "next_attempt_at": outcome.next_attempt_at,
            "error_message": reason,
        }
        step.events = [
            Event(
                rid,
                "device_retried",
                f"{reason}; attempt {outcome.retry_count + 1} of {row.max_retries + 1} "
                f"at {outcome.next_attempt_at:%H:%M:%S}",
                {"retry_count": outcome.retry_count, "error": reason},
                device_uuid=uuid,
            )
        ]
        return step
    step.after = "failed"
    step.values = {"failure_reason": "update_failed", "error_message": reason}
    step.events = [
        Event(rid, "device_failed", reason, {"reason": "update_failed"}, device_uuid=uuid)
    ]
    step.roll_back = settings.auto_rollback
    return step


async def _watching(conn: AsyncConnection, uuids: list[str]) -> list[str]:
    """The rollouts that watch any of these devices (read before their locks are taken)."""
    rows = await conn.execute(
        select(device_rows.c.rollout_id)
        .join(image_rollouts, image_rollouts.c.rollout_id == device_rows.c.rollout_id)
        .where(device_rows.c.device_uuid.in_(uuids), WATCHED)
        .distinct()
    )
    return sorted(rows.scalars())


async def _lock_rollouts(conn: AsyncConnection, rollout_ids: list[str]) -> dict[str, Any]:
    """Lock the rollouts' rows in rollout order (the monitor's order), waiting for them."""
    if not rollout_ids:
        return {}
    query = (
        select(image_rollouts)
        .where(image_rollouts.c.rollout_id.in_(rollout_ids))
        .order_by(image_rollouts.c.rollout_id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {row.rollout_id: row for row in await conn.execute(query)}


async def _watched_rows(
    conn: AsyncConnection, uuids: list[str], rollout_ids: list[str]
) -> list[Any]:
    """The devices' rows in the locked rollouts, as they are now that no one else moves them."""
    rows = await conn.execute(
        select(device_rows)
        .join(image_rollouts, image_rollouts.c.rollout_id == device_rows.c.rollout_id)
        .where(
            device_rows.c.device_uuid.in_(uuids),
            device_rows.c.rollout_id.in_(rollout_ids),
            WATCHED,
        )
        .order_by(device_rows.c.rollout_id, device_rows.c.device_uuid)
    )
    return list(rows)


async def _apply(conn: AsyncConnection, steps: list[Step], now: datetime) -> list[Event]:
    """Write the steps: tags, moves (one statement per set of columns), counters and
    rollbacks per rollout; returns their events."""
    tags = [{"id": s.row_id, "current_image_tag": s.current_tag} for s in steps if s.current_tag]
    await update_rows(conn, device_rows, "id", tags)
    moves = [s for s in steps if s.after is not None]
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for s in moves:
        row = {"id": s.row_id, "status": s.after, "updated_at": now} | s.values
        by_columns[tuple(sorted(row))].append(row)
    for rows in by_columns.values():
        await update_rows(conn, device_rows, "id", rows)
    events: list[Event] = []
    for rollout_id in sorted({s.rollout_id for s in moves}):
        mine = [s for s in moves if s.rollout_id == rollout_id]
        await count(conn, rollout_id, [(s.before, s.after or s.before, 1) for s in mine], now)
        events += [event for s in mine for event in s.events]
        back = [s.uuid for s in mine if s.roll_back]
        events += await restore_devices(conn, rollout_id, back, now)
    return events
