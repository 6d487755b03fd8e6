"""Registry passwords, sealed at rest: usable by the poller, never shown again.

fleetwave depends on no cryptography library, so the seal is built from the standard
library: an HMAC-SHA256 keystream (counter mode) with a random 16-byte nonce, then an
HMAC-SHA256 tag over nonce and ciphertext (encrypt-then-MAC), with keys derived from one
secret kept in the data directory (``registry-key``, mode 0600, made once). A copy of the
database alone reveals no password; the data directory's key is needed too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "fws1:"
_NONCE, _TAG = 16, 32


class SealBroken(ValueError):
    """A sealed value that this key did not seal, or that was altered."""


class Sealer:
    def __init__(self, secret: str) -> None:
        root = secret.encode()
        self._enc = hmac.new(root, b"fleetwave registry password: encryption", "sha256").digest()
        self._mac = hmac.new(root, b"fleetwave registry password: integrity", "sha256").digest()

    def seal(self, plain: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        data = plain.encode()
        sealed = nonce + _xor(data, self._stream(nonce, len(data)))
        tag = hmac.new(self._mac, sealed, hashlib.sha256).digest()
        return PREFIX + base64.urlsafe_b64encode(sealed + tag).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SealBroken("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(PREFIX) :].encode())
        except ValueError:
            raise SealBroken("not a sealed value") from None
        body, tag = raw[:-_TAG], raw[-_TAG:]
        if len(body) < _NONCE or not hmac.compare_digest(
            tag, hmac.new(self._mac, body, hashlib.sha256).digest()
        ):
            raise SealBroken("sealed with another key, or altered")
        nonce, cipher = body[:_NONCE], body[_NONCE:]
        return _xor(cipher, self._stream(nonce, len(cipher))).decode()

    def _stream(self, nonce: bytes, length: int) -> bytes:
        blocks = (length + 31) // 32
        return b"".join(
            hmac.new(self._enc, nonce + i.to_bytes(8, "big"), hashlib.sha256).digest()
            for i in range(blocks)
        )[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))
