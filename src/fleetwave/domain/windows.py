"""Maintenance windows: a daily span of local time, possibly across midnight."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
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
    check_window_span(start, end)
    zone(timezone)


def check_window_span(start: time | None, end: time | None) -> None:
    """Both ends or neither, and not the same time."""
    if (start is None) != (end is None):
        missing = "maintenance_window_end" if end is None else "maintenance_window_start"
        raise InvalidInput.one(missing, "a window needs both its start and its end")
    if start is not None and start == end:
        raise InvalidInput.one("maintenance_window_end", "must differ from the window's start")


def window_is_open(now: datetime, start: time, end: time, timezone: str) -> bool:
    """Whether ``now`` falls in [start, end) local time; a window may run past midnight."""
    local = now.astimezone(zone(timezone)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_opening(now: datetime, start: time, end: time, timezone: str) -> datetime:
    """When the window next opens, in UTC (``now`` itself if it is open).

    The opening is the first instant after ``now`` when the window is open: a day's start in
    local time (both readings of a repeated hour), or a daylight-saving change that moves the
    clocks into the window (a start that does not exist that night opens as the clocks jump).
    """
    if window_is_open(now, start, end, timezone):
        return now
    tz = zone(timezone)
    local = now.astimezone(tz)
    candidates = [
        datetime.combine(local.date() + timedelta(days=days), start, tzinfo=tz)
        .replace(fold=fold)
        .astimezone(UTC)
        for days in range(3)
        for fold in (0, 1)
    ]
    candidates += _offset_changes(now, now + timedelta(days=2), tz)
    return min(c for c in candidates if c > now and window_is_open(c, start, end, timezone))


def _offset_changes(begin: datetime, until: datetime, tz: ZoneInfo) -> list[datetime]:
    """The instants in (begin, until] when the zone's UTC offset changes, to the second."""
    changes, step = [], timedelta(hours=1)
    moment = begin.astimezone(UTC)
    while moment < until:
        later = moment + step
        if moment.astimezone(tz).utcoffset() != later.astimezone(tz).utcoffset():
            low, high = moment, later
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if low.astimezone(tz).utcoffset() == middle.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            changes.append(high.replace(microsecond=0))
        moment = later
    return changes
