"""The two faces of ``fleetwave demo``: a panel redrawn in place on a terminal, plain lines
in a log or CI. Both are fed the rollout's detail and its new events; what they show comes from
:mod:`fleetwave.sim.view`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.live import Live

from fleetwave.sim import view


class Display(Protocol):
    def note(self, text: str) -> None: ...
    def update(
        self, rollout: Mapping[str, Any], new_events: Sequence[Mapping[str, Any]]
    ) -> None: ...
    def close(self) -> None: ...


class PlainDisplay:
    """Lines for a log or CI: each notable event, and a progress line when the counts move
    (at most one a second).

    Every line's time is on one clock, the server's, counted from the rollout's creation: an
    event at its timestamp, a progress line at the last time the server changed the rollout
    (never before a line already printed). The local clock only paces the progress lines."""

    def __init__(self, out: TextIO, now: Callable[[], float] = time.monotonic) -> None:
        self.out, self.now = out, now
        self.origin: datetime | None = None
        self.stamp = 0.0  # seconds since the origin of the latest line printed
        self.last_line = ""
        self.last_at = float("-inf")

    def note(self, text: str) -> None:
        self._print(f"• {text}")

    def update(self, rollout: Mapping[str, Any], new_events: Sequence[Mapping[str, Any]]) -> None:
        self.origin = self.origin or view.parse_time(rollout["created_at"])
        for event in new_events:
            self.stamp = max(self.stamp, view.offset(event["timestamp"], self.origin))
            if view.is_notable(event):
                self._print(view.event_line(event, self.origin))
        if rollout.get("updated_at"):
            self.stamp = max(self.stamp, view.offset(rollout["updated_at"], self.origin))
        line = view.progress_line(rollout)
        if line != self.last_line and (view.settled(rollout) or self.now() - self.last_at >= 1):
            self._print(f"+{self.stamp:5.1f}s  {line}")
            self.last_line, self.last_at = line, self.now()

    def close(self) -> None:
        self.out.flush()

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


class LiveDisplay:
    """A terminal panel redrawn in place (bars, batches, newest events); rollout-level events
    and failures are also printed above it, so they stay on screen."""

    def __init__(self, console: Console, recent: int = 8) -> None:
        self.console, self.recent = console, recent
        self.origin: datetime | None = None
        self.newest: list[Mapping[str, Any]] = []
        self.live = Live(console=console, refresh_per_second=8, transient=False)
        self.live.start()

    def note(self, text: str) -> None:
        self.console.print(f"• {text}", highlight=False)

    def update(self, rollout: Mapping[str, Any], new_events: Sequence[Mapping[str, Any]]) -> None:
        self.origin = self.origin or view.parse_time(rollout["created_at"])
        for event in new_events:
            if view.is_notable(event):
                self.console.print(view.event_line(event, self.origin), highlight=False)
        self.newest = [*self.newest, *new_events][-self.recent :]
        width = max(20, min(50, self.console.width - 10))
        self.live.update(view.live_panel(rollout, self.newest, self.origin, width))

    def close(self) -> None:
        self.live.stop()
