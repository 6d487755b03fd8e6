"""Errors a use case raises; the API turns each kind into one HTTP status."""

from __future__ import annotations

from fleetwave.domain.errors import InvalidInput, Problem

__all__ = [
    "UNKNOWN_CURSOR",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Problem",
    "TooManyRequests",
    "Unauthorized",
]


UNKNOWN_CURSOR = (
    "names nothing on this list: pass the next_cursor of the previous page, or start again "
    "without a cursor"
)


class NotFound(LookupError):
    """The thing named does not exist (404)."""


class Conflict(Exception):
    """The request clashes with what is stored (409)."""


class Unauthorized(Exception):
    """No credentials, or wrong ones (401)."""


class Forbidden(Exception):
    """Valid credentials that do not cover this resource (403)."""


class TooManyRequests(Exception):
    """Rate limited (429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
