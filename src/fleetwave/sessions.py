"""Dashboard sessions: the cookie, and the CSRF token derived from it.

The cookie (HTTP-only, SameSite=Strict) holds a random secret; the database keeps only its
SHA-256 with the session's actor and expiry (``users.authentication``), so logging out or
disabling a user ends it on every replica at once. A session's CSRF token is a keyed hash of
that secret: forms carry it, and only a page that could read the cookie's session could have
made it.
"""

from __future__ import annotations

import hashlib
import hmac

SESSION_COOKIE = "fleetwave_session"


def csrf_token(cookie: str) -> str:
    return hmac.new(cookie.encode(), b"fleetwave csrf", hashlib.sha256).hexdigest()


def csrf_valid(cookie: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(token.encode(), csrf_token(cookie).encode())
