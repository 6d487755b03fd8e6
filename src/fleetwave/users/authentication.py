"""Who a request is: the principal behind a bearer token or a dashboard session.

- The bootstrap admin token (the data directory's, or ``FLEETWAVE_ADMIN_TOKEN``) is the
  break-glass credential: role ``admin``, actor ``admin-token``; off when
  ``FLEETWAVE_ADMIN_TOKEN_DISABLED`` is set.
- A personal token (``fwt_…``) is found by its SHA-256 (a long random string, as device keys
  are) with its user in one query, so a revoked token, an expired one and a disabled user are
  refused at once on every replica.
- A dashboard session is a random secret in the cookie; the database keeps its SHA-256, its
  actor and its expiry, so logging out ends it everywhere.

Every refusal is the same ``None``: the caller answers 401 without saying which check failed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.roles import ADMIN_TOKEN_ACTOR, Principal, Role
from fleetwave.errors import TooManyRequests, Unauthorized
from fleetwave.ratelimit import FailureLimiter
from fleetwave.security import hash_key, tokens_equal
from fleetwave.store.db import Database
from fleetwave.store.tables import api_tokens, user_sessions, users
from fleetwave.users.passwords import Passwords

TRACKED = 10_000  # usernames, and addresses, whose failed logins are remembered at most


@dataclass(frozen=True)
class LoginLimits:
    """Failed dashboard logins allowed per username and per source address, in a window (per
    replica: each process counts its own)."""

    per_user: int
    per_address: int
    window_seconds: float


# last_used_at is written at most this often per token: a busy CI token is not a write per call
LAST_USED_RESOLUTION = timedelta(minutes=1)
ADMIN = Principal(ADMIN_TOKEN_ACTOR, Role.admin)


class Authenticator:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        passwords: Passwords,
        admin_token: str | None,
        session_lifetime: timedelta,
        login_limits: LoginLimits,
    ) -> None:
        self.db, self.clock, self.passwords = db, clock, passwords
        self.admin_token, self.session_lifetime = admin_token, session_lifetime
        window = timedelta(seconds=login_limits.window_seconds)
        self.by_user = FailureLimiter(clock, login_limits.per_user, window, TRACKED)
        self.by_address = FailureLimiter(clock, login_limits.per_address, window, TRACKED)

    async def bearer(self, token: str) -> Principal | None:
        """The principal of an ``Authorization: Bearer`` token, or None."""
        if self.admin_token is not None and tokens_equal(token, self.admin_token):
            return ADMIN
        now = self.clock.now()
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        api_tokens.c.id,
                        api_tokens.c.role,
                        api_tokens.c.expires_at,
                        api_tokens.c.last_used_at,
                        users.c.id.label("user_id"),
                        users.c.username,
                        users.c.role.label("user_role"),
                        users.c.disabled,
                    )
                    .join(users, users.c.id == api_tokens.c.user_id)
                    .where(api_tokens.c.token_hash == hash_key(token))
                )
            ).first()
        if row is None or row.disabled or (row.expires_at is not None and row.expires_at <= now):
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            async with self.db.transaction() as conn:
                await conn.execute(
                    update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now)
                )
        # a token never outranks its user, even one demoted after the token was made
        role = min(Role(row.role), Role(row.user_role), key=lambda r: r.rank)
        return Principal(row.username, role, user_id=row.user_id, token_id=row.id)

    async def log_in(self, username: str, password: str, address: str) -> Principal:
        """The user logging in to the dashboard; refused (401) or limited (429)."""
        waits = [self.by_address.wait(address), self.by_user.wait(username.lower())]
        if any(wait is not None for wait in waits):
            wait = max(w for w in waits if w is not None)
            raise TooManyRequests(
                f"too many failed logins for this user or from this address; "
                f"try again in {ceil(wait)} s",
                wait,
            )
        principal = await self.password(username, password)
        if principal is None:
            self.by_address.failed(address)
            self.by_user.failed(username.lower())
            raise Unauthorized("wrong username or password, or the user is disabled")
        return principal

    async def password(self, username: str, password: str) -> Principal | None:
        """The user whose name and password these are, if enabled; None otherwise."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(users.c.id, users.c.role, users.c.disabled, users.c.password_hash).where(
                        users.c.username == username
                    )
                )
            ).first()
        if not await self.passwords.matches_apart(password, row.password_hash if row else None):
            return None
        assert row is not None
        return None if row.disabled else Principal(username, Role(row.role), user_id=row.id)

    async def open_session(self, principal: Principal) -> str:
        """A new dashboard session for ``principal``: the cookie's value."""
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await _sweep(conn, now)
            await conn.execute(
                insert(user_sessions).values(
                    id_hash=hash_key(secret),
                    user_id=principal.user_id,
                    actor=principal.name,
                    expires_at=now + self.session_lifetime,
                    created_at=now,
                )
            )
        return secret

    async def session(self, cookie: str | None) -> Principal | None:
        """The principal of a dashboard session cookie, if the session is open."""
        if not cookie or len(cookie) > 128:
            return None
        now = self.clock.now()
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        user_sessions.c.actor,
                        user_sessions.c.user_id,
                        user_sessions.c.expires_at,
                        users.c.role,
                        users.c.disabled,
                    )
                    .outerjoin(users, users.c.id == user_sessions.c.user_id)
                    .where(user_sessions.c.id_hash == hash_key(cookie))
                )
            ).first()
        if row is None or row.expires_at <= now:
            return None
        if row.user_id is None:  # a session of the admin token
            return ADMIN_SESSION if self.admin_token is not None else None
        if row.disabled:
            return None
        return Principal(row.actor, Role(row.role), user_id=row.user_id, session=True)

    async def end_session(self, cookie: str | None) -> None:
        if not cookie or len(cookie) > 128:
            return
        async with self.db.transaction() as conn:
            await conn.execute(
                delete(user_sessions).where(user_sessions.c.id_hash == hash_key(cookie))
            )


ADMIN_SESSION = Principal(ADMIN_TOKEN_ACTOR, Role.admin, session=True)


async def _sweep(conn: AsyncConnection, now: datetime) -> None:
    """Expired sessions are deleted as new ones open."""
    await conn.execute(delete(user_sessions).where(user_sessions.c.expires_at <= now))
