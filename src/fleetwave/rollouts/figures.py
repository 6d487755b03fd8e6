"""The figures of a page of rollouts, read set-based: a few grouped queries for the whole page,
never one per rollout or per device.

For each rollout: its devices per batch and status (with how many of them are offline or not
applying their target), the old images its devices came from, why it was paused, and — for one
rollout's chart — when each finished device finished. What the figures say is decided in
``domain.rollout_figures`` and ``domain.engine``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, not_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.devices.targets import online_clause
from fleetwave.domain.engine import RUNNING_STATUSES, RolloutSnapshot, Wait, decide
from fleetwave.domain.rollout_figures import (
    failures,
    old_image_spread,
    old_images_label,
    outcome,
    pause_reason,
)
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import UNFINISHED_DEVICE_STATUSES
from fleetwave.rollouts.device_cap import rollout_cap
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import devices, rollout_events

FINISHED_DEVICE_STATUSES = ("completed", "failed", "rolled_back", "rollback_failed")
FAILURE_EVENTS = ("device_failed", "health_check_failed")


@dataclass
class DeviceFigures:
    """One rollout's devices, counted: batch → status → devices."""

    counts: dict[int, dict[str, int]] = field(default_factory=dict)
    not_applying: int = 0  # scheduled devices flagged not applying their target
    rolling_back: int = 0  # failed devices sent back, not yet running their old images
    offline: dict[int, int] = field(default_factory=dict)  # batch → unfinished devices offline

    def by_status(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for batch in self.counts.values():
            for status, n in batch.items():
                total[status] = total.get(status, 0) + n
        return total


async def device_figures(
    conn: AsyncConnection, rollout_ids: Sequence[str], now: datetime, offline_after: timedelta
) -> dict[str, DeviceFigures]:
    """Every rollout's devices per batch and status, in one grouped query."""
    if not rollout_ids:
        return {}
    unfinished_offline = case(
        (
            and_(
                device_rows.c.status.in_(UNFINISHED_DEVICE_STATUSES),
                not_(online_clause(now, offline_after)),
            ),
            1,
        ),
        else_=0,
    )
    rows = await conn.execute(
        select(
            device_rows.c.rollout_id,
            device_rows.c.batch_number,
            device_rows.c.status,
            func.count(),
            func.count(device_rows.c.not_applying_since),
            func.count(device_rows.c.rollback_requested_at),
            func.coalesce(func.sum(unfinished_offline), 0),
        )
        .join(devices, devices.c.uuid == device_rows.c.device_uuid)
        .where(device_rows.c.rollout_id.in_(rollout_ids))
        .group_by(device_rows.c.rollout_id, device_rows.c.batch_number, device_rows.c.status)
    )
    figures: dict[str, DeviceFigures] = {}
    for rollout_id, batch, status, n, flagged, sent_back, offline in rows:
        mine = figures.setdefault(rollout_id, DeviceFigures())
        mine.counts.setdefault(batch, {})[status] = n
        if status == "scheduled":
            mine.not_applying += flagged
        if status == "failed":
            mine.rolling_back += sent_back
        mine.offline[batch] = mine.offline.get(batch, 0) + int(offline)
    return figures


async def old_images(
    conn: AsyncConnection, rollout_ids: Sequence[str]
) -> dict[str, dict[str | None, int]]:
    """The old image tags each rollout's devices came from, in one GROUP BY."""
    if not rollout_ids:
        return {}
    rows = await conn.execute(
        select(device_rows.c.rollout_id, device_rows.c.old_image_tag, func.count())
        .where(device_rows.c.rollout_id.in_(rollout_ids))
        .group_by(device_rows.c.rollout_id, device_rows.c.old_image_tag)
    )
    spread: dict[str, dict[str | None, int]] = {}
    for rollout_id, tag, n in rows:
        spread.setdefault(rollout_id, {})[tag] = n
    return spread


async def pauses(conn: AsyncConnection, rollout_ids: Sequence[str]) -> dict[str, str]:
    """Who paused each of these (paused) rollouts and why, from its last ``rollout_paused``."""
    if not rollout_ids:
        return {}
    last = (
        select(func.max(rollout_events.c.id))
        .where(
            rollout_events.c.rollout_id.in_(rollout_ids),
            rollout_events.c.event_type == "rollout_paused",
        )
        .group_by(rollout_events.c.rollout_id)
    )
    rows = await conn.execute(
        select(
            rollout_events.c.rollout_id, rollout_events.c.event_data, rollout_events.c.message
        ).where(rollout_events.c.id.in_(last))
    )
    return {rid: pause_reason(data, message) for rid, data, message in rows}


async def finishes(conn: AsyncConnection, rollout_id: str) -> list[tuple[datetime, bool]]:
    """When each finished device of the rollout finished, and whether it failed, oldest first:
    a failure at its last failure event, a success when it completed."""
    failed_at = (
        select(rollout_events.c.device_uuid, func.max(rollout_events.c.timestamp).label("at"))
        .where(
            rollout_events.c.rollout_id == rollout_id,
            rollout_events.c.event_type.in_(FAILURE_EVENTS),
            rollout_events.c.device_uuid.is_not(None),
        )
        .group_by(rollout_events.c.device_uuid)
        .subquery()
    )
    rows = await conn.execute(
        select(
            device_rows.c.status,
            device_rows.c.update_completed_at,
            failed_at.c.at,
            device_rows.c.updated_at,
        )
        .outerjoin(failed_at, failed_at.c.device_uuid == device_rows.c.device_uuid)
        .where(
            device_rows.c.rollout_id == rollout_id,
            device_rows.c.status.in_(FINISHED_DEVICE_STATUSES),
        )
    )
    points = []
    for status, completed_at, failed_at_time, updated_at in rows:
        failed = status != "completed"
        at = (failed_at_time if failed else completed_at) or updated_at
        points.append((at, failed))
    return sorted(points, key=lambda point: point[0])


def figures_view(
    row: Any,
    mine: DeviceFigures,
    spread: dict[str | None, int],
    paused_because: str | None,
    now: datetime,
    fleet_cap: int | None = None,
) -> dict[str, Any]:
    """The figures a rollout's views show beside its row (API, dashboard, CLI)."""
    by_status = mine.by_status()
    unfinished = sum(n for s, n in by_status.items() if s in UNFINISHED_DEVICE_STATUSES)
    counted = sum(by_status.values())
    finished = counted - unfinished - by_status.get("skipped", 0)
    total = row.total_devices
    entries = old_image_spread(spread)
    return {
        "failures": failures(by_status),
        "outcome": outcome(row.status, by_status, mine.rolling_back),
        "old_images_spread": entries,
        "old_images_label": old_images_label(entries),
        "progress_percentage": round(100 * (counted - unfinished) / total, 2) if total else 0.0,
        "finished_devices": finished,
        "max_failure_rate": _bound(row),
    } | waiting(row, mine, paused_because, now, fleet_cap)


def waiting(
    row: Any,
    mine: DeviceFigures,
    paused_because: str | None,
    now: datetime,
    fleet_cap: int | None = None,
) -> dict[str, Any]:
    """What the rollout waits for (and until when), offline devices and who paused it said."""
    if not row.settings or row.status not in RUNNING_STATUSES:
        return {"waiting_for": None, "next_action_at": None}
    snapshot = RolloutSnapshot(
        status=row.status,
        strategy=row.strategy,
        current_batch=row.current_batch,
        batch_sizes=tuple(row.batch_sizes or ()),
        counts=mine.counts,
        settings=RolloutSettings.from_json(row.settings),
        now=now,
        current_batch_finished_at=row.current_batch_finished_at,
        approved_batch=row.approved_batch,
        gate_accepted_failures=row.gate_accepted_failures,
        not_applying=mine.not_applying,
    )
    cap_note = rollout_cap(fleet_cap, snapshot.settings).note()
    snapshot = replace(snapshot, offline=mine.offline.get(row.current_batch, 0), cap_note=cap_note)
    wait = next((a for a in decide(snapshot) if isinstance(a, Wait)), None)
    if wait is None:
        return {"waiting_for": None, "next_action_at": None}
    reason = wait.reason
    if paused_because and reason.startswith("paused"):
        reason = paused_because + reason.removeprefix("paused")
    return {"waiting_for": reason, "next_action_at": wait.until}


def _bound(row: Any) -> float | None:
    if not row.settings:
        return None
    return float(row.settings["max_failure_rate"])
