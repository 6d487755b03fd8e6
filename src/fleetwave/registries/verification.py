"""Is a registry webhook really from the registry? Each provider's way of proving it.

- GHCR (GitHub) signs the raw body: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``.
- Docker Hub and Quay offer nothing, so the secret travels in the webhook URL we give them.
- Distribution (and GitLab's registry), Harbor and ACR send a header we configure on them:
  ``Authorization`` (``Bearer <secret>`` or the bare secret) or ``X-Fleetwave-Webhook-Secret``.

Every comparison is constant-time, and an empty configured secret verifies nothing.
Pure: standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from fleetwave.registries.payloads import PROVIDERS

SIGNATURE_PREFIX = "sha256="
FLEETWAVE_HEADER = "x-fleetwave-webhook-secret"
_URL_SECRET_PROVIDERS = ("dockerhub", "quay")
_HEADER_SECRET_PROVIDERS = ("distribution", "harbor", "acr")
_BEARER = "bearer "


def github_signature_valid(raw_body: bytes, signature_header: str | None, secret: str) -> bool:
    """True when ``signature_header`` is ``sha256=<hex HMAC-SHA256 of raw_body, key secret>``."""
    if not _configured(secret) or not signature_header:
        return False
    given = signature_header.strip()
    if given[: len(SIGNATURE_PREFIX)].lower() != SIGNATURE_PREFIX:
        return False
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    given_hex = given[len(SIGNATURE_PREFIX) :].lower()
    return hmac.compare_digest(expected.encode(), given_hex.encode())


def shared_secret_valid(given: str | None, secret: str) -> bool:
    """True when ``given`` is the secret, bare or as ``Bearer <secret>``."""
    if not _configured(secret) or not given or not given.strip():
        return False
    candidate = given.strip()
    bare = hmac.compare_digest(candidate.encode(), secret.encode())
    token = (
        candidate[len(_BEARER) :].strip() if candidate[: len(_BEARER)].lower() == _BEARER else ""
    )
    bearer = hmac.compare_digest(token.encode(), secret.encode())
    return bare or bearer


def verify(
    provider: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    url_secret: str | None,
    secret: str,
) -> bool:
    """Whether the delivery proves knowledge of ``secret`` the provider's way.

    Raises ``ValueError`` for a provider not in ``PROVIDERS``."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    if not _configured(secret):
        return False
    lowered = {str(name).lower(): value for name, value in headers.items()}
    if provider == "ghcr":
        return github_signature_valid(raw_body, lowered.get("x-hub-signature-256"), secret)
    if provider in _URL_SECRET_PROVIDERS:
        return shared_secret_valid(url_secret, secret)
    assert provider in _HEADER_SECRET_PROVIDERS
    by_authorization = shared_secret_valid(lowered.get("authorization"), secret)
    by_secret_header = shared_secret_valid(lowered.get(FLEETWAVE_HEADER), secret)
    return by_authorization or by_secret_header


def _configured(secret: str) -> bool:
    return bool(secret and secret.strip())
