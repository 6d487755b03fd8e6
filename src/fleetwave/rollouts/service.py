"""Reading rollouts: lists, one rollout with its batches, its devices, its events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, ColumnElement, Float, Integer, String, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain import short_ids
from fleetwave.domain.controls import FAILED_DEVICE_STATUSES
from fleetwave.domain.images import parse_image
from fleetwave.domain.presence import is_online
from fleetwave.domain.vocabulary import UNFINISHED_DEVICE_STATUSES
from fleetwave.errors import (
    UNKNOWN_CURSOR,
    Conflict,
    InvalidInput,
    NotFound,
    raise_unless_one,
)
from fleetwave.rollouts import events, figures
from fleetwave.rollouts.manager import DeviceFilters, ImageUpdateManager, UpdateRequest
from fleetwave.rollouts.preview import preview_of
from fleetwave.rollouts.schemas import TriggerUpdate
from fleetwave.store.db import Database
from fleetwave.store.queries import ids_beginning, names_a_row, uuid_or_name_contains
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import devices as device_table
from fleetwave.store.tables import image_rollouts

# Whether a rollout's device is online and when it was last heard from, beside its row.
PRESENCE = (
    device_table.c.is_online.label("said_online"),
    device_table.c.last_connectivity_event.label("last_seen_at"),
)

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
    def __init__(
        self,
        db: Database,
        manager: ImageUpdateManager,
        clock: Clock,
        offline_after: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db, self.manager, self.clock = db, manager, clock
        self.offline_after = offline_after

    async def trigger(self, request: TriggerUpdate, actor: str) -> dict[str, Any]:
        """An operator's update: the same path as a webhook, recorded as manual. A version
        older than the one rolling out, or that no device takes because they run newer ones,
        is refused (409) unless ``force``: a rollback is deliberate, never a slip of the tag."""
        push = _update_request(request, actor)
        image = push.image
        outcome = await self.manager.handle(push)
        if outcome.downgrade:  # an operator asking for an older version says so explicitly
            raise Conflict(f'{outcome.message}; send "force": true to roll back to {image}')
        return outcome.as_json()

    async def preview(self, request: TriggerUpdate, actor: str) -> dict[str, Any]:
        """What :meth:`trigger` would do with the same body, writing nothing: the same
        decision (manager.decide), shaped with batches, exclusions and estimated times."""
        push = _update_request(request, actor)
        decided, now = await self.manager.preview(push)
        return preview_of(decided, str(push.image), now, self.manager.settings.max_updating_devices)

    async def search(
        self,
        *,
        status: list[str] | None = None,
        image: str | None = None,
        created_from: datetime | None = None,
        created_until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        cursor: int | None = None,
    ) -> dict[str, Any]:
        """Rollouts newest first, filtered, a page at a time (``offset`` or ``cursor``), each
        with its figures; ``total`` counts every rollout the filters match."""
        conditions: list[ColumnElement[bool]] = []
        if status:
            conditions.append(image_rollouts.c.status.in_(status))
        if image is not None:
            conditions.append(image_rollouts.c.image_name == parse_image(image).familiar)
        if created_from is not None:
            conditions.append(image_rollouts.c.created_at >= created_from)
        if created_until is not None:
            conditions.append(image_rollouts.c.created_at < created_until)
        query = select(image_rollouts).where(*conditions).order_by(image_rollouts.c.id.desc())
        if cursor is not None:
            query = query.where(image_rollouts.c.id < cursor)
        async with self.db.read() as conn:
            if cursor is not None and not await names_a_row(conn, image_rollouts.c.id == cursor):
                raise InvalidInput.one("cursor", UNKNOWN_CURSOR)
            total = (
                await conn.execute(
                    select(func.count()).select_from(image_rollouts).where(*conditions)
                )
            ).scalar_one()
            rows = (await conn.execute(query.offset(offset).limit(limit + 1))).all()
            items = await self._with_figures(conn, rows[:limit])
        return {
            "items": items,
            "next_cursor": rows[limit - 1].id if len(rows) > limit else None,
            "total": total,
            "offset": offset,
        }

    async def _with_figures(
        self, conn: AsyncConnection, rows: Sequence[Any]
    ) -> list[dict[str, Any]]:
        """The rollouts with their figures and batches, read for all of them at once."""
        ids = [row.rollout_id for row in rows]
        now = self.clock.now()
        counted = await figures.device_figures(conn, ids, now, self.offline_after)
        spread = await figures.old_images(conn, ids)
        paused = await figures.pauses(conn, [r.rollout_id for r in rows if r.status == "paused"])
        views = []
        for row in rows:
            mine = counted.get(row.rollout_id, figures.DeviceFigures())
            view = rollout_view(row) | figures.figures_view(
                row,
                mine,
                spread.get(row.rollout_id, {}),
                paused.get(row.rollout_id),
                now,
                self.manager.settings.max_updating_devices,
            )
            view["batches"] = [
                _batch_progress(number, size, mine.counts.get(number, {}), row.current_batch)
                for number, size in enumerate(row.batch_sizes or [], start=1)
            ]
            views.append(view)
        return views

    async def resolve(self, given: str) -> str:
        """The full id of the rollout that ``given`` names: itself, or a unique prefix of at
        least 8 characters (404 when none, 409 listing the matches when several, 422 when
        shorter and not a full id)."""
        async with self.db.read() as conn:
            matches = await ids_beginning(
                conn, image_rollouts.c.rollout_id, given, short_ids.MAX_MATCHES_LISTED + 1
            )
        return raise_unless_one(short_ids.resolve("rollout", given, matches), "rollout_id")

    async def active(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(ACTIVE_ROLLOUTS)
            return [rollout_view(row) for row in rows]

    async def get(self, rollout_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await _load(conn, rollout_id)
            [view] = await self._with_figures(conn, [row])
        view["webhook_payload"] = row.webhook_payload
        return view

    async def finishes(self, rollout_id: str) -> list[tuple[datetime, bool]]:
        """When each finished device finished and whether it failed (the chart's data)."""
        async with self.db.read() as conn:
            await _load(conn, rollout_id)
            return await figures.finishes(conn, rollout_id)

    async def devices(
        self,
        rollout_id: str,
        *,
        batch: int | None = None,
        status: list[str] | None = None,
        q: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """A page of the rollout's devices in uuid order, by batch, status and ``q`` (text
        in the device's uuid or name), with how many match in all."""
        conditions = [device_rows.c.rollout_id == rollout_id]
        if batch is not None:
            conditions.append(device_rows.c.batch_number == batch)
        if status:
            conditions.append(device_rows.c.status.in_(status))
        if q:
            conditions.append(device_rows.c.device_uuid.in_(uuid_or_name_contains(q)))
        async with self.db.read() as conn:
            await _load(conn, rollout_id)
            total = (
                await conn.execute(select(func.count()).select_from(device_rows).where(*conditions))
            ).scalar_one()
            query = (
                select(device_rows, *PRESENCE)
                .join(device_table, device_table.c.uuid == device_rows.c.device_uuid)
                .where(*conditions)
                .order_by(device_rows.c.device_uuid)
            )
            if cursor is not None:
                here = (device_rows.c.rollout_id == rollout_id, device_rows.c.device_uuid == cursor)
                if not await names_a_row(conn, *here):
                    raise InvalidInput.one("cursor", UNKNOWN_CURSOR)
                query = query.where(device_rows.c.device_uuid > cursor)
            rows = (await conn.execute(query.limit(limit + 1))).all()
        items = [self._with_presence(dict(r._mapping)) for r in rows[:limit]]
        next_cursor = items[-1]["device_uuid"] if len(rows) > limit else None
        return {"items": items, "total": total, "next_cursor": next_cursor}

    async def retryable_devices(self, rollout_id: str) -> int:
        """How many of the rollout's failed devices have retries left (what *retry failed*
        would send again)."""
        async with self.db.read() as conn:
            count = await conn.execute(
                select(func.count())
                .select_from(device_rows)
                .where(
                    device_rows.c.rollout_id == rollout_id,
                    device_rows.c.status.in_(FAILED_DEVICE_STATUSES),
                    device_rows.c.retry_count < device_rows.c.max_retries,
                )
            )
        return int(count.scalar_one())

    def _with_presence(self, device: dict[str, Any]) -> dict[str, Any]:
        """A rollout's device with whether it is online now (domain.presence)."""
        said_online = device.pop("said_online")
        device["online"] = is_online(
            said_online, device["last_seen_at"], self.clock.now(), self.offline_after
        )
        return device

    async def events(
        self,
        *,
        after: int = 0,
        before: int | None = None,
        limit: int = 100,
        rollout_id: str | None = None,
        device_uuid: str | None = None,
        event_type: str | None = None,
        tail: int | None = None,
    ) -> dict[str, Any]:
        """A page of the event log, oldest first: the first ``limit`` events after ``after``;
        with ``before`` or ``tail``, the newest ``tail or limit`` of those before ``before``
        (a feed read backwards), and the cursor of the page older than those."""
        backwards = before is not None or tail is not None
        count = tail or limit
        async with self.db.read() as conn:
            if rollout_id is not None:
                await _load(conn, rollout_id)
            items = await events.read(
                conn,
                after=after,
                before=before,
                limit=count + 1 if backwards else count,
                rollout_id=rollout_id,
                device_uuid=device_uuid,
                event_type=event_type,
                newest=backwards,
            )
        older = None
        if backwards and len(items) > count:
            items = items[1:]
            older = items[0]["id"]
        next_cursor = items[-1]["id"] if items else after
        return {"items": items, "next_cursor": next_cursor, "older_cursor": older}


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


def _update_request(request: TriggerUpdate, actor: str) -> UpdateRequest:
    """An operator's trigger body as the manager's request (a tag-less image is ``latest``)."""
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
    return UpdateRequest(
        image=image,
        triggered_by=f"manual:{actor}"[:100],
        actor=actor,
        strategy=request.strategy,
        filters=filters,
        force=request.force,
    )
