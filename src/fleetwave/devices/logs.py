"""Use cases of device logs: take a batch of lines from a device, read them back, and keep
every device within its retention. Each method is one transaction.

A batch is checked whole before anything is written (:mod:`fleetwave.domain.log_lines`);
then its lines are written with one insert and the device's older lines pruned with one
DELETE, in the same transaction, so a device never holds more than its retention after a
request. Lines of devices that stopped sending age out in the monitor's sweep (:meth:`tidy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import select

from fleetwave.clock import Clock
from fleetwave.devices import log_store
from fleetwave.devices.log_store import LogFilter
from fleetwave.devices.records import load_device
from fleetwave.domain.log_lines import parse_log_lines, read_json_array, read_ndjson
from fleetwave.domain.log_retention import SWEEP_BATCH, Retention, sweep_due, worth_storing
from fleetwave.errors import Unauthorized
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.tables import devices

DELETED = "unknown device key (the device was deleted)"


class BatchFormat(Enum):
    NDJSON = "ndjson"  # one JSON object per line: what the iotistic agent sends
    JSON = "json"  # a JSON array of the same objects


@dataclass(frozen=True)
class Received:
    received: int  # lines in the request
    stored: int  # lines written (only the newest the retention keeps are)


class DeviceLogs:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db, self.clock = db, clock
        self.retention = Retention(settings.device_log_lines, settings.device_log_max_age)
        self.last_sweep: datetime | None = None

    async def receive(self, uuid: str, body: bytes, kind: BatchFormat) -> Received:
        """Store the lines of an authenticated device's batch (``body``, unpacked)."""
        entries = read_ndjson(body) if kind is BatchFormat.NDJSON else read_json_array(body)
        lines = parse_log_lines(entries)
        kept = lines[worth_storing(len(lines), self.retention)]
        if not kept:
            return Received(0, 0)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            # held until commit: a deletion of the device waits, instead of failing the insert
            locked = select(devices.c.uuid).where(devices.c.uuid == uuid)
            if (await conn.execute(locked.with_for_update(read=True, key_share=True))).first():
                await log_store.append(conn, uuid, kept, now)
                await log_store.prune(conn, uuid, self.retention, now)
            else:
                raise Unauthorized(DELETED)  # since it was authenticated
        return Received(len(lines), len(kept))

    async def read(
        self,
        uuid: str,
        where: LogFilter,
        *,
        after: int = 0,
        limit: int = 100,
        tail: int | None = None,
    ) -> dict[str, Any]:
        """A page of the device's lines, oldest first: the first ``limit`` after ``after``,
        or the last ``tail``. ``next_cursor`` is the next ``after`` (the last line's id)."""
        async with self.db.read() as conn:
            await load_device(conn, uuid)
            items = await log_store.read(
                conn, uuid, where, after=after, limit=tail or limit, newest=tail is not None
            )
        return {"items": items, "next_cursor": items[-1]["id"] if items else after}

    async def tail(self, uuid: str, count: int) -> list[dict[str, Any]]:
        """The device's last ``count`` lines, oldest first (NotFound: no such device)."""
        page = await self.read(uuid, LogFilter(), tail=count)
        lines: list[dict[str, Any]] = page["items"]
        return lines

    async def last_lines(self, uuids: Sequence[str], count: int) -> dict[str, list[dict[str, Any]]]:
        """Each device's last ``count`` lines, oldest first (the dashboard's panels)."""
        async with self.db.read() as conn:
            return await log_store.last_lines(conn, uuids, count)

    async def tidy(self, now: datetime) -> str | None:
        """The monitor's chore: delete lines that aged out, of every device, once a minute
        (sooner while a sweep finds more than it deletes at once). Says what it did."""
        if not sweep_due(self.last_sweep, now):
            return None
        self.last_sweep = now
        async with self.db.transaction() as conn:
            gone = await log_store.sweep(conn, self.retention.cutoff(now), SWEEP_BATCH)
        if gone >= SWEEP_BATCH:
            self.last_sweep = None  # more to do: the next tick goes on
        if not gone:
            return None
        return f"deleted {gone} device log lines received over {self.retention.max_age} ago"
