"""A webhook's pushes: recorded before the webhook is answered, planned from the record.

Registries give up on a webhook after about 10 s and deliver it again, and planning the
rollout of a large fleet takes longer than that. So a verified delivery's pushes are first
recorded in ``webhook_deliveries`` as ``pending`` (one row per tag, the tags of one push
sharing a ``push_id``, with what planning needs) and committed; each push is then planned from
its record, and the record marked with the outcome, in one transaction. A process killed
between the two leaves the record pending, and the rollout monitor plans it on its next tick
(:meth:`DeliveryPlanner.plan_pending`): nothing is lost, nothing is planned twice.

Deduplication works as it did when the answer waited for the plan: recording a push that is
already recorded (a redelivery, a burst, another provider's announcement of it) counts it on
that record and is a ``duplicate`` at once; a version an unfinished rollout already rolls out
is a ``duplicate`` when planned (the manager). The pushes of one image are planned one at a
time, under the image's lock, oldest first, so a newer version still supersedes an older one.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.images import parse_image
from fleetwave.domain.roles import registry_actor
from fleetwave.rollouts.events import Event, append
from fleetwave.rollouts.manager import (
    Delivery,
    ImageUpdateManager,
    UpdateOutcome,
    UpdateRequest,
    lock_image,
)
from fleetwave.rollouts.waker import Waker
from fleetwave.store.db import Database
from fleetwave.store.queries import insert_new
from fleetwave.store.tables import image_rollouts
from fleetwave.store.tables import webhook_deliveries as deliveries
from fleetwave.telemetry import Telemetry

log = logging.getLogger("fleetwave.deliveries")
PENDING = "pending"
POLL = "poll"  # the provider of pushes found by polling a registry (registries/poller.py)


@dataclass(frozen=True)
class Recorded:
    """One tag of a push as recording left it: ``pending`` as the delivery with this id, or
    decided at once (``outcome``: the push was received before)."""

    request: UpdateRequest
    pending: int | None = None
    outcome: UpdateOutcome | None = None


class DeliveryPlanner:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        manager: ImageUpdateManager,
        waker: Waker,
        telemetry: Telemetry,
    ) -> None:
        self.db, self.clock, self.manager = db, clock, manager
        self.waker, self.telemetry = waker, telemetry

    async def record(
        self, pushes: Sequence[Sequence[UpdateRequest]], *, wake_monitor: bool = False
    ) -> list[list[Recorded]]:
        """Record each push (its tags in order of preference), in one transaction; with
        ``wake_monitor`` the rollout monitor is woken to plan them once committed."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            recorded = [await _record_push(conn, push, now) for push in pushes]
            if wake_monitor:
                await self.waker.signal(conn)
        if wake_monitor:
            self.waker.wake()  # now that they are committed
        self._count_duplicates(r.request for push in recorded for r in push if r.outcome)
        return recorded

    async def plan(self, ids: Sequence[int]) -> dict[int, UpdateOutcome]:
        """Plan these recorded deliveries, after the pushes of their images received before
        them; returns their outcomes, whoever planned them (another worker may have)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(deliveries.c.image_name, func.max(deliveries.c.id))
                .where(deliveries.c.id.in_(list(ids)))
                .group_by(deliveries.c.image_name)
            )
            images = [(image_name, up_to) for image_name, up_to in rows]
        planned: dict[int, UpdateOutcome] = {}
        for image_name, up_to in images:
            planned |= await self._plan_through(image_name, up_to, wait=True)
        missing = [i for i in ids if i not in planned]
        if missing:
            planned |= await _recorded_outcomes(self.db, missing)
        return {i: planned[i] for i in ids if i in planned}

    async def plan_pending(self) -> dict[int, UpdateOutcome]:
        """Plan every pending delivery (the monitor's turn): those of a process that died
        between its answer and its plan, or left to the monitor. An image another worker is
        planning is skipped (its worker plans the rest of that image's pushes too)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(deliveries.c.image_name, func.max(deliveries.c.id))
                .where(deliveries.c.outcome == PENDING)
                .group_by(deliveries.c.image_name)
                .order_by(func.min(deliveries.c.id))
            )
            images = [(image_name, up_to) for image_name, up_to in rows]
        planned: dict[int, UpdateOutcome] = {}
        for image_name, up_to in images:
            try:
                planned |= await self._plan_through(image_name, up_to, wait=False)
            except Exception:  # one image's failure must not hold up the others or the rollouts
                log.exception("planning the pending deliveries of %s failed; retried", image_name)
        return planned

    async def _plan_through(
        self, image_name: str, up_to: int, *, wait: bool
    ) -> dict[int, UpdateOutcome]:
        """Plan the pending pushes of one image up to delivery ``up_to``, oldest first, each
        push in its own transaction."""
        planned: dict[int, UpdateOutcome] = {}
        while True:
            push = await self._plan_oldest(image_name, up_to, wait=wait)
            if not push:
                return planned
            planned |= push

    async def _plan_oldest(
        self, image_name: str, up_to: int, *, wait: bool
    ) -> dict[int, UpdateOutcome]:
        """Plan the image's oldest pending push and mark its tags with their outcomes, in one
        transaction; nothing if none is left or (without ``wait``) another holds the image."""
        async with self.db.transaction() as conn:
            if not await lock_image(conn, parse_image(image_name), wait=wait):
                return {}
            oldest = (
                await conn.execute(
                    select(deliveries.c.push_id)
                    .where(
                        deliveries.c.image_name == image_name,
                        deliveries.c.outcome == PENDING,
                        deliveries.c.id <= up_to,
                    )
                    .order_by(deliveries.c.id)
                    .limit(1)
                )
            ).first()
            if oldest is None:
                return {}
            tags = list(
                await conn.execute(
                    select(deliveries)
                    .where(deliveries.c.push_id == oldest.push_id, deliveries.c.outcome == PENDING)
                    .order_by(deliveries.c.id)
                )
            )
            now = self.clock.now()
            outcomes, events = await self._plan_push(conn, tags, now)
            await append(conn, events, now)  # last, so the event-log lock is brief
        self._count_duplicates(
            _request(row) for row in tags if outcomes[row.id].outcome == "duplicate"
        )
        return outcomes

    async def _plan_push(
        self, conn: AsyncConnection, tags: list[Any], now: datetime
    ) -> tuple[dict[int, UpdateOutcome], list[Event]]:
        """One push announced under several tags makes one rollout: the first tag (in order
        of preference) that a policy takes; the others say so."""
        outcomes: dict[int, UpdateOutcome] = {}
        events: list[Event] = []
        created: UpdateOutcome | None = None
        for row in tags:
            if created is not None:
                outcome = UpdateOutcome("ignored", f"same push as {created.image}, rolled out once")
            else:
                outcome, more = await self.manager.plan(conn, _request(row), now)
                events += more
                if outcome.outcome == "rollout_created":
                    created = outcome
            outcomes[row.id] = outcome
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == row.id)
                .values(
                    outcome=outcome.outcome,
                    reason=outcome.message,
                    rollout_id=outcome.rollout_id,
                    planned_at=now,
                    payload=None,  # a rollout keeps its own copy
                )
            )
        return outcomes, events

    def _count_duplicates(self, requests: Iterable[UpdateRequest]) -> None:
        for provider, n in Counter(
            r.delivery.provider for r in requests if r.delivery is not None
        ).items():
            self.telemetry.webhooks_deduplicated.labels(provider=provider).inc(n)


async def _record_push(
    conn: AsyncConnection, push: Sequence[UpdateRequest], now: datetime
) -> list[Recorded]:
    push_id = uuidlib.uuid4().hex
    return [await _record_tag(conn, request, push_id, now) for request in push]


async def _record_tag(
    conn: AsyncConnection, request: UpdateRequest, push_id: str, now: datetime
) -> Recorded:
    delivery, image = request.delivery, request.image
    assert delivery is not None
    key = delivery.dedupe_key(image)
    new_id = await insert_new(
        conn,
        deliveries,
        {
            "provider": delivery.provider,
            "dedupe_key": key,
            "delivery_id": delivery.delivery_id,
            "image_name": image.familiar,
            "tag": image.tag,
            "digest": image.digest,
            "outcome": PENDING,
            "push_id": push_id,
            "payload": request.payload,
            "received_at": now,
            "last_received_at": now,
        },
        key=["dedupe_key"],
    )
    if new_id is not None:
        return Recorded(request, pending=new_id)
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.dedupe_key == key)
        .values(deliveries=deliveries.c.deliveries + 1, last_received_at=now)
    )
    return Recorded(
        request,
        outcome=UpdateOutcome("duplicate", f"{image} was already received", image=str(image)),
    )


def _reference(row: Any) -> str:
    return f"{row.image_name}:{row.tag}" + (f"@{row.digest}" if row.digest else "")


def _request(row: Any) -> UpdateRequest:
    """The push a recorded delivery announced, as the manager plans it."""
    return UpdateRequest(
        image=parse_image(_reference(row)),
        triggered_by=POLL if row.provider == POLL else f"webhook:{row.provider}",
        actor=registry_actor(row.provider),
        delivery=Delivery(row.provider, row.delivery_id),
        payload=row.payload,
    )


async def _recorded_outcomes(db: Database, ids: Sequence[int]) -> dict[int, UpdateOutcome]:
    """What became of deliveries planned elsewhere, as their records and rollouts say."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.outcome,
                deliveries.c.reason,
                deliveries.c.rollout_id,
                deliveries.c.image_name,
                deliveries.c.tag,
                deliveries.c.digest,
                image_rollouts.c.status,
                image_rollouts.c.total_devices,
                image_rollouts.c.new_image,
            )
            .outerjoin(image_rollouts, image_rollouts.c.rollout_id == deliveries.c.rollout_id)
            .where(deliveries.c.id.in_(list(ids)), deliveries.c.outcome != PENDING)
        )
        found = {}
        for row in rows:
            created = row.outcome == "rollout_created"
            found[row.id] = UpdateOutcome(
                row.outcome,
                row.reason or "",
                rollout_id=row.rollout_id,
                status=row.status,
                affected_devices=row.total_devices if created else 0,
                image=row.new_image if created else str(parse_image(_reference(row))),
            )
        return found
