"""Short ids as tables of cases: what a given id names among the ids that begin with it."""

from __future__ import annotations

import pytest

from fleetwave.domain.short_ids import MAX_MATCHES_LISTED, prefix_range, resolve, short_id

A = "02b670dd-1111-4000-8000-000000000001"
B = "02b670dd-2222-4000-8000-000000000002"


@pytest.mark.parametrize(
    ("given", "matches", "full", "too_short", "listed"),
    [
        (A, [A], A, False, ()),  # a full id
        ("02b670dd", [A], A, False, ()),  # a unique prefix of 8
        ("02b670dd-1", [A], A, False, ()),
        ("02b670dd", [A, B], None, False, (A, B)),  # ambiguous: both listed
        ("02b670dd", [], None, False, ()),  # nothing begins with it
        ("02b670d", [A], None, True, ()),  # 7 characters: too short, even if unique
        ("r1", ["r1", "r10"], "r1", False, ()),  # a short full id is never too short
        ("r1", ["r10"], None, True, ()),
        ("r1", [], None, False, ()),  # short and nothing begins with it: simply not found
    ],
)
def test_a_given_id_names_one_rollout_or_says_why_not(
    given: str, matches: list[str], full: str | None, too_short: bool, listed: tuple[str, ...]
) -> None:
    found = resolve("rollout", given, matches)
    assert found.full == full
    assert found.too_short is too_short
    assert found.matches == listed
    assert (found.problem is None) == (full is not None)


def test_the_problem_says_what_to_do() -> None:
    assert "at least 8 characters" in (resolve("rollout", "02b6", [A]).problem or "")
    assert resolve("device", "r1", []).problem == "device r1 not found"
    assert resolve("rollout", "02b670dd", []).problem == "rollout 02b670dd not found"
    ambiguous = resolve("rollout", "02b670dd", [A, B]).problem or ""
    assert A in ambiguous and B in ambiguous and "give more characters" in ambiguous


def test_an_ambiguous_prefix_lists_at_most_ten_matches_and_says_there_are_more() -> None:
    many = [f"02b670dd-{i:04}" for i in range(MAX_MATCHES_LISTED + 1)]
    found = resolve("rollout", "02b670dd", many)
    assert len(found.matches) == MAX_MATCHES_LISTED
    assert (found.problem or "").endswith("and more; give more characters")


@pytest.mark.parametrize("candidate", [A, "02b670dd", "02b670dd~", "02b670dd\u00e9"])
def test_the_prefix_range_holds_every_id_that_begins_with_the_prefix(candidate: str) -> None:
    low, high = prefix_range("02b670dd")
    assert low <= candidate < high


@pytest.mark.parametrize("candidate", ["02b670dc-ffff", "02b670de", "02b670d", "12b670dd"])
def test_the_prefix_range_holds_nothing_else(candidate: str) -> None:
    low, high = prefix_range("02b670dd")
    assert not low <= candidate < high


@pytest.mark.parametrize(("full", "shown"), [(A, "02b670dd"), ("r1", "r1"), (None, "")])
def test_a_page_shows_the_first_eight_characters(full: str | None, shown: str) -> None:
    assert short_id(full) == shown
