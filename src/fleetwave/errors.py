"""Errors a use case raises; the API turns each kind into one HTTP status."""

from __future__ import annotations

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.short_ids import Resolution

__all__ = [
    "UNKNOWN_CURSOR",
    "Ambiguous",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Problem",
    "TooManyRequests",
    "Unauthorized",
    "raise_unless_one",
]


UNKNOWN_CURSOR = (
    "names nothing on this list: pass the next_cursor of the previous page, or start again "
    "without a cursor"
)


class NotFound(LookupError):
    """The thing named does not exist (404)."""


class Conflict(Exception):
    """The request clashes with what is stored (409)."""


class Ambiguous(Conflict):
    """A short id that begins several ids (409): the answer lists them in its ``detail``."""

    def __init__(self, message: str, matches: list[str]) -> None:
        super().__init__(message)
        self.detail = {"matches": matches}


class Unauthorized(Exception):
    """No credentials, or wrong ones (401)."""


class Forbidden(Exception):
    """Valid credentials that do not cover this resource (403)."""


class TooManyRequests(Exception):
    """Rate limited (429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def raise_unless_one(resolution: Resolution, field: str) -> str:
    """The full id a short id names, or the error that says why it names none."""
    if resolution.full is not None:
        return resolution.full
    message = resolution.problem or "names nothing"
    if resolution.too_short:
        raise InvalidInput.one(field, message)
    if resolution.matches:
        raise Ambiguous(message, list(resolution.matches))
    raise NotFound(message)
