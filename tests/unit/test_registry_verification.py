"""Registry webhook authenticity: the right secret passes, a wrong, missing or empty one never."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from fleetwave.registries.payloads import PROVIDERS
from fleetwave.registries.verification import (
    github_signature_valid,
    shared_secret_valid,
    verify,
)

SECRET = "wh-secret-5f0c2b7e9d14a8c3"
OTHER = "wh-secret-0000000000000000"
BODY = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "webhooks"
    / "ghcr"
    / "package_published_container.json"
).read_bytes()

# GitHub's documented test vector ("Validating webhook deliveries").
GITHUB_DOC_SECRET = "It's a Secret to Everybody"
GITHUB_DOC_BODY = b"Hello, World!"
GITHUB_DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- GitHub's signature ----------------------------------------------------------------------


def test_github_documented_vector() -> None:
    assert sign(GITHUB_DOC_BODY, GITHUB_DOC_SECRET) == GITHUB_DOC_SIGNATURE
    assert github_signature_valid(GITHUB_DOC_BODY, GITHUB_DOC_SIGNATURE, GITHUB_DOC_SECRET)


@pytest.mark.parametrize("index", range(len(GITHUB_DOC_BODY)))
def test_changing_any_byte_of_the_body_fails(index: int) -> None:
    tampered = bytearray(GITHUB_DOC_BODY)
    tampered[index] ^= 0x01
    assert not github_signature_valid(bytes(tampered), GITHUB_DOC_SIGNATURE, GITHUB_DOC_SECRET)


def test_the_signature_covers_the_raw_bytes_not_the_parsed_json() -> None:
    signature = sign(BODY, SECRET)
    reserialised = json.dumps(json.loads(BODY)).encode()
    assert reserialised != BODY
    assert github_signature_valid(BODY, signature, SECRET)
    assert not github_signature_valid(reserialised, signature, SECRET)


@pytest.mark.parametrize(
    ("header", "secret", "expected"),
    [
        pytest.param(sign(BODY, SECRET), SECRET, True, id="right"),
        pytest.param("  " + sign(BODY, SECRET) + " ", SECRET, True, id="surrounding spaces"),
        pytest.param(sign(BODY, SECRET).upper(), SECRET, True, id="upper-case hex"),
        pytest.param(sign(BODY, OTHER), SECRET, False, id="signed with another secret"),
        pytest.param(sign(BODY, SECRET), OTHER, False, id="checked with another secret"),
        pytest.param(sign(BODY, SECRET)[len("sha256=") :], SECRET, False, id="no sha256= prefix"),
        pytest.param(
            "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
            SECRET,
            False,
            id="sha1 signature",
        ),
        pytest.param(
            "sha512=" + sign(BODY, SECRET)[len("sha256=") :], SECRET, False, id="another prefix"
        ),
        pytest.param(sign(BODY, SECRET)[:-1], SECRET, False, id="truncated"),
        pytest.param(sign(BODY, SECRET) + "0", SECRET, False, id="one digit too many"),
        pytest.param("sha256=", SECRET, False, id="prefix only"),
        pytest.param("sha256=" + "é" * 64, SECRET, False, id="non-ascii"),
        pytest.param(None, SECRET, False, id="missing"),
        pytest.param("", SECRET, False, id="empty header"),
        pytest.param(sign(BODY, ""), "", False, id="empty secret, signed with the empty key"),
        pytest.param(sign(BODY, "   "), "   ", False, id="blank secret"),
    ],
)
def test_github_signature(header: str | None, secret: str, expected: bool) -> None:
    assert github_signature_valid(BODY, header, secret) is expected


# --- A shared secret, bare or as a bearer token ----------------------------------------------


@pytest.mark.parametrize(
    ("given", "secret", "expected"),
    [
        pytest.param(SECRET, SECRET, True, id="bare"),
        pytest.param(f"Bearer {SECRET}", SECRET, True, id="bearer"),
        pytest.param(f"bearer {SECRET}", SECRET, True, id="bearer, any case"),
        pytest.param(f"  Bearer   {SECRET} ", SECRET, True, id="bearer, extra spaces"),
        pytest.param(OTHER, SECRET, False, id="wrong"),
        pytest.param(f"Bearer {OTHER}", SECRET, False, id="wrong bearer"),
        pytest.param(f"Basic {SECRET}", SECRET, False, id="another scheme"),
        pytest.param(SECRET[:-1], SECRET, False, id="a prefix of it"),
        pytest.param(SECRET + "x", SECRET, False, id="it and more"),
        pytest.param(f"Bearer{SECRET}", SECRET, False, id="bearer without a space"),
        pytest.param("Bearer ", SECRET, False, id="bearer, nothing after"),
        pytest.param(None, SECRET, False, id="missing"),
        pytest.param("", SECRET, False, id="empty"),
        pytest.param("é" * 8, SECRET, False, id="non-ascii"),
        pytest.param("", "", False, id="empty secret, empty given"),
        pytest.param("Bearer ", "", False, id="empty secret, empty bearer"),
        pytest.param("   ", "   ", False, id="blank secret, blank given"),
    ],
)
def test_shared_secret(given: str | None, secret: str, expected: bool) -> None:
    assert shared_secret_valid(given, secret) is expected


# --- Each provider's way ---------------------------------------------------------------------

HEADER_PROVIDERS = ("distribution", "harbor", "acr")
URL_PROVIDERS = ("dockerhub", "quay")


def _cases() -> list[Any]:
    cases: list[Any] = []

    def case(
        provider: str,
        name: str,
        headers: dict[str, str],
        url_secret: str | None,
        expected: bool,
        body: bytes = BODY,
    ) -> None:
        cases.append(
            pytest.param(provider, body, headers, url_secret, expected, id=f"{provider}: {name}")
        )

    signed = sign(BODY, SECRET)
    case("ghcr", "signed", {"X-Hub-Signature-256": signed}, None, True)
    case("ghcr", "header name in lower case", {"x-hub-signature-256": signed}, None, True)
    tampered = bytearray(BODY)
    tampered[len(BODY) // 2] ^= 0x01
    case("ghcr", "one byte changed", {"X-Hub-Signature-256": signed}, None, False, bytes(tampered))
    case(
        "ghcr",
        "signed with another secret",
        {"X-Hub-Signature-256": sign(BODY, OTHER)},
        None,
        False,
    )
    case("ghcr", "no signature", {}, None, False)
    case("ghcr", "secret in the URL does not count", {}, SECRET, False)
    case("ghcr", "bearer secret does not count", {"Authorization": f"Bearer {SECRET}"}, None, False)
    case("ghcr", "SHA-1 header does not count", {"X-Hub-Signature": signed}, None, False)

    for provider in URL_PROVIDERS:
        case(provider, "secret in the URL", {}, SECRET, True)
        case(provider, "wrong secret in the URL", {}, OTHER, False)
        case(provider, "no secret in the URL", {}, None, False)
        case(provider, "empty secret in the URL", {}, "", False)
        case(
            provider, "a header does not count", {"Authorization": f"Bearer {SECRET}"}, None, False
        )
        case(provider, "a signature does not count", {"X-Hub-Signature-256": signed}, None, False)

    for provider in HEADER_PROVIDERS:
        case(provider, "Authorization: Bearer", {"Authorization": f"Bearer {SECRET}"}, None, True)
        case(provider, "bare Authorization", {"Authorization": SECRET}, None, True)
        case(provider, "lower-case header name", {"authorization": f"Bearer {SECRET}"}, None, True)
        case(provider, "secret header", {"X-Fleetwave-Webhook-Secret": SECRET}, None, True)
        case(
            provider,
            "wrong Authorization, right secret header",
            {"Authorization": f"Bearer {OTHER}", "X-Fleetwave-Webhook-Secret": SECRET},
            None,
            True,
        )
        case(provider, "wrong Authorization", {"Authorization": f"Bearer {OTHER}"}, None, False)
        case(provider, "wrong secret header", {"X-Fleetwave-Webhook-Secret": OTHER}, None, False)
        case(provider, "no header", {}, None, False)
        case(provider, "empty Authorization", {"Authorization": ""}, None, False)
        case(provider, "secret in the URL does not count", {}, SECRET, False)
        case(provider, "a signature does not count", {"X-Hub-Signature-256": signed}, None, False)
    return cases


@pytest.mark.parametrize(("provider", "body", "headers", "url_secret", "expected"), _cases())
def test_verify(
    provider: str, body: bytes, headers: dict[str, str], url_secret: str | None, expected: bool
) -> None:
    assert verify(provider, body, headers, url_secret, SECRET) is expected


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("configured", ["", "   "])
def test_an_empty_configured_secret_verifies_nothing(provider: str, configured: str) -> None:
    """Every carrier holds what an empty secret would accept, were it accepted."""
    headers = {
        "X-Hub-Signature-256": sign(BODY, configured),
        "Authorization": configured,
        "X-Fleetwave-Webhook-Secret": configured,
    }
    assert verify(provider, BODY, headers, configured, configured) is False


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_accepts_its_own_proof(provider: str) -> None:
    proof = {
        "ghcr": ({"X-Hub-Signature-256": sign(BODY, SECRET)}, None),
        "dockerhub": ({}, SECRET),
        "quay": ({}, SECRET),
        "distribution": ({"Authorization": f"Bearer {SECRET}"}, None),
        "harbor": ({"Authorization": SECRET}, None),
        "acr": ({"X-Fleetwave-Webhook-Secret": SECRET}, None),
    }
    headers, url_secret = proof[provider]
    assert verify(provider, BODY, headers, url_secret, SECRET) is True
    assert verify(provider, BODY, headers, url_secret, OTHER) is False


def test_unknown_provider_is_refused_loudly() -> None:
    with pytest.raises(ValueError, match="unknown provider 'gcr'"):
        verify("gcr", BODY, {"Authorization": SECRET}, SECRET, SECRET)


def test_comparisons_are_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert github_signature_valid(BODY, sign(BODY, SECRET), SECRET)
    assert len(calls) == 1
    assert shared_secret_valid(f"Bearer {SECRET}", SECRET)
    assert len(calls) >= 2
