"""Users and their personal API tokens: the use cases, each one transaction with its audit entry.

The last enabled admin can be neither demoted, disabled nor deleted (409): the enabled admins
are locked first, so two such changes at once cannot both pass. A disabled user's sessions are
deleted and its tokens stop working at once: every request reads the user's state.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.roles import Role
from fleetwave.errors import Conflict, Forbidden, InvalidInput, NotFound
from fleetwave.security import hash_key, new_key
from fleetwave.store.audit import record_change
from fleetwave.store.db import Database
from fleetwave.store.tables import api_tokens, audit_log, user_sessions, users
from fleetwave.users.passwords import Passwords, password_problem
from fleetwave.users.schemas import TokenCreate, UserCreate, UserUpdate

USER_COLUMNS = [c for c in users.c if c.name != "password_hash"]
TOKEN_COLUMNS = [c for c in api_tokens.c if c.name not in ("token_hash", "user_id")]
TOKEN_PREFIX = "fwt_"  # noqa: S105 - marks a token as ours, not a secret


class UserService:
    def __init__(self, db: Database, clock: Clock, passwords: Passwords) -> None:
        self.db, self.clock, self.passwords = db, clock, passwords

    # --- users -------------------------------------------------------------------------------

    async def create(self, data: UserCreate, actor: str) -> dict[str, Any]:
        _check_password(data.password)
        password_hash = await self.passwords.hash_apart(data.password)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            try:
                async with conn.begin_nested():
                    user_id = (
                        await conn.execute(
                            insert(users)
                            .values(
                                username=data.username,
                                password_hash=password_hash,
                                role=data.role.value,
                                created_at=now,
                                updated_at=now,
                            )
                            .returning(users.c.id)
                        )
                    ).scalar_one()
            except IntegrityError:
                raise Conflict(f"a user named {data.username!r} exists already") from None
            created = await _user(conn, data.username)
            await record_change(
                conn, at=now, actor=actor, action="created", object_type="user",
                object_id=user_id, after=created,
            )  # fmt: skip
        return created

    async def list_users(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(*USER_COLUMNS).order_by(users.c.username))
            return [dict(row._mapping) for row in rows]

    async def get(self, username: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await _user(conn, username)

    async def update(self, username: str, data: UserUpdate, actor: str) -> dict[str, Any]:
        if data.password is not None:
            _check_password(data.password)
        password_hash = (
            None if data.password is None else await self.passwords.hash_apart(data.password)
        )
        now = self.clock.now()
        async with self.db.transaction() as conn:
            admins = await _lock_enabled_admins(conn)
            before = await _user(conn, username)
            changes: dict[str, Any] = {}
            if data.role is not None:
                changes["role"] = data.role.value
            if data.disabled is not None:
                changes["disabled"] = data.disabled
            if password_hash is not None:
                changes["password_hash"] = password_hash
            stays_admin = changes.get("role", before["role"]) == Role.admin and not changes.get(
                "disabled", before["disabled"]
            )
            if admins == [before["id"]] and not stays_admin:
                raise Conflict(f"{username} is the last enabled admin: make another admin first")
            if not changes:
                return before
            await conn.execute(
                update(users).where(users.c.id == before["id"]).values(**changes, updated_at=now)
            )
            if changes.get("disabled") or "password_hash" in changes:
                await conn.execute(
                    delete(user_sessions).where(user_sessions.c.user_id == before["id"])
                )
            after = await _user(conn, username)
            await record_change(
                conn, at=now, actor=actor, action="updated", object_type="user",
                object_id=before["id"], before=before,
                after=after | ({"password_changed": True} if "password_hash" in changes else {}),
            )  # fmt: skip
        return after

    async def delete(self, username: str, actor: str) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            admins = await _lock_enabled_admins(conn)
            before = await _user(conn, username)
            if admins == [before["id"]]:
                raise Conflict(f"{username} is the last enabled admin: make another admin first")
            await conn.execute(delete(users).where(users.c.id == before["id"]))
            await record_change(
                conn, at=now, actor=actor, action="deleted", object_type="user",
                object_id=before["id"], before=before,
            )  # fmt: skip

    async def admins_exist(self) -> bool:
        async with self.db.read() as conn:
            return bool(await _enabled_admins(conn))

    async def audit(
        self, *, object_type: str | None, actor: str | None, limit: int, cursor: int | None
    ) -> dict[str, Any]:
        """The audit log, newest first, a page at a time (``cursor``: the last id seen)."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit + 1)
        if object_type is not None:
            query = query.where(audit_log.c.object_type == object_type)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if cursor is not None:
            query = query.where(audit_log.c.id < cursor)
        async with self.db.read() as conn:
            rows = [dict(row._mapping) for row in await conn.execute(query)]
        items = rows[:limit]
        return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}

    # --- personal API tokens -----------------------------------------------------------------

    async def create_token(
        self, username: str, data: TokenCreate, actor: str, actor_role: Role
    ) -> dict[str, Any]:
        """A token of ``username``'s role, or the lower one asked; never above ``actor_role``
        either, so a token limited to ``viewer`` cannot make its user an ``admin`` token."""
        now = self.clock.now()
        if data.expires_at is not None and data.expires_at <= now:
            raise InvalidInput.one("expires_at", "is in the past")
        token = new_key(TOKEN_PREFIX)
        async with self.db.transaction() as conn:
            owner = await _user(conn, username)
            held = Role(owner["role"])
            role = data.role or min(held, actor_role, key=lambda r: r.rank)
            if not held.covers(role):
                raise Forbidden(f"{username} is {held.value}: a token cannot be {role.value}")
            if not actor_role.covers(role):
                raise Forbidden(
                    f"this request acts as {actor_role.value}: it cannot make a {role.value} token"
                )
            try:
                async with conn.begin_nested():
                    token_id = (
                        await conn.execute(
                            insert(api_tokens)
                            .values(
                                user_id=owner["id"],
                                name=data.name,
                                token_hash=hash_key(token),
                                token_prefix=token[:12],
                                role=role.value,
                                expires_at=data.expires_at,
                                created_at=now,
                            )
                            .returning(api_tokens.c.id)
                        )
                    ).scalar_one()
            except IntegrityError:
                raise Conflict(f"{username} has a token named {data.name!r} already") from None
            created = await _token(conn, owner["id"], token_id)
            await record_change(
                conn, at=now, actor=actor, action="created", object_type="api_token",
                object_id=token_id, after=created | {"username": username},
            )  # fmt: skip
        return created | {"token": token}

    async def list_tokens(self, username: str) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            owner = await _user(conn, username)
            rows = await conn.execute(
                select(*TOKEN_COLUMNS)
                .where(api_tokens.c.user_id == owner["id"])
                .order_by(api_tokens.c.id)
            )
            return [dict(row._mapping) for row in rows]

    async def revoke_token(self, username: str, token_id: int, actor: str) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            owner = await _user(conn, username)
            before = await _token(conn, owner["id"], token_id)
            await conn.execute(delete(api_tokens).where(api_tokens.c.id == token_id))
            await record_change(
                conn, at=now, actor=actor, action="revoked", object_type="api_token",
                object_id=token_id, before=before | {"username": username},
            )  # fmt: skip


def _check_password(password: str) -> None:
    if (problem := password_problem(password)) is not None:
        raise InvalidInput.one("password", problem)


async def _user(conn: AsyncConnection, username: str) -> dict[str, Any]:
    row = (await conn.execute(select(*USER_COLUMNS).where(users.c.username == username))).first()
    if row is None:
        raise NotFound(f"no user named {username!r}")
    return dict(row._mapping)


async def _token(conn: AsyncConnection, user_id: int, token_id: int) -> dict[str, Any]:
    row = (
        await conn.execute(
            select(*TOKEN_COLUMNS).where(
                and_(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"no token {token_id} of this user")
    return dict(row._mapping)


def _enabled_admins_query() -> Any:
    return (
        select(users.c.id)
        .where(users.c.role == Role.admin.value, users.c.disabled.is_(False))
        .order_by(users.c.id)
    )


async def _enabled_admins(conn: AsyncConnection) -> list[int]:
    return list((await conn.execute(_enabled_admins_query())).scalars())


async def _lock_enabled_admins(conn: AsyncConnection) -> list[int]:
    """The enabled admins' ids, locked until commit (PostgreSQL; SQLite's writer lock does it)."""
    return list((await conn.execute(_enabled_admins_query().with_for_update())).scalars())
