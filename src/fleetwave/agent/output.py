"""A container's output as the agent reads it from its engine, and what makes of it a log line.

Pure: the engine gives lines with their time (``docker logs --timestamps``); the agent reads
again from a whole second (the Docker API's ``since`` has no finer grain), so
:func:`unseen` drops what an earlier read already gave. Text is made storable (no NUL, no
lone surrogate: the server refuses both) and cut to the server's longest line; the level is
guessed from the text as the iotistic agent guesses it, so both agents' lines read alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fleetwave.domain.log_lines import MAX_MESSAGE_CHARACTERS

TRUNCATED = " …[truncated by the fleetwave agent]"
_TIMESTAMP = re.compile(
    r"(?P<seconds>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|[+-]\d\d:\d\d)"
)
_ERROR = re.compile(r"\[error\]|error:|^\s*error\b|fatal")
_WARN = re.compile(r"\[warn\]|warn:|warning:|^\s*warn\b")
_DEBUG = re.compile(r"\[debug\]|debug:|^\s*debug\b")
_INFO = re.compile(r"\[info\]|info:|^\s*info\b|\[notice\]")


@dataclass(frozen=True)
class OutputLine:
    at: int  # nanoseconds since the epoch, the engine's clock
    stderr: bool
    text: str


@dataclass(frozen=True)
class Cursor:
    """How far a container's output was read: the last line's time, and how many lines
    carried exactly that time (two lines can share a nanosecond)."""

    at: int
    count: int

    @property
    def since_seconds(self) -> int:
        return self.at // 1_000_000_000


def unseen(lines: Sequence[OutputLine], cursor: Cursor | None) -> tuple[list[OutputLine], Cursor]:
    """The lines (in time order) a read gave that were not read before, and the new cursor."""
    ordered = sorted(lines, key=lambda line: line.at)
    if cursor is None:
        new = ordered
    else:
        skip_at_cursor = cursor.count
        new = []
        for line in ordered:
            if line.at < cursor.at:
                continue
            if line.at == cursor.at and skip_at_cursor > 0:
                skip_at_cursor -= 1
                continue
            new.append(line)
    if not new:
        return [], cursor or Cursor(0, 0)
    last = new[-1].at
    at_last = sum(1 for line in new if line.at == last)
    if cursor is not None and cursor.at == last:
        at_last += cursor.count
    return new, Cursor(last, at_last)


def fell_short(lines: Sequence[OutputLine], cursor: Cursor | None, limit: int) -> bool:
    """Whether a read limited to ``limit`` lines stopped before it got back to ``cursor``:
    the container wrote more since, and the oldest of it was not read."""
    if cursor is None or len(lines) < limit:
        return False
    return min(line.at for line in lines) > cursor.at


def parse_timestamp(text: str) -> int | None:
    """RFC 3339 with up to nanoseconds (``2026-01-01T12:00:00.123456789Z``) → nanoseconds
    since the epoch; None if it is not one."""
    found = _TIMESTAMP.fullmatch(text)
    if found is None:
        return None
    zone = "+00:00" if found["zone"] == "Z" else found["zone"]
    try:
        whole = datetime.fromisoformat(found["seconds"] + zone)
    except ValueError:
        return None
    fraction = int((found["fraction"] or "0").ljust(9, "0"))
    return int(whole.timestamp()) * 1_000_000_000 + fraction


def split_output(raw: bytes, *, stderr: bool) -> list[OutputLine]:
    """``docker logs --timestamps`` output (one stream) as lines; a line without a time (none
    should come) takes the time of the line before."""
    lines, at = [], 0
    for row in raw.decode("utf-8", errors="replace").split("\n"):
        stamp, _, text = row.partition(" ")
        parsed = parse_timestamp(stamp)
        if parsed is None:
            text = row
        else:
            at = parsed
        text = text.rstrip("\r")
        if text.strip():
            lines.append(OutputLine(at, stderr, text))
    return lines


def clean_text(text: str) -> str:
    """Text the server stores: NUL and lone surrogates replaced, at most its longest line."""
    text = text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if len(text) > MAX_MESSAGE_CHARACTERS:
        text = text[: MAX_MESSAGE_CHARACTERS - len(TRUNCATED)] + TRUNCATED
    return text


def level_of(text: str, stderr: bool) -> str:
    """The level a line says it has (``[ERROR]``, ``warning:``, ``fatal``, …); unmarked
    lines are info on stdout, warn on stderr (the iotistic agent's rule)."""
    lowered = text.lower()
    for pattern, level in ((_ERROR, "error"), (_WARN, "warn"), (_DEBUG, "debug"), (_INFO, "info")):
        if pattern.search(lowered):
            return level
    return "warn" if stderr else "info"
