"""How a rollout's devices are cut into batches (waves)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

from fleetwave.domain.errors import InvalidInput

MAX_BATCHES = 100  # whether asked for as a count (staged_batches) or as percentages


def batch_fractions(
    strategy: str,
    staged_batches: int,
    percentages: Sequence[float] | None,
    default_fractions: Sequence[float],
) -> list[float]:
    """Cumulative fractions of the fleet reached after each batch.

    ``auto`` is one batch. The others use the policy's explicit percentages when it gives
    them, the configured fractions when it asks for as many batches as they have (the plan's
    10% → 50% → 100% for 3), and evenly spaced fractions otherwise.
    """
    if strategy == "auto":
        return [1.0]
    if percentages:
        return [p / 100 for p in percentages]
    if staged_batches == len(default_fractions):
        return list(default_fractions)
    return [(i + 1) / staged_batches for i in range(staged_batches)]


def batch_sizes(total: int, fractions: Sequence[float]) -> list[int]:
    """Sizes of the batches for ``total`` devices: none empty, the last ones reaching all.

    With fewer devices than batches, some batches are dropped rather than left empty.
    """
    sizes, reached = [], 0
    for fraction in fractions:
        cumulative = min(total, max(math.ceil(fraction * total - 1e-9), reached + 1))
        if cumulative > reached:
            sizes.append(cumulative - reached)
            reached = cumulative
    if reached < total:  # fractions that stop short of 1.0 still cover everyone
        sizes.append(total - reached)
    return sizes


def check_percentages(percentages: Sequence[float], *, field: str = "batch_percentages") -> None:
    if not percentages:
        raise InvalidInput.one(field, "needs at least one percentage")
    if len(percentages) > MAX_BATCHES:
        raise InvalidInput.one(field, f"at most {MAX_BATCHES} batches")
    if any(not 0 < p <= 100 for p in percentages):
        raise InvalidInput.one(field, "each percentage must be in (0, 100]")
    if any(b <= a for a, b in pairwise(percentages)):
        raise InvalidInput.one(field, "percentages are cumulative and must increase")
    if percentages[-1] != 100:
        raise InvalidInput.one(field, "the last percentage must be 100 (the whole fleet)")
