"""JSON as fleetwave reads it, one rule for every body and field that carries JSON: device
reports, webhook payloads, admin bodies and the dashboard's JSON form fields.

Not JSON (bad syntax, bad UTF-8, ``NaN`` or ``Infinity``) is invalid input (422) naming the
field and the line and column; JSON nested deeper than the parser can follow (its recursion
limit, about a thousand levels) is refused as :class:`NestedTooDeeply` (400), never a crash.
"""

from __future__ import annotations

import json
from typing import Any

from fleetwave.domain.errors import InvalidInput, Problem


class NestedTooDeeply(InvalidInput):
    """JSON nested deeper than the parser follows (a 400 at the API: no valid request is)."""

    def __init__(self, field: str) -> None:
        super().__init__([Problem(field, "is nested too deeply to be read as JSON")])


def parse_json(text: bytes | str, field: str = "body") -> Any:
    """The JSON value of ``text``, or the problem with it named after ``field``."""
    try:
        return json.loads(text, parse_constant=_refuse_non_finite)
    except RecursionError:
        raise NestedTooDeeply(field) from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidInput.one(field, f"is not valid JSON ({exc})") from None


def not_json(field: str, message: str, document: str, position: int) -> InvalidInput:
    """The problem of ``document`` at ``position`` worded as :func:`parse_json` words it, for
    bodies a framework parsed (it names the offset, not the line and column)."""
    return InvalidInput.one(
        field, f"is not valid JSON ({json.JSONDecodeError(message, document, position)})"
    )


def _refuse_non_finite(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")
