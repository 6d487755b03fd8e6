"""Operator controls of a rollout: approve, reject, pause, resume, cancel, promote, retry.

Each control is valid only from the statuses where it makes sense (``ALLOWED``, the domain's
table, which the dashboard shares); elsewhere it is refused with a 409 that says why. Each
writes its change and an event naming who did it in one transaction, then lets the monitor act
on the rollout at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.controls import (
    CONTROL_STATUSES,
    FAILED_DEVICE_STATUSES,
    MOVED_DEVICE_STATUSES,
    device_can_roll_back,
    device_retry_refusal,
    status_refusal,
)
from fleetwave.domain.engine import RolloutSnapshot, gate_tripped
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import UNFINISHED_DEVICE_STATUSES, devices
from fleetwave.errors import Conflict, NotFound
from fleetwave.rollouts.device_moves import move, restore_devices, update_rollout
from fleetwave.rollouts.events import Event, append
from fleetwave.rollouts.monitor import RolloutMonitor, load_snapshot, lock_rollout
from fleetwave.rollouts.waker import Waker
from fleetwave.store.db import Database
from fleetwave.store.tables import device_rollout_status as device_rows

# The rules live in the domain, shared with the dashboard.
ALLOWED = CONTROL_STATUSES
MOVED = MOVED_DEVICE_STATUSES
FAILED = FAILED_DEVICE_STATUSES


@dataclass(frozen=True)
class Actor:
    by: str = "admin"
    note: str | None = None

    def data(self, **more: Any) -> dict[str, Any]:
        return {"by": self.by, "note": self.note} | more


class RolloutControls:
    def __init__(self, db: Database, clock: Clock, monitor: RolloutMonitor, waker: Waker) -> None:
        self.db, self.clock, self.monitor, self.waker = db, clock, monitor, waker

    async def apply(
        self, control: str, rollout_id: str, actor: Actor, *, force: bool = False
    ) -> None:
        handler = {
            "approve": self._approve,
            "reject": self._reject,
            "pause": self._pause,
            "resume": self._resume,
            "cancel": self._cancel,
            "promote": self._promote,
            "retry-failed": self._retry_failed,
            "rollback-all": self._rollback_all,
        }[control]
        now = self.clock.now()
        async with self.db.transaction() as conn:
            rollout = await lock_rollout(conn, rollout_id, skip_locked=False)
            if rollout is None:
                raise NotFound(f"rollout {rollout_id} not found")
            refusal = status_refusal(control, rollout.status)
            if refusal is not None:
                raise Conflict(refusal)
            events = await handler(conn, rollout, actor, now, force)
            await append(conn, events, now)
            await self.waker.signal(conn)
        await self.monitor.advance(rollout_id)

    async def _approve(
        self, conn: AsyncConnection, rollout: Any, actor: Actor, now: datetime, force: bool
    ) -> list[Event]:
        await update_rollout(conn, rollout.rollout_id, now, status="in_progress", approved_batch=1)
        return [_event(rollout, "rollout_approved", f"approved by {actor.by}", actor)]

    async def _reject(
        self, conn: AsyncConnection, rollout: Any, actor: Actor, now: datetime, force: bool
    ) -> list[Event]:
        await update_rollout(conn, rollout.rollout_id, now, status="cancelled", completed_at=now)
        await move(
            conn, rollout.rollout_id, "pending", "skipped", now=now, error_message="rejected"
        )
        return [_event(rollout, "rollout_rejected", f"rejected by {actor.by}", actor)]

    async def _pause(
        self, conn: AsyncConnection, rollout: Any, actor: Actor, now: datetime, force: bool
    ) -> list[Event]:
        await update_rollout(
            conn, rollout.rollout_id, now, status="paused", paused_at=now, auto_paused=False
        )
        return [
            _event(
                rollout,
                "rollout_paused",
                f"paused by {actor.by}; devices already updating finish",
                actor,
                auto=False,
            )
        ]

    async def _resume(
        self, conn: AsyncConnection, rollout: Any, actor: Actor, now: datetime, force: bool
    ) -> list[Event]:
        settings, snapshot = await _snapshot(conn, rollout, now)
        accepted = rollout.gate_accepted_failures
        if gate_tripped(snapshot):
            if not force:
                raise Conflict(
                    f"the failure rate {snapshot.failure_rate:.1%} ({snapshot.failed} of "
                    f"{snapshot.finished} finished devices) is still above "
                    f'{settings.max_failure_rate:.1%}; resume with {{"force": true}} to go on'
                )
            accepted = snapshot.failed
        status = (
            "scheduled"
            if rollout.current_batch == 0 and rollout.strategy == "scheduled"
            else "in_progress"
        )
        await update_rollout(
            conn,
            rollout.rollout_id,
            now,
            status=status,
            resumed_at=now,
            auto_paused=False,
            gate_accepted_failures=accepted,
        )
        how = " past the failure gate" if accepted != rollout.gate_accepted_failures else ""
        return [
            _event(rollout, "rollout_resumed", f"resumed by {actor.by}{how}", actor, forced=force)
        ]

    async def _cancel(
        self, conn: AsyncConnection, rollout: Any, actor: Actor, now: datetime, force: bool
    ) -> list[Event]:
        rid = rollout.rollout_id
        await update_rollout(
            conn,
            rid,
            now,
            status="cancelled",
            completed_at=now,
            error_message=f"cancelled by {actor.by}",
        )
        await move(conn, rid, "pending", "skipped", now=now, error_message="rollout cancelled")
        # Every device not yet confirmed healthy is put back where it was: those told to update
        # and those already running the new image but unjudged (nothing judges them any more).
        # Devices that passed keep the new image; rollback-all sends them back too.
        stopped = await move(
            conn,
            rid,
            ("scheduled", "pulling", "updating", "health_checking"),
            "skipped",
            now=now,
            error_message="rollout cancelled",
        )
        events = await restore_devices(conn, rid, stopped, now, rollback=False)
        return [
            _event(
                rollout,
                "rollout_cancelled",
                f"cancelled by {actor.by}",
                actor,
                reverted=len(stopped),
            )
        ] + events

    async def _promote(
        self, conn: AsyncConnection, rollout: Any, actor: Actor, now: datetime, force: bool
    ) -> list[Event]:
        settings, snapshot = await _snapshot(conn, rollout, now)
        batch = rollout.current_batch
        if batch >= snapshot.total_batches:
            raise Conflict(f"batch {batch} is the last; there is no batch to promote")
        unfinished = snapshot.in_batch(batch, UNFINISHED_DEVICE_STATUSES)
        if batch > 0 and unfinished:
            raise Conflict(f"batch {batch} still has {devices(unfinished)} not finished")
        if gate_tripped(snapshot):
            raise Conflict(
                f"the failure rate {snapshot.failure_rate:.1%} is above "
                f"{settings.max_failure_rate:.1%}; promote never passes the failure gate"
            )
        await update_rollout(conn, rollout.rollout_id, now, approved_batch=batch + 1)
        return [
            _event(
                rollout,
                "rollout_promoted",
                f"batch {batch + 1} promoted by {actor.by}",
                actor,
                batch=batch + 1,
            )
        ]

    async def _retry_failed(
        self, conn: AsyncConnection, rollout: Any, actor: Actor, now: datetime, force: bool
    ) -> list[Event]:
        rid = rollout.rollout_id
        retried = await move(
            conn,
            rid,
            FAILED,
            "scheduled",
            device_rows.c.retry_count < device_rows.c.max_retries,
            now=now,
            retry_count=device_rows.c.retry_count + 1,
            next_attempt_at=now,
            failure_reason=None,
            rollback_requested_at=None,  # it is sent forward again, no longer back
        )
        if not retried:
            raise Conflict("no failed device of this rollout has retries left")
        if rollout.status in ("completed", "failed"):
            await update_rollout(
                conn, rid, now, status="in_progress", completed_at=None, error_message=None
            )
        return [
            _event(
                rollout,
                "retry_requested",
                f"{len(retried)} failed devices retried by {actor.by}",
                actor,
                devices=len(retried),
            )
        ]

    async def _rollback_all(
        self, conn: AsyncConnection, rollout: Any, actor: Actor, now: datetime, force: bool
    ) -> list[Event]:
        """Every device the rollout moved goes back to its own old images; the rest never
        will move; the rollout ends ``rolled_back``."""
        rid = rollout.rollout_id
        moved = list(
            (
                await conn.execute(
                    select(device_rows.c.device_uuid).where(
                        device_rows.c.rollout_id == rid,
                        device_rows.c.status.in_(MOVED),
                        device_rows.c.rollback_requested_at.is_(None),
                    )
                )
            ).scalars()
        )
        events = await restore_devices(conn, rid, moved, now)
        await move(conn, rid, "pending", "skipped", now=now, error_message="rollout rolled back")
        await update_rollout(
            conn,
            rid,
            now,
            status="rolled_back",
            completed_at=now,
            error_message=f"rolled back by {actor.by}",
        )
        summary = f"rolled back by {actor.by}: {len(moved)} devices sent back to their old images"
        return [_event(rollout, "rollout_rolled_back", summary, actor, devices=len(moved))] + events

    async def rollback_device(self, rollout_id: str, uuid: str, actor: Actor) -> None:
        """One device goes back to its own old images."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            rollout = await lock_rollout(conn, rollout_id, skip_locked=False)
            if rollout is None:
                raise NotFound(f"rollout {rollout_id} not found")
            row = (
                await conn.execute(
                    select(device_rows.c.status, device_rows.c.rollback_requested_at).where(
                        device_rows.c.rollout_id == rollout_id, device_rows.c.device_uuid == uuid
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"device {uuid} is not part of rollout {rollout_id}")
            if not device_can_roll_back(row.status, row.rollback_requested_at is not None):
                raise Conflict(
                    f"device {uuid} is {row.status}"
                    + (" and already sent back" if row.rollback_requested_at else "")
                    + "; only a device the rollout moved can be rolled back"
                )
            events = await restore_devices(conn, rollout_id, [uuid], now)
            events.append(
                Event(
                    rollout_id,
                    "rollback_triggered",
                    f"rolled back by {actor.by}",
                    actor.data(),
                    device_uuid=uuid,
                )
            )
            await append(conn, events, now)
            await self.waker.signal(conn)

    async def retry_device(self, rollout_id: str, uuid: str, actor: Actor) -> None:
        """One failed or rolled-back device is given the new image again (a retry of its own:
        its retry count goes up, as retry-failed does for all of them)."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            rollout = await lock_rollout(conn, rollout_id, skip_locked=False)
            if rollout is None:
                raise NotFound(f"rollout {rollout_id} not found")
            row = (
                await conn.execute(
                    select(
                        device_rows.c.status, device_rows.c.retry_count, device_rows.c.max_retries
                    ).where(
                        device_rows.c.rollout_id == rollout_id, device_rows.c.device_uuid == uuid
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"device {uuid} is not part of rollout {rollout_id}")
            refusal = device_retry_refusal(
                rollout.status, row.status, row.retry_count, row.max_retries
            )
            if refusal is not None:
                raise Conflict(f"device {uuid} cannot be retried: {refusal}")
            moved = await move(
                conn,
                rollout_id,
                row.status,
                "scheduled",
                device_rows.c.device_uuid == uuid,
                now=now,
                retry_count=device_rows.c.retry_count + 1,
                next_attempt_at=now,
                failure_reason=None,
                rollback_requested_at=None,  # it is sent forward again, no longer back
            )
            if not moved:  # a report moved it between the read and the update
                raise Conflict(f"device {uuid} changed meanwhile; look again and retry")
            if rollout.status in ("completed", "failed"):
                await update_rollout(
                    conn,
                    rollout_id,
                    now,
                    status="in_progress",
                    completed_at=None,
                    error_message=None,
                )
            event = Event(
                rollout_id,
                "retry_requested",
                f"retried by {actor.by} (attempt {row.retry_count + 2})",
                actor.data(devices=1, retry_count=row.retry_count + 1),
                device_uuid=uuid,
            )
            await append(conn, [event], now)
            await self.waker.signal(conn)
        await self.monitor.advance(rollout_id)


async def _snapshot(
    conn: AsyncConnection, rollout: Any, now: datetime
) -> tuple[RolloutSettings, RolloutSnapshot]:
    settings = RolloutSettings.from_json(rollout.settings)
    return settings, await load_snapshot(conn, rollout, settings, now)


def _event(rollout: Any, kind: str, message: str, actor: Actor, **data: Any) -> Event:
    return Event(rollout.rollout_id, kind, message, actor.data(**data))
