"""In-process rate limits driven by the injected clock.

- :class:`RateLimiter`: a sliding window of hits per client (device registration).
- :class:`FailureLimiter`: failures per key (a source address, a device uuid), counted in a
  fixed window that starts at the key's first failure; a key with ``limit`` failures in its
  window is refused until the window ends. Only failures are recorded, so a client that
  succeeds is never counted, and checking costs one dictionary lookup. Its memory is bounded:
  at most ``tracked`` keys, the one whose window ends first dropped past that, so a client
  inventing a new key per request cannot grow it.

The decisions (:func:`failure_window_after`, :func:`failure_wait`) are pure functions of the
stored window and the time.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import timedelta

from fleetwave.clock import Clock


class RateLimiter:
    def __init__(self, clock: Clock, limit: int, window: timedelta = timedelta(minutes=1)) -> None:
        self._clock, self._limit, self._window = clock, limit, window
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> float | None:
        """Record a hit; None if allowed, else the seconds until the client may try again."""
        now = self._clock.now().timestamp()
        hits = self._hits.setdefault(client, deque())
        while hits and hits[0] <= now - self._window.total_seconds():
            hits.popleft()
        if len(hits) >= self._limit:
            return hits[0] + self._window.total_seconds() - now
        hits.append(now)
        if len(self._hits) > 10_000:
            self._forget_idle(now)
        return None

    def _forget_idle(self, now: float) -> None:
        horizon = now - self._window.total_seconds()
        for client in [c for c, h in self._hits.items() if not h or h[-1] <= horizon]:
            del self._hits[client]


@dataclass(frozen=True, slots=True)
class FailureWindow:
    """A key's failures since ``started`` (a timestamp, in seconds)."""

    started: float
    failures: int


def failure_window_after(window: FailureWindow | None, now: float, seconds: float) -> FailureWindow:
    """The key's window once one more failure happened at ``now``: a new window if there was
    none or it has ended, else the same window with one failure more."""
    if window is None or now >= window.started + seconds:
        return FailureWindow(started=now, failures=1)
    return FailureWindow(window.started, window.failures + 1)


def failure_wait(
    window: FailureWindow | None, now: float, limit: int, seconds: float
) -> float | None:
    """None if the key may try again; else the seconds until its window ends."""
    if window is None or window.failures < limit:
        return None
    wait = window.started + seconds - now
    return wait if wait > 0 else None


class FailureLimiter:
    def __init__(self, clock: Clock, limit: int, window: timedelta, tracked: int) -> None:
        self._clock, self.limit, self._seconds = clock, limit, window.total_seconds()
        self.tracked = tracked
        # key → its window, in the order the windows started: the first ends first
        self._windows: OrderedDict[str, FailureWindow] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def wait(self, key: str) -> float | None:
        """None if ``key`` may try; else the seconds until it may (nothing is recorded)."""
        window = self._windows.get(key)
        if window is None:
            return None
        return failure_wait(window, self._clock.now().timestamp(), self.limit, self._seconds)

    def failed(self, key: str) -> bool:
        """Record a failure of ``key``; True if it has just reached the limit."""
        now = self._clock.now().timestamp()
        before = self._windows.get(key)
        after = failure_window_after(before, now, self._seconds)
        self._windows[key] = after
        if before is None or after.started != before.started:
            self._windows.move_to_end(key)
            self._drop_ended(now)
        return after.failures == self.limit

    def _drop_ended(self, now: float) -> None:
        windows = self._windows
        while windows:
            first = next(iter(windows.values()))
            if len(windows) <= self.tracked and now < first.started + self._seconds:
                return
            windows.popitem(last=False)
