"""``fleetwave rollouts watch``: follow a rollout by polling until it ends.

Each round reads the rollout, then the events after the last one seen (in that order, so the
event that ended the rollout is shown with its ending). Sleep and clock come in as parameters:
tests run a whole watch without waiting. A server that stops answering for a moment (a
restart) is waited for, briefly; a refusal (404, 401), or no answer at the first read, ends
the watch at once.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live

from fleetwave.operator.client import AdminClient, ApiError, Unreachable
from fleetwave.operator.outcomes import ExitCode, watch_ending
from fleetwave.operator.render import event_line, progress_line, to_text, watch_view

Sleep = Callable[[float], None]
Clock = Callable[[], float]
EVENT_PAGE = 500


@dataclass
class Frame:
    """What one round saw: the rollout, the newest events, and the events new this round."""

    rollout: dict[str, Any]
    latest: list[dict[str, Any]]
    new: list[dict[str, Any]] = field(default_factory=list)


Display = Callable[[Frame], None]


class RolloutFeed:
    """Reads a rollout and its events after a cursor, keeping the newest ``keep`` events."""

    def __init__(self, client: AdminClient, rollout_id: str, keep: int = 8) -> None:
        self.client, self.rollout_id = client, rollout_id
        self.cursor = 0
        self.latest: deque[dict[str, Any]] = deque(maxlen=keep)

    def read(self) -> Frame:
        rollout = self.client.rollout(self.rollout_id)
        new = self._new_events()
        self.latest.extend(new)
        return Frame(rollout, list(self.latest), new)

    def _new_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            page = self.client.rollout_events(self.rollout_id, after=self.cursor, limit=EVENT_PAGE)
            events.extend(page["items"])
            self.cursor = page["next_cursor"]
            if len(page["items"]) < EVENT_PAGE:
                return events


def transient(exc: Exception) -> bool:
    """Worth waiting for: no connection, or the server busy or restarting."""
    return isinstance(exc, Unreachable) or (isinstance(exc, ApiError) and exc.status >= 500)


@dataclass
class Pace:
    sleep: Sleep
    clock: Clock
    interval: float = 1.0
    timeout: float | None = None
    patience: int = 5  # transient failures in a row before giving up


def watch(feed: RolloutFeed, show: Display, pace: Pace, *, through_pause: bool = False) -> ExitCode:
    """Show the rollout every ``pace.interval`` seconds until it ends; its exit code."""
    deadline = None if pace.timeout is None else pace.clock() + pace.timeout
    misses, answered = 0, False
    while True:
        try:
            frame = feed.read()
        except (Unreachable, ApiError) as exc:
            misses += 1
            if not answered or not transient(exc) or misses > pace.patience:
                raise  # a server that never answered is a wrong URL, not a restart
            pace.sleep(pace.interval * misses)
            continue
        misses, answered = 0, True
        show(frame)
        ending = watch_ending(frame.rollout["status"], through_pause=through_pause)
        if ending is not None:
            return ending
        if deadline is not None and pace.clock() >= deadline:
            return ExitCode.TIMED_OUT
        pace.sleep(pace.interval)


class LiveDisplay:
    """On a terminal: the whole view, redrawn in place."""

    def __init__(self, live: Live) -> None:
        self.live = live

    def __call__(self, frame: Frame) -> None:
        self.live.update(watch_view(frame.rollout, frame.latest), refresh=True)


class LogDisplay:
    """Into a pipe or a log: each new event once, and the progress whenever it changes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.last = ""

    def __call__(self, frame: Frame) -> None:
        for event in frame.new:
            self.console.print(event_line(event))
        summary = f"{frame.rollout['status']}: " + to_text(progress_line(frame.rollout)).strip()
        if summary != self.last:
            self.console.print(summary)
            self.last = summary


class JsonDisplay:
    """For scripts: each new event as one JSON line; the rollout's last state comes at the end."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def __call__(self, frame: Frame) -> None:
        for event in frame.new:
            self.write(json.dumps(event))
