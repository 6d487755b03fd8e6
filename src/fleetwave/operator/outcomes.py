"""Exit codes that scripts can trust, in one table.

Tool problems (the request was refused, no connection, a wrong token) and the ways a watched
rollout can end get distinct codes, so ``case $?`` can tell them apart.
"""

from __future__ import annotations

from enum import IntEnum

from fleetwave.operator.client import ApiError, Unreachable


class ExitCode(IntEnum):
    OK = 0  # the command did what it said; `watch`: the rollout completed
    API_ERROR = 1  # the server refused the request: not found, conflict, invalid input
    USAGE = 2  # bad arguments or local settings (typer's own code for usage errors)
    UNREACHABLE = 3  # no connection to the server (refused, timed out, unknown host)
    UNAUTHORIZED = 4  # no token found, or the server refused it (401) or its role (403)
    FAILED = 10  # `watch`: the rollout ended failed
    CANCELLED = 11  # `watch`: the rollout was cancelled (or rejected, or superseded)
    ROLLED_BACK = 12  # `watch`: the rollout was rolled back
    PAUSED = 13  # `watch`: the rollout is paused (by an operator or the failure gate)
    TIMED_OUT = 14  # `watch --timeout`: still unfinished when the time ran out


ENDINGS = {
    "completed": ExitCode.OK,
    "failed": ExitCode.FAILED,
    "cancelled": ExitCode.CANCELLED,
    "rolled_back": ExitCode.ROLLED_BACK,
}


def watch_ending(status: str, *, through_pause: bool = False) -> ExitCode | None:
    """How ``watch`` ends on a rollout in ``status``, or None to keep watching."""
    if status == "paused" and not through_pause:
        return ExitCode.PAUSED
    return ENDINGS.get(status)


def for_http_status(status: int) -> ExitCode:
    """The exit code of a request the server answered with ``status`` (≥ 400)."""
    return ExitCode.UNAUTHORIZED if status in (401, 403) else ExitCode.API_ERROR


def explain(problem: ApiError | Unreachable, url: str | None = None) -> str:
    """One line for stderr: what went wrong and what to check."""
    if isinstance(problem, Unreachable):
        return (
            f"cannot reach fleetwave at {problem.url} ({problem.reason}); is the server "
            "running there? Set --url or FLEETWAVE_URL"
        )
    where = f" at {url}" if url else ""
    if problem.status == 401:
        return (
            f"the server{where} refused the token ({problem.message}); "
            "check --token, FLEETWAVE_TOKEN or FLEETWAVE_ADMIN_TOKEN"
        )
    return f"{problem.message} (HTTP {problem.status})"
