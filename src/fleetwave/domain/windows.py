"""Maintenance windows: a daily span of local time, possibly across midnight."""

from __future__ import annotations

from datetime import datetime, time, timedelta
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


def next_opening(now: datetime, start: time, end: time, timezone: str) -> datetime:
    """When the window next opens (``now`` itself if it is open), as an aware UTC-comparable time.

    Local wall times are resolved in the zone on each candidate day, so a daylight-saving
    change moves the opening with the clocks, as people expect.
    """
    if window_is_open(now, start, end, timezone):
        return now
    tz = zone(timezone)
    local_now = now.astimezone(tz)
    for days in range(0, 3):
        day = local_now.date() + timedelta(days=days)
        opening = datetime.combine(day, start, tzinfo=tz)
        if opening > local_now:
            return opening
    raise AssertionError("a daily window opens within two days")  # pragma: no cover
