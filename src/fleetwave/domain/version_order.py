"""An older push never undoes a newer one: the version order between a push and what it meets.

Registries deliver webhooks late, twice and in any order (ten pushes at once arrive shuffled),
so the order pushes are *planned* in says nothing about which version is newer. When both tags
are versions (:func:`~fleetwave.domain.tags.parse_version`), the versions decide: a push older
than the version an unfinished rollout of its image rolls out does not supersede it, and a
device running a newer version is not moved back. Tags that are not versions ("latest", a
branch, a date) keep "the latest push wins". ``force`` (an operator's deliberate rollback)
lifts both rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetwave.domain.tags import parse_version


@dataclass(frozen=True)
class UnfinishedRollout:
    """An unfinished rollout of the pushed image, as far as the order of versions cares."""

    rollout_id: str
    tag: str
    status: str


def supersede_refusal(
    pushed_tag: str, unfinished: Sequence[UnfinishedRollout], *, force: bool = False
) -> str | None:
    """Why a push of ``pushed_tag`` must not supersede the image's unfinished rollouts, or None
    if it does: it is older than a version one of them rolls out."""
    pushed = parse_version(pushed_tag)
    if force or pushed is None:
        return None
    newer = [
        (version, rollout)
        for rollout in unfinished
        if (version := parse_version(rollout.tag)) is not None and pushed < version
    ]
    if not newer:
        return None
    _, newest = max(newer, key=lambda pair: pair[0])
    return (
        f"{pushed_tag} is older than {newest.tag}, which is rolling out "
        f"(rollout {newest.rollout_id}, {newest.status.replace('_', ' ')})"
    )


def downgrade_refusal(running_tag: str | None, pushed_tag: str) -> str | None:
    """Why a device running ``running_tag`` is not moved to ``pushed_tag``, or None if it may
    be: the device runs a newer version."""
    running = parse_version(running_tag) if running_tag else None
    pushed = parse_version(pushed_tag)
    if running is None or pushed is None or not pushed < running:
        return None
    return f"runs {running_tag}, which is newer than {pushed_tag}"
