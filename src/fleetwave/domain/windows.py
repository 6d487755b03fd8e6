"""Maintenance windows: a daily span of local time, possibly across midnight."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleetwave.domain.errors import InvalidInput


def zone(name: str, *, field: str = "maintenance_window_timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput.one(
            field, f"{name!r} is not a known time zone (e.g. Europe/Paris)"
        ) from None


def check_window(start: time | None, end: time | None, timezone: str) -> None:
    if (start is None) != (end is None):
        missing = "maintenance_window_end" if end is None else "maintenance_window_start"
        raise InvalidInput.one(missing, "a window needs both its start and its end")
    if start is not None and start == end:
        raise InvalidInput.one("maintenance_window_end", "must differ from the window's start")
    zone(timezone)


def window_is_open(now: datetime, start: time, end: time, timezone: str) -> bool:
    """Whether ``now`` falls in [start, end) local time; a window may run past midnight."""
    local = now.astimezone(zone(timezone)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end
