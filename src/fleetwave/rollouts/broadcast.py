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
from fleetwave.store.listen import WakeFlag, Wakeups


class Subscription(WakeFlag):
    """One stream subscriber's wake-up flag."""

    def __init__(self, hub: EventBroadcast) -> None:
        super().__init__(lambda: hub.closed)


class EventBroadcast(Wakeups):
    def __init__(self, database_url: str) -> None:
        super().__init__(database_url, EVENTS_CHANNEL)
        self._subscriptions: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def published(self, items: Sequence[object]) -> None:
        """A ``Database.committed`` listener: wake everyone if events were committed."""
        if any(isinstance(item, Event) for item in items):
            self.wake_all()

    def wake_all(self) -> None:
        for subscription in self._subscriptions:
            subscription.wake()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """Be woken from now on (see :meth:`Wakeups.listening`)."""
        subscription = Subscription(self)
        self._subscriptions.add(subscription)
        try:
            await self.listening()
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
