"""Dashboard sessions: a signed, expiring session id in an HTTP-only cookie.

The cookie never holds the admin token. It holds a random session id and its expiry, signed
with a key derived from the admin token, so a changed token ends every session and no session
can be forged without it. The CSRF token of a session is an HMAC of its id: forms carry it, and
the server recomputes and compares it in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from fleetwave.clock import Clock

SESSION_COOKIE = "fleetwave_session"


class Sessions:
    def __init__(self, admin_token: str, clock: Clock, lifetime: timedelta) -> None:
        self._key = hmac.new(
            admin_token.encode(), b"fleetwave dashboard sessions", hashlib.sha256
        ).digest()
        self.clock, self.lifetime = clock, lifetime
        # Logged-out sessions of this process, until they would have expired anyway.
        self._ended: dict[str, datetime] = {}

    def open(self) -> str:
        """A new session: the cookie's value."""
        expires = int((self.clock.now() + self.lifetime).timestamp())
        payload = f"{secrets.token_urlsafe(18)}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    def session_id(self, cookie: str | None) -> str | None:
        """The session id a cookie carries, if its signature holds and it has not ended."""
        if not cookie or cookie.count(".") != 2:
            return None
        session_id, expires, signature = cookie.split(".")
        if not _same(signature, self._sign(f"{session_id}.{expires}")):
            return None
        if not expires.isdigit() or int(expires) <= self.clock.now().timestamp():
            return None
        return None if session_id in self._ended else session_id

    def end(self, cookie: str | None) -> None:
        session_id = self.session_id(cookie)
        if session_id is None:
            return
        now = self.clock.now()
        self._ended = {sid: until for sid, until in self._ended.items() if until > now}
        self._ended[session_id] = now + self.lifetime

    def csrf_token(self, session_id: str) -> str:
        return self._sign(f"csrf:{session_id}")

    def csrf_valid(self, session_id: str, token: str | None) -> bool:
        return token is not None and _same(token, self.csrf_token(session_id))

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
