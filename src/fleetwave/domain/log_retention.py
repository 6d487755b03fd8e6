"""How many of a device's log lines are kept, and for how long: the rule, as plain data.

A device keeps at most ``lines`` lines (its newest, by arrival) and none received more than
``max_age`` ago. Age is judged by the server's clock when the line arrived, never by the
device's timestamp: a device whose clock is wrong (a Raspberry Pi without a clock battery
starts in 1970) must neither lose its lines at once nor keep them for ever.

The store applies the rule set-based (one DELETE per request for the device that sent, and a
periodic sweep of what aged out everywhere); :func:`retained` is the rule's specification,
against which both are tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SWEEP_EVERY = timedelta(minutes=1)  # how often the monitor deletes lines that aged out
SWEEP_BATCH = 10_000  # rows one sweep deletes at most (the next sweep goes on)


@dataclass(frozen=True)
class Retention:
    lines: int  # per device
    max_age: timedelta

    def cutoff(self, now: datetime) -> datetime:
        """Lines received before this are too old."""
        return now - self.max_age


@dataclass(frozen=True)
class StoredLine:
    id: int  # ids grow with arrival
    received_at: datetime


def retained(stored: Sequence[StoredLine], retention: Retention, now: datetime) -> list[int]:
    """The ids of one device's lines that are kept: its newest ``lines``, none too old."""
    cutoff = retention.cutoff(now)
    newest = sorted(stored, key=lambda line: line.id)[-retention.lines :]
    return [line.id for line in newest if line.received_at >= cutoff]


def worth_storing(count: int, retention: Retention) -> slice:
    """Which of a request's ``count`` lines to write: only the newest ``lines`` can survive
    the pruning that follows, so the others are not written at all."""
    return slice(max(0, count - retention.lines), count)


def sweep_due(last_sweep: datetime | None, now: datetime, every: timedelta = SWEEP_EVERY) -> bool:
    """Whether the periodic sweep should run now (the monitor ticks far more often)."""
    return last_sweep is None or now - last_sweep >= every or now < last_sweep
