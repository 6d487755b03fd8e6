"""Deciding what polling a registry finds and when to poll it next; no I/O.

A registry that cannot reach fleetwave is polled instead: its tags listed (``Link``-paginated),
their digests read. What is new is what a webhook would have announced: a tag not seen before,
or a tag whose digest changed. The first poll of a repository only records what it finds.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from fleetwave.domain.images import GLOB_CHARACTERS, parse_pattern

MAX_BACKOFF_SECONDS = 3600.0
_LINK_PART = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def next_link(header: str | None, base_url: str) -> str | None:
    """The absolute URL of ``Link``'s ``rel="next"`` page, or None (the last page)."""
    if not header:
        return None
    for match in _LINK_PART.finditer(header):
        target, params = match.group(1), match.group(2)
        rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
        if any("next" in rel.split() for rel in rels):
            return str(urljoin(base_url, target.strip()))
    return None


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate`` challenge: its scheme (lower case) and parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str | None) -> Challenge | None:
    """The challenge of a 401's ``WWW-Authenticate``, or None if there is none to read."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def changed_tags(seen: Mapping[str, str] | None, found: Mapping[str, str]) -> list[str]:
    """Tags new since the last poll, or whose digest changed, sorted; none on the first poll
    (``seen`` is None): what was there before fleetwave looked is not a push."""
    if seen is None:
        return []
    return sorted(tag for tag, digest in found.items() if seen.get(tag) != digest)


def registry_host(url: str) -> str:
    """``host[:port]`` of a registry's URL, lower case, as image references name it."""
    return (urlsplit(url).netloc.rsplit("@", 1)[-1]).lower()


def polled_repositories(host: str, patterns: Iterable[str]) -> list[str]:
    """The repository paths of ``host`` that policies' image patterns name; a pattern whose
    path is a glob names no repository to list (registries list tags, not repositories)."""
    paths = set()
    for text in patterns:
        pattern = parse_pattern(text)
        registry, _, path = pattern.repository.partition("/")
        if registry == host and path and not set(path) & GLOB_CHARACTERS:
            paths.add(path)
    return sorted(paths)


def first_poll_at(now: datetime, interval: float, name: str) -> datetime:
    """When a new registry is first polled: at a point of its interval its name picks, so
    that registries made together are polled spread over the interval, not all at once."""
    offset = (zlib.crc32(name.encode()) % 1000) / 1000 * interval
    return now + timedelta(seconds=offset)


def next_poll_at(
    now: datetime, interval: float, failures: int, retry_after: float | None = None
) -> datetime:
    """After a poll: one interval later; after ``failures`` failures in a row, the interval
    doubled per failure (up to an hour, or the interval if longer), and never before a 429's
    ``Retry-After``."""
    delay = interval
    if failures > 0:
        delay = min(interval * 2**failures, max(MAX_BACKOFF_SECONDS, interval))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + timedelta(seconds=delay)


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unreadable."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)
