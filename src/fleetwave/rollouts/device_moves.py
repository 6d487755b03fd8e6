"""Moving a rollout's devices from one status to another, counters kept in step.

Every status change of a device row goes through :func:`move`: one set-based UPDATE guarded by
the status it moves from (so a change never applies twice), and the rollout's counters adjusted
by the same transaction. Rollbacks and retries rewrite the devices' target states in bulk.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, Numeric, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.devices.targets import NewTarget, load_targets, replace_targets
from fleetwave.domain.device_progress import COUNTED, counter_changes
from fleetwave.domain.images import parse_image
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.target_state import mark_attempt, restore, retarget
from fleetwave.rollouts.events import Event
from fleetwave.store.queries import off_loop
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import image_rollouts


async def move(
    conn: AsyncConnection,
    rollout_id: str,
    before: str | Sequence[str],
    after: str,
    *where: ColumnElement[bool],
    now: datetime,
    **values: Any,
) -> list[str]:
    """Move the rollout's devices in status ``before`` (and matching ``where``) to ``after``.

    Returns the uuids moved; the rollout's counters follow.
    """
    statuses = [before] if isinstance(before, str) else list(before)
    moved: list[str] = []
    for status in statuses:  # one statement per status, so that each move is counted
        uuids = list(
            (
                await conn.execute(
                    update(device_rows)
                    .where(
                        device_rows.c.rollout_id == rollout_id,
                        device_rows.c.status == status,
                        *where,
                    )
                    .values(status=after, updated_at=now, **values)
                    .returning(device_rows.c.device_uuid)
                )
            ).scalars()
        )
        await count(conn, rollout_id, [(status, after, len(uuids))], now)
        moved += uuids
    return moved


async def count(
    conn: AsyncConnection, rollout_id: str, moves: Sequence[tuple[str, str, int]], now: datetime
) -> None:
    """Adjust the rollout's counters, and its failure rate from them, in one statement."""
    changes = counter_changes(moves)
    if not changes:
        return
    rollouts = image_rollouts.c
    # SET expressions read the row as it was: the new counters are the old ones plus changes
    after = {name: rollouts[name] + changes.get(name, 0) for name in COUNTED}
    failed = after["failed_devices"] + after["rolled_back_devices"]
    finished = after["healthy_devices"] + failed
    await conn.execute(
        update(image_rollouts)
        .where(rollouts.rollout_id == rollout_id)
        .values(
            **{name: after[name] for name in changes},
            failure_rate=func.coalesce(
                func.round(cast(cast(failed, Float) / func.nullif(finished, 0), Numeric), 4), 0
            ),
            updated_at=now,
        )
    )


async def retarget_devices(
    conn: AsyncConnection, rollout: Any, uuids: Sequence[str], now: datetime, attempt: int = 0
) -> None:
    """Give devices the rollout's new image again (``attempt`` > 0 marks a retry)."""
    if not uuids:
        return
    # a retry marks the services it changes: they are the ones with old images
    old_images = await _old_images(conn, rollout.rollout_id, uuids) if attempt else {}
    targets = await load_targets(conn, uuids)
    moved = await off_loop(len(uuids), _retargeted, rollout, uuids, targets, old_images, attempt)
    await replace_targets(conn, moved, now)


def _retargeted(
    rollout: Any,
    uuids: Sequence[str],
    targets: dict[str, NewTarget],
    old_images: dict[str, dict[str, str]],
    attempt: int,
) -> list[NewTarget]:
    """The devices' targets with the rollout's new image (and its checks), in a worker thread
    when they are many."""
    repository = parse_image(rollout.image_name).repository
    digest = rollout.digest if rollout.new_image and "@" in rollout.new_image else None
    checks = device_checks(rollout)
    moved = []
    for uuid in uuids:
        apps, _ = retarget(targets[uuid].apps, repository, rollout.new_tag, digest)
        if attempt:
            apps = mark_attempt(apps, set(old_images[uuid]), attempt)
        extension = rollout_extension(rollout.rollout_id, checks, uuid)
        moved.append(NewTarget(uuid, apps, targets[uuid].config, extension))
    return moved


def device_checks(rollout: Any) -> list[dict[str, Any]]:
    """The rollout's health checks that its devices may run themselves (an agent that does
    not run a kind leaves it: ``domain.check_placement`` says who runs what)."""
    settings = RolloutSettings.from_json(rollout.settings)
    on_device = ("device", "device_or_server")
    return [c for c in settings.health_checks if c.get("run_on", "device") in on_device]


def rollout_extension(rollout_id: str, checks: list[dict[str, Any]], uuid: str) -> dict[str, Any]:
    """What the served state tells the agent about the rollout: the checks it runs on the
    device after the new containers are up, and where it reports their results."""
    if not checks:
        return {}
    return {
        "rollout_id": rollout_id,
        "health_checks": checks,
        "health_report": f"/api/v1/device/{uuid}/health",
    }


async def restore_devices(
    conn: AsyncConnection,
    rollout_id: str,
    uuids: Sequence[str],
    now: datetime,
    *,
    rollback: bool = True,
) -> list[Event]:
    """Put devices back on their own old images (both image fields, version bumped).

    A ``rollback`` (the default) is then followed: running the old images makes the device
    ``rolled_back``, failing on them ``rollback_failed``. Undoing a target a device never
    acted on (a cancel) is not a rollback."""
    if not uuids:
        return []
    old_images = await _old_images(conn, rollout_id, uuids)
    targets = await load_targets(conn, uuids)
    if rollback:
        await conn.execute(
            update(device_rows)
            .where(
                device_rows.c.rollout_id == rollout_id, device_rows.c.device_uuid.in_(list(uuids))
            )
            .values(rollback_requested_at=now, next_attempt_at=None, updated_at=now)
        )
    await replace_targets(
        conn,
        [
            NewTarget(uuid, restore(targets[uuid].apps, old_images[uuid]), targets[uuid].config)
            for uuid in uuids  # no extension: the rollout asks nothing more of them
        ],
        now,
    )
    return [
        Event(
            rollout_id,
            "rollback_triggered",
            "target set back to " + ", ".join(sorted(set(old_images[uuid].values()))),
            {"old_images": old_images[uuid], "rollback": rollback},
            device_uuid=uuid,
        )
        for uuid in uuids
    ]


async def _old_images(
    conn: AsyncConnection, rollout_id: str, uuids: Sequence[str]
) -> dict[str, dict[str, str]]:
    rows = await conn.execute(
        select(device_rows.c.device_uuid, device_rows.c.old_images).where(
            device_rows.c.rollout_id == rollout_id, device_rows.c.device_uuid.in_(list(uuids))
        )
    )
    return {row.device_uuid: row.old_images or {} for row in rows}


async def update_rollout(
    conn: AsyncConnection, rollout_id: str, now: datetime, **values: Any
) -> None:
    await conn.execute(
        update(image_rollouts)
        .where(image_rollouts.c.rollout_id == rollout_id)
        .values(updated_at=now, **values)
    )
