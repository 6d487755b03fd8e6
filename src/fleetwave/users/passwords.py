"""Passwords: argon2id hashes, and the rules a new password must meet.

The hash's cost is argon2-cffi's default (RFC 9106's second recommendation: 64 MiB, 3 passes),
lowered only by tests (``Passwords(cheap=True)``). A password is at least 12 characters and at
most 256: long passphrases are welcome, and the bound only keeps a hash from chewing megabytes.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    if len(set(password)) < 5:
        return "is too repetitive (fewer than 5 distinct characters)"
    return None


class Passwords:
    def __init__(self, *, cheap: bool = False) -> None:
        self._hasher = PasswordHasher(time_cost=1, memory_cost=1024) if cheap else PasswordHasher()
        self._nobody: str | None = None  # made on first use: start-up stays quick

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    # Hashing takes a deliberate fraction of a second of CPU: the server does it in a thread
    # of its own, outside any transaction, so polls and other requests never wait on a login.
    async def hash_apart(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def matches_apart(self, password: str, stored_hash: str | None) -> bool:
        return await asyncio.to_thread(self.matches, password, stored_hash)

    def matches(self, password: str, stored_hash: str | None) -> bool:
        """Whether ``password`` is the one hashed as ``stored_hash`` (None: an unknown user,
        checked against a hash of nothing anyone knows, for the same cost)."""
        if self._nobody is None:
            # checked when the username is unknown, so that the answer takes as long either way
            self._nobody = self._hasher.hash("fleetwave: no such user")
        try:
            return self._hasher.verify(stored_hash or self._nobody, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False
