"""``fleetwave registries …``: registries fleetwave polls (for those that cannot send webhooks).

A registry is named by its name or its id. A password is never a flag: it is typed at a
hidden prompt, or read from stdin's first line with ``--password-stdin``; nothing shows it
again (``password_set`` says whether there is one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import RenderableType
from rich.text import Text

from fleetwave.operator.client import AdminClient
from fleetwave.operator.commands import (
    JsonOption,
    TokenOption,
    UrlOption,
    admin_api,
    emit,
    fail,
)
from fleetwave.operator.outcomes import ExitCode
from fleetwave.operator.render import Row, cell, fields, table, when
from fleetwave.operator.user_commands import read_password

registries_cli = typer.Typer(
    help="Registries fleetwave polls for new tags (admins only).", no_args_is_help=True
)
REGISTRY_FIELDS = (
    "id", "name", "url", "poll_interval_seconds", "username", "password_set", "insecure",
    "enabled", "next_poll_at", "last_polled_at", "failures", "last_error",
)  # fmt: skip
Registry = Annotated[str, typer.Argument(help="the registry's name or id")]
Interval = Annotated[int | None, typer.Option("--interval", help="seconds between polls")]
Username = Annotated[str | None, typer.Option(help="user for basic or token authentication")]
PasswordFlag = Annotated[
    bool, typer.Option("--password", help="ask for a password (hidden prompt)")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from stdin's first line")
]
Insecure = Annotated[
    bool | None, typer.Option("--insecure/--secure", help="allow credentials over plain http")
]


@registries_cli.command("list")
def list_registries(
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Every polled registry, with how its last poll went."""
    with admin_api(url, token) as api:
        emit(api.request("GET", "/api/v1/registries"), as_json, registries_table)


@registries_cli.command("add")
def add_registry(
    name: Annotated[str, typer.Argument(help="a name for the registry")],
    registry_url: Annotated[str, typer.Argument(help="e.g. https://registry.local:5000")],
    interval: Interval = None,
    username: Username = None,
    password: PasswordFlag = False,
    password_stdin: PasswordStdin = False,
    insecure: Insecure = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Poll a registry: the repositories of its host that enabled policies name."""
    body: dict[str, Any] = {"name": name, "url": registry_url}
    body |= _changes(interval, username, password, password_stdin, insecure)
    with admin_api(url, token) as api:
        emit(api.request("POST", "/api/v1/registries", body=body), as_json, registry_view)


@registries_cli.command("show")
def show_registry(
    registry: Registry,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """One registry (whether a password is set, never the password)."""
    with admin_api(url, token) as api:
        emit(api.request("GET", _path(api, registry)), as_json, registry_view)


@registries_cli.command("update")
def update_registry(
    registry: Registry,
    registry_url: Annotated[str | None, typer.Option("--registry-url", help="a new URL")] = None,
    interval: Interval = None,
    username: Username = None,
    password: PasswordFlag = False,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[bool, typer.Option("--no-password", help="remove it")] = False,
    insecure: Insecure = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change some of a registry's settings; the others keep theirs."""
    body = _changes(interval, username, password, password_stdin, insecure)
    if registry_url is not None:
        body["url"] = registry_url
    if enabled is not None:
        body["enabled"] = enabled
    if no_password:
        body["password"] = None
    if not body:
        fail("nothing to change: give at least one option", ExitCode.USAGE)
    with admin_api(url, token) as api:
        answer = api.request("PATCH", _path(api, registry), body=body)
        emit(answer, as_json, registry_view)


@registries_cli.command("remove")
def remove_registry(registry: Registry, url: UrlOption = None, token: TokenOption = None) -> None:
    """Stop polling a registry."""
    with admin_api(url, token) as api:
        api.request("DELETE", _path(api, registry))
    typer.echo(f"registry {registry} removed")


def _changes(
    interval: int | None,
    username: str | None,
    password: bool,
    password_stdin: bool,
    insecure: bool | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if interval is not None:
        body["poll_interval_seconds"] = interval
    if username is not None:
        body["username"] = username
    if password or password_stdin:
        body["password"] = read_password(password_stdin)
    if insecure is not None:
        body["insecure"] = insecure
    return body


def _path(api: AdminClient, registry: str) -> str:
    """The API path of a registry given by id or by name."""
    if registry.isdigit():
        return f"/api/v1/registries/{registry}"
    for found in api.request("GET", "/api/v1/registries"):
        if found["name"] == registry:
            return f"/api/v1/registries/{found['id']}"
    fail(f"no registry named {registry!r}", ExitCode.API_ERROR)


def registries_table(items: Sequence[Row]) -> RenderableType:
    if not items:
        return Text("no registries")
    grid = table("ID", "NAME", "URL", "EVERY", "AUTH", "LAST POLL", "FAILURES", "LAST ERROR")
    for r in items:
        auth = r["username"] or "anonymous"
        grid.add_row(
            str(r["id"]),
            r["name"],
            r["url"],
            f"{r['poll_interval_seconds']} s",
            auth + (" (password set)" if r["password_set"] else ""),
            when(r["last_polled_at"]),
            cell(r["failures"]),
            cell(r["last_error"]),
        )
    return grid


def registry_view(registry: Row) -> RenderableType:
    return fields(registry, REGISTRY_FIELDS)
