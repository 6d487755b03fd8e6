"""Reading rollouts: lists, one rollout with its batches, its devices, its events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Float, Integer, String, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.engine import Wait, decide
from fleetwave.domain.images import parse_image
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import UNFINISHED_DEVICE_STATUSES
from fleetwave.errors import UNKNOWN_CURSOR, Conflict, InvalidInput, NotFound
from fleetwave.rollouts import events
from fleetwave.rollouts.manager import DeviceFilters, ImageUpdateManager, UpdateRequest
from fleetwave.rollouts.monitor import load_snapshot
from fleetwave.rollouts.schemas import TriggerUpdate
from fleetwave.store.db import Database
from fleetwave.store.queries import names_a_row
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import image_rollouts

# The view's columns are the rollout's plus its progress figures; typing them here makes JSON
# and timestamps come back the same from SQLite and PostgreSQL.
ACTIVE_ROLLOUTS = text("SELECT * FROM active_rollouts ORDER BY id DESC").columns(
    *[column for column in image_rollouts.c],
    Column("image_pattern", String),
    Column("policy_description", String),
    Column("progress_percentage", Float),
    *[
        Column(name, Integer)
        for name in (
            "devices_completed",
            "devices_failed",
            "devices_pending",
            "devices_in_flight",
            "devices_rolled_back",
        )
    ],
)


class RolloutService:
    def __init__(self, db: Database, manager: ImageUpdateManager, clock: Clock) -> None:
        self.db, self.manager, self.clock = db, manager, clock

    async def trigger(self, request: TriggerUpdate, actor: str) -> dict[str, Any]:
        """An operator's update: the same path as a webhook, recorded as manual. A version
        older than the one rolling out, or that no device takes because they run newer ones,
        is refused (409) unless ``force``: a rollback is deliberate, never a slip of the tag."""
        image = parse_image(request.image, field="image")
        if image.tag is None:
            image = image.with_version("latest", image.digest)
        filters = None
        if request.filters is not None:
            filters = DeviceFilters(
                fleet_id=request.filters.fleet_id,
                device_tags=request.filters.device_tags or {},
                device_uuids=request.filters.device_uuids,
            )
        outcome = await self.manager.handle(
            UpdateRequest(
                image=image,
                triggered_by="manual",
                actor=actor,
                strategy=request.strategy,
                filters=filters,
                force=request.force,
            )
        )
        if outcome.downgrade:  # an operator asking for an older version says so explicitly
            raise Conflict(f'{outcome.message}; send "force": true to roll back to {image}')
        return outcome.as_json()

    async def search(
        self,
        *,
        status: list[str] | None = None,
        image: str | None = None,
        limit: int = 50,
        cursor: int | None = None,
    ) -> dict[str, Any]:
        query = select(image_rollouts).order_by(image_rollouts.c.id.desc())
        if status:
            query = query.where(image_rollouts.c.status.in_(status))
        if image is not None:
            query = query.where(image_rollouts.c.image_name == parse_image(image).familiar)
        if cursor is not None:
            query = query.where(image_rollouts.c.id < cursor)
        async with self.db.read() as conn:
            if cursor is not None and not await names_a_row(conn, image_rollouts.c.id == cursor):
                raise InvalidInput.one("cursor", UNKNOWN_CURSOR)
            rows = (await conn.execute(query.limit(limit + 1))).all()
        items = [rollout_view(r) for r in rows[:limit]]
        return {"items": items, "next_cursor": rows[limit - 1].id if len(rows) > limit else None}

    async def with_batches(self, rollouts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rollouts (as :meth:`search` lists them), each with its batches' progress."""
        async with self.db.read() as conn:
            counts = await batch_counts(conn, [r["rollout_id"] for r in rollouts])
        return [
            rollout
            | {
                "batches": [
                    _batch_progress(
                        number,
                        size,
                        counts.get(rollout["rollout_id"], {}).get(number, {}),
                        rollout["current_batch"],
                    )
                    for number, size in enumerate(rollout["batch_sizes"] or [], start=1)
                ]
            }
            for rollout in rollouts
        ]

    async def active(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(ACTIVE_ROLLOUTS)
            return [rollout_view(row) for row in rows]

    async def get(self, rollout_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await _load(conn, rollout_id)
            counts = await conn.execute(
                select(device_rows.c.batch_number, device_rows.c.status, func.count())
                .where(device_rows.c.rollout_id == rollout_id)
                .group_by(device_rows.c.batch_number, device_rows.c.status)
            )
            by_batch: dict[int, dict[str, int]] = {}
            for batch, status, count in counts:
                by_batch.setdefault(batch, {})[status] = count
            waiting = await _waiting_for(conn, row, self.clock.now())
        view = rollout_view(row) | waiting
        view["webhook_payload"] = row.webhook_payload
        view["batches"] = [
            _batch_progress(number, size, by_batch.get(number, {}), row.current_batch)
            for number, size in enumerate(row.batch_sizes or [], start=1)
        ]
        finished = sum(
            n
            for c in by_batch.values()
            for s, n in c.items()
            if s not in UNFINISHED_DEVICE_STATUSES
        )
        view["progress_percentage"] = (
            round(100 * finished / row.total_devices, 2) if row.total_devices else 0.0
        )
        return view

    async def devices(
        self,
        rollout_id: str,
        *,
        batch: int | None = None,
        status: list[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        conditions = [device_rows.c.rollout_id == rollout_id]
        if batch is not None:
            conditions.append(device_rows.c.batch_number == batch)
        if status:
            conditions.append(device_rows.c.status.in_(status))
        async with self.db.read() as conn:
            await _load(conn, rollout_id)
            total = (
                await conn.execute(select(func.count()).select_from(device_rows).where(*conditions))
            ).scalar_one()
            query = select(device_rows).where(*conditions).order_by(device_rows.c.device_uuid)
            if cursor is not None:
                here = (device_rows.c.rollout_id == rollout_id, device_rows.c.device_uuid == cursor)
                if not await names_a_row(conn, *here):
                    raise InvalidInput.one("cursor", UNKNOWN_CURSOR)
                query = query.where(device_rows.c.device_uuid > cursor)
            rows = (await conn.execute(query.limit(limit + 1))).all()
        items = [dict(r._mapping) for r in rows[:limit]]
        next_cursor = items[-1]["device_uuid"] if len(rows) > limit else None
        return {"items": items, "total": total, "next_cursor": next_cursor}

    async def events(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        rollout_id: str | None = None,
        device_uuid: str | None = None,
        event_type: str | None = None,
    ) -> dict[str, Any]:
        async with self.db.read() as conn:
            if rollout_id is not None:
                await _load(conn, rollout_id)
            items = await events.read(
                conn,
                after=after,
                limit=limit,
                rollout_id=rollout_id,
                device_uuid=device_uuid,
                event_type=event_type,
            )
        return {"items": items, "next_cursor": items[-1]["id"] if items else after}


async def _waiting_for(conn: AsyncConnection, row: Any, now: datetime) -> dict[str, Any]:
    """What the rollout waits for and until when (e.g. its next maintenance window)."""
    if not row.settings:
        return {"waiting_for": None, "next_action_at": None}
    snapshot = await load_snapshot(conn, row, RolloutSettings.from_json(row.settings), now)
    wait = next((a for a in decide(snapshot) if isinstance(a, Wait)), None)
    if wait is None:
        return {"waiting_for": None, "next_action_at": None}
    return {"waiting_for": wait.reason, "next_action_at": wait.until}


def rollout_view(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    values["failure_rate"] = float(values["failure_rate"])
    return values


def _batch_progress(number: int, size: int, counts: dict[str, int], current: int) -> dict[str, Any]:
    unfinished = sum(n for s, n in counts.items() if s in UNFINISHED_DEVICE_STATUSES)
    if number > current or counts.get("pending", 0) == size:
        status = "waiting"
    elif unfinished:
        status = "in_progress"
    else:
        status = "done"
    return {"batch": number, "size": size, "status": status, "counts": counts}


async def _load(conn: AsyncConnection, rollout_id: str) -> Any:
    row = (
        await conn.execute(select(image_rollouts).where(image_rollouts.c.rollout_id == rollout_id))
    ).first()
    if row is None:
        raise NotFound(f"rollout {rollout_id} not found")
    return row


async def batch_counts(conn: AsyncConnection, rollout_ids: list[str]) -> dict[str, Any]:
    """Devices per rollout, batch and status, in one query."""
    rows = await conn.execute(
        select(
            device_rows.c.rollout_id, device_rows.c.batch_number, device_rows.c.status, func.count()
        )
        .where(device_rows.c.rollout_id.in_(rollout_ids))
        .group_by(device_rows.c.rollout_id, device_rows.c.batch_number, device_rows.c.status)
    )
    counts: dict[str, dict[int, dict[str, int]]] = {}
    for rollout_id, batch, status, count in rows:
        counts.setdefault(rollout_id, {}).setdefault(batch, {})[status] = count
    return counts
