"""Waking live event-stream subscribers when events are committed.

In one process the database's ``committed`` listeners say so (events are published with
:func:`fleetwave.store.db.publish`, so a rolled-back change wakes no one). Across API replicas
on PostgreSQL, :func:`fleetwave.rollouts.events.append` NOTIFYs ``fleetwave_events`` in its
transaction, and one LISTEN connection per process relays it to every subscriber here.

A wake-up carries nothing: each subscriber re-reads the log after its own cursor, so however
wake-ups coalesce, nothing is missed and nothing is sent twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from fleetwave.rollouts.events import EVENTS_CHANNEL, Event
from fleetwave.store.listen import ChannelRelay, WakeFlag, listen_dsn


class Subscription(WakeFlag):
    """One stream subscriber's wake-up flag."""

    def __init__(self, hub: EventBroadcast) -> None:
        super().__init__(lambda: hub.closed)


class EventBroadcast:
    def __init__(self, database_url: str) -> None:
        dsn = listen_dsn(database_url)
        self._relay = (
            ChannelRelay(dsn, EVENTS_CHANNEL, lambda _payload: self.wake()) if dsn else None
        )
        self._subscriptions: set[Subscription] = set()
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
            if self._relay is not None and not self.closed:
                await self._relay.ready()
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def shut_down(self) -> None:
        """End every stream now (server shutdown); new subscribers end at once too."""
        self.closed = True
        self.wake()

    async def close(self) -> None:
        self.shut_down()
        if self._relay is not None:
            await self._relay.close()
