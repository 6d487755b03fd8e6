"""Use cases of the device registry: each method is one transaction."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.devices.history import rollout_history
from fleetwave.devices.records import (
    PUBLIC_COLUMNS,
    device_view,
    load_device,
    not_applying_targets,
    online_clause,
)
from fleetwave.devices.schemas import DeviceCreate, DeviceUpdate
from fleetwave.devices.targets import (
    NewTarget,
    announce_changes,
    insert_targets,
    load_targets,
    replace_targets,
    target_version,
)
from fleetwave.domain import short_ids
from fleetwave.domain.images import ImageRef, parse_image
from fleetwave.domain.target_state import (
    normalize_config,
    normalize_target_apps,
    service_image,
    service_key,
    state_etag,
)
from fleetwave.errors import (
    UNKNOWN_CURSOR,
    Conflict,
    InvalidInput,
    NotFound,
    raise_unless_one,
)
from fleetwave.security import hash_key, new_key
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.queries import device_text_match, ids_beginning, names_a_row
from fleetwave.store.tables import (
    device_current_state,
    device_target_images,
    device_target_state,
    devices,
)

ServiceList = list[dict[str, Any]]


def _targets_image(image: ImageRef) -> ColumnElement[bool]:
    """A device whose target state runs ``image`` (any tag when it names none)."""
    wanted = [
        device_target_images.c.device_uuid == devices.c.uuid,
        device_target_images.c.repository == image.repository,
    ]
    if image.tag is not None:
        wanted.append(device_target_images.c.tag == image.tag)
    return exists().where(*wanted)


class DeviceService:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db, self.clock, self.settings = db, clock, settings

    def _view(self, row: Any, now: datetime | None = None) -> dict[str, Any]:
        return device_view(row, now or self.clock.now(), self.settings.device_offline_after)

    async def _one(self, conn: AsyncConnection, uuid: str) -> dict[str, Any]:
        """One device as the API shows it, with the target it is not applying, if any."""
        view = self._view(await load_device(conn, uuid))
        view["not_applying_target"] = (await not_applying_targets(conn, [uuid])).get(uuid)
        return view

    async def register(self, data: DeviceCreate) -> dict[str, Any]:
        """Add a device with its initial target state; the key is returned once."""
        apps = normalize_target_apps(data.apps)
        config = normalize_config(data.config)
        now, api_key = self.clock.now(), new_key("fwd_")
        uuid = data.uuid or uuidlib.uuid4().hex
        async with self.db.transaction() as conn:
            try:
                await conn.execute(
                    insert(devices).values(
                        uuid=uuid,
                        device_name=data.device_name,
                        device_type=data.device_type,
                        fleet_id=data.fleet_id,
                        tags=data.tags,
                        ip_address=data.ip_address,
                        api_key_hash=hash_key(api_key),
                        target_etag=state_etag(apps, config),
                        created_at=now,
                        updated_at=now,
                    )
                )
            except IntegrityError:
                raise Conflict(f"device {uuid} already exists") from None
            await insert_targets(conn, [NewTarget(uuid, apps, config)], now)
            row = await load_device(conn, uuid)
        return self._view(row, now) | {"api_key": api_key}

    async def list(
        self,
        *,
        fleet_id: str | None = None,
        tags: dict[str, str] | None = None,
        online: bool | None = None,
        image: str | None = None,
        q: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """A page of devices in uuid order, by fleet, tags, presence, ``image`` (a target
        image: a repository, or one tag of it) and ``q`` (text in the uuid or the name)."""
        now = self.clock.now()
        conditions = []
        if fleet_id is not None:
            conditions.append(devices.c.fleet_id == fleet_id)
        if image:
            conditions.append(_targets_image(parse_image(image, field="image")))
        if q:
            conditions.append(device_text_match(q))
        for key, value in (tags or {}).items():
            conditions.append(devices.c.tags[key].as_string() == value)
        if online is not None:
            is_on = online_clause(now, self.settings.device_offline_after)
            conditions.append(is_on if online else ~is_on)
        async with self.db.read() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(devices).where(*conditions))
            ).scalar_one()
            query = select(*PUBLIC_COLUMNS).where(*conditions).order_by(devices.c.uuid)
            if cursor is not None:
                if not await names_a_row(conn, devices.c.uuid == cursor):
                    raise InvalidInput.one("cursor", UNKNOWN_CURSOR)
                query = query.where(devices.c.uuid > cursor)
            rows = (await conn.execute(query.limit(limit + 1))).all()
            stalled = await not_applying_targets(conn, [row.uuid for row in rows[:limit]])
        items = [self._view(row, now) for row in rows[:limit]]
        for item in items:
            item["not_applying_target"] = stalled.get(item["uuid"])
        next_cursor = items[-1]["uuid"] if len(rows) > limit else None
        return {"items": items, "total": total, "limit": limit, "next_cursor": next_cursor}

    async def resolve(self, given: str) -> str:
        """The uuid of the device that ``given`` names: itself, or a unique prefix of at
        least 8 characters (404 when none, 409 listing the matches when several, 422 when
        shorter and not a whole uuid)."""
        async with self.db.read() as conn:
            matches = await ids_beginning(
                conn, devices.c.uuid, given, short_ids.MAX_MATCHES_LISTED + 1
            )
        return raise_unless_one(short_ids.resolve("device", given, matches), "uuid")

    async def get(self, uuid: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await self._one(conn, uuid)

    async def update(self, uuid: str, changes: DeviceUpdate) -> dict[str, Any]:
        values = changes.model_dump(exclude_unset=True)
        if "device_name" in values and values["device_name"] is None:
            values.pop("device_name")
        async with self.db.transaction() as conn:
            if values:
                result = await conn.execute(
                    update(devices)
                    .where(devices.c.uuid == uuid)
                    .values(**values, updated_at=self.clock.now())
                )
                if result.rowcount == 0:
                    raise NotFound(f"device {uuid} not found")
            return await self._one(conn, uuid)

    async def delete(self, uuid: str) -> None:
        async with self.db.transaction() as conn:
            result = await conn.execute(delete(devices).where(devices.c.uuid == uuid))
            if result.rowcount == 0:
                raise NotFound(f"device {uuid} not found")
            await announce_changes(conn, frozenset([uuid]))

    async def target_state(self, uuid: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(device_target_state, devices.c.target_etag)
                    .join(devices, devices.c.uuid == device_target_state.c.device_uuid)
                    .where(device_target_state.c.device_uuid == uuid)
                )
            ).first()
        if row is None:
            raise NotFound(f"device {uuid} not found")
        return {
            "uuid": uuid,
            "apps": row.apps,
            "config": row.config,
            "extensions": row.extensions,
            "version": row.version,
            "etag": row.target_etag,
            "updated_at": row.updated_at,
        }

    async def set_target_state(
        self, uuid: str, apps: dict[str, Any], config: dict[str, Any]
    ) -> dict[str, Any]:
        apps, config = normalize_target_apps(apps), normalize_config(config)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await load_device(conn, uuid)
            current = (await load_targets(conn, [uuid]))[uuid]
            await replace_targets(conn, [NewTarget(uuid, apps, config, current.extensions)], now)
            version, etag = await target_version(conn, uuid)
        return {
            "uuid": uuid,
            "apps": apps,
            "config": config,
            "extensions": current.extensions,
            "version": version,
            "etag": etag,
            "updated_at": now,
        }

    async def current_state(self, uuid: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            await load_device(conn, uuid)
            row = (
                await conn.execute(
                    select(device_current_state).where(device_current_state.c.device_uuid == uuid)
                )
            ).first()
        if row is None:
            raise NotFound(f"device {uuid} has not reported its state yet")
        return {
            "uuid": uuid,
            "apps": row.apps,
            "config": row.config,
            "system_info": row.system_info,
            "reported_at": row.reported_at,
        }

    async def rotate_key(self, uuid: str) -> dict[str, str]:
        api_key = new_key("fwd_")
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(devices)
                .where(devices.c.uuid == uuid)
                .values(api_key_hash=hash_key(api_key), updated_at=self.clock.now())
            )
            if result.rowcount == 0:
                raise NotFound(f"device {uuid} not found")
            await announce_changes(conn, frozenset([uuid]))
        return {"uuid": uuid, "api_key": api_key}

    async def rollouts(
        self, uuid: str, *, limit: int = 20, cursor: int | None = None
    ) -> dict[str, Any]:
        """Every rollout the device was part of, newest first, a page at a time."""
        async with self.db.read() as conn:
            await load_device(conn, uuid)
            return await rollout_history(conn, uuid, limit=limit, cursor=cursor)

    async def running_services(self, uuids: Sequence[str]) -> dict[str, ServiceList]:
        """What each device last reported running, per service: ``{"service": "<appId>/<name>",
        "image", "status"}``, in one query (the dashboard's device list)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(device_current_state.c.device_uuid, device_current_state.c.apps).where(
                    device_current_state.c.device_uuid.in_(uuids)
                )
            )
            return {row.device_uuid: reported_services(row.apps) for row in rows}


def reported_services(apps: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The services of a device's report (validated when it was received)."""
    return [
        {
            "service": service_key(app_id, service),
            "image": service_image(service),
            "status": service.get("status"),
        }
        for app_id, app in (apps or {}).items()
        for service in app.get("services") or []
    ]
