"""Whose key a report carries: its device, with what an unchanged report is compared against
(the target version and the last report's digest) and its presence. Reports arriving together
(a batch's devices all report within moments) share one read (:class:`ReporterReads`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.devices.read_together import ReadTogether
from fleetwave.store.db import Database
from fleetwave.store.queries import one_of, value_chunks
from fleetwave.store.tables import device_current_state, device_target_state, devices


@dataclass(frozen=True)
class Reporter:
    """The device a report's key belongs to, as the report finds it."""

    uuid: str
    target_version: int
    last_digest: str | None
    online: bool
    last_seen: datetime | None


async def reporters(conn: AsyncConnection, key_hashes: list[str]) -> dict[str, Reporter]:
    """The devices holding these keys (by key hash), one query per chunk."""
    found: dict[str, Reporter] = {}
    for chunk in value_chunks(conn, key_hashes):
        rows = await conn.execute(
            select(
                devices.c.api_key_hash,
                devices.c.uuid,
                devices.c.is_online,
                devices.c.last_connectivity_event,
                device_target_state.c.version,
                device_current_state.c.report_digest,
            )
            .join(device_target_state, device_target_state.c.device_uuid == devices.c.uuid)
            .outerjoin(device_current_state, device_current_state.c.device_uuid == devices.c.uuid)
            .where(one_of(conn, devices.c.api_key_hash, chunk))
        )
        for row in rows:
            found[row.api_key_hash] = Reporter(
                row.uuid, row.version, row.report_digest, row.is_online, row.last_connectivity_event
            )
    return found


class ReporterReads(ReadTogether[Reporter]):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self._db = db

    async def _read(self, keys: list[str]) -> dict[str, Reporter]:
        async with self._db.single_read() as conn:
            return await reporters(conn, keys)
