"""The device-facing use cases: authenticate a device, answer its poll, take its report.

The poll is the hottest path of the system (every device, every minute): answering 304 reads
one indexed row (the device's key hash, target ETag and last-seen time) and writes it only
when last-seen has gone stale (see ``domain.presence.touch_interval``).

A poll with ``wait`` (long-poll) that would be answered 304 is held, holding no database
connection, until the device's target changes (a :class:`TargetWatch` wake-up, then one re-read
of the ETag) or the wait ends; plain polls take the same path as ever.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.devices.target_watch import TargetWatch, Watcher
from fleetwave.domain.presence import needs_touch
from fleetwave.domain.report import StateReport, parse_state_report
from fleetwave.domain.target_state import served_state
from fleetwave.errors import Forbidden, InvalidInput, Unauthorized
from fleetwave.security import hash_key, key_matches
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.queries import upsert
from fleetwave.store.tables import device_current_state, device_target_state, devices
from fleetwave.telemetry import Telemetry


class ReportListener(Protocol):
    """Told of every report with apps, inside the report's transaction (rollout progress).

    It is called first (it locks rollouts before devices, the order every writer follows) and
    returns what to run last, just before the commit."""

    async def device_reported(
        self, conn: AsyncConnection, uuid: str, apps: dict[str, Any], now: datetime
    ) -> Callable[[], Awaitable[None]]: ...


@dataclass(frozen=True)
class PollAnswer:
    etag: str
    body: dict[str, Any] | None  # None: not modified


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison, lists and ``*``)."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    return "*" in candidates or etag in (c.removeprefix("W/") for c in candidates)


class DeviceProtocol:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        listener: ReportListener | None = None,
        *,
        telemetry: Telemetry,
        watch: TargetWatch,
    ) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self.listener, self.telemetry = listener, telemetry
        self.watch = watch

    @property
    def long_poll_max(self) -> float:
        """The longest ``wait`` a poll may ask for (0: long-poll is not offered)."""
        return self.settings.long_poll_max

    async def poll(
        self,
        uuid: str,
        api_key: str | None,
        if_none_match: str | None,
        wait: float | None = None,
    ) -> PollAnswer:
        """The device's target state, or "not modified"; with ``wait`` seconds, a "not
        modified" is held until the target changes or the wait ends."""
        if wait is not None and not (math.isfinite(wait) and 0 <= wait <= self.long_poll_max):
            raise InvalidInput.one(
                "wait", f"must be a number of seconds from 0 to {self.long_poll_max:g}"
            )
        if not wait:
            answer = await self._answer(uuid, api_key, if_none_match)
        else:
            # watching before the first read: a change committed after it wakes us
            async with self.watch.watch(uuid) as watcher:
                answer = await self._answer(uuid, api_key, if_none_match)
                if answer.body is None:
                    answer = await self._hold(uuid, if_none_match, answer, watcher, wait)
        self.telemetry.device_polls.inc()
        if answer.body is None:
            self.telemetry.device_polls_not_modified.inc()
        return answer

    async def _answer(
        self, uuid: str, api_key: str | None, if_none_match: str | None
    ) -> PollAnswer:
        now = self.clock.now()
        async with self.db.single_read() as conn:
            row = (
                await conn.execute(
                    select(
                        devices.c.api_key_hash,
                        devices.c.target_etag,
                        devices.c.is_online,
                        devices.c.last_connectivity_event,
                    ).where(devices.c.uuid == uuid)
                )
            ).first()
            if row is None or not api_key or not key_matches(api_key, row.api_key_hash):
                await self._refuse(conn, uuid, api_key)
            assert row is not None
            etag, body = row.target_etag, None
            if not etag_matches(if_none_match, etag):
                etag, body = await self._target_body(conn, uuid)
        offline_after = self.settings.device_offline_after
        if needs_touch(row.is_online, row.last_connectivity_event, now, offline_after):
            async with self.db.transaction() as conn:
                await self._mark_seen(conn, uuid)
        return PollAnswer(etag=etag, body=body)

    async def _hold(
        self,
        uuid: str,
        if_none_match: str | None,
        unchanged: PollAnswer,
        watcher: Watcher,
        wait: float,
    ) -> PollAnswer:
        """Wait for a wake-up, re-read the ETag, answer if it no longer matches."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not watcher.closed:
            if not await watcher.wait(deadline - loop.time()) or watcher.closed:
                break
            async with self.db.single_read() as conn:
                etag = (
                    await conn.execute(select(devices.c.target_etag).where(devices.c.uuid == uuid))
                ).scalar_one_or_none()
                if etag is None:  # deleted meanwhile: its next poll is refused
                    break
                if not etag_matches(if_none_match, etag):
                    etag, body = await self._target_body(conn, uuid)
                    return PollAnswer(etag=etag, body=body)
        return unchanged

    async def authenticate(self, uuid: str, api_key: str | None) -> None:
        """Raise 401 for a bad key, 403 for a good key of another device."""
        async with self.db.single_read() as conn:
            stored = (
                await conn.execute(select(devices.c.api_key_hash).where(devices.c.uuid == uuid))
            ).scalar_one_or_none()
            if stored is None or not api_key or not key_matches(api_key, stored):
                await self._refuse(conn, uuid, api_key)

    async def report(self, api_key: str | None, body: Any) -> str:
        """Store a device's report of its current state. Returns the device's uuid."""
        async with self.db.read() as conn:
            uuid = await self._device_for_key(conn, api_key)
        if not isinstance(body, dict) or not body:
            raise InvalidInput.one("body", "must be an object keyed by the device's uuid")
        strangers = [key for key in body if key != uuid]
        if strangers:
            raise Forbidden(
                f"this key belongs to device {uuid}; it cannot report for {strangers[0]}"
            )
        report = parse_state_report(body[uuid], field_prefix=uuid)
        async with self.db.transaction() as conn:
            await self._store_report(conn, uuid, report)
        return uuid

    async def _store_report(self, conn: AsyncConnection, uuid: str, report: StateReport) -> None:
        now = self.clock.now()
        last = None
        if report.apps is not None and self.listener is not None:
            last = await self.listener.device_reported(conn, uuid, report.apps, now)
        previous = (
            await conn.execute(
                select(
                    device_current_state.c.apps,
                    device_current_state.c.config,
                    device_current_state.c.system_info,
                ).where(device_current_state.c.device_uuid == uuid)
            )
        ).first()
        apps = report.apps if report.apps is not None else (previous.apps if previous else {})
        config = (
            report.config if report.config is not None else (previous.config if previous else {})
        )
        # the iotistic agent sends metrics every 5 minutes and state-only reports in between:
        # a report without metrics keeps the last ones
        system_info = report.system_info or (previous.system_info if previous else None) or {}
        await upsert(
            conn,
            device_current_state,
            {
                "device_uuid": uuid,
                "apps": apps,
                "config": config,
                "system_info": system_info,
                "reported_at": now,
            },
            key=["device_uuid"],
        )
        changes: dict[str, Any] = {"is_online": report.is_online, "last_connectivity_event": now}
        for name in ("os_version", "supervisor_version"):
            if getattr(report, name) is not None:
                changes[name] = getattr(report, name)
        if report.local_ip is not None:
            changes["ip_address"] = report.local_ip
        await conn.execute(update(devices).where(devices.c.uuid == uuid).values(**changes))
        if last is not None:
            await last()

    async def _target_body(self, conn: AsyncConnection, uuid: str) -> tuple[str, dict[str, Any]]:
        """The served state and its ETag, read together so that they always agree."""
        target = device_target_state.c
        row = (
            await conn.execute(
                select(target.apps, target.config, target.extensions, devices.c.target_etag)
                .join(devices, devices.c.uuid == target.device_uuid)
                .where(target.device_uuid == uuid)
            )
        ).one()
        return row.target_etag, {uuid: served_state(row.apps, row.config, row.extensions)}

    async def _mark_seen(self, conn: AsyncConnection, uuid: str) -> None:
        await conn.execute(
            update(devices)
            .where(devices.c.uuid == uuid)
            .values(is_online=True, last_connectivity_event=self.clock.now())
        )

    async def _device_for_key(self, conn: AsyncConnection, api_key: str | None) -> str:
        if not api_key:
            raise Unauthorized("missing device key: send X-Device-API-Key or Authorization: Bearer")
        uuid = (
            await conn.execute(
                select(devices.c.uuid).where(devices.c.api_key_hash == hash_key(api_key))
            )
        ).scalar_one_or_none()
        if uuid is None:
            raise Unauthorized("unknown device key")
        return str(uuid)

    async def _refuse(self, conn: AsyncConnection, uuid: str, api_key: str | None) -> None:
        """Raise 401 for a bad key, 403 for a good key used on another device's state."""
        owner = await self._device_for_key(conn, api_key)
        raise Forbidden(f"this key belongs to device {owner}, not {uuid}")
