"""Control characters in a URL are refused before routing: one rule for every path and query.

A NUL in a path segment (``/api/v1/devices/a%00b``) or a query parameter would reach the
database as text, which PostgreSQL refuses (a 500) and SQLite stores and serves back. No
path or query value fleetwave reads has a use for a control character, so a request with one
is answered 422 here, naming the parameter, whatever route it was meant for. Ranges and
formats of single parameters (ids, cursors) are types in :mod:`fleetwave.schemas`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from fleetwave.domain.errors import Problem
from fleetwave.domain.text_rules import label_problem
from fleetwave.web import error


def url_problem(path: str, query_string: bytes) -> Problem | None:
    """The first control character in the (decoded) path or query, named, or None."""
    if (problem := label_problem(path)) is not None:
        return Problem("path", problem)
    # decoded as Starlette decodes it for the routes (bytes beyond UTF-8 become U+FFFD)
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if (problem := label_problem(name)) is not None:
            return Problem("query", f"a parameter's name {problem}")
        if (problem := label_problem(value)) is not None:
            return Problem(name, problem)
    return None


class RefuseControlCharacters:
    """The ASGI layer that applies :func:`url_problem` to every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = url_problem(scope["path"], scope.get("query_string", b""))
            if problem is not None:
                detail = [{"field": problem.field, "message": problem.message}]
                await error(422, f"invalid request: {problem}", detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)
