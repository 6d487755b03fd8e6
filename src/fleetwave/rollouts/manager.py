"""The image update manager: from a pushed image to a planned rollout, in one transaction.

A push (from a webhook or an operator) is matched to a policy, checked against its tag rule,
de-duplicated against unfinished rollouts, refused if older than the version one of them rolls
out (:mod:`fleetwave.domain.version_order`; unless forced), and turned into a rollout: the
devices whose target runs the repository are filtered (none is moved back to an older
version unless forced), planned into batches with their own old images, written with
set-based SQL, and — for the auto and staged strategies — the first batch gets its new target
state at once. Pushes of one image are planned one after the other (:func:`lock_image`), and
the version order is judged inside that section, so concurrent pushes end on the newest; a
webhook's recorded deliveries are planned through :mod:`fleetwave.rollouts.deliveries`.

The pure work over a whole fleet (grouping the candidates, the plan, the device rows) runs in
a worker thread: for 100,000 devices it takes seconds, during which the event loop goes on
answering (a webhook's bounded wait, polls).
"""

from __future__ import annotations

import asyncio
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.devices.targets import online_clause
from fleetwave.domain.batches import batch_fractions
from fleetwave.domain.health import default_checks
from fleetwave.domain.images import ImageRef
from fleetwave.domain.policy_choice import choose_policy
from fleetwave.domain.rings import Ring, first_ring
from fleetwave.domain.rollout_figures import judged_after
from fleetwave.domain.rollout_plan import Candidate, RolloutPlan, ServiceImage, plan_rollout
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.tags import TagRule, pushed_tag_refusal
from fleetwave.domain.version_order import UnfinishedRollout, supersede_refusal
from fleetwave.domain.vocabulary import ACTIVE_ROLLOUT_STATUSES
from fleetwave.policies.service import enabled_policy_candidates, load_policy
from fleetwave.rings.service import load_rings
from fleetwave.rollouts.batches import batch_started
from fleetwave.rollouts.device_cap import rollout_cap, room
from fleetwave.rollouts.events import Event, append
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.store.queries import insert_rows
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import device_target_images, devices, image_rollouts


@dataclass(frozen=True)
class DeviceFilters:
    fleet_id: str | None = None
    device_tags: dict[str, str] = field(default_factory=dict)
    device_uuids: list[str] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "fleet_id": self.fleet_id,
            "device_tags": self.device_tags or None,
            "device_uuids": self.device_uuids,
        }


@dataclass(frozen=True)
class Delivery:
    """Where a push came from, and what makes a second announcement of it a duplicate."""

    provider: str
    delivery_id: str | None
    pushed_at: str | None = None

    def dedupe_key(self, image: ImageRef) -> str:
        # Without a digest (Docker Hub), the push time tells a re-push from a redelivery.
        version = image.digest or self.pushed_at or ""
        return f"{image.repository}:{image.tag}@{version}"


@dataclass(frozen=True)
class UpdateRequest:
    image: ImageRef
    triggered_by: str
    actor: str  # who asked: a user, admin-token, or registry:<provider> (domain.roles)
    delivery: Delivery | None = None
    payload: dict[str, Any] | None = None
    strategy: str | None = None
    filters: DeviceFilters | None = None
    force: bool = False  # an operator's deliberate rollback: older versions are taken too


@dataclass(frozen=True)
class PushPlan:
    """A push decided but not written: what :meth:`ImageUpdateManager.decide` returns."""

    policy: dict[str, Any] | None
    strategy: str
    plan: RolloutPlan
    pinned: ImageRef
    superseded: list[str]
    filters_applied: dict[str, Any]
    settings: RolloutSettings
    candidates: list[Candidate]
    ring_names: list[str] | None


@dataclass(frozen=True)
class UpdateOutcome:
    outcome: str  # rollout_created | ignored | duplicate
    message: str
    rollout_id: str | None = None
    status: str | None = None
    affected_devices: int = 0
    image: str | None = None
    downgrade: bool = False  # ignored because it would move back to an older version
    excluded: dict[str, Any] | None = None  # why no device takes it (for the preview)

    def as_json(self) -> dict[str, Any]:
        return {
            "rollout_id": self.rollout_id,
            "status": self.status,
            "affected_devices": self.affected_devices,
            "outcome": self.outcome,
            "message": self.message,
            "image": self.image,
        }


class ImageUpdateManager:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db, self.clock, self.settings = db, clock, settings

    async def handle(self, request: UpdateRequest) -> UpdateOutcome:
        """An operator's push (the manual trigger): one transaction, answered when planned."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await lock_image(conn, request.image)
            outcome, events = await self.plan(conn, request, now)
            await append(conn, events, now)  # last, so the event-log lock is brief
            return outcome

    async def preview(self, request: UpdateRequest) -> tuple[UpdateOutcome | PushPlan, datetime]:
        """What :meth:`handle` would do now, in a read-only transaction: nothing is written."""
        now = self.clock.now()
        async with self.db.read() as conn:
            return await self.decide(conn, request, now), now

    async def plan(
        self, conn: AsyncConnection, request: UpdateRequest, now: datetime
    ) -> tuple[UpdateOutcome, list[Event]]:
        """Plan and start one push in the caller's transaction, which holds the image's lock
        (:func:`lock_image`); returns the outcome and the events for the caller to append."""
        decided = await self.decide(conn, request, now)
        if isinstance(decided, UpdateOutcome):
            return decided, []
        return await self._write(conn, request, decided, now)

    async def decide(
        self, conn: AsyncConnection, request: UpdateRequest, now: datetime
    ) -> UpdateOutcome | PushPlan:
        """What the push would do, reading only: an outcome when nothing would be rolled out
        (ignored, duplicate), else the plan. The preview shows it; :meth:`plan` writes it."""
        image = request.image
        choice = choose_policy(await enabled_policy_candidates(conn), image)
        policy = await load_policy(conn, choice.policy_id) if choice.policy_id else None
        if policy is None and not request.triggered_by.startswith("manual"):
            return _ignored(image, f"no enabled policy matches {image.familiar}:{image.tag}")
        rule = _tag_rule(policy)
        refusal = pushed_tag_refusal(rule, image.tag or "")
        if refusal:
            return _ignored(image, refusal)
        filters = request.filters or _policy_filters(policy)
        strategy = request.strategy or (
            policy["update_strategy"] if policy else self.settings.default_strategy
        )
        unfinished = await _unfinished_rollouts(conn, image)
        same = [r for r in unfinished if _same_version(r, image)]
        if same:
            return UpdateOutcome(
                "duplicate",
                f"{image.familiar}:{image.tag} is already being rolled out by {same[0].rollout_id}",
                rollout_id=same[0].rollout_id,
                status=same[0].status,
                image=str(image),
            )
        older = supersede_refusal(
            image.tag or "",
            [UnfinishedRollout(r.rollout_id, r.new_tag, r.status) for r in unfinished],
            force=request.force,
        )
        if older:
            return _ignored(image, f"{image.familiar}:{older}", downgrade=True)
        superseded = [r.rollout_id for r in unfinished]
        ring_names = list(policy["rings"]) if policy and policy.get("rings") else None
        rings = await load_rings(conn, ring_names) if ring_names else None
        candidates = await _candidates(conn, image, filters, now, self.settings, rings)
        plan = await asyncio.to_thread(
            plan_rollout,
            candidates,
            new_tag=image.tag or "",
            new_digest=image.digest,
            rule=rule,
            fractions=self._fractions(strategy, policy),
            earlier_old_images=await _earlier_old_images(conn, superseded),
            force=request.force,
            rings=ring_names,
        )
        if not plan.devices:
            newer = "running_newer_version" in plan.excluded
            nobody = _ignored(image, _nobody_reason(image, plan), downgrade=newer)
            return replace(nobody, excluded=plan.excluded)
        pinned = image if policy is None or policy["pin_digest"] else image.with_version(image.tag)
        filters_applied = {
            "policy": choice.explanation,
            "filters": filters.as_json(),
            "tag_rule": rule.as_json(),
            "excluded": plan.excluded,
            "superseded": superseded,
            "forced": request.force,
        }
        if plan.batch_rings is not None:
            filters_applied["rings"] = plan.batch_rings
        return PushPlan(
            policy=policy,
            strategy=strategy,
            plan=plan,
            pinned=pinned,
            superseded=superseded,
            filters_applied=filters_applied,
            settings=self._rollout_settings(policy, plan.batch_sizes[0]),
            candidates=candidates,
            ring_names=ring_names,
        )

    async def _write(
        self, conn: AsyncConnection, request: UpdateRequest, push: PushPlan, now: datetime
    ) -> tuple[UpdateOutcome, list[Event]]:
        """Write a decided push: supersede, insert the rollout and its devices, begin it."""
        rollout_id = str(uuidlib.uuid4())
        events = await _supersede(conn, push.superseded, rollout_id, now)
        room = await self._room(conn, rollout_id, push.strategy, push.settings)
        first = _first_started(push.plan, room)
        rollout = await _insert_rollout(
            conn,
            request,
            push.policy,
            push.strategy,
            push.plan,
            rollout_id,
            push.pinned,
            push.filters_applied,
            push.settings,
            first,
            now,
        )
        outcome, begun = await self._begin(conn, rollout, request, first, now)
        return outcome, events + begun

    async def _room(
        self, conn: AsyncConnection, rollout_id: str, strategy: str, settings: RolloutSettings
    ) -> int | None:
        """How many of the first batch may start at once (None: all); only for strategies
        that start at once, and only under a cap (domain.device_cap)."""
        if strategy in WAITING:
            return None
        cap = rollout_cap(self.settings.max_updating_devices, settings)
        return await room(conn, rollout_id, cap)

    def _rollout_settings(self, policy: dict[str, Any] | None, first_batch: int) -> RolloutSettings:
        """The policy's way of running a rollout, frozen into the rollout; defaults without one.
        The failure gate's minimum is resolved here (domain.rollout_figures.judged_after)."""
        defaults = self.settings
        if policy is None:
            return RolloutSettings(
                batch_delay=timedelta(minutes=defaults.batch_delay_minutes),
                max_failure_rate=defaults.max_failure_rate,
                min_finished=judged_after(None, first_batch),
                health_check_timeout=timedelta(seconds=defaults.health_check_timeout),
                auto_rollback=defaults.auto_rollback,
                health_checks=tuple(c.as_json() for c in default_checks(60)),
            )
        return RolloutSettings(
            batch_delay=timedelta(minutes=policy["batch_delay_minutes"]),
            max_failure_rate=policy["max_failure_rate"],
            min_finished=judged_after(policy["failure_rate_min_devices"], first_batch),
            update_timeout=timedelta(minutes=policy["update_timeout_minutes"]),
            max_retries=policy["max_retries"],
            offline_grace=timedelta(minutes=policy["offline_grace_minutes"]),
            soak=timedelta(seconds=policy["soak_seconds"]),
            health_check_enabled=policy["health_check_enabled"],
            health_check_timeout=timedelta(seconds=policy["health_check_timeout_seconds"]),
            auto_rollback=policy["auto_rollback"],
            approve_each_batch=policy["approve_each_batch"],
            window_start=policy["maintenance_window_start"],
            window_end=policy["maintenance_window_end"],
            window_timezone=policy["maintenance_window_timezone"],
            health_checks=tuple(policy["effective_health_checks"]),
            max_concurrent_devices=policy.get("max_concurrent_devices"),
            continuous=bool(policy.get("continuous", True)),
        )

    def _fractions(self, strategy: str, policy: dict[str, Any] | None) -> list[float]:
        return batch_fractions(
            strategy,
            policy["staged_batches"] if policy else len(self.settings.staged_batches),
            policy["batch_percentages"] if policy else None,
            self.settings.staged_batches,
        )

    async def _begin(
        self,
        conn: AsyncConnection,
        rollout: Any,
        request: UpdateRequest,
        first: list[str],
        now: datetime,
    ) -> tuple[UpdateOutcome, list[Event]]:
        """Start the rollout as its strategy says (``first``: the devices of its first batch
        that start now); returns the events to append."""
        events = [
            Event(
                rollout.rollout_id,
                "rollout_created",
                f"{rollout.strategy} rollout of {rollout.new_image} to {rollout.total_devices} "
                f"devices in {len(rollout.batch_sizes)} batches",
                {
                    "batch_sizes": rollout.batch_sizes,
                    "triggered_by": rollout.triggered_by,
                    "by": request.actor,
                },
            )
        ]
        if request.delivery is not None:
            events.insert(
                0,
                Event(
                    rollout.rollout_id,
                    "webhook_received",
                    f"{request.delivery.provider} announced {request.image}",
                    {
                        "provider": request.delivery.provider,
                        "delivery_id": request.delivery.delivery_id,
                    },
                ),
            )
        status = WAITING.get(rollout.strategy)
        if status is not None:
            await conn.execute(
                update(image_rollouts)
                .where(image_rollouts.c.rollout_id == rollout.rollout_id)
                .values(status=status, updated_at=now)
            )
            kind = "awaiting_approval" if status == "awaiting_approval" else "rollout_scheduled"
            events.append(Event(rollout.rollout_id, kind, f"rollout is {status.replace('_', ' ')}"))
        else:
            events.append(Event(rollout.rollout_id, "rollout_started", "first batch starting"))
            events += await batch_started(conn, rollout, 1, first, now)  # inserted scheduled
            status = "in_progress"
        outcome = UpdateOutcome(
            "rollout_created",
            f"rollout {rollout.rollout_id} created",
            rollout_id=rollout.rollout_id,
            status=status,
            affected_devices=rollout.total_devices,
            image=rollout.new_image,
        )
        return outcome, events


# Strategies whose rollout waits (and in which status); the others start at once.
WAITING = {"manual": "awaiting_approval", "scheduled": "scheduled"}


def _ignored(image: ImageRef, reason: str, *, downgrade: bool = False) -> UpdateOutcome:
    return UpdateOutcome("ignored", reason, image=str(image), downgrade=downgrade)


def _nobody_reason(image: ImageRef, plan: RolloutPlan) -> str:
    version = f"{image.familiar}:{image.tag}"
    for kind in ("running_newer_version", "refused_by_tag_policy"):
        refused = plan.excluded.get(kind)
        if refused:
            count = sum(r["count"] for r in refused)
            return f"no device takes {version}: {refused[0]['reason']} ({count} devices)"
    current = plan.excluded.get("already_on_new_version")
    if current:
        return f"no device needs {version}: {current['count']} devices already target it"
    return f"no device needs {version}: none runs {image.familiar} (after the filters)"


def tag_rule_of(rollout: Any) -> TagRule:
    """The tag rule a rollout was planned with (recorded in its ``filters_applied``)."""
    rule = (rollout.filters_applied or {}).get("tag_rule") or {}
    return TagRule(
        semver=rule.get("semver"),
        allow_prerelease=bool(rule.get("allow_prerelease")),
        include=tuple(rule.get("include") or ()),
        exclude=tuple(rule.get("exclude") or ()),
    )


def filters_of(rollout: Any) -> DeviceFilters:
    """The device filters a rollout was planned with (recorded in its ``filters_applied``)."""
    given = (rollout.filters_applied or {}).get("filters") or {}
    return DeviceFilters(
        fleet_id=given.get("fleet_id"),
        device_tags=given.get("device_tags") or {},
        device_uuids=given.get("device_uuids"),
    )


def _tag_rule(policy: dict[str, Any] | None) -> TagRule:
    if policy is None:
        return TagRule()
    return TagRule(
        semver=policy["semver_policy"],
        allow_prerelease=policy["allow_prerelease"],
        include=tuple(policy["include_tags"] or ()),
        exclude=tuple(policy["exclude_tags"] or ()),
    )


def _policy_filters(policy: dict[str, Any] | None) -> DeviceFilters:
    if policy is None:
        return DeviceFilters()
    return DeviceFilters(
        fleet_id=policy["fleet_id"],
        device_tags=policy["device_tags"] or {},
        device_uuids=policy["device_uuids"],
    )


async def lock_image(conn: AsyncConnection, image: ImageRef, *, wait: bool = True) -> bool:
    """Pushes of one image are planned one after the other, for the whole transaction
    (SQLite: one writer at a time anyway). Without ``wait``, False if another transaction
    holds the image (on PostgreSQL: several workers skip what one of them plans)."""
    if conn.dialect.name != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    taken = await conn.execute(
        text(f"SELECT {function}(hashtext(:repository))"), {"repository": image.repository}
    )
    return wait or bool(taken.scalar())


async def _candidates(
    conn: AsyncConnection,
    image: ImageRef,
    filters: DeviceFilters,
    now: datetime,
    settings: Settings,
    rings: Sequence[Ring] | None = None,
) -> list[Candidate]:
    """Devices whose target runs the repository, after the filters — one query; with
    ``rings``, each with the first ring selecting it (by its fleet and tags, read alongside)."""
    result = await conn.stream(
        candidate_rows(image.repository, filters, now, settings, with_selectors=rings is not None)
        .order_by(
            device_target_images.c.device_uuid,
            device_target_images.c.app_id,
            device_target_images.c.service_name,
        )
        .execution_options(yield_per=CHUNK_ROWS)
    )
    rows = [row async for chunk in result.partitions() for row in chunk]  # the loop runs between
    return await asyncio.to_thread(grouped_by_device, rows, rings)


CHUNK_ROWS = 10_000


def candidate_rows(
    repository: str,
    filters: DeviceFilters,
    now: datetime,
    settings: Settings,
    *,
    with_selectors: bool = False,
) -> Select[Any]:
    """The services of devices whose target runs ``repository``, after the filters; with
    ``with_selectors``, each device's fleet and tags too (what rings select by)."""
    conditions: list[ColumnElement[bool]] = [device_target_images.c.repository == repository]
    if filters.fleet_id is not None:
        conditions.append(devices.c.fleet_id == filters.fleet_id)
    for key, value in filters.device_tags.items():
        conditions.append(devices.c.tags[key].as_string() == value)
    if filters.device_uuids is not None:
        conditions.append(devices.c.uuid.in_(filters.device_uuids))
    return (
        select(
            device_target_images.c.device_uuid,
            device_target_images.c.app_id,
            device_target_images.c.service_name,
            device_target_images.c.image,
            device_target_images.c.tag,
            device_target_images.c.digest,
            online_clause(now, settings.device_offline_after).label("online"),
            *((devices.c.fleet_id, devices.c.tags) if with_selectors else ()),
        )
        .join(devices, devices.c.uuid == device_target_images.c.device_uuid)
        .where(*conditions)
    )


def grouped_by_device(rows: Sequence[Any], rings: Sequence[Ring] | None = None) -> list[Candidate]:
    """One candidate per device from its services' rows (ordered by device)."""
    grouped: dict[str, tuple[bool, list[ServiceImage], int | None]] = {}
    services: dict[tuple[Any, ...], ServiceImage] = {}  # a fleet runs few distinct ones
    for row in rows:
        uuid, app_id, service_name, image_text, tag, digest, online = row[:7]
        service = services.get((app_id, service_name, image_text, tag, digest))
        if service is None:
            service = ServiceImage(f"{app_id}/{service_name}", image_text, tag, digest)
            services[(app_id, service_name, image_text, tag, digest)] = service
        if uuid not in grouped:
            ring = first_ring(rings, uuid, row[7], row[8]) if rings is not None else None
            grouped[uuid] = (bool(online), [], ring)
        grouped[uuid][1].append(service)
    return [
        Candidate(uuid, on, tuple(services), ring) for uuid, (on, services, ring) in grouped.items()
    ]


async def _unfinished_rollouts(conn: AsyncConnection, image: ImageRef) -> list[Any]:
    rows = await conn.execute(
        select(
            image_rollouts.c.rollout_id,
            image_rollouts.c.status,
            image_rollouts.c.new_tag,
            image_rollouts.c.digest,
        ).where(
            image_rollouts.c.image_name == image.familiar,
            image_rollouts.c.status.in_(ACTIVE_ROLLOUT_STATUSES),
        )
    )
    return list(rows)


def _same_version(rollout: Any, image: ImageRef) -> bool:
    """A push of the version a rollout is already rolling out (a digest-less re-announcement
    counts as the same unless the rollout pinned a different digest)."""
    if rollout.new_tag != image.tag:
        return False
    return image.digest is None or rollout.digest in (None, image.digest)


async def _earlier_old_images(
    conn: AsyncConnection, rollout_ids: list[str]
) -> dict[str, dict[str, str]]:
    """Old images of devices caught half-way by rollouts about to be superseded."""
    if not rollout_ids:
        return {}
    rows = await conn.execute(
        select(device_rows.c.device_uuid, device_rows.c.old_images).where(
            device_rows.c.rollout_id.in_(rollout_ids),
            device_rows.c.status.not_in(("pending", "completed", "skipped")),
        )
    )
    return {row.device_uuid: row.old_images for row in rows if row.old_images}


async def _supersede(
    conn: AsyncConnection, rollout_ids: list[str], successor: str, now: datetime
) -> list[Event]:
    if not rollout_ids:
        return []
    reason = f"superseded by {successor}"
    # rollouts first, then their devices: the order every writer locks them in
    await conn.execute(
        update(image_rollouts)
        .where(image_rollouts.c.rollout_id.in_(rollout_ids))
        .values(
            status="cancelled",
            superseded_by=successor,
            error_message=reason,
            completed_at=now,
            updated_at=now,
        )
    )
    await conn.execute(
        update(device_rows)
        .where(
            device_rows.c.rollout_id.in_(rollout_ids),
            device_rows.c.status.in_(
                ("pending", "scheduled", "pulling", "updating", "health_checking")
            ),
        )
        .values(status="skipped", error_message=reason, updated_at=now)
    )
    superseded = [
        Event(rid, "rollout_superseded", reason, {"superseded_by": successor})
        for rid in rollout_ids
    ]
    cancelled = [
        Event(rid, "rollout_cancelled", reason, {"reason": "superseded"}) for rid in rollout_ids
    ]
    return superseded + cancelled


async def _insert_rollout(
    conn: AsyncConnection,
    request: UpdateRequest,
    policy: dict[str, Any] | None,
    strategy: str,
    plan: RolloutPlan,
    rollout_id: str,
    image: ImageRef,
    filters_applied: dict[str, Any],
    settings: RolloutSettings,
    first: list[str],
    now: datetime,
) -> Any:
    new_image = image.reference()
    await conn.execute(
        insert(image_rollouts).values(
            rollout_id=rollout_id,
            image_name=image.familiar,
            old_tag=plan.old_tag,
            new_tag=image.tag,
            registry=image.registry,
            digest=request.image.digest,
            new_image=new_image,
            policy_id=policy["id"] if policy else None,
            strategy=strategy,
            total_devices=plan.total,
            batch_sizes=plan.batch_sizes,
            status="pending",
            triggered_by=request.triggered_by,
            webhook_payload=request.payload,
            filters_applied=filters_applied,
            settings=settings.as_json(),
            created_at=now,
            updated_at=now,
        )
    )
    constants = {
        "rollout_id": rollout_id,
        "new_image_tag": image.tag,
        "new_image": new_image,
        "max_retries": settings.max_retries,
        "created_at": now,
        "updated_at": now,
    }
    # a rollout that starts at once writes its first batch scheduled (not pending, then updated)
    scheduled_at = None if strategy in WAITING else now
    rows = await asyncio.to_thread(_device_rows, plan, constants, scheduled_at, set(first))
    await insert_rows(conn, device_rows, rows)
    return (
        await conn.execute(select(image_rollouts).where(image_rollouts.c.rollout_id == rollout_id))
    ).one()


def _first_started(plan: RolloutPlan, limit: int | None) -> list[str]:
    """The devices of the first batch that start at once: all, or the first ``limit`` by uuid
    (the batch's order) when a cap leaves less room."""
    first = sorted(d.uuid for d in plan.devices if d.batch_number == 1)
    return first if limit is None else first[:limit]


def _device_rows(
    plan: RolloutPlan,
    constants: dict[str, Any],
    first_scheduled_at: datetime | None,
    started: set[str],
) -> list[dict[str, Any]]:
    """The rollout's device rows; those ``started`` are ``scheduled`` if
    ``first_scheduled_at``, the others ``pending``."""
    scheduled = {"status": "scheduled", "scheduled_at": first_scheduled_at}
    pending = {"status": "pending", "scheduled_at": None}
    return [
        {
            "device_uuid": d.uuid,
            "batch_number": d.batch_number,
            "old_image_tag": d.old_tag,
            "old_images": d.old_images,
        }
        | (scheduled if first_scheduled_at and d.uuid in started else pending)
        | constants
        for d in plan.devices
    ]
