"""Following the event log live: replay after a cursor, then every new event as it commits.

The log is the source of truth and the cursor (the last event id sent) the only state: on every
wake-up, and on every heartbeat, a subscriber reads what follows its cursor. Ids become visible
in increasing order (see :mod:`fleetwave.rollouts.events`), so reading "after the cursor" never
skips an event that commits late and never sends one twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select

from fleetwave.errors import NotFound
from fleetwave.rollouts import events
from fleetwave.rollouts.broadcast import EventBroadcast
from fleetwave.rollouts.schemas import EventRead
from fleetwave.store.db import Database
from fleetwave.store.tables import image_rollouts, rollout_events

PAGE = 500


class EventStream:
    def __init__(
        self, db: Database, broadcast: EventBroadcast, *, heartbeat_seconds: float = 15.0
    ) -> None:
        self.db, self.broadcast, self.heartbeat_seconds = db, broadcast, heartbeat_seconds

    async def check_rollout(self, rollout_id: str) -> None:
        async with self.db.read() as conn:
            found = await conn.execute(
                select(image_rollouts.c.id).where(image_rollouts.c.rollout_id == rollout_id)
            )
            if found.first() is None:
                raise NotFound(f"rollout {rollout_id} not found")

    async def latest_id(self) -> int:
        """The id of the newest event: following from it sends only what happens next."""
        async with self.db.read() as conn:
            latest = await conn.execute(select(func.max(rollout_events.c.id)))
            return int(latest.scalar_one() or 0)

    async def recent(self, rollout_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """A rollout's newest ``limit`` events, oldest first (a feed's start)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(rollout_events)
                .where(rollout_events.c.rollout_id == rollout_id)
                .order_by(rollout_events.c.id.desc())
                .limit(limit)
            )
            return [dict(row._mapping) for row in reversed(rows.all())]

    async def follow(
        self, after: int | None, rollout_id: str | None = None
    ) -> AsyncIterator[dict[str, Any] | None]:
        """Events after ``after`` (None: from now on), then live, until the server shuts
        down. ``None`` is yielded first, once subscribed (from then on nothing is missed), and
        then whenever a heartbeat is due (nothing happened for a while)."""
        async with self.broadcast.subscribe() as subscription:
            # Subscribed before the first read: a commit after that read wakes us.
            cursor = after if after is not None else await self.latest_id()
            yield None
            while not subscription.closed:
                async with self.db.read() as conn:
                    page = await events.read(conn, after=cursor, limit=PAGE, rollout_id=rollout_id)
                for event in page:
                    yield event
                    cursor = event["id"]
                if len(page) == PAGE:
                    continue
                if not await subscription.wait(self.heartbeat_seconds):
                    yield None


def sse_message(event: dict[str, Any]) -> str:
    """One event as a Server-Sent Events message: its id, its type, its JSON."""
    data = EventRead.model_validate(event).model_dump_json()
    return f"id: {event['id']}\nevent: {event['event_type']}\ndata: {data}\n\n"


SSE_HEARTBEAT = ": heartbeat\n\n"
SSE_OPENING = "retry: 2000\n: connected\n\n"
