"""Which characters fleetwave stores: the one rule for every name, text and JSON document in.

PostgreSQL refuses NUL in ``text`` and ``jsonb``, and a lone surrogate (``"\\ud800"``) is not
Unicode at all, so UTF-8 cannot carry it; SQLite stores both and serves them back (a target
image ``app:\\u0000v9``). Such text is refused at the door, on both databases, naming the field.

Three strengths of the rule:

- **storable** (free-form JSON: apps, config, health checks, reports): no NUL, no surrogate;
- **prose** (descriptions, notes): also no control character but tab and line breaks;
- **label** (names, ids, tags, image references, patterns, URL parameters): no control
  character at all.
"""

from __future__ import annotations

import re
from typing import Any

from fleetwave.domain.errors import InvalidInput, Problem

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL_IN_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def storable_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL or a lone surrogate), or None."""
    return _describe(_UNSTORABLE.search(text))


def prose_problem(text: str) -> str | None:
    """Why ``text`` is not acceptable prose: unstorable, or a control character other than
    tab, line feed and carriage return."""
    return _describe(_CONTROL_IN_PROSE.search(text))


def label_problem(text: str) -> str | None:
    """Why ``text`` is not acceptable as a name, id, tag or image reference: any control
    character (tab and line breaks too), or unstorable."""
    return _describe(_CONTROL.search(text))


def _describe(found: re.Match[str] | None) -> str | None:
    if found is None:
        return None
    character = found.group()
    code = f"\\u{ord(character):04x}"
    if character == "\x00":
        return f"contains a NUL character ({code})"
    if "\ud800" <= character <= "\udfff":
        return f"contains a lone surrogate ({code}), which is not a Unicode character"
    return f"contains a control character ({code})"


def json_problem(document: Any, field: str) -> Problem | None:
    """The first string (key or value, in document order) of a JSON document that cannot be
    stored, naming where it is (``field.key[2].name``), or None. Iterative: depth costs no
    recursion."""
    pending: list[tuple[str, Any]] = [(field, document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if (problem := storable_problem(value)) is not None:
                return Problem(path, problem)
        elif isinstance(value, dict):
            children = []
            for key, item in value.items():
                if isinstance(key, str) and (problem := storable_problem(key)) is not None:
                    return Problem(path, f"has a key that {problem}")
                children.append((f"{path}.{key}", item))
            pending.extend(reversed(children))
        elif isinstance(value, list):
            pending.extend(reversed([(f"{path}[{i}]", item) for i, item in enumerate(value)]))
    return None


def check_json(document: Any, field: str) -> None:
    """Raise :class:`InvalidInput` naming the place if ``document`` holds unstorable text."""
    if (problem := json_problem(document, field)) is not None:
        raise InvalidInput([problem])
