"""Semantic versions, the tags a policy takes on push, and how far a device may move."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from fleetwave.domain.tags import (
    SemverRule,
    TagRule,
    Version,
    parse_version,
    pushed_tag_refusal,
    update_refusal,
)


def version(tag: str) -> Version:
    parsed = parse_version(tag)
    assert parsed is not None, tag
    return parsed


# --- parse_version --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        pytest.param("1.2.3", (1, 2, 3, False), id="plain"),
        pytest.param("v1.2.3", (1, 2, 3, False), id="v-prefix"),
        pytest.param("1.2", (1, 2, 0, False), id="two parts"),
        pytest.param("v1.2", (1, 2, 0, False), id="v and two parts"),
        pytest.param("v1", (1, 0, 0, False), id="major only"),
        pytest.param("0.0.1", (0, 0, 1, False), id="zeros"),
        pytest.param("10.20.30", (10, 20, 30, False), id="several digits"),
        pytest.param("1.0.0-rc.1", (1, 0, 0, True), id="pre-release"),
        pytest.param("v2.0.0-beta", (2, 0, 0, True), id="v and pre-release"),
        pytest.param("1.0.0+build.5", (1, 0, 0, False), id="build metadata"),
        pytest.param("1.0.0-beta+exp.sha.5114f85", (1, 0, 0, True), id="pre-release and build"),
        pytest.param("1.2-alpha", (1, 2, 0, True), id="two parts, pre-release"),
    ],
)
def test_parse_version_reads_semantic_versions(
    tag: str, expected: tuple[int, int, int, bool]
) -> None:
    version = parse_version(tag)

    assert version is not None
    assert (version.major, version.minor, version.patch, version.is_prerelease) == expected


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("latest", id="latest"),
        pytest.param("main", id="main"),
        pytest.param("stable", id="stable"),
        pytest.param("sha-abc1234", id="commit tag"),
        pytest.param("2024-01-01", id="a date"),
        pytest.param("", id="empty"),
        pytest.param("v", id="v alone"),
        pytest.param("1.2.3.4", id="four parts"),
        pytest.param("01.2.3", id="leading zero in major"),
        pytest.param("1.02.3", id="leading zero in minor"),
        pytest.param("1.2.3-", id="empty pre-release"),
        pytest.param("1.2.3+", id="empty build"),
        pytest.param("1.2.3-beta..1", id="empty pre-release identifier"),
        pytest.param("vv1.2.3", id="two v"),
    ],
)
def test_parse_version_returns_none_for_what_is_not_a_version(tag: str) -> None:
    assert parse_version(tag) is None


# semver.org §11, plus the release chain after it
ASCENDING = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "1.9.0",
    "1.10.0",
    "2.0.0",
]


@pytest.mark.parametrize(
    ("lower", "higher"),
    [pytest.param(a, b, id=f"{a} < {b}") for a, b in pairwise(ASCENDING)],
)
def test_versions_order_as_semver_says(lower: str, higher: str) -> None:
    low, high = version(lower), version(higher)

    assert low < high
    assert not high < low


def test_sorting_shuffled_versions_restores_the_semver_order() -> None:
    shuffled = ASCENDING[:]
    random.Random(7).shuffle(shuffled)

    assert shuffled != ASCENDING
    assert sorted(shuffled, key=version) == ASCENDING


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("1.0.0+build.1", "1.0.0", id="build metadata ignored"),
        pytest.param("1.0.0+build.1", "1.0.0+build.2", id="two builds"),
        pytest.param("1.0.0-rc.1+b", "1.0.0-rc.1", id="build on a pre-release"),
        pytest.param("v1.2", "1.2.0", id="v and two parts"),
        pytest.param("1", "1.0.0", id="major only"),
    ],
)
def test_versions_that_differ_only_in_spelling_are_equal(one: str, other: str) -> None:
    assert parse_version(one) == parse_version(other)


# --- pushed_tag_refusal ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "tag", "fragment"),
    [
        pytest.param(TagRule(), "latest", None, id="no rule takes anything"),
        pytest.param(TagRule(), "v1.0.0-rc.1", None, id="no semver rule takes pre-releases"),
        pytest.param(TagRule(exclude=("*-dev",)), "v1-dev", "excluded", id="excluded"),
        pytest.param(TagRule(exclude=("*-dev",)), "v1", None, id="not excluded"),
        pytest.param(
            TagRule(include=("v*",), exclude=("v1.*",)), "v1.2", "excluded", id="exclude wins"
        ),
        pytest.param(TagRule(include=("v*",)), "latest", "include", id="include required"),
        pytest.param(
            TagRule(include=("v*", "release-*")), "release-1", None, id="any include suffices"
        ),
        pytest.param(
            TagRule(semver="major", include=("v2.*",)),
            "v3.0.0",
            "include",
            id="include checked before semver",
        ),
        pytest.param(
            TagRule(semver="minor", exclude=("*.0",)),
            "v1.2.0",
            "excluded",
            id="exclude checked before semver",
        ),
        pytest.param(TagRule(semver="minor"), "latest", "not a semantic version", id="latest"),
        pytest.param(TagRule(semver="patch"), "main", "not a semantic version", id="main"),
        pytest.param(TagRule(semver="all"), "latest", "not a semantic version", id="all: latest"),
        pytest.param(
            TagRule(semver="all"), "2024-01-01", "not a semantic version", id="all: a date"
        ),
        pytest.param(TagRule(semver="minor"), "v1.2.3", None, id="minor: release"),
        pytest.param(TagRule(semver="major"), "1.2", None, id="major: two parts"),
        pytest.param(
            TagRule(semver="minor"), "v1.2.3-rc.1", "pre-release", id="minor: pre-release"
        ),
        pytest.param(TagRule(semver="major"), "2.0.0-beta", "pre-release", id="major: pre-release"),
        pytest.param(
            TagRule(semver="minor", allow_prerelease=True),
            "v1.2.3-rc.1",
            None,
            id="pre-release allowed",
        ),
        pytest.param(TagRule(semver="all"), "v1.2.3-rc.1", None, id="all takes pre-releases"),
        pytest.param(
            TagRule(semver="minor"), "v1.2.3+build.7", None, id="build metadata is a release"
        ),
    ],
)
def test_pushed_tag_refusal(rule: TagRule, tag: str, fragment: str | None) -> None:
    refusal = pushed_tag_refusal(rule, tag)

    if fragment is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert fragment in refusal
        assert repr(tag) in refusal


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(TagRule(), False, id="default"),
        pytest.param(TagRule(allow_prerelease=True), True, id="allowed"),
        pytest.param(TagRule(semver="all"), True, id="semver all"),
        pytest.param(TagRule(semver="major"), False, id="semver major"),
    ],
)
def test_takes_prereleases(rule: TagRule, expected: bool) -> None:
    assert rule.takes_prereleases is expected


# --- update_refusal -------------------------------------------------------------------------

BUMPS = {
    # case: (old, new, {rule: fragment of the refusal, absent when allowed})
    "equal": ("1.2.3", "1.2.3", dict.fromkeys(("patch", "minor", "major", "all"), "not older")),
    "older": ("1.2.3", "1.2.2", dict.fromkeys(("patch", "minor", "major", "all"), "not older")),
    "patch bump": ("1.2.3", "1.2.4", {}),
    "minor bump": ("1.2.3", "1.3.0", {"patch": "beyond a patch update"}),
    "major bump": (
        "1.2.3",
        "2.0.0",
        {"patch": "beyond a patch update", "minor": "is a major update"},
    ),
}


@pytest.mark.parametrize(
    ("semver", "old", "new", "fragment"),
    [
        pytest.param(rule, old, new, refusals.get(rule), id=f"{rule}: {case}")
        for case, (old, new, refusals) in BUMPS.items()
        for rule in ("patch", "minor", "major", "all")
    ],
)
def test_update_refusal_by_rule_and_bump(
    semver: SemverRule, old: str, new: str, fragment: str | None
) -> None:
    refusal = update_refusal(TagRule(semver=semver), old, new)

    if fragment is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert fragment in refusal


@pytest.mark.parametrize(
    ("semver", "old", "new", "fragment"),
    [
        pytest.param("minor", "latest", "1.2.3", "'latest', which is not a semantic", id="latest"),
        pytest.param("all", "main", "1.2.3", "not a semantic version to compare", id="main"),
        pytest.param("major", None, "1.2.3", "not a semantic version to compare", id="no tag"),
        pytest.param("patch", "1.2.3", "latest", "'latest' is not a semantic version", id="new"),
        pytest.param("patch", "v1.2.3", "1.2.4", None, id="v on one side only"),
        pytest.param("patch", "1.2", "1.2.1", None, id="two parts"),
        pytest.param("minor", "1.9.0", "1.10.0", None, id="numeric not lexical"),
        pytest.param("patch", "1.2.3", "1.2.4-rc.1", None, id="to a newer pre-release"),
        pytest.param("patch", "1.3.0-rc.1", "1.3.0", None, id="pre-release to its release"),
        pytest.param("all", "1.2.3", "1.2.3-rc.1", "not older", id="release to its pre-release"),
        pytest.param("minor", "1.2.3", "1.2.3+build.2", "not older", id="only build differs"),
        pytest.param("minor", "0.1.0", "0.2.0", None, id="0.x minor is same major"),
    ],
)
def test_update_refusal_edge_cases(
    semver: SemverRule, old: str | None, new: str, fragment: str | None
) -> None:
    refusal = update_refusal(TagRule(semver=semver), old, new)

    if fragment is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert fragment in refusal


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("1.2.3", "1.2.3", id="equal"),
        pytest.param("2.0.0", "1.0.0", id="downgrade"),
        pytest.param("1.0.0", "9.0.0", id="major jump"),
        pytest.param("latest", "latest", id="non-semver both"),
        pytest.param(None, "edge", id="no old tag"),
    ],
)
def test_without_a_semver_rule_any_update_is_allowed(old: str | None, new: str) -> None:
    assert update_refusal(TagRule(), old, new) is None


def test_refusal_messages_name_both_versions() -> None:
    refusal = update_refusal(TagRule(semver="minor"), "v1.9.0", "v2.1.0")

    assert refusal == "v1.9.0 → v2.1.0 is a major update; the policy allows minor"
