"""Which policy governs a pushed image when several match — deterministic and explained."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleetwave.domain.images import ImagePattern, ImageRef


@dataclass(frozen=True)
class PolicyCandidate:
    id: int
    pattern: ImagePattern
    priority: int


@dataclass(frozen=True)
class PolicyChoice:
    policy_id: int | None
    explanation: dict[str, Any]


def choose_policy(policies: Sequence[PolicyCandidate], image: ImageRef) -> PolicyChoice:
    """Highest priority wins, then the most specific pattern, then the oldest policy."""
    matching = sorted(
        (p for p in policies if p.pattern.matches(image)),
        key=lambda p: (-p.priority, -p.pattern.specificity, p.id),
    )
    considered = [
        {
            "policy_id": p.id,
            "image_pattern": p.pattern.text,
            "priority": p.priority,
            "specificity": p.pattern.specificity,
        }
        for p in matching
    ]
    if not matching:
        return PolicyChoice(None, {"image": str(image), "matching_policies": []})
    chosen = matching[0]
    if len(matching) == 1:
        reason = "the only enabled policy whose pattern matches"
    elif matching[1].priority < chosen.priority:
        reason = f"highest priority ({chosen.priority})"
    elif matching[1].pattern.specificity < chosen.pattern.specificity:
        reason = f"most specific pattern among priority {chosen.priority}"
    else:
        reason = "oldest of equally specific patterns with the same priority"
    return PolicyChoice(
        chosen.id,
        {
            "image": str(image),
            "matching_policies": considered,
            "chosen": chosen.id,
            "reason": reason,
        },
    )
