"""Device log lines as agents send them (``POST /api/v1/device/{uuid}/logs``), checked and
taken apart.

The iotistic agent's cloud backend (``src/logging/cloud-backend.ts``) sends NDJSON, one object
per line, usually gzipped::

    {"message": "...", "timestamp": 1767225600000, "level": "info",
     "source": {"type": "container", "name": "app"}, "serviceId": 1, "serviceName": "app",
     "containerId": "4f2a...", "isStdErr": false, "isSystem": false}

``timestamp`` is milliseconds since the epoch on the device's clock; system lines carry
``source.type`` ``system`` or ``manager`` and no service. A JSON array of the same objects is
taken too. Anything malformed refuses the whole request, naming the line (numbered from 1)
and the field, so a bad batch is never half-stored; unknown keys are ignored but, like every
string, must be storable (no NUL, no lone surrogate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.json_input import parse_json
from fleetwave.domain.target_state import id_problem
from fleetwave.domain.text_rules import json_problem, label_problem
from fleetwave.domain.vocabulary import LOG_LEVELS

LEVEL_ALIASES = {"warning": "warn", "fatal": "error", "critical": "error", "trace": "debug"}
MAX_MESSAGE_CHARACTERS = 16_384  # Docker splits a container's output into 16 KiB entries
MAX_LINES_PER_REQUEST = 10_000
MAX_SERVICE_CHARACTERS = 255
MAX_SOURCE_CHARACTERS = 32
LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TooManyLines(InvalidInput):
    """More lines in one request than it may carry (a 413 at the API)."""

    def __init__(self, count: int) -> None:
        super().__init__(
            [
                Problem(
                    "body",
                    f"has {count:,} log lines; send at most {MAX_LINES_PER_REQUEST:,} per request",
                )
            ]
        )


@dataclass(frozen=True)
class LogLine:
    message: str
    level: str
    source: str  # container, system, manager, agent, ...
    service: str | None
    stream: str | None  # stdout, stderr, or None (not a container's output)
    timestamp: datetime | None  # the device's clock; None: it did not say


def read_ndjson(body: bytes) -> list[tuple[str, Any]]:
    """The JSON values of an NDJSON body, each with its field name (``line 3``); blank lines
    are skipped but counted, so the numbers are the body's own line numbers."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput.one("body", f"is not valid UTF-8 ({exc.reason})") from None
    rows = [(n, row) for n, row in enumerate(text.split("\n"), 1) if row.strip()]
    if len(rows) > MAX_LINES_PER_REQUEST:
        raise TooManyLines(len(rows))
    return [(f"line {n}", parse_json(row, f"line {n}")) for n, row in rows]


def read_json_array(body: bytes) -> list[tuple[str, Any]]:
    """The entries of a JSON array body, each with its field name (``line 1`` is the first)."""
    document = parse_json(body)
    if not isinstance(document, list):
        raise InvalidInput.one("body", "must be a JSON array of log lines (or NDJSON)")
    if len(document) > MAX_LINES_PER_REQUEST:
        raise TooManyLines(len(document))
    return [(f"line {n}", entry) for n, entry in enumerate(document, 1)]


def parse_log_lines(entries: list[tuple[str, Any]]) -> list[LogLine]:
    """Every entry as a :class:`LogLine`, or :class:`InvalidInput` listing what is wrong."""
    problems: list[Problem] = []
    lines = []
    for field, entry in entries:
        line = _parse_entry(entry, field, problems)
        if line is not None:
            lines.append(line)
        if len(problems) >= 20:  # enough to fix a batch by; the rest would only repeat
            break
    if problems:
        raise InvalidInput(problems)
    return lines


def normal_level(value: str) -> str | None:
    """``value`` as one of :data:`LOG_LEVELS` (any case, common aliases), or None."""
    level = value.strip().lower()
    level = LEVEL_ALIASES.get(level, level)
    return level if level in LOG_LEVELS else None


def levels_from(least: str) -> tuple[str, ...]:
    """``least`` and every level more severe (``warn`` → warn, error)."""
    return LOG_LEVELS[LOG_LEVELS.index(least) :]


def from_epoch_ms(value: float) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


def _parse_entry(entry: Any, field: str, problems: list[Problem]) -> LogLine | None:
    if not isinstance(entry, dict):
        problems.append(Problem(field, "must be a JSON object with a message"))
        return None
    if (unstorable := json_problem(entry, field)) is not None:
        problems.append(unstorable)
        return None
    before = len(problems)
    message = _message(entry.get("message"), f"{field}.message", problems)
    timestamp = _timestamp(entry.get("timestamp"), f"{field}.timestamp", problems)
    level = _level(entry.get("level"), f"{field}.level", problems)
    service = _label(entry.get("serviceName"), f"{field}.serviceName", MAX_SERVICE_CHARACTERS)
    source_type, source_name = _source(entry.get("source"), f"{field}.source", problems)
    if (problem := _service_id(entry.get("serviceId"))) is not None:
        problems.append(Problem(f"{field}.serviceId", problem))
    stderr = entry.get("isStdErr")
    if stderr is not None and not isinstance(stderr, bool):
        problems.append(Problem(f"{field}.isStdErr", "must be true or false"))
    if isinstance(service, Problem):
        problems.append(service)
    if len(problems) > before:
        return None
    assert message is not None and level is not None and not isinstance(service, Problem)
    if service is None and source_type == "container":
        service = source_name
    return LogLine(
        message=message,
        level=level,
        source=source_type or ("container" if service else "system"),
        service=service,
        stream=None if stderr is None else ("stderr" if stderr else "stdout"),
        timestamp=timestamp,
    )


def _message(value: Any, field: str, problems: list[Problem]) -> str | None:
    if not isinstance(value, str):
        problems.append(Problem(field, "is required: the line's text, a string"))
        return None
    if len(value) > MAX_MESSAGE_CHARACTERS:
        problems.append(
            Problem(field, f"is longer than {MAX_MESSAGE_CHARACTERS:,} characters ({len(value):,})")
        )
        return None
    return value


def _timestamp(value: Any, field: str, problems: list[Problem]) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(Problem(field, "must be milliseconds since 1970-01-01 UTC, a number"))
        return None
    if (isinstance(value, float) and not math.isfinite(value)) or not 0 <= value <= LATEST_MS:
        problems.append(Problem(field, f"must be from 0 to {LATEST_MS:,} (milliseconds)"))
        return None
    return from_epoch_ms(value)


def _level(value: Any, field: str, problems: list[Problem]) -> str | None:
    if value is None:
        return "info"
    level = normal_level(value) if isinstance(value, str) else None
    if level is None:
        problems.append(Problem(field, f"must be one of {', '.join(LOG_LEVELS)}"))
    return level


def _source(value: Any, field: str, problems: list[Problem]) -> tuple[str | None, str | None]:
    """The source's type and name: ``{"type", "name"}`` as the iotistic agent sends it, or
    just the type as a string."""
    if value is None:
        return None, None
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        problems.append(Problem(field, 'must be an object {"type", "name"} or a string'))
        return None, None
    kind = _label(value.get("type"), f"{field}.type", MAX_SOURCE_CHARACTERS)
    name = _label(value.get("name"), f"{field}.name", MAX_SERVICE_CHARACTERS)
    found = [p for p in (kind, name) if isinstance(p, Problem)]
    problems.extend(found)
    if found:
        return None, None
    assert not isinstance(kind, Problem) and not isinstance(name, Problem)
    return kind.lower() if kind else None, name


def _label(value: Any, field: str, longest: int) -> str | Problem | None:
    """A short name (a service, a source): no control character, at most ``longest``."""
    if value is None:
        return None
    if not isinstance(value, str):
        return Problem(field, "must be a string")
    if len(value) > longest:
        return Problem(field, f"must be at most {longest} characters")
    if (problem := label_problem(value)) is not None:
        return Problem(field, problem)
    return value or None


def _service_id(value: Any) -> str | None:
    return None if value is None else id_problem(value)
