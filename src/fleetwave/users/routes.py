"""Users, their personal API tokens and the audit log over HTTP (``/api/v1/users``,
``/api/v1/audit``, ``/api/v1/me``). Who may call each: ``permissions.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from fleetwave.api_document import errors
from fleetwave.bootstrap import Container
from fleetwave.domain.roles import Principal
from fleetwave.users.schemas import (
    AuditPage,
    Me,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from fleetwave.web import Caller, RowCursor, RowId, container, require_admin

router = APIRouter(prefix="/api/v1", tags=["users"], dependencies=[Depends(require_admin)])
App = Annotated[Container, Depends(container)]
LAST_ADMIN = (409, "it is the last enabled admin")


@router.get("/me", response_model=Me)
async def me(caller: Caller) -> dict[str, Any]:
    """Who this request authenticated as, and its role."""
    return _me(caller)


@router.get("/users", response_model=list[UserRead])
async def list_users(app: App) -> list[dict[str, Any]]:
    """Every user, by name."""
    return await app.users.list_users()


@router.post(
    "/users",
    status_code=201,
    response_model=UserRead,
    responses=errors((409, "a user of this name exists")),
)
async def create_user(body: UserCreate, app: App, caller: Caller) -> dict[str, Any]:
    """A new user with a role; its password is 12 to 256 characters, stored as argon2id."""
    return await app.users.create(body, caller.name)


@router.get("/users/{username}", response_model=UserRead, responses=errors(404))
async def get_user(username: str, app: App) -> dict[str, Any]:
    """One user: its role, whether it is disabled, when it was made and changed."""
    return await app.users.get(username)


@router.patch("/users/{username}", response_model=UserRead, responses=errors(404, LAST_ADMIN))
async def update_user(username: str, body: UserUpdate, app: App, caller: Caller) -> dict[str, Any]:
    """Change a user's role, password, or disable it (its sessions and tokens stop at once).
    The last enabled admin cannot be demoted or disabled (409)."""
    return await app.users.update(username, body, caller.name)


@router.delete("/users/{username}", status_code=204, responses=errors(404, LAST_ADMIN))
async def delete_user(username: str, app: App, caller: Caller) -> Response:
    """Delete a user with its tokens and sessions; never the last enabled admin (409)."""
    await app.users.delete(username, caller.name)
    return Response(status_code=204)


@router.get("/users/{username}/tokens", response_model=list[TokenRead], responses=errors(404))
async def list_tokens(username: str, app: App) -> list[dict[str, Any]]:
    """A user's personal API tokens (never the tokens themselves)."""
    return await app.users.list_tokens(username)


@router.post(
    "/users/{username}/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses=errors(404, (409, "the user has a token of this name")),
)
async def create_token(
    username: str, body: TokenCreate, app: App, caller: Caller
) -> dict[str, Any]:
    """A personal API token, shown once in this answer; only its hash is stored. Its role is
    the user's, or a lower one if asked; never above the role of the token asking for it."""
    return await app.users.create_token(username, body, caller.name, caller.role)


@router.delete("/users/{username}/tokens/{token_id}", status_code=204, responses=errors(404))
async def revoke_token(username: str, token_id: RowId, app: App, caller: Caller) -> Response:
    """Revoke a token: refused at once, on every replica."""
    await app.users.revoke_token(username, token_id, caller.name)
    return Response(status_code=204)


@router.get("/audit", response_model=AuditPage)
async def audit(
    app: App,
    object_type: str | None = None,
    actor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: RowCursor = None,
) -> dict[str, Any]:
    """Who changed policies, users, tokens, registries and keys, when, with before and after
    (secrets left out); newest first."""
    return await app.users.audit(object_type=object_type, actor=actor, limit=limit, cursor=cursor)


def _me(caller: Principal) -> dict[str, Any]:
    return {"name": caller.name, "role": caller.role, "user": caller.user_id is not None}
