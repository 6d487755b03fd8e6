"""The preview of a push: what the trigger would do, shaped for an operator, writing nothing.

It is made from the very decision the trigger writes (:meth:`ImageUpdateManager.decide`), so
the preview and the rollout cannot drift: the same policy choice, filters, rings, tag rule
and batch plan. On top come the estimates only a preview needs: each batch's start and end
(:mod:`fleetwave.domain.rollout_eta`), the maintenance window's next opening, the approvals
and the devices' current images.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from fleetwave.domain.device_cap import DeviceCap
from fleetwave.domain.rollout_eta import batch_etas, next_window
from fleetwave.rollouts.manager import PushPlan, UpdateOutcome

SAMPLE = 5  # uuids shown per batch
IMAGES_SHOWN = 20  # distinct current images listed


def preview_of(
    decided: UpdateOutcome | PushPlan, image: str, now: datetime, fleet_cap: int | None = None
) -> dict[str, Any]:
    """``fleet_cap``: FLEETWAVE_MAX_UPDATING_DEVICES, which with the policy's own cap says how
    many of a batch may update at once."""
    if isinstance(decided, UpdateOutcome):
        return {
            "outcome": decided.outcome,
            "message": decided.message,
            "image": image,
            "rollout_id": decided.rollout_id,
            "total_devices": 0,
            "batches": [],
            "excluded": decided.excluded or {},
            "warnings": [],
        }
    plan, settings = decided.plan, decided.settings
    etas = batch_etas(len(plan.batch_sizes), decided.strategy, settings, now)
    online = {c.uuid for c in decided.candidates if c.online}
    batches: list[dict[str, Any]] = [
        {
            "batch": eta.batch,
            "ring": plan.batch_rings[eta.batch - 1] if plan.batch_rings else None,
            "devices": 0,
            "offline": 0,
            "sample": [],
        }
        | eta.as_json()
        for eta in etas
    ]
    for device in plan.devices:
        batch = batches[device.batch_number - 1]
        batch["devices"] += 1
        batch["offline"] += device.uuid not in online
        if len(batch["sample"]) < SAMPLE:
            batch["sample"].append(device.uuid)
    approvals = sum("approval" in eta.waits_for for eta in etas)
    cap = DeviceCap(fleet=fleet_cap, rollout=settings.max_concurrent_devices)
    return {
        "outcome": "would_create",
        "message": f"would roll {decided.pinned.reference()} out to {plan.total} devices "
        f"in {len(plan.batch_sizes)} batches",
        "image": image,
        "rollout_id": None,
        "policy": decided.filters_applied["policy"],
        "strategy": decided.strategy,
        "filters": decided.filters_applied["filters"],
        "tag_rule": decided.filters_applied["tag_rule"],
        "rings": decided.ring_names,
        "total_devices": plan.total,
        "batches": batches,
        "excluded": plan.excluded,
        "current_images": _current_images(decided),
        "superseded": decided.superseded,
        "approvals_needed": approvals,
        "maintenance_window": next_window(settings, now),
        "update_timeout_minutes": settings.update_timeout.total_seconds() / 60,
        "soak_seconds": settings.soak.total_seconds(),
        "batch_delay_minutes": settings.batch_delay.total_seconds() / 60,
        "finishes_by": etas[-1].ends_by.isoformat() if etas else None,
        "health_checks": list(settings.health_checks),
        "device_cap": {"fleet": cap.fleet, "policy": cap.rollout} if cap.applies else None,
        "warnings": _ring_warnings(decided) + _cap_warnings(batches, cap),
    }


def _cap_warnings(batches: list[dict[str, Any]], cap: DeviceCap) -> list[str]:
    """Batches larger than the cap start in part (and their end estimates are too early)."""
    room, note = cap.room(0, 0), cap.note()
    if room is None:
        return []
    return [
        f"batch {b['batch']}: {b['devices']} devices, at most {room} updating at once ({note}); "
        "it starts in part and is topped up as devices finish"
        for b in batches
        if b["devices"] > room
    ]


def _current_images(decided: PushPlan) -> list[dict[str, Any]]:
    """The images the covered devices run now (each device counted by its first service of
    the repository), most common first."""
    counts = Counter(c.services[0].image for c in decided.candidates if c.services)
    return [{"image": i, "devices": n} for i, n in counts.most_common(IMAGES_SHOWN)]


def _ring_warnings(decided: PushPlan) -> list[str]:
    if not decided.ring_names:
        return []
    selected = {c.ring for c in decided.candidates}
    return [
        f"ring {name!r} selects none of the devices the policy covers"
        for index, name in enumerate(decided.ring_names)
        if index not in selected
    ]
