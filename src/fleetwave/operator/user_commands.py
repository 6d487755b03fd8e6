"""``fleetwave users …`` and ``fleetwave users tokens …``: users, roles and personal API tokens.

A password is never a flag (it would sit in the shell's history and in ``ps``): it is typed at
a hidden prompt, twice, or read from the first line of stdin with ``--password-stdin``. The
first admin is made with ``--offline``, which talks to the database directly: that work is the
server's, so the ``fleetwave`` command hands it in (``OfflineCreate``) and this module, an
HTTP client, stays one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from fleetwave.operator.args import parse_expiry
from fleetwave.operator.commands import (
    JsonOption,
    TokenOption,
    UrlOption,
    admin_api,
    emit,
    fail,
    parsed,
)
from fleetwave.operator.outcomes import ExitCode
from fleetwave.operator.user_views import token_view, tokens_table, user_view, users_table

OfflineCreate = Callable[[str, str, str], dict[str, Any]]
"""(username, password, role) → the new user, written to the database directly."""

users_cli = typer.Typer(help="Users, their roles and personal API tokens.", no_args_is_help=True)
tokens_cli = typer.Typer(help="Personal API tokens (a user's own, or anyone's for admins).")
users_cli.add_typer(tokens_cli, name="tokens", no_args_is_help=True)

Username = Annotated[str, typer.Argument(help="the user's name")]
RoleArgument = Annotated[str, typer.Argument(help="viewer, operator or admin")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from stdin's first line")
]


def install(cli: typer.Typer, offline_create: OfflineCreate) -> None:
    users_cli.command("create")(_create_command(offline_create))
    users_cli.registered_commands.insert(0, users_cli.registered_commands.pop())  # first in help
    cli.add_typer(users_cli, name="users")


def _create_command(offline_create: OfflineCreate) -> Callable[..., None]:
    def create_user(
        username: Username,
        role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
        password_stdin: PasswordStdin = False,
        offline: Annotated[
            bool,
            typer.Option(
                "--offline",
                help="write to the database directly (on the server's machine, with its "
                "settings): how the first admin is made",
            ),
        ] = False,
        url: UrlOption = None,
        token: TokenOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Create a user with a role; its password is asked for (12 to 256 characters)."""
        password = read_password(password_stdin)
        if offline:
            emit(offline_create(username, password, role), as_json, user_view)
            return
        with admin_api(url, token) as api:
            emit(api.create_user(username, password, role), as_json, user_view)

    return create_user


def read_password(from_stdin: bool) -> str:
    """A new password: stdin's first line (without its newline), or typed twice, hidden."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("--password-stdin: stdin held no password", ExitCode.USAGE)
        return password
    typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return typed


@users_cli.command("list")
def list_users(
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """Every user, with its role and whether it is disabled."""
    with admin_api(url, token) as api:
        emit(api.users(), as_json, users_table)


@users_cli.command("set-role")
def set_role(
    username: Username,
    role: RoleArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a user another role (the last enabled admin keeps its own)."""
    _update(username, {"role": role}, url, token, as_json)


@users_cli.command("set-password")
def set_password(
    username: Username,
    password_stdin: PasswordStdin = False,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give a user a new password; its dashboard sessions end."""
    _update(username, {"password": read_password(password_stdin)}, url, token, as_json)


@users_cli.command("disable")
def disable_user(
    username: Username,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Disable a user: its sessions and tokens stop working at once."""
    _update(username, {"disabled": True}, url, token, as_json)


@users_cli.command("enable")
def enable_user(
    username: Username,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enable a disabled user again (its tokens work again; it logs in anew)."""
    _update(username, {"disabled": False}, url, token, as_json)


@users_cli.command("delete")
def delete_user(username: Username, url: UrlOption = None, token: TokenOption = None) -> None:
    """Delete a user with its tokens and sessions (never the last enabled admin)."""
    with admin_api(url, token) as api:
        api.delete_user(username)
    typer.echo(f"deleted user {username}")


def _update(
    username: str, changes: dict[str, Any], url: str | None, token: str | None, as_json: bool
) -> None:
    with admin_api(url, token) as api:
        emit(api.update_user(username, changes), as_json, user_view)


@tokens_cli.command("create")
def create_token(
    username: Username,
    name: Annotated[str, typer.Option("--name", help="what it is for, e.g. ci")],
    role: Annotated[
        str | None, typer.Option(help="a lower role than the user's, to limit the token")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="when it stops working: a time (2027-01-01T00:00Z) or 90d, 12h from now"),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a personal API token; it is shown once (only its hash is kept)."""
    fields: dict[str, Any] = {"name": name, "role": role}
    if expires is not None:
        fields["expires_at"] = parsed(parse_expiry, expires, datetime.now(UTC))
    with admin_api(url, token) as api:
        created = api.create_token(username, {k: v for k, v in fields.items() if v is not None})
    emit(created, as_json, token_view)


@tokens_cli.command("list")
def list_tokens(
    username: Username,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """A user's tokens: name, role, first characters, when made, last used and expiring."""
    with admin_api(url, token) as api:
        emit(api.tokens(username), as_json, tokens_table)


@tokens_cli.command("revoke")
def revoke_token(
    username: Username,
    token_id: Annotated[int, typer.Argument(help="the token's id (see tokens list)")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke a token: refused at once, on every replica."""
    with admin_api(url, token) as api:
        api.revoke_token(username, token_id)
    typer.echo(f"revoked token {token_id} of {username}")
