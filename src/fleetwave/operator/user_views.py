"""What people read of users and their tokens: tables, and a new token shown once."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from fleetwave.operator.render import Row, cell, fields, table, when

USER_FIELDS = ("username", "role", "disabled", "created_at", "updated_at")
TOKEN_FIELDS = ("id", "name", "role", "token_prefix", "created_at", "expires_at")


def users_table(items: Sequence[Row]) -> RenderableType:
    if not items:
        return Text("no users")
    grid = table("USER", "ROLE", "DISABLED", "CREATED")
    for user in items:
        grid.add_row(
            user["username"], user["role"], cell(user["disabled"]), when(user["created_at"])
        )
    return grid


def user_view(user: Row) -> RenderableType:
    return fields(user, USER_FIELDS)


def tokens_table(items: Sequence[Row]) -> RenderableType:
    if not items:
        return Text("no tokens")
    grid = table("ID", "NAME", "ROLE", "STARTS WITH", "CREATED", "LAST USED", "EXPIRES")
    for token in items:
        grid.add_row(
            str(token["id"]),
            token["name"],
            token["role"],
            token["token_prefix"] + "…",
            when(token["created_at"]),
            when(token.get("last_used_at")),
            when(token.get("expires_at")) if token.get("expires_at") else "never",
        )
    return grid


def token_view(token: Row) -> RenderableType:
    shown = Text(f"token (shown once, only its hash is kept): {token['token']}", style="bold")
    return Group(fields(token, TOKEN_FIELDS), shown)
