"""What a rollout should do next: ``decide(snapshot)``, pure and tested as a table.

The monitor loads a snapshot of a rollout (its status, batch plan, device counts per batch
and status, its settings, the time), asks ``decide`` for actions, and applies them with their
events in one transaction. Deciding has no I/O, so every rule of DESIGN.md §4 reads here:

- a batch is finished when none of its devices is still pending or in flight;
- the next batch starts when the current one is finished, the failure rate is within bounds,
  the soak delay has passed (unless an operator promoted it), the maintenance window is open
  (scheduled strategy), and approval was given (manual strategy);
- above ``max_failure_rate`` a rollout pauses itself before its next batch;
- when every device is finished the rollout is ``completed``, or ``failed`` above the bound;
- while it waits on devices, it says how many of them are not applying their target;
- a finished batch with a Prometheus analysis (``domain.analysis``) waits for it; a failed
  analysis fails the batch (its devices roll back) and pauses the rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleetwave.domain.device_cap import partly_started
from fleetwave.domain.not_applying import waiting_note
from fleetwave.domain.rollout_figures import offline_note, waiting_devices
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import UNFINISHED_DEVICE_STATUSES, devices
from fleetwave.domain.windows import next_opening, window_is_open

FAILED_STATUSES = ("failed", "rolled_back", "rollback_failed")
RUNNING_STATUSES = ("in_progress", "scheduled", "paused")


@dataclass(frozen=True)
class RolloutSnapshot:
    status: str
    strategy: str
    current_batch: int
    batch_sizes: tuple[int, ...]
    counts: Mapping[int, Mapping[str, int]]  # batch number → device status → devices
    settings: RolloutSettings
    now: datetime
    current_batch_finished_at: datetime | None = None
    approved_batch: int = 0
    gate_accepted_failures: int | None = None
    not_applying: int = 0  # devices flagged "not applying its target" (domain.not_applying)
    offline: int = 0  # unfinished devices of the current batch that are offline (views only)
    cap_note: str | None = None  # the cap that holds devices back (domain.device_cap), if any
    analysis: str | None = None  # the current batch's (domain.analysis.state); None: none

    @property
    def total_batches(self) -> int:
        return len(self.batch_sizes)

    def total(self, statuses: tuple[str, ...]) -> int:
        return sum(n for batch in self.counts.values() for s, n in batch.items() if s in statuses)

    def in_batch(self, batch: int, statuses: tuple[str, ...]) -> int:
        return sum(n for s, n in self.counts.get(batch, {}).items() if s in statuses)

    @property
    def failed(self) -> int:
        return self.total(FAILED_STATUSES)

    @property
    def finished(self) -> int:
        return self.total(("completed",)) + self.failed

    @property
    def failure_rate(self) -> float:
        return failure_rate(self.total(("completed",)), self.failed)


def failure_rate(completed: int, failed: int) -> float:
    """failed ÷ (completed + failed); rolled-back devices count as failed, skipped ones not."""
    finished = completed + failed
    return failed / finished if finished else 0.0


# --- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinishBatch:
    batch: int


@dataclass(frozen=True)
class StartBatch:
    batch: int
    promoted: bool = False


@dataclass(frozen=True)
class AutoPause:
    failure_rate: float
    failed: int
    finished: int
    bound: float


@dataclass(frozen=True)
class FailBatch:
    """The batch's analysis failed: its devices fail (and roll back), the rollout pauses."""

    batch: int


@dataclass(frozen=True)
class Complete:
    failure_rate: float


@dataclass(frozen=True)
class Fail:
    failure_rate: float
    bound: float


@dataclass(frozen=True)
class Wait:
    """Nothing to do yet; ``until`` says when something may change by time alone."""

    reason: str
    until: datetime | None = None


Action = FinishBatch | StartBatch | AutoPause | FailBatch | Complete | Fail | Wait


def gate_tripped(snapshot: RolloutSnapshot) -> bool:
    """The failure rate is above the bound, with enough devices finished to judge, and with
    more failures than an operator accepted when forcing a resume."""
    settings = snapshot.settings
    if snapshot.finished < settings.min_finished:
        return False
    if snapshot.gate_accepted_failures is not None and (
        snapshot.failed <= snapshot.gate_accepted_failures
    ):
        return False
    return snapshot.failure_rate > settings.max_failure_rate


def decide(snapshot: RolloutSnapshot) -> list[Action]:
    if snapshot.status not in RUNNING_STATUSES:
        return []
    actions: list[Action] = []
    batch, now = snapshot.current_batch, snapshot.now
    finished_at = snapshot.current_batch_finished_at
    batch_done = batch > 0 and snapshot.in_batch(batch, UNFINISHED_DEVICE_STATUSES) == 0
    if batch_done and finished_at is None:
        actions.append(FinishBatch(batch))
        finished_at = now
    if batch_done and snapshot.status != "paused":
        if snapshot.analysis == "failed":
            return actions + [FailBatch(batch)]
        if snapshot.analysis == "waiting":
            assert finished_at is not None
            soak_end = finished_at + snapshot.settings.batch_delay
            return actions + [Wait(f"batch {batch} waits for its Prometheus analysis", soak_end)]
    if batch >= snapshot.total_batches and snapshot.total(UNFINISHED_DEVICE_STATUSES) == 0:
        return actions + [_conclusion(snapshot)]
    if snapshot.status == "paused":
        return actions + [Wait(_noting_stalls("paused", snapshot))]
    if batch >= snapshot.total_batches:
        reason = _held_by_cap(snapshot, batch) or "the last batch is still running"
        unfinished = snapshot.in_batch(batch, UNFINISHED_DEVICE_STATUSES)
        if (offline := offline_note(snapshot.offline, unfinished)) is not None:
            reason += f" ({devices(unfinished)} not finished, {offline})"
        return actions + [Wait(_noting_stalls(reason, snapshot))]
    if gate_tripped(snapshot):
        return actions + [
            AutoPause(
                snapshot.failure_rate,
                snapshot.failed,
                snapshot.finished,
                snapshot.settings.max_failure_rate,
            )
        ]
    if batch > 0 and not batch_done:
        in_flight = snapshot.in_batch(batch, UNFINISHED_DEVICE_STATUSES)
        reason = _held_by_cap(snapshot, batch) or (
            f"batch {batch} has {waiting_devices(in_flight, snapshot.offline)}"
        )
        return actions + [Wait(_noting_stalls(reason, snapshot))]
    return actions + [_next_batch(snapshot, batch + 1, finished_at)]


def _held_by_cap(snapshot: RolloutSnapshot, batch: int) -> str | None:
    """The current batch started in part: a cap holds its pending devices back."""
    pending = snapshot.in_batch(batch, ("pending",))
    if batch == 0 or not pending or snapshot.cap_note is None:
        return None
    size = sum(snapshot.counts.get(batch, {}).values())
    return partly_started(batch, size - pending, size, snapshot.cap_note)


def _noting_stalls(reason: str, snapshot: RolloutSnapshot) -> str:
    if not snapshot.not_applying:
        return reason
    return f"{reason}; {waiting_note(snapshot.not_applying)}"


def _conclusion(snapshot: RolloutSnapshot) -> Action:
    bound = snapshot.settings.max_failure_rate
    if snapshot.failure_rate > bound:
        return Fail(snapshot.failure_rate, bound)
    return Complete(snapshot.failure_rate)


def _next_batch(snapshot: RolloutSnapshot, batch: int, finished_at: datetime | None) -> Action:
    settings, now = snapshot.settings, snapshot.now
    operator_let_it = snapshot.approved_batch >= batch
    if snapshot.strategy == "manual":
        needed = batch if settings.approve_each_batch else 1
        if snapshot.approved_batch < needed:
            what = "promote" if batch > 1 else "approval"
            return Wait(f"batch {batch} waits for {what}")
    if finished_at is not None and not operator_let_it:
        soak_end = finished_at + settings.batch_delay
        if now < soak_end:
            return Wait(
                f"batch {batch} starts after the {_minutes(settings.batch_delay)} delay", soak_end
            )
    if settings.has_window and snapshot.strategy == "scheduled":
        assert settings.window_start is not None and settings.window_end is not None
        if not window_is_open(
            now, settings.window_start, settings.window_end, settings.window_timezone
        ):
            opens = next_opening(
                now, settings.window_start, settings.window_end, settings.window_timezone
            )
            return Wait(f"batch {batch} waits for the maintenance window", opens)
    return StartBatch(batch, promoted=operator_let_it and batch > 1)


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:g} min"
