"""Whether a device is online, and when its last-seen time is worth writing again."""

from __future__ import annotations

from datetime import datetime, timedelta


def is_online(
    reported_online: bool, last_seen: datetime | None, now: datetime, offline_after: timedelta
) -> bool:
    """Online means it said so and was heard from within ``offline_after``."""
    return reported_online and last_seen is not None and now - last_seen <= offline_after


def touch_interval(offline_after: timedelta) -> timedelta:
    """How stale a stored last-seen may get before a poll rewrites it.

    Writing on every poll would turn the hottest read into a write. A quarter of the offline
    threshold keeps a device that polls at least that often from ever reading as offline
    (stored staleness + poll interval stays under the threshold), while a device polling every
    minute against the default 5 minutes writes on one poll in two at most.
    """
    return offline_after / 4


def needs_touch(
    reported_online: bool,
    last_seen: datetime | None,
    now: datetime,
    offline_after: timedelta,
) -> bool:
    if not reported_online or last_seen is None:
        return True
    return now - last_seen >= touch_interval(offline_after)
