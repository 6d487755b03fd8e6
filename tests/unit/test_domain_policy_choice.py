"""Which policy governs a pushed image: priority, then specificity, then the oldest — explained."""

from __future__ import annotations

from itertools import permutations

import pytest

from fleetwave.domain.images import parse_image, parse_pattern
from fleetwave.domain.policy_choice import PolicyCandidate, choose_policy

IMAGE = parse_image("iotistic/myapp:v1.2.3")

Row = tuple[int, str, int]  # (id, image_pattern, priority)


def candidates(*rows: Row) -> list[PolicyCandidate]:
    return [PolicyCandidate(pid, parse_pattern(text), priority) for pid, text, priority in rows]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param((), id="no policies"),
        pytest.param(((1, "nginx", 10),), id="another image"),
        pytest.param(((1, "ghcr.io/*", 0), (2, "iotistic/other:*", 5)), id="none of several"),
        pytest.param(((1, "iotistic/myapp:v2.*", 0),), id="same repository, other tags"),
    ],
)
def test_no_matching_policy_chooses_none_with_an_empty_list(rows: tuple[Row, ...]) -> None:
    choice = choose_policy(candidates(*rows), IMAGE)

    assert choice.policy_id is None
    assert choice.explanation == {"image": "iotistic/myapp:v1.2.3", "matching_policies": []}


@pytest.mark.parametrize(
    ("rows", "chosen", "reason"),
    [
        pytest.param(
            ((1, "iotistic/myapp:*", 0), (2, "nginx", 100)),
            1,
            "the only enabled policy whose pattern matches",
            id="the only match",
        ),
        pytest.param(
            ((1, "iotistic/myapp:v1.2.3", 0), (2, "*", 10)),
            2,
            "highest priority (10)",
            id="priority beats specificity",
        ),
        pytest.param(
            ((1, "iotistic/myapp:*", -5), (2, "iotistic/*", -1)),
            2,
            "highest priority (-1)",
            id="negative priorities",
        ),
        pytest.param(
            ((1, "iotistic/*", 5), (2, "iotistic/myapp:v1.*", 5), (3, "*", 5)),
            2,
            "most specific pattern among priority 5",
            id="equal priority: most specific",
        ),
        pytest.param(
            ((9, "iotistic/myapp:v1.*", 0), (1, "iotistic/myapp:*", 0)),
            9,
            "most specific pattern among priority 0",
            id="specificity beats age",
        ),
        pytest.param(
            (
                (7, "iotistic/myapp:*", 0),
                (3, "docker.io/iotistic/myapp", 0),
                (5, "iotistic/myapp", 0),
            ),
            3,
            "oldest of equally specific patterns with the same priority",
            id="full tie: lowest id",
        ),
        pytest.param(
            ((4, "iotistic/myapp:*", 1), (2, "iotistic/myapp:*", 1), (1, "*", 9)),
            1,
            "highest priority (9)",
            id="a lone high priority over a tie",
        ),
        pytest.param(
            ((4, "iotistic/myapp:*", 3), (2, "iotistic/myapp:*", 3), (1, "*", 0)),
            2,
            "oldest",
            id="tie at the top, lower one below",
        ),
    ],
)
def test_choose_policy_picks_and_explains(rows: tuple[Row, ...], chosen: int, reason: str) -> None:
    choice = choose_policy(candidates(*rows), IMAGE)

    assert choice.policy_id == chosen
    assert choice.explanation["chosen"] == chosen
    assert reason in choice.explanation["reason"]
    assert choice.explanation["image"] == "iotistic/myapp:v1.2.3"


@pytest.mark.parametrize(
    ("rows", "word"),
    [
        pytest.param(((1, "*", 0), (2, "*", 1)), "priority", id="priority"),
        pytest.param(((1, "*", 0), (2, "iotistic/*", 0)), "specific", id="specific"),
        pytest.param(((2, "*", 0), (1, "*", 0)), "oldest", id="oldest"),
    ],
)
def test_the_reason_names_what_decided(rows: tuple[Row, ...], word: str) -> None:
    assert word in choose_policy(candidates(*rows), IMAGE).explanation["reason"]


def test_the_explanation_lists_the_matching_policies_in_order() -> None:
    rows = (
        (1, "*", 0),
        (2, "nginx", 50),  # does not match
        (3, "iotistic/*", 10),
        (4, "iotistic/myapp:v1.*", 10),
        (5, "iotistic/myapp:v1.*", 10),
        (6, "ghcr.io/iotistic/myapp", 99),  # does not match
    )

    explanation = choose_policy(candidates(*rows), IMAGE).explanation

    assert explanation["matching_policies"] == [
        {
            "policy_id": pid,
            "image_pattern": text,
            "priority": priority,
            "specificity": parse_pattern(text).specificity,
        }
        for pid, text, priority in [
            (4, "iotistic/myapp:v1.*", 10),
            (5, "iotistic/myapp:v1.*", 10),
            (3, "iotistic/*", 10),
            (1, "*", 0),
        ]
    ]
    assert explanation["chosen"] == 4
    assert explanation["reason"] == "oldest of equally specific patterns with the same priority"


@pytest.mark.parametrize(
    "order",
    list(permutations(range(4))),
    ids=lambda order: "".join(map(str, order)),
)
def test_the_choice_does_not_depend_on_the_order_policies_come_in(
    order: tuple[int, ...],
) -> None:
    rows = [
        (11, "iotistic/*", 5),
        (12, "iotistic/myapp:*", 5),
        (10, "docker.io/iotistic/myapp", 5),
        (13, "*", 4),
    ]

    choice = choose_policy(candidates(*(rows[i] for i in order)), IMAGE)

    assert choice.policy_id == 10
    assert [m["policy_id"] for m in choice.explanation["matching_policies"]] == [10, 12, 11, 13]


def test_a_pushed_image_spelled_long_is_matched_like_the_short_one() -> None:
    image = parse_image("index.docker.io/iotistic/myapp:v1.2.3")

    choice = choose_policy(candidates((1, "iotistic/myapp:v1.*", 0)), image)

    assert choice.policy_id == 1
    assert choice.explanation["image"] == "iotistic/myapp:v1.2.3"
