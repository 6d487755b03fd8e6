"""What every operator command shares: where the server is, how to print, how to fail.

A command opens :func:`admin_api`, calls the client, and hands the answer to :func:`emit`;
refusals and lost connections become one line on stderr and an exit code from
:mod:`fleetwave.operator.outcomes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console, RenderableType

from fleetwave.operator.client import AdminClient, ApiError, Unreachable
from fleetwave.operator.connection import MissingToken, admin_token, server_url
from fleetwave.operator.help import CONNECTION
from fleetwave.operator.outcomes import ExitCode, explain, for_http_status
from fleetwave.settings import Settings, SettingsError, load_settings

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="FLEETWAVE_URL",
        show_default=False,
        show_envvar=False,
        metavar="URL",
        rich_help_panel=CONNECTION,
        help="the server (default: FLEETWAVE_URL, else FLEETWAVE_HOST:FLEETWAVE_PORT)",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=["FLEETWAVE_TOKEN", "FLEETWAVE_ADMIN_TOKEN"],
        show_default=False,
        show_envvar=False,
        metavar="TOKEN",
        rich_help_panel=CONNECTION,
        help="a personal API token or the admin token (default: FLEETWAVE_TOKEN, else "
        "FLEETWAVE_ADMIN_TOKEN, else the data directory's admin token)",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", rich_help_panel=CONNECTION, help="print the API's JSON, for scripts"),
]
LimitOption = Annotated[int | None, typer.Option(help="at most this many per page")]
WIDE = 160  # tables into a pipe or a file are not squeezed into 80 columns


def fail(message: str, code: ExitCode) -> NoReturn:
    typer.echo(f"fleetwave: {' '.join(message.split())}", err=True)
    raise typer.Exit(int(code))


def usage_error(exc: ValueError) -> NoReturn:
    fail(str(exc), ExitCode.USAGE)


@cache
def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc), ExitCode.USAGE)


def resolve(url: str | None, token: str | None) -> tuple[str, str]:
    """The server's URL and the token: flags, environment, then the data directory's admin
    token."""
    try:
        return server_url(url, _settings), admin_token(token, _settings)
    except MissingToken as exc:
        fail(str(exc), ExitCode.UNAUTHORIZED)


@contextmanager
def admin_api(url: str | None, token: str | None) -> Iterator[AdminClient]:
    base, secret = resolve(url, token)
    try:
        with AdminClient(base, secret) as client:
            yield client
    except Unreachable as exc:
        fail(explain(exc), ExitCode.UNREACHABLE)
    except ApiError as exc:
        fail(explain(exc, base), for_http_status(exc.status))


def console() -> Console:
    out = Console(soft_wrap=False, highlight=False)
    return out if out.is_terminal else Console(width=WIDE, soft_wrap=False, highlight=False)


def emit(data: Any, as_json: bool, view: Callable[[Any], RenderableType]) -> None:
    """The API's JSON for scripts, else the view for people."""
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        console().print(view(data))


def parsed(parse: Callable[..., Any], *args: Any) -> Any:
    """A command-line value parsed, or a usage error naming the flag."""
    try:
        return parse(*args)
    except ValueError as exc:
        usage_error(exc)
