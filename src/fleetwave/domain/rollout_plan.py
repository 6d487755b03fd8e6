"""Planning a rollout: which devices take the pushed version, in which batch, from what.

Pure: the candidates (devices whose target runs the repository) come in, the plan goes out.
Each device keeps its **own** old images, so a rollback puts it back where it was. A device
running a newer version than the pushed one is never moved back unless forced
(:mod:`fleetwave.domain.version_order`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fleetwave.domain.batches import batch_sizes
from fleetwave.domain.tags import TagRule, parse_version, update_refusal
from fleetwave.domain.version_order import downgrade_refusal

EXCLUDED_SAMPLE = 20


@dataclass(frozen=True)
class ServiceImage:
    key: str  # "<appId>/<serviceName>"
    image: str
    tag: str | None
    digest: str | None


@dataclass(frozen=True)
class Candidate:
    uuid: str
    online: bool
    services: tuple[ServiceImage, ...]
    ring: int | None = None  # the first ring selecting it, when the policy has rings


@dataclass(frozen=True)
class PlannedDevice:
    uuid: str
    batch_number: int
    old_tag: str | None
    old_images: dict[str, str]


@dataclass(frozen=True)
class RolloutPlan:
    devices: list[PlannedDevice]
    batch_sizes: list[int]
    old_tag: str | None
    excluded: dict[str, Any] = field(default_factory=dict)
    batch_rings: list[str] | None = None  # the ring of each batch, when rolled out by ring

    @property
    def total(self) -> int:
        return len(self.devices)


def plan_rollout(
    candidates: Sequence[Candidate],
    *,
    new_tag: str,
    new_digest: str | None,
    rule: TagRule,
    fractions: Sequence[float],
    earlier_old_images: Mapping[str, dict[str, str]] | None = None,
    force: bool = False,
    rings: Sequence[str] | None = None,
) -> RolloutPlan:
    """Pick the devices that take ``new_tag`` and cut them into batches.

    ``earlier_old_images`` are the old images recorded by an unfinished rollout this one
    supersedes: a device caught half-way keeps the images it ran before that rollout.
    Devices running the same services share one ``old_images`` mapping. ``force`` (an
    operator's deliberate rollback) takes every device not already there, whatever versions
    it runs. With ``rings`` (names, in order; each candidate's ``ring`` indexes them), the
    batches are the rings that have devices taking the push, in order, and ``fractions`` is
    not used; a candidate in no ring is excluded ("in no ring").
    """
    taking: list[Candidate] = []
    no_ring: list[str] = []
    refused: dict[str, list[str]] = {}
    newer: dict[str, list[str]] = {}
    current: list[str] = []
    # a fleet runs few distinct tags: each is judged once, not once per device
    downgrade = cache(lambda old_tag: None if force else downgrade_refusal(old_tag, new_tag))
    refusal = cache(lambda old_tag: None if force else update_refusal(rule, old_tag, new_tag))
    for candidate in candidates:
        if rings is not None and candidate.ring is None:
            no_ring.append(candidate.uuid)
            continue
        if all(_already_there(s, new_tag, new_digest) for s in candidate.services):
            current.append(candidate.uuid)
            continue
        # A service already on the pushed tag (another digest) is re-pinned, not upgraded.
        behind = [s for s in candidate.services if s.tag != new_tag]
        downgrades = {downgrade(s.tag) for s in behind} - {None}
        if downgrades:
            newer.setdefault(sorted(r for r in downgrades if r)[0], []).append(candidate.uuid)
            continue
        reasons = {refusal(s.tag) for s in behind} - {None}
        if reasons:
            refused.setdefault(sorted(r for r in reasons if r)[0], []).append(candidate.uuid)
            continue
        taking.append(candidate)
    batch_rings = None
    if rings is None:
        taking.sort(key=lambda c: (not c.online, c.uuid))
        sizes = batch_sizes(len(taking), fractions)
    else:
        taking.sort(key=lambda c: (c.ring or 0, not c.online, c.uuid))
        per_ring = Counter(c.ring or 0 for c in taking)
        used = sorted(per_ring)
        sizes = [per_ring[index] for index in used]
        batch_rings = [rings[index] for index in used]
    numbers = [n for n, size in enumerate(sizes, start=1) for _ in range(size)]
    earlier = earlier_old_images or {}
    old_images = cache(lambda services: {s.key: s.image for s in services})
    devices = [
        PlannedDevice(
            uuid=c.uuid,
            batch_number=number,
            old_tag=c.services[0].tag,
            old_images=earlier.get(c.uuid) or old_images(c.services),
        )
        for c, number in zip(taking, numbers, strict=True)
    ]
    return RolloutPlan(
        devices=devices,
        batch_sizes=sizes,
        old_tag=_most_common_tag([d.old_tag for d in devices]),
        excluded=_excluded_summary(current, refused, newer, no_ring),
        batch_rings=batch_rings,
    )


def _already_there(service: ServiceImage, tag: str, digest: str | None) -> bool:
    """A pushed digest is there when the target pins it, whatever tag the target names (the
    same image pushed under two tags); a push without one, when the target names its tag."""
    if digest is not None:
        return service.digest == digest
    return service.tag == tag


def _most_common_tag(tags: list[str | None]) -> str | None:
    counts = Counter(t for t in tags if t)
    if not counts:
        return None
    best = max(counts.values())
    tied = [t for t, n in counts.items() if n == best]
    return max(tied, key=lambda t: (parse_version(t) is not None, parse_version(t), t))


def _excluded_summary(
    current: list[str],
    refused: dict[str, list[str]],
    newer: dict[str, list[str]],
    no_ring: list[str] | None = None,
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    if no_ring:
        summary["in_no_ring"] = {"count": len(no_ring), "devices": no_ring[:EXCLUDED_SAMPLE]}
    if current:
        summary["already_on_new_version"] = {
            "count": len(current),
            "devices": current[:EXCLUDED_SAMPLE],
        }
    if refused:
        summary["refused_by_tag_policy"] = _grouped(refused)
    if newer:
        summary["running_newer_version"] = _grouped(newer)
    return summary


def _grouped(by_reason: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [
        {"reason": reason, "count": len(uuids), "devices": uuids[:EXCLUDED_SAMPLE]}
        for reason, uuids in sorted(by_reason.items())
    ]
