"""Waking live event-stream subscribers when events are committed.

In one process the database's ``committed`` listeners say so (events are published with
:func:`fleetwave.store.db.publish`, so a rolled-back change wakes no one). Across API replicas
on PostgreSQL, :func:`fleetwave.rollouts.events.append` NOTIFYs ``fleetwave_events`` in its
transaction, and one LISTEN connection per process relays it to every subscriber here.

A wake-up carries nothing: each subscriber re-reads the log after its own cursor, so however
wake-ups coalesce, nothing is missed and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import psycopg
from sqlalchemy.engine import make_url

from fleetwave.rollouts.events import EVENTS_CHANNEL, Event

log = logging.getLogger("fleetwave.events")
LISTEN_READY_SECONDS = 5.0


class Subscription:
    """One subscriber's wake-up flag."""

    def __init__(self, hub: EventBroadcast) -> None:
        self._hub = hub
        self._woken = asyncio.Event()

    @property
    def closed(self) -> bool:
        """The server is shutting down: the subscriber should end its stream."""
        return self._hub.closed

    def wake(self) -> None:
        self._woken.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if woken (new events, or shutting down)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        woken = self._woken.is_set()
        self._woken.clear()
        return woken


class EventBroadcast:
    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._dsn = (
            url.set(drivername="postgresql").render_as_string(hide_password=False)
            if url.get_backend_name() == "postgresql"
            else None
        )
        self._subscriptions: set[Subscription] = set()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def published(self, items: Sequence[object]) -> None:
        """A ``Database.committed`` listener: wake everyone if events were committed."""
        if any(isinstance(item, Event) for item in items):
            self.wake()

    def wake(self) -> None:
        for subscription in self._subscriptions:
            subscription.wake()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Be woken from now on. On PostgreSQL, returns once this process LISTENs, so that
        an event committed on another replica after the subscriber's first read wakes it."""
        subscription = Subscription(self)
        self._subscriptions.add(subscription)
        try:
            if self._dsn is not None and not self.closed:
                if self._listener is None or self._listener.done():
                    self._listener = asyncio.create_task(self._listen(self._dsn))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LISTEN_READY_SECONDS):
                        await self._listening.wait()
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def shut_down(self) -> None:
        """End every stream now (server shutdown); new subscribers end at once too."""
        self.closed = True
        self.wake()

    async def close(self) -> None:
        self.shut_down()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self, dsn: str) -> None:
        while not self.closed:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self._listening.set()
                    self.wake()  # whatever was committed while no one listened
                    async for _ in conn.notifies():
                        self.wake()
            except (psycopg.Error, OSError) as exc:
                self._listening.clear()
                log.warning("event stream listener lost its connection (%s); retrying", exc)
                await asyncio.sleep(1)
