"""Secrets: generating keys, storing only their hashes, comparing in constant time.

Device and provisioning keys are long random strings (≥ 32 characters, ≥ 128 bits), so a
single SHA-256 is the right hash: it cannot be brute-forced and keeps the poll path cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
from pathlib import Path

MIN_DEVICE_KEY_LENGTH = 32
_ALPHABET = set(string.ascii_letters + string.digits + "-_.~+/=")


def new_key(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


def weak_key_reason(key: str) -> str | None:
    """Why a device-proposed key is too weak to accept, or None if it is fine."""
    if len(key) < MIN_DEVICE_KEY_LENGTH:
        return f"must be at least {MIN_DEVICE_KEY_LENGTH} characters"
    if not set(key) <= _ALPHABET:
        return "may only use letters, digits and - _ . ~ + / ="
    if len(set(key)) < 10:
        return "is not random enough (too few distinct characters)"
    return None


def tokens_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def load_or_create_admin_token(path: Path) -> tuple[str, bool]:
    """The admin token kept at ``path`` (mode 0600), creating it once. Returns (token, created)."""
    return load_or_create_secret(path, "fwa_")


def load_or_create_secret(path: Path, prefix: str) -> tuple[str, bool]:
    """A secret kept at ``path`` (mode 0600), created once. Returns (secret, created)."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_key(prefix)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True
