"""Relaying a PostgreSQL NOTIFY channel to this process: one LISTEN connection, started lazily.

Writers NOTIFY in their transaction, so a notification is delivered once, and only if, the
change is committed, to every replica listening. The connection is kept open and reopened
after a failure; on every (re)connection the relay delivers ``None``: "anything may have
changed while no one listened". When the connection is lost the relay says so at once
(``lost``), so that whoever trusts notifications (the poll cache) stops trusting them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("fleetwave.store")
LISTEN_READY_SECONDS = 5.0
# a listener on a dead connection must notice: TCP keepalives end it within ~30 s
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def listen_dsn(database_url: str) -> str | None:
    """The libpq DSN to LISTEN on, or None for a database without NOTIFY (SQLite)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class WakeFlag:
    """A wake-up that carries nothing: anyone sets it, its one waiter takes it. Whoever is woken
    looks again at what it waits for (the database), so coalesced or spurious wake-ups are
    harmless."""

    def __init__(self, is_closed: Callable[[], bool] = lambda: False) -> None:
        self._is_closed = is_closed
        self._woken = asyncio.Event()

    @property
    def closed(self) -> bool:
        """The server is shutting down: stop waiting and answer now."""
        return self._is_closed()

    def wake(self) -> None:
        self._woken.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if woken meanwhile (or before)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        woken = self._woken.is_set()
        self._woken.clear()
        return woken


class ChannelRelay:
    def __init__(
        self,
        dsn: str,
        channel: str,
        deliver: Callable[[str | None], None],
        lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.dsn, self.channel, self.deliver, self.lost = dsn, channel, deliver, lost
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False

    async def ready(self) -> None:
        """Start listening if not yet, and wait (a few seconds at most) until it listens, so
        that whatever commits from now on is delivered."""
        if self._closed:
            return
        self.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LISTEN_READY_SECONDS):
                await self._listening.wait()

    @property
    def listening(self) -> bool:
        """Whether notifications are being received right now."""
        return self._listening.is_set()

    def start(self) -> None:
        """Start listening in the background, if not yet."""
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._listen())

    async def close(self) -> None:
        self._closed = True
        self._listening.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, **KEEPALIVES
                ) as conn:
                    await conn.execute(f"LISTEN {self.channel}")
                    self._listening.set()
                    self.deliver(None)
                    async for notification in conn.notifies():
                        self.deliver(notification.payload)
                    raise psycopg.OperationalError("the notification stream ended")
            except (psycopg.Error, OSError) as exc:
                if self._listening.is_set():
                    self._listening.clear()
                    self.lost()
                log.warning("LISTEN %s lost its connection (%s); retrying", self.channel, exc)
                await asyncio.sleep(1)


class Wakeups:
    """Waiters in this process, woken after a commit here or by a NOTIFY on ``channel`` from
    another replica; shut down at server exit so that no waiter holds the exit up."""

    def __init__(self, database_url: str, channel: str) -> None:
        dsn = listen_dsn(database_url)
        self._relay = ChannelRelay(dsn, channel, self.relayed, self.relay_lost) if dsn else None
        self.closed = False

    def wake_all(self) -> None:
        raise NotImplementedError

    def relayed(self, payload: str | None) -> None:
        """A NOTIFY from another replica (None: the relay (re)connected)."""
        self.wake_all()

    def relay_lost(self) -> None:
        """The LISTEN connection dropped: notifications may be missed until it is back."""

    @property
    def relayed_here(self) -> bool:
        """Whether every other replica's change reaches this process now: always without a
        relay (SQLite: one process), else while the relay listens."""
        return self._relay is None or self._relay.listening

    def start_listening(self) -> None:
        """Start the relay in the background (PostgreSQL), without waiting for it."""
        if self._relay is not None and not self.closed:
            self._relay.start()

    async def listening(self) -> None:
        """On PostgreSQL, return once this process LISTENs, so that whatever another replica
        commits after the waiter's first read wakes it."""
        if self._relay is not None and not self.closed:
            await self._relay.ready()

    def shut_down(self) -> None:
        """Wake every waiter now (server shutdown); new waiters are not held."""
        self.closed = True
        self.wake_all()

    async def close(self) -> None:
        self.shut_down()
        if self._relay is not None:
            await self._relay.close()
