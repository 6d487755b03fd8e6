"""Request and response models of users and their personal API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from fleetwave.domain.roles import Role
from fleetwave.schemas import Label, Strict, UtcDatetime

Username = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"),
]
# Checked by the service (users.passwords.password_problem), so that a weak password is named
# as such; the bound here only keeps a body from carrying a novel. Never stripped: the login
# form takes a password as typed, spaces and all.
Password = Annotated[str, StringConstraints(strip_whitespace=False, max_length=4096)]
TokenName = Annotated[Label, Field(min_length=1, max_length=100)]


class UserCreate(Strict):
    username: Username = Field(description="letters, digits and . _ @ -; unique")
    password: Password = Field(description="12 to 256 characters")
    role: Role


class UserUpdate(Strict):
    role: Role | None = None
    disabled: bool | None = Field(
        default=None, description="true: its sessions and tokens stop working at once"
    )
    password: Password | None = Field(default=None, description="a new password")


class UserRead(BaseModel):
    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime


class TokenCreate(Strict):
    name: TokenName = Field(description="what it is for, unique among the user's tokens")
    expires_at: UtcDatetime | None = Field(default=None, description="UTC; omit for no expiry")
    role: Role | None = Field(
        default=None, description="the user's role if omitted; a lower one to limit the token"
    )


class TokenRead(BaseModel):
    id: int
    name: str
    token_prefix: str = Field(description="the token's first characters, to recognise it")
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="shown once; only its hash is stored")


class Me(BaseModel):
    name: str = Field(description="the actor recorded for this caller's actions")
    role: Role
    user: bool = Field(description="false for the break-glass admin token")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str = Field(description="created, updated, deleted or revoked")
    object_type: str = Field(description="policy, user, api_token, provisioning_key, …")
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntry] = Field(description="newest first")
    next_cursor: int | None = Field(description="pass as ?cursor= for older entries")
