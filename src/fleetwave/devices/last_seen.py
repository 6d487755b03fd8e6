"""Last-seen written behind: the times devices were heard from, gathered in memory and written
in one set-based UPDATE every few seconds.

Only refreshes of devices already online wait here (see :func:`presence_write`): a device
coming online is written at once, as before, so online and offline read exactly as they did.
A refresh never moves last-seen backwards (a report may have written a later time meanwhile),
never lands on a device created after it (one deleted and registered again under its uuid), a
failed write is retried with the next, and a clean shutdown writes what is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import bindparam, or_, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.presence import is_online, needs_touch
from fleetwave.store.db import Database
from fleetwave.store.tables import devices

log = logging.getLogger("fleetwave.devices")


class PresenceWrite(Enum):
    NONE = "none"  # last-seen is fresh enough
    BEHIND = "behind"  # online already: refresh last-seen within the flush interval
    NOW = "now"  # offline (or never seen): online now, in the request's transaction


def presence_write(
    stored_online: bool, last_seen: datetime | None, now: datetime, offline_after: timedelta
) -> PresenceWrite:
    """What hearing from a device now should write about its presence."""
    if not is_online(stored_online, last_seen, now, offline_after):
        return PresenceWrite.NOW
    if needs_touch(stored_online, last_seen, now, offline_after):
        return PresenceWrite.BEHIND
    return PresenceWrite.NONE


async def mark_seen(conn: AsyncConnection, uuid: str, now: datetime) -> None:
    """Online now (a write through, for a device coming online)."""
    await conn.execute(
        update(devices)
        .where(devices.c.uuid == uuid)
        .values(is_online=True, last_connectivity_event=now)
    )


class LastSeenWriter:
    def __init__(self, db: Database, flush_seconds: float) -> None:
        self.db, self.flush_seconds = db, flush_seconds
        self._pending: dict[str, datetime] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def seen(self, uuid: str, when: datetime) -> None:
        current = self._pending.get(uuid)
        if current is None or current < when:
            self._pending[uuid] = when

    async def flush(self) -> int:
        """Write every pending last-seen in one statement; returns how many devices."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        try:
            async with self.db.transaction() as conn:
                await _write(conn, batch)
        except BaseException:
            for uuid, when in batch.items():  # kept for the next flush
                self.seen(uuid, when)
            raise
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``flush_seconds`` until ``stop``, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_seconds):
                    await stop.wait()
            try:
                await self.flush()
            except Exception as exc:  # the database may be down: keep them, try again
                log.warning("writing last-seen of devices failed (%s); retrying", exc)
        try:
            await self.flush()
        except Exception as exc:
            log.error("last-seen of %d devices not written at exit (%s)", self.pending, exc)


async def _write(conn: AsyncConnection, batch: dict[str, datetime]) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text(
                "UPDATE devices SET is_online = true, last_connectivity_event = seen.at "
                "FROM unnest(CAST(:uuids AS text[]), CAST(:times AS timestamptz[])) "
                "AS seen(uuid, at) WHERE devices.uuid = seen.uuid "
                "AND devices.created_at <= seen.at "
                "AND (devices.last_connectivity_event IS NULL "
                "OR devices.last_connectivity_event < seen.at)"
            ),
            {"uuids": list(batch), "times": list(batch.values())},
        )
        return
    # SQLite: one prepared statement run for every row, inside this process (no round trips)
    seen_at = bindparam("seen_at", type_=devices.c.last_connectivity_event.type)
    await conn.execute(
        update(devices)
        .where(
            devices.c.uuid == bindparam("seen_uuid"),
            devices.c.created_at <= seen_at,
            or_(
                devices.c.last_connectivity_event.is_(None),
                devices.c.last_connectivity_event < seen_at,
            ),
        )
        .values(is_online=True, last_connectivity_event=seen_at),
        [{"seen_uuid": uuid, "seen_at": when} for uuid, when in batch.items()],
    )
