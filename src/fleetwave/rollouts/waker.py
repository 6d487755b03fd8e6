"""Waking the rollout monitor at once when a device reports or an operator acts.

In one process an asyncio event does it; across processes (API replicas and workers on one
PostgreSQL) a NOTIFY on the ``fleetwave_monitor`` channel, sent when the transaction commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "fleetwave_monitor"
log = logging.getLogger("fleetwave.monitor")


class Waker:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    async def signal(self, conn: AsyncConnection) -> None:
        """Wake the monitor once ``conn``'s transaction commits (and now, in this process)."""
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"NOTIFY {CHANNEL}"))
        self._event.set()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if woken early."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        woken = self._event.is_set()
        self._event.clear()
        return woken

    async def listen(self, database_url: str, stop: asyncio.Event) -> None:
        """Relay NOTIFYs from other processes into this one (PostgreSQL only)."""
        url = make_url(database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    async for _ in conn.notifies():
                        self._event.set()
                        if stop.is_set():
                            return
            except (psycopg.Error, OSError) as exc:
                log.warning("monitor wake-up listener lost its connection (%s); retrying", exc)
                await asyncio.sleep(1)
