"""The CLI's user and token views (a token's secret is shown only when just made) and the
``--expires`` values it reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetwave.operator.args import parse_expiry
from fleetwave.operator.render import to_text
from fleetwave.operator.user_views import token_view, tokens_table, users_table

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TOKEN = {
    "id": 7,
    "name": "ci",
    "role": "operator",
    "token_prefix": "fwt_abcdefgh",
    "created_at": "2026-01-01T12:00:00Z",
    "last_used_at": None,
    "expires_at": None,
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90d", "2026-04-01T12:00:00+00:00"),
        ("12h", "2026-01-02T00:00:00+00:00"),
        ("2027-01-01T00:00Z", "2027-01-01T00:00:00+00:00"),
        ("2027-01-01T02:00+02:00", "2027-01-01T00:00:00+00:00"),
        ("2027-01-01", "2027-01-01T00:00:00+00:00"),
    ],
)
def test_an_expiry_is_a_time_or_how_long_from_now(value: str, expected: str) -> None:
    assert parse_expiry(value, NOW) == expected


@pytest.mark.parametrize("value", ["soon", "90 days", "99999999999d", ""])
def test_an_unreadable_expiry_is_a_usage_error_naming_the_flag(value: str) -> None:
    with pytest.raises(ValueError, match="--expires"):
        parse_expiry(value, NOW)


def test_tokens_are_listed_by_prefix_and_a_new_one_is_shown_once() -> None:
    listed = to_text(tokens_table([TOKEN]))
    assert "fwt_abcdefgh…" in listed and "never" in listed and "ci" in listed
    shown = to_text(token_view(TOKEN | {"token": "fwt_abcdefgh-the-whole-secret"}))
    assert "fwt_abcdefgh-the-whole-secret" in shown and "shown once" in shown
    assert to_text(tokens_table([])).strip() == "no tokens"


def test_users_are_listed_with_role_and_disabled() -> None:
    user = {"username": "alice", "role": "admin", "disabled": True, "created_at": None}
    text = to_text(users_table([user]))
    assert "alice" in text and "admin" in text and "yes" in text
    assert to_text(users_table([])).strip() == "no users"
