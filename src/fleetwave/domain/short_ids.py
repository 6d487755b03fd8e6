"""Short ids: the first characters of a rollout id (or a device uuid) stand for the whole.

The dashboard shows the first 8 characters of an id; an operator copies them into the CLI or
the API. Any prefix of at least :data:`MIN_PREFIX` characters that begins exactly one id names
it; a shorter one could begin too many to be worth looking up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_PREFIX = 8
SHORT = 8  # characters the dashboard shows
MAX_MATCHES_LISTED = 10
# Above every character an id holds, on a binary (C, SQLite) ordering: ``low <= id < high``
# is then exactly "id begins with the prefix", and it is an index range scan.
_ABOVE_ALL = "\U0010ffff"


def short_id(full: str | None) -> str:
    """What a page shows of an id: its first :data:`SHORT` characters."""
    return (full or "")[:SHORT]


def prefix_range(prefix: str) -> tuple[str, str]:
    """The range of ids that begin with ``prefix``: ``low <= id < high``."""
    return prefix, prefix + _ABOVE_ALL


@dataclass(frozen=True)
class Resolution:
    """What a given id names: ``full`` when one id, else why not (``problem``) and which ids
    it could mean (``matches``, when it is ambiguous)."""

    full: str | None
    problem: str | None = None
    matches: tuple[str, ...] = ()
    too_short: bool = False


def resolve(noun: str, given: str, matches: Sequence[str]) -> Resolution:
    """Decide what ``given`` names from the ids that begin with it (at most
    :data:`MAX_MATCHES_LISTED` + 1 of them, in order). An id equal to ``given`` wins: a full
    id is never ambiguous. Nothing found is "not found" whatever the length (a short full id
    may just not exist); too short is said only of a prefix that begins some ids."""
    if given in matches:
        return Resolution(given)
    if not matches:
        return Resolution(None, f"{noun} {given} not found")
    if len(given) < MIN_PREFIX:
        return Resolution(
            None,
            f"{noun} {given!r} is not a full id, and a short id needs at least "
            f"{MIN_PREFIX} characters",
            too_short=True,
        )
    if len(matches) == 1:
        return Resolution(matches[0])
    listed = list(matches[:MAX_MATCHES_LISTED])
    more = " and more" if len(matches) > MAX_MATCHES_LISTED else ""
    return Resolution(
        None,
        f"{noun} {given} is ambiguous: it begins {', '.join(listed)}{more}; give more characters",
        tuple(listed),
    )
