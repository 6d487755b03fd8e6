"""Where a device that appears after a rollout was planned joins it (issue 16, part 2).

A device registered, or reporting, on an old image of the newest rollout of that image joins
it while the rollout is unfinished: into the current batch while that batch runs, into the
next one when it has finished (a trailing batch), into the first before any has started.
After the rollout completed, a continuous rollout takes it in its last batch at once, the
rollout running again until the device is done. Rollouts that ended failed, cancelled or
rolled back take no one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleetwave.domain.vocabulary import ACTIVE_ROLLOUT_STATUSES


@dataclass(frozen=True)
class Joining:
    batch: int
    reopens: bool  # the batch (or the completed rollout) runs again for the joiners
    continuous: bool  # the rollout had completed: a continuous rollout


def joins(status: str, continuous: bool) -> bool:
    """Whether a rollout in ``status`` takes late joiners at all."""
    return status in ACTIVE_ROLLOUT_STATUSES or (status == "completed" and continuous)


def joining_batch(
    status: str,
    current_batch: int,
    total_batches: int,
    current_batch_finished_at: datetime | None,
) -> Joining:
    """The batch late joiners go into (``joins`` said the rollout takes them)."""
    if status == "completed":
        return Joining(max(current_batch, 1), reopens=True, continuous=True)
    if current_batch == 0:
        return Joining(1, reopens=False, continuous=False)
    if current_batch_finished_at is None:
        return Joining(current_batch, reopens=False, continuous=False)
    if current_batch < total_batches:
        return Joining(current_batch + 1, reopens=False, continuous=False)
    return Joining(current_batch, reopens=True, continuous=False)  # the last batch, finished


def grown(batch_sizes: list[int], batch: int, joiners: int) -> list[int]:
    """The batch sizes with ``joiners`` more in ``batch`` (a new trailing batch if past them)."""
    sizes = list(batch_sizes)
    while len(sizes) < batch:
        sizes.append(0)
    sizes[batch - 1] += joiners
    return sizes
