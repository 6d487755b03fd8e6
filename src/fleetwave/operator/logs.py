"""``fleetwave devices logs``: a device's log lines, then with ``--follow`` the new ones.

The API answers oldest first and pages by ``after`` (the id of the last line read), like the
event log: a follower asks again with its cursor every ``interval`` seconds and gets exactly
the lines that arrived since, none twice. A server that answered once and then stops answering
for a while (a restart) is waited for, as ``rollouts watch`` waits; Ctrl-C ends the follow
(the command exits 0). Sleep comes in as a parameter: tests follow without waiting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fleetwave.operator.client import AdminClient, ApiError, Unreachable
from fleetwave.operator.watch import Pace, transient

PAGE = 500
Line = dict[str, Any]
Show = Callable[[list[Line]], None]
# Lines come from devices: a control character (an escape sequence above all) must not steer
# the operator's terminal. Tabs and line breaks are kept.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class LogFeed:
    """Reads a device's lines after a cursor, with the filters given (service, level, since)."""

    def __init__(self, client: AdminClient, uuid: str, filters: dict[str, Any]) -> None:
        self.client, self.uuid, self.filters = client, uuid, filters
        self.cursor = 0

    def first(self, tail: int | None) -> list[Line]:
        """What is there now: the last ``tail`` lines, or all of them."""
        if tail is None:
            return self.rest()
        page = self.client.device_logs(self.uuid, after=self.cursor, tail=tail, **self.filters)
        self.cursor = page["next_cursor"]
        lines: list[Line] = page["items"]
        return lines

    def rest(self) -> list[Line]:
        """Every line after the cursor, page by page."""
        lines: list[Line] = []
        while True:
            page = self.client.device_logs(self.uuid, after=self.cursor, limit=PAGE, **self.filters)
            lines.extend(page["items"])
            self.cursor = page["next_cursor"]
            if len(page["items"]) < PAGE:
                return lines


def follow(feed: LogFeed, show: Show, pace: Pace) -> None:
    """Show new lines every ``pace.interval`` seconds, for ever (until Ctrl-C)."""
    misses = 0
    while True:
        pace.sleep(pace.interval * (misses + 1))
        try:
            lines = feed.rest()
        except (Unreachable, ApiError) as exc:
            misses += 1
            if not transient(exc) or misses > pace.patience:
                raise
            continue
        misses = 0
        show(lines)


def log_line(line: Line) -> str:
    """One line for people: the device's time, who logged it, its level, its text."""
    who = line.get("service") or f"[{line.get('source') or '?'}]"
    text = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", line.get("message", ""))
    return f"{_time(line.get('logged_at'))}  {who:<12} {line.get('level', '?'):<5}  {text}"


def json_line(line: Line) -> str:
    """One line for scripts: the API's JSON of the line (control characters escaped)."""
    return json.dumps(line)


def _time(value: str | None) -> str:
    if not value:
        return "-" * 23
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    except ValueError:
        return value
