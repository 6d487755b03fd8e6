"""Waking the rollout monitor at once when a device reports or an operator acts.

In one process an asyncio event does it; across processes (API replicas and workers on one
PostgreSQL) a NOTIFY on the ``fleetwave_monitor`` channel, sent when the transaction commits.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.store.listen import ChannelRelay, WakeFlag, listen_dsn

CHANNEL = "fleetwave_monitor"


class Waker:
    def __init__(self) -> None:
        self._flag = WakeFlag()

    async def signal(self, conn: AsyncConnection) -> None:
        """Wake the monitor once ``conn``'s transaction commits (and now, in this process)."""
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"NOTIFY {CHANNEL}"))
        self._flag.wake()

    def wake(self) -> None:
        self._flag.wake()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if woken early."""
        return await self._flag.wait(seconds)

    async def listen(self, database_url: str, stop: asyncio.Event) -> None:
        """Relay NOTIFYs from other processes into this one (PostgreSQL only), until ``stop``."""
        dsn = listen_dsn(database_url)
        if dsn is None:
            return
        relay = ChannelRelay(dsn, CHANNEL, lambda _payload: self._flag.wake())
        await relay.ready()
        try:
            await stop.wait()
        finally:
            await relay.close()
