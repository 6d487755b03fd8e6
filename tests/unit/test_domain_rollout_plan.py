"""Planning a rollout: who takes the pushed version, in which batch, and from which images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from fleetwave.domain.images import parse_image
from fleetwave.domain.rollout_plan import Candidate, RolloutPlan, ServiceImage, plan_rollout
from fleetwave.domain.tags import SemverRule, TagRule

DEFAULTS = [0.1, 0.5, 1.0]
DIGEST = "sha256:" + "0123456789abcdef" * 4
OLD_DIGEST = "sha256:" + "fedcba9876543210" * 4


def service(image: str, key: str = "1001/app") -> ServiceImage:
    ref = parse_image(image)
    return ServiceImage(key, image, ref.tag, ref.digest)


def device(uuid: str, *images: str, online: bool = True) -> Candidate:
    keys = ["1001/app", "1001/worker", "1002/agent", "1002/sidecar"]
    return Candidate(uuid, online, tuple(service(i, k) for i, k in zip(images, keys, strict=False)))


def plan(
    candidates: Sequence[Candidate],
    *,
    new_tag: str = "v2.0.0",
    new_digest: str | None = None,
    rule: TagRule | None = None,
    fractions: Sequence[float] = (1.0,),
    earlier_old_images: Mapping[str, dict[str, str]] | None = None,
) -> RolloutPlan:
    return plan_rollout(
        candidates,
        new_tag=new_tag,
        new_digest=new_digest,
        rule=rule or TagRule(),
        fractions=fractions,
        earlier_old_images=earlier_old_images,
    )


def uuids(result: RolloutPlan) -> list[str]:
    return [d.uuid for d in result.devices]


# --- order and batches ----------------------------------------------------------------------


def test_nobody_to_plan_gives_an_empty_plan() -> None:
    result = plan([], fractions=DEFAULTS)

    assert result == RolloutPlan(devices=[], batch_sizes=[], old_tag=None, excluded={})
    assert result.total == 0


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        pytest.param(
            [("c", False), ("a", True), ("d", True), ("b", False)],
            ["a", "d", "b", "c"],
            id="online first, then by uuid",
        ),
        pytest.param(
            [("b", True), ("a", True)],
            ["a", "b"],
            id="all online: by uuid",
        ),
        pytest.param(
            [("z", True), ("a", False)],
            ["z", "a"],
            id="an online z before an offline a",
        ),
    ],
)
def test_online_devices_come_first_then_by_uuid(
    devices: list[tuple[str, bool]], expected: list[str]
) -> None:
    candidates = [device(uuid, "iotistic/myapp:v1.0.0", online=online) for uuid, online in devices]

    assert uuids(plan(candidates)) == expected


@pytest.mark.parametrize(
    ("count", "fractions", "numbers"),
    [
        pytest.param(10, DEFAULTS, [1, 2, 2, 2, 2, 3, 3, 3, 3, 3], id="10 devices, 10/50/100"),
        pytest.param(2, DEFAULTS, [1, 2], id="2 devices: two batches"),
        pytest.param(1, DEFAULTS, [1], id="1 device"),
        pytest.param(4, [1.0], [1, 1, 1, 1], id="one batch"),
        pytest.param(7, [1 / 3, 2 / 3, 1.0], [1, 1, 1, 2, 2, 3, 3], id="7 in thirds"),
    ],
)
def test_batch_numbers_follow_batch_sizes(
    count: int, fractions: list[float], numbers: list[int]
) -> None:
    candidates = [device(f"dev-{i:02}", "iotistic/myapp:v1.0.0") for i in range(count)]

    result = plan(candidates, fractions=fractions)

    assert [d.batch_number for d in result.devices] == numbers
    assert sum(result.batch_sizes) == result.total == count
    assert result.batch_sizes == [numbers.count(n) for n in sorted(set(numbers))]


def test_the_canary_batch_is_taken_from_the_online_devices() -> None:
    candidates = [device(f"dev-{i:02}", "iotistic/myapp:v1.0.0", online=i >= 5) for i in range(10)]

    result = plan(candidates, fractions=DEFAULTS)

    assert [(d.uuid, d.batch_number) for d in result.devices[:5]] == [
        ("dev-05", 1),
        ("dev-06", 2),
        ("dev-07", 2),
        ("dev-08", 2),
        ("dev-09", 2),
    ]


# --- who is excluded ------------------------------------------------------------------------


def test_devices_already_on_the_new_tag_are_excluded_and_summarised() -> None:
    candidates = [
        device("b", "iotistic/myapp:v2.0.0"),
        device("a", "iotistic/myapp:v1.0.0"),
        device("c", "docker.io/iotistic/myapp:v2.0.0", "iotistic/myapp:v2.0.0"),
    ]

    result = plan(candidates)

    assert uuids(result) == ["a"]
    assert result.excluded == {"already_on_new_version": {"count": 2, "devices": ["b", "c"]}}


def test_the_summary_samples_at_most_twenty_devices_but_counts_all() -> None:
    candidates = [device(f"dev-{i:02}", "iotistic/myapp:v2.0.0") for i in range(25)]

    result = plan(candidates)

    assert result.devices == []
    assert result.excluded["already_on_new_version"] == {
        "count": 25,
        "devices": [f"dev-{i:02}" for i in range(20)],
    }


@pytest.mark.parametrize(
    "semver",
    [
        pytest.param(None, id="no semver rule"),
        pytest.param("patch", id="patch"),
        pytest.param("all", id="all"),
    ],
)
def test_with_a_digest_a_device_on_the_same_tag_but_another_digest_is_included(
    semver: SemverRule | None,
) -> None:
    candidates = [
        device("same-digest", f"iotistic/myapp:v2.0.0@{DIGEST}"),
        device("other-digest", f"iotistic/myapp:v2.0.0@{OLD_DIGEST}"),
        device("no-digest", "iotistic/myapp:v2.0.0"),
        device("older", "iotistic/myapp:v2.0.0-rc.1"),
    ]

    result = plan(candidates, new_digest=DIGEST, rule=TagRule(semver=semver))

    assert uuids(result) == ["no-digest", "older", "other-digest"]
    assert result.excluded == {"already_on_new_version": {"count": 1, "devices": ["same-digest"]}}


def test_with_a_digest_a_target_pinning_it_is_there_whatever_tag_it_names() -> None:
    candidates = [
        device("tagless", f"iotistic/myapp@{DIGEST}"),
        device("retagged", f"iotistic/myapp:v1.9.9@{DIGEST}"),
        device("older", f"iotistic/myapp:v1.0.0@{OLD_DIGEST}"),
    ]

    result = plan(candidates, new_digest=DIGEST)

    assert uuids(result) == ["older"]
    assert result.excluded["already_on_new_version"]["devices"] == ["tagless", "retagged"]


def test_without_a_digest_the_tag_alone_says_who_is_there() -> None:
    candidates = [
        device("pinned", f"iotistic/myapp:v2.0.0@{OLD_DIGEST}"),
        device("older", "iotistic/myapp:v1.0.0"),
    ]

    result = plan(candidates)

    assert uuids(result) == ["older"]
    assert result.excluded["already_on_new_version"]["devices"] == ["pinned"]


@pytest.mark.parametrize(
    "semver",
    [
        pytest.param(None, id="no semver rule"),
        pytest.param("major", id="major"),
    ],
)
def test_a_device_with_one_service_updated_and_another_behind_is_planned(
    semver: SemverRule | None,
) -> None:
    candidates = [device("half", "iotistic/myapp:v2.0.0", "iotistic/myapp:v1.0.0")]

    result = plan(candidates, rule=TagRule(semver=semver))

    assert uuids(result) == ["half"]


def test_a_semver_rule_refuses_devices_too_far_behind_with_grouped_reasons() -> None:
    candidates = [
        device("ok-1", "iotistic/myapp:v2.0.0"),
        device("major-1", "iotistic/myapp:v1.9.0"),
        device("ok-2", "iotistic/myapp:v2.0.5", online=False),
        device("major-2", "iotistic/myapp:v1.9.0"),
        device("latest", "iotistic/myapp:latest"),
        device("there", "iotistic/myapp:v2.1.0"),
        device("ahead", "iotistic/myapp:v2.2.0"),
        device("major-3", "iotistic/myapp:v1.0.0"),
    ]

    result = plan(candidates, new_tag="v2.1.0", rule=TagRule(semver="minor"))

    assert uuids(result) == ["ok-1", "ok-2"]
    assert result.excluded == {
        "already_on_new_version": {"count": 1, "devices": ["there"]},
        "refused_by_tag_policy": [
            {
                "reason": "runs 'latest', which is not a semantic version to compare with",
                "count": 1,
                "devices": ["latest"],
            },
            {
                "reason": "v1.0.0 → v2.1.0 is a major update; the policy allows minor",
                "count": 1,
                "devices": ["major-3"],
            },
            {
                "reason": "v1.9.0 → v2.1.0 is a major update; the policy allows minor",
                "count": 2,
                "devices": ["major-1", "major-2"],
            },
        ],
        "running_newer_version": [
            {"reason": "runs v2.2.0, which is newer than v2.1.0", "count": 1, "devices": ["ahead"]}
        ],
    }


def test_a_device_refused_for_several_reasons_is_listed_once() -> None:
    candidates = [device("mixed", "iotistic/myapp:v1.0.0", "iotistic/myapp:latest")]

    result = plan(candidates, new_tag="v2.1.0", rule=TagRule(semver="minor"))

    assert result.devices == []
    refused = result.excluded["refused_by_tag_policy"]
    assert [entry["devices"] for entry in refused] == [["mixed"]]
    assert refused[0]["reason"] == "runs 'latest', which is not a semantic version to compare with"


def test_a_rule_without_semver_takes_every_device_not_already_there_nor_newer() -> None:
    candidates = [
        device("latest", "iotistic/myapp:latest"),
        device("ahead", "iotistic/myapp:v9.0.0"),
        device("behind", "iotistic/myapp:v1.0.0"),
        device("untagged", f"iotistic/myapp@{OLD_DIGEST}"),
    ]

    result = plan(candidates, rule=TagRule(include=("v*",)))

    assert uuids(result) == ["behind", "latest", "untagged"]
    assert result.excluded == {
        "running_newer_version": [
            {"reason": "runs v9.0.0, which is newer than v2.0.0", "count": 1, "devices": ["ahead"]}
        ]
    }


@pytest.mark.parametrize(
    "semver",
    [pytest.param(None, id="no semver rule"), pytest.param("minor", id="minor")],
)
def test_a_device_running_a_newer_version_is_never_moved_back(semver: SemverRule | None) -> None:
    candidates = [
        device("v30", "iotistic/myapp:v30.0.0"),
        device("v30-too", "iotistic/myapp:v30.0.0"),
        device("v28", "iotistic/myapp:v28.0.0"),
    ]

    result = plan(candidates, new_tag="v29.0.0", rule=TagRule(semver=semver))

    assert uuids(result) == ([] if semver == "minor" else ["v28"])
    assert result.excluded["running_newer_version"] == [
        {
            "reason": "runs v30.0.0, which is newer than v29.0.0",
            "count": 2,
            "devices": ["v30", "v30-too"],
        }
    ]


def test_a_device_with_any_service_on_a_newer_version_is_not_moved() -> None:
    candidates = [device("mixed", "iotistic/myapp:v1.0.0", "iotistic/myapp:v3.0.0")]

    result = plan(candidates, new_tag="v2.0.0")

    assert result.devices == []
    [newer] = result.excluded["running_newer_version"]
    assert newer["devices"] == ["mixed"]


@pytest.mark.parametrize(
    "semver",
    [pytest.param(None, id="no semver rule"), pytest.param("patch", id="patch")],
)
def test_forced_every_device_not_already_there_is_moved_to_the_pushed_version(
    semver: SemverRule | None,
) -> None:
    candidates = [
        device("newer", "iotistic/myapp:v30.0.0"),
        device("older", "iotistic/myapp:v1.0.0"),
        device("latest", "iotistic/myapp:latest"),
        device("there", "iotistic/myapp:v29.0.0"),
    ]

    result = plan_rollout(
        candidates,
        new_tag="v29.0.0",
        new_digest=None,
        rule=TagRule(semver=semver),
        fractions=(1.0,),
        force=True,
    )

    assert uuids(result) == ["latest", "newer", "older"]
    assert [d.old_tag for d in result.devices] == ["latest", "v30.0.0", "v1.0.0"]
    assert result.excluded == {"already_on_new_version": {"count": 1, "devices": ["there"]}}


# --- old images and old tag -----------------------------------------------------------------


def test_each_device_keeps_its_own_old_images() -> None:
    candidates = [
        device("a", "iotistic/myapp:v1.0.0", "docker.io/iotistic/myapp:v1.0.0"),
        device("b", "index.docker.io/iotistic/myapp:v1.1.0"),
        device("c", f"iotistic/myapp:v1.2.0@{OLD_DIGEST}"),
    ]

    result = plan(candidates)

    assert {d.uuid: d.old_images for d in result.devices} == {
        "a": {
            "1001/app": "iotistic/myapp:v1.0.0",
            "1001/worker": "docker.io/iotistic/myapp:v1.0.0",
        },
        "b": {"1001/app": "index.docker.io/iotistic/myapp:v1.1.0"},
        "c": {"1001/app": f"iotistic/myapp:v1.2.0@{OLD_DIGEST}"},
    }
    assert {d.uuid: d.old_tag for d in result.devices} == {
        "a": "v1.0.0",
        "b": "v1.1.0",
        "c": "v1.2.0",
    }


def test_earlier_old_images_override_a_devices_current_images() -> None:
    candidates = [
        device("caught", "iotistic/myapp:v1.5.0"),  # half-way through a superseded rollout
        device("fresh", "iotistic/myapp:v1.0.0"),
        device("empty", "iotistic/myapp:v1.0.0"),
    ]
    earlier = {
        "caught": {"1001/app": "iotistic/myapp:v1.0.0"},
        "empty": {},
        "not-a-candidate": {"1001/app": "iotistic/myapp:v0.1.0"},
    }

    result = plan(candidates, earlier_old_images=earlier)

    assert {d.uuid: d.old_images for d in result.devices} == {
        "caught": {"1001/app": "iotistic/myapp:v1.0.0"},
        "empty": {"1001/app": "iotistic/myapp:v1.0.0"},
        "fresh": {"1001/app": "iotistic/myapp:v1.0.0"},
    }


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param(["v1.0.0", "v1.0.0", "v1.1.0"], "v1.0.0", id="most common"),
        pytest.param(["v1.1.0", "v1.0.0"], "v1.1.0", id="tie: highest version"),
        pytest.param(["v1.10.0", "v1.9.0"], "v1.10.0", id="tie: by version, not text"),
        pytest.param(["latest", "v1.0.0"], "v1.0.0", id="tie: a version over a word"),
        pytest.param(["edge", "latest"], "latest", id="tie of words: by text"),
        pytest.param(["latest", "latest", "v1.0.0"], "latest", id="a common word wins"),
        pytest.param([None, None, "v1.0.0"], "v1.0.0", id="untagged devices not counted"),
        pytest.param([None], None, id="nobody tagged"),
    ],
)
def test_old_tag_is_the_most_common_old_tag(tags: list[str | None], expected: str | None) -> None:
    candidates = [
        device(
            f"dev-{i}",
            f"iotistic/myapp:{tag}" if tag else f"iotistic/myapp@{OLD_DIGEST}",
        )
        for i, tag in enumerate(tags)
    ]

    result = plan(candidates)

    assert result.total == len(tags)
    assert result.old_tag == expected
