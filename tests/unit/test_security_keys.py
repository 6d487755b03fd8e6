"""Keys: generated long and random, stored as hashes, compared in constant time."""

from __future__ import annotations

import secrets
import stat
import string
from pathlib import Path

import pytest

from fleetwave.security import (
    MIN_DEVICE_KEY_LENGTH,
    hash_key,
    key_matches,
    load_or_create_admin_token,
    new_key,
    tokens_equal,
    weak_key_reason,
)

URLSAFE = set(string.ascii_letters + string.digits + "-_")


def test_hash_key_is_the_hex_sha256_of_the_key() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hash_key_is_deterministic_and_distinguishes_keys() -> None:
    assert hash_key("key-one") == hash_key("key-one")
    assert hash_key("key-one") != hash_key("key-two")


@pytest.mark.parametrize(
    ("key", "stored_for", "expected"),
    [
        ("device-key", "device-key", True),
        ("device-key", "device-key ", False),
        ("device-key", "Device-key", False),
        ("", "device-key", False),
    ],
)
def test_key_matches_only_the_key_it_was_hashed_from(
    key: str, stored_for: str, expected: bool
) -> None:
    assert key_matches(key, hash_key(stored_for)) is expected


def test_key_does_not_match_a_stored_hash_in_other_case() -> None:
    assert key_matches("abc", hash_key("abc").upper()) is False


def test_key_does_not_match_its_plain_text() -> None:
    assert key_matches("device-key", "device-key") is False


@pytest.mark.parametrize(("prefix", "length"), [("", 43), ("fwd_", 47), ("fwp_", 47)])
def test_new_key_is_prefix_plus_43_urlsafe_characters(prefix: str, length: int) -> None:
    key = new_key(prefix)

    assert len(key) == length
    assert key.startswith(prefix)
    assert set(key[len(prefix) :]) <= URLSAFE


def test_new_keys_differ_and_are_strong_enough() -> None:
    keys = {new_key() for _ in range(50)}

    assert len(keys) == 50
    assert all(weak_key_reason(k) is None for k in keys)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        pytest.param("", "must be at least 32 characters", id="empty"),
        pytest.param("aB3" * 10 + "x", "must be at least 32 characters", id="31 characters"),
        pytest.param("abcdefghij" * 3 + "k " + "m", "may only use letters, digits", id="space"),
        pytest.param(
            "abcdefghij" * 3 + "k!", "may only use letters, digits", id="exclamation mark"
        ),
        pytest.param(
            "abcdefghij" * 3 + "ké", "may only use letters, digits", id="non-ascii letter"
        ),
        pytest.param("a" * 64, "is not random enough", id="one character repeated"),
        pytest.param("ab" * 32, "is not random enough", id="two characters"),
        pytest.param("abcdefghi" * 4, "is not random enough", id="nine distinct"),
    ],
)
def test_weak_keys_are_rejected_with_a_reason(key: str, reason: str) -> None:
    found = weak_key_reason(key)

    assert found is not None
    assert found.startswith(reason)


def test_minimum_key_length_is_32() -> None:
    assert MIN_DEVICE_KEY_LENGTH == 32


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("abcdefghij" * 3 + "ab", id="exactly 32, ten distinct"),
        pytest.param("Zq3-_.~+/=" * 4, id="every allowed symbol"),
        pytest.param("k3J9xQ_p-Lm2Vt8Rz0bWc5Ny7Ha4Ds1Fg6Ue", id="random looking"),
        pytest.param(secrets.token_urlsafe(32), id="token_urlsafe(32)"),
        pytest.param(secrets.token_hex(16), id="token_hex(16)"),
    ],
)
def test_long_random_keys_are_accepted(key: str) -> None:
    assert weak_key_reason(key) is None


@pytest.mark.parametrize(
    ("given", "expected", "equal"),
    [
        ("s3cret-token", "s3cret-token", True),
        ("s3cret-token", "s3cret-tokem", False),
        ("s3cret-token", "s3cret-token-longer", False),
        ("", "s3cret-token", False),
        ("", "", True),
        ("tökén", "tökén", True),
        ("tökén", "token", False),
    ],
)
def test_tokens_equal(given: str, expected: str, equal: bool) -> None:
    assert tokens_equal(given, expected) is equal


def test_admin_token_is_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "data" / "admin-token"

    token, created = load_or_create_admin_token(path)

    assert created is True
    assert token.startswith("fwa_")
    assert len(token) == 47
    assert path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_admin_token_is_the_same_on_the_second_call(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    first, _ = load_or_create_admin_token(path)

    second, created = load_or_create_admin_token(path)

    assert second == first
    assert created is False


def test_existing_admin_token_file_is_read_without_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("  fwa_operator-chosen-token\n\n")

    assert load_or_create_admin_token(path) == ("fwa_operator-chosen-token", False)


def test_empty_admin_token_file_gets_a_new_token(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("\n")

    token, created = load_or_create_admin_token(path)

    assert created is True
    assert token.startswith("fwa_")
    assert path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
