"""The rollout monitor: a reconcile loop that moves rollouts from batch to batch.

Each tick takes the rollouts that need attention and, for each in its own transaction: locks
it (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that several workers share the rollouts and
each transition happens once), sweeps its devices for what time alone decides (timers, soak,
timeouts, offline grace, retries), builds a snapshot, asks the pure ``decide`` what to do, and
applies the actions with their events. Devices heard from but not applying their target are
flagged on the way (``domain.not_applying``). A tick killed at any point leaves the previous
committed state, which the next tick continues from. Each tick first plans the webhook
deliveries recorded and still pending (a process died between its answer and its plan, or
left the planning to the monitor): see ``deliveries.py``. Then its chores run: housekeeping
that needs a clock and no request, such as deleting device log lines that aged out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.devices.targets import online_clause
from fleetwave.domain.device_cap import DeviceCap
from fleetwave.domain.engine import (
    Action,
    AutoPause,
    Complete,
    Fail,
    FailBatch,
    FinishBatch,
    RolloutSnapshot,
    StartBatch,
    Wait,
    decide,
)
from fleetwave.domain.health import parse_checks
from fleetwave.domain.not_applying import flag_after
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import devices as devices_count
from fleetwave.rollouts.analysis import BatchAnalysis, analysis_state, fail_batch
from fleetwave.rollouts.batches import start_batch
from fleetwave.rollouts.deliveries import DeliveryPlanner
from fleetwave.rollouts.device_cap import (
    at_most,
    pending_in,
    rollout_cap,
    room,
    schedule_pending,
)
from fleetwave.rollouts.device_moves import move, restore_devices, retarget_devices, update_rollout
from fleetwave.rollouts.events import Event, append
from fleetwave.rollouts.health import ServerProbes, judge
from fleetwave.rollouts.late_joiners import LateJoiners
from fleetwave.rollouts.not_applying import flag_not_applying
from fleetwave.rollouts.waker import Waker
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import devices, image_rollouts
from fleetwave.telemetry import Telemetry

log = logging.getLogger("fleetwave.monitor")
NEEDS_ATTENTION = ("in_progress", "scheduled", "paused")


@dataclass
class Advanced:
    """What one rollout's turn did, for logs and ``fleetwave monitor tick``."""

    rollout_id: str
    events: list[str] = field(default_factory=list)
    waiting: str | None = None
    seconds: float = 0.0  # from the turn's clock reading to its commit


class Chore(Protocol):
    async def tidy(self, now: datetime) -> str | None:
        """Do what is due now, if anything; say what was done."""
        ...


class RolloutMonitor:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        waker: Waker,
        probes: ServerProbes | None = None,
        *,
        telemetry: Telemetry,
        deliveries: DeliveryPlanner | None = None,
        chores: Sequence[Chore] = (),
        analysis: BatchAnalysis | None = None,
    ) -> None:
        self.db, self.clock, self.settings, self.waker = db, clock, settings, waker
        self.probes, self.telemetry, self.deliveries = probes, telemetry, deliveries
        self.chores = chores
        self.joiners = LateJoiners(db, settings)
        self.analysis = analysis if analysis is not None else BatchAnalysis(db)

    async def tick(self) -> list[Advanced]:
        started = time.perf_counter()
        try:
            return await self._tick()
        finally:
            self.telemetry.monitor_tick_seconds.observe(time.perf_counter() - started)

    async def _tick(self) -> list[Advanced]:
        results = await self._plan_deliveries()
        for chore in self.chores:
            if (done := await chore.tidy(self.clock.now())) is not None:
                results.append(Advanced("-", [done]))
        results += _joined(await self.joiners.join(self.clock.now()))
        async with self.db.read() as conn:
            ids = list(
                (
                    await conn.execute(
                        select(image_rollouts.c.rollout_id)
                        .where(image_rollouts.c.status.in_(NEEDS_ATTENTION))
                        .order_by(image_rollouts.c.id)
                    )
                ).scalars()
            )
            finished = list(
                (
                    await conn.execute(
                        select(device_rows.c.rollout_id)
                        .join(
                            image_rollouts, image_rollouts.c.rollout_id == device_rows.c.rollout_id
                        )
                        .where(
                            device_rows.c.rollback_requested_at.is_not(None),
                            device_rows.c.status.not_in(("rolled_back", "rollback_failed")),
                            image_rollouts.c.status.not_in(NEEDS_ATTENTION),
                        )
                        .distinct()
                    )
                ).scalars()
            )
        for rollout_id in ids:
            if self.probes is not None:  # outside any transaction: probes take time
                await self.probes.probe(rollout_id, self.clock.now())
            await self.analysis.evaluate(rollout_id, self.clock.now())  # outside, too
            advanced = await self.advance(rollout_id)
            if advanced is not None:
                results.append(advanced)
        for rollout_id in sorted(finished):
            advanced = await self.follow_rollbacks(rollout_id)
            if advanced is not None:
                results.append(advanced)
        return results

    async def _plan_deliveries(self) -> list[Advanced]:
        if self.deliveries is None:
            return []
        return [
            Advanced(outcome.rollout_id or "-", [f"webhook delivery {delivery}: {outcome.message}"])
            for delivery, outcome in (await self.deliveries.plan_pending()).items()
        ]

    async def follow_rollbacks(self, rollout_id: str) -> Advanced | None:
        """A finished rollout still waits for devices it sent back (rollback timeouts)."""
        async with self.db.transaction() as conn:
            rollout = await lock_rollout(conn, rollout_id, skip_locked=True)
            if rollout is None or not rollout.settings:
                return None
            now = self.clock.now()
            settings = RolloutSettings.from_json(rollout.settings)
            events = await _unreturned_rollbacks(conn, rollout_id, settings, now)
            await append(conn, events, now)
        return Advanced(rollout_id, [e.message for e in events])

    async def advance(self, rollout_id: str) -> Advanced | None:
        """One rollout's turn, in one transaction; None if another worker holds it."""
        async with self.db.transaction() as conn:
            rollout = await lock_rollout(conn, rollout_id, skip_locked=True)
            if rollout is None or rollout.status not in NEEDS_ATTENTION:
                return None
            now, started = self.clock.now(), time.perf_counter()
            settings = RolloutSettings.from_json(rollout.settings)
            events = await self._sweep(conn, rollout, settings, now)
            rollout = await lock_rollout(conn, rollout_id, skip_locked=False)
            assert rollout is not None
            events += await self._top_up(conn, rollout, settings, now)
            snapshot = await load_snapshot(conn, rollout, settings, now)
            snapshot = replace(snapshot, cap_note=self._cap(settings).note())
            actions = decide(snapshot)
            events += await self._apply(conn, rollout, actions, now)
            await append(conn, events, now)
        waiting = next((a.reason for a in actions if isinstance(a, Wait)), None)
        messages = [e.message for e in events if e.device_uuid is None]
        seconds = time.perf_counter() - started
        more = self._filled_a_chunk(events)
        while more:
            more = await self._next_chunk(rollout_id)
        return Advanced(rollout_id, messages, waiting, seconds)

    def _filled_a_chunk(self, events: list[Event]) -> bool:
        """Whether the turn started a whole chunk of devices: then more may be pending."""
        started = sum(1 for e in events if e.event_type == "device_scheduled")
        return started >= self.settings.batch_chunk

    async def _next_chunk(self, rollout_id: str) -> bool:
        """The next chunk of a batch being started, in a transaction of its own (a tick
        killed between chunks leaves the rest pending: the next tick's top-up starts them).
        True when it started a whole chunk, so that more may follow."""
        async with self.db.transaction() as conn:
            rollout = await lock_rollout(conn, rollout_id, skip_locked=True)
            if rollout is None:
                return False
            now = self.clock.now()
            events = await self._top_up(
                conn, rollout, RolloutSettings.from_json(rollout.settings), now
            )
            await append(conn, events, now)
        return self._filled_a_chunk(events)

    async def run(self, stop: asyncio.Event, interval: float | None = None) -> None:
        """Tick until ``stop`` is set: every ``interval`` seconds, or at once when woken."""
        interval = interval if interval is not None else self.settings.monitor_interval
        listener = None
        if self.db.dialect == "postgresql":
            listener = asyncio.create_task(self.waker.listen(self.db.url, stop))
        try:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    for advanced in await self.tick():
                        for message in advanced.events:
                            log.info(
                                "rollout %s: %s (committed after %.3f s)",
                                advanced.rollout_id,
                                message,
                                advanced.seconds,
                            )
                except Exception:  # a tick failing must not stop the monitor
                    self.telemetry.monitor_tick_errors.inc()
                    log.exception("monitor tick failed; the next tick retries")
                log.debug("monitor tick took %.3f s", time.perf_counter() - started)
                await self.waker.wait(interval)
        finally:
            if listener is not None:
                listener.cancel()

    async def _sweep(
        self, conn: AsyncConnection, rollout: Any, settings: RolloutSettings, now: datetime
    ) -> list[Event]:
        """Device changes that time alone decides, each one set-based."""
        rid, events = rollout.rollout_id, []
        online = online_clause(now, self.settings.device_offline_after)
        online_devices = select(devices.c.uuid).where(online)
        # The update timer starts when a device is scheduled and online (time offline before
        # its batch began does not count against it).
        await conn.execute(
            update(device_rows)
            .where(
                device_rows.c.rollout_id == rid,
                device_rows.c.status == "scheduled",
                device_rows.c.update_started_at.is_(None),
                device_rows.c.next_attempt_at.is_(None),
                device_rows.c.device_uuid.in_(online_devices),
            )
            .values(update_started_at=now, updated_at=now)
        )
        due = list(
            await conn.execute(
                update(device_rows)
                .where(
                    device_rows.c.rollout_id == rid,
                    device_rows.c.status == "scheduled",
                    device_rows.c.next_attempt_at <= now,
                )
                .values(
                    next_attempt_at=None,
                    update_started_at=now,
                    not_applying_since=None,  # told again: watched afresh
                    updated_at=now,
                )
                .returning(device_rows.c.device_uuid, device_rows.c.retry_count)
            )
        )
        for attempt in sorted({row.retry_count for row in due}):
            uuids = [row.device_uuid for row in due if row.retry_count == attempt]
            await retarget_devices(conn, rollout, uuids, now, attempt=attempt)
            events += [
                Event(
                    rid,
                    "device_scheduled",
                    f"attempt {attempt + 1}: target set again",
                    device_uuid=u,
                )
                for u in uuids
            ]
        events += await judge(conn, rollout, settings, now)
        after = flag_after(self.settings.not_applying_after, settings.update_timeout)
        events += await flag_not_applying(conn, rid, after, now)
        timeout = settings.update_timeout
        overdue = (
            device_rows.c.update_started_at <= now - timeout,
            device_rows.c.next_attempt_at.is_(None),
            device_rows.c.rollback_requested_at.is_(None),
        )
        stalled = await move(
            conn,
            rid,
            "scheduled",
            "failed",
            *overdue,
            device_rows.c.not_applying_since.is_not(None),
            now=now,
            failure_reason="timeout",
            error_message=f"heard from, but did not apply its target within {timeout}",
        )
        late = await move(
            conn,
            rid,
            ("scheduled", "pulling", "updating"),
            "failed",
            *overdue,
            now=now,
            failure_reason="timeout",
            error_message=f"did not run the new image within {timeout}",
        )
        timed_out = stalled + late
        events += [
            Event(
                rid,
                "device_failed",
                "timed out without applying its target (it kept polling or reporting)",
                {"reason": "timeout", "not_applying": True},
                device_uuid=u,
            )
            for u in stalled
        ]
        events += [
            Event(
                rid,
                "device_failed",
                "timed out before running the new image",
                {"reason": "timeout"},
                device_uuid=u,
            )
            for u in late
        ]
        if settings.auto_rollback:
            events += await restore_devices(conn, rid, timed_out, now)
        events += await _unreturned_rollbacks(conn, rid, settings, now)
        skipped = await move(
            conn,
            rid,
            "scheduled",
            "skipped",
            device_rows.c.update_started_at.is_(None),
            device_rows.c.next_attempt_at.is_(None),
            device_rows.c.scheduled_at <= now - settings.offline_grace,
            device_rows.c.device_uuid.not_in(online_devices),
            now=now,
            error_message="offline past the grace period; it gets the new image when it returns",
        )
        events += [
            Event(rid, "device_skipped", "offline past the grace period", device_uuid=u)
            for u in skipped
        ]
        return events

    def _cap(self, settings: RolloutSettings) -> DeviceCap:
        return rollout_cap(self.settings.max_updating_devices, settings)

    async def _top_up(
        self, conn: AsyncConnection, rollout: Any, settings: RolloutSettings, now: datetime
    ) -> list[Event]:
        """Start the current batch's pending devices as far as the caps leave room, at most a
        chunk of them: a batch started in part is topped up, in its order, as devices finish."""
        if rollout.status != "in_progress" or rollout.current_batch == 0:
            return []
        waiting = (
            select(device_rows.c.id)
            .where(*pending_in(rollout.rollout_id, rollout.current_batch))
            .limit(1)
        )
        if (await conn.execute(waiting)).first() is None:
            return []  # the usual case: no lock taken
        limit = await room(conn, rollout.rollout_id, self._cap(settings))
        chunk = at_most(limit, self.settings.batch_chunk)
        uuids = await schedule_pending(conn, rollout, rollout.current_batch, chunk, now)
        await retarget_devices(conn, rollout, uuids, now)
        batch = rollout.current_batch
        return [
            Event(
                rollout.rollout_id,
                "device_scheduled",
                f"target set to {rollout.new_image}",
                {"batch": batch},
                device_uuid=uuid,
            )
            for uuid in uuids
        ]

    async def _start_batch(
        self, conn: AsyncConnection, rid: str, action: StartBatch, now: datetime
    ) -> list[Event]:
        rollout = await lock_rollout(conn, rid, skip_locked=False)
        settings = RolloutSettings.from_json(rollout.settings)
        limit = await room(conn, rid, self._cap(settings))
        events = await start_batch(
            conn, rollout, action.batch, now, limit, self.settings.batch_chunk
        )
        await update_rollout(conn, rid, now, current_batch_finished_at=None)
        return events

    async def _apply(
        self, conn: AsyncConnection, rollout: Any, actions: list[Action], now: datetime
    ) -> list[Event]:
        events: list[Event] = []
        for action in actions:
            if isinstance(action, StartBatch):
                events += await self._start_batch(conn, rollout.rollout_id, action, now)
                continue
            apply = APPLY.get(type(action))
            if apply is not None:  # Wait does nothing
                events += await apply(conn, rollout.rollout_id, action, now)
        return events


def _joined(events: list[Event]) -> list[Advanced]:
    """One line per rollout that late joiners joined, for the logs."""
    joined: dict[str, int] = {}
    for event in events:
        joined[event.rollout_id] = joined.get(event.rollout_id, 0) + 1
    return [Advanced(rid, [f"{devices_count(n)} joined late"]) for rid, n in joined.items()]


async def _finish_batch(
    conn: AsyncConnection, rid: str, action: FinishBatch, now: datetime
) -> list[Event]:
    await update_rollout(conn, rid, now, current_batch_finished_at=now)
    message = f"batch {action.batch} finished"
    return [Event(rid, "batch_completed", message, {"batch": action.batch})]


async def _auto_pause(
    conn: AsyncConnection, rid: str, action: AutoPause, now: datetime
) -> list[Event]:
    await update_rollout(conn, rid, now, status="paused", auto_paused=True, paused_at=now)
    message = (
        f"paused automatically: failure rate {action.failure_rate:.1%} ({action.failed} of "
        f"{action.finished} finished devices) is above {action.bound:.1%}"
    )
    numbers = {
        "auto": True,
        "failure_rate": action.failure_rate,
        "failed": action.failed,
        "finished": action.finished,
        "max_failure_rate": action.bound,
    }
    return [Event(rid, "rollout_paused", message, numbers)]


async def _fail_batch(
    conn: AsyncConnection, rid: str, action: FailBatch, now: datetime
) -> list[Event]:
    rollout = await lock_rollout(conn, rid, skip_locked=False)
    settings = RolloutSettings.from_json(rollout.settings)
    return await fail_batch(conn, rid, action.batch, settings, now)


async def _complete(
    conn: AsyncConnection, rid: str, action: Complete, now: datetime
) -> list[Event]:
    await update_rollout(conn, rid, now, status="completed", completed_at=now)
    message = f"completed; failure rate {action.failure_rate:.1%}"
    return [Event(rid, "rollout_completed", message, {"failure_rate": action.failure_rate})]


async def _fail(conn: AsyncConnection, rid: str, action: Fail, now: datetime) -> list[Event]:
    message = f"failed: final failure rate {action.failure_rate:.1%} is above {action.bound:.1%}"
    await update_rollout(conn, rid, now, status="failed", completed_at=now, error_message=message)
    numbers = {"failure_rate": action.failure_rate, "max_failure_rate": action.bound}
    return [Event(rid, "rollout_failed", message, numbers)]


# What each of decide()'s actions does to the database (Wait: nothing).
APPLY: dict[type, Callable[[AsyncConnection, str, Any, datetime], Awaitable[list[Event]]]] = {
    FinishBatch: _finish_batch,
    AutoPause: _auto_pause,
    FailBatch: _fail_batch,
    Complete: _complete,
    Fail: _fail,
}


async def _unreturned_rollbacks(
    conn: AsyncConnection, rid: str, settings: RolloutSettings, now: datetime
) -> list[Event]:
    """Devices sent back that are not on their old images within the update timeout."""
    stuck = await move(
        conn,
        rid,
        ("failed", "completed", "health_checking", "updating", "pulling", "scheduled"),
        "rollback_failed",
        device_rows.c.rollback_requested_at <= now - settings.update_timeout,
        now=now,
        error_message=f"not back on its old images within {settings.update_timeout}",
    )
    return [
        Event(
            rid,
            "rollback_failed",
            "not back on its old images in time: needs attention",
            {"reason": "rollback_timeout"},
            device_uuid=u,
        )
        for u in stuck
    ]


async def lock_rollout(conn: AsyncConnection, rollout_id: str, *, skip_locked: bool) -> Any:
    query = select(image_rollouts).where(image_rollouts.c.rollout_id == rollout_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=skip_locked)
    return (await conn.execute(query)).first()


async def load_snapshot(
    conn: AsyncConnection, rollout: Any, settings: RolloutSettings, now: datetime
) -> RolloutSnapshot:
    counts: dict[int, dict[str, int]] = {}
    not_applying = 0
    rows = await conn.execute(
        select(
            device_rows.c.batch_number,
            device_rows.c.status,
            func.count(),
            func.count(device_rows.c.not_applying_since),
        )
        .where(device_rows.c.rollout_id == rollout.rollout_id)
        .group_by(device_rows.c.batch_number, device_rows.c.status)
    )
    for batch, status, n, flagged in rows:
        counts.setdefault(batch, {})[status] = n
        if status == "scheduled":
            not_applying += flagged
    return RolloutSnapshot(
        status=rollout.status,
        strategy=rollout.strategy,
        current_batch=rollout.current_batch,
        batch_sizes=tuple(rollout.batch_sizes or ()),
        counts=counts,
        settings=settings,
        now=now,
        current_batch_finished_at=rollout.current_batch_finished_at,
        approved_batch=rollout.approved_batch,
        gate_accepted_failures=rollout.gate_accepted_failures,
        not_applying=not_applying,
        analysis=await analysis_state(conn, rollout, parse_checks(list(settings.health_checks))),
    )
