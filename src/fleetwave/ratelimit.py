"""A small in-process sliding-window rate limiter (per client), driven by the injected clock."""

from __future__ import annotations

from collections import deque
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
