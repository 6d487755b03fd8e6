"""An older push never undoes a newer one: whether a push supersedes the image's unfinished
rollouts, and whether a device is moved from the version it runs."""

from __future__ import annotations

import random

import pytest

from fleetwave.domain.version_order import (
    UnfinishedRollout,
    downgrade_refusal,
    supersede_refusal,
)


def rolling(tag: str, rollout_id: str = "r1", status: str = "in_progress") -> UnfinishedRollout:
    return UnfinishedRollout(rollout_id, tag, status)


# --- supersede_refusal ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pushed", "unfinished", "supersedes"),
    [
        pytest.param("v29", [], True, id="nothing rolling out"),
        pytest.param("v31", [rolling("v30")], True, id="newer version"),
        pytest.param("v29", [rolling("v30")], False, id="older version"),
        pytest.param("v2.0.9", [rolling("v2.0.10")], False, id="versions compare as numbers"),
        pytest.param("v1.9.0", [rolling("2.0.0")], False, id="v prefix or not"),
        pytest.param("v2", [rolling("v2.0.0")], True, id="the same version under another tag"),
        pytest.param("v2.0.0+b2", [rolling("v2.0.0+b1")], True, id="build metadata is equal"),
        pytest.param("v2.0.0-rc.1", [rolling("v2.0.0")], False, id="pre-release before release"),
        pytest.param("v2.0.0", [rolling("v2.0.0-rc.1")], True, id="release after pre-release"),
        pytest.param("latest", [rolling("v30")], True, id="pushed tag not a version"),
        pytest.param("v29", [rolling("latest")], True, id="rolling tag not a version"),
        pytest.param("main", [rolling("develop")], True, id="neither a version"),
        pytest.param("2024-01-01", [rolling("v2")], True, id="a date is not a version"),
        pytest.param(
            "v29", [rolling("v28", "a"), rolling("v30", "b")], False, id="any newer one refuses"
        ),
        pytest.param(
            "v31", [rolling("v28", "a"), rolling("v30", "b")], True, id="newer than all of them"
        ),
    ],
)
def test_a_push_supersedes_unless_older_than_a_version_rolling_out(
    pushed: str, unfinished: list[UnfinishedRollout], supersedes: bool
) -> None:
    assert (supersede_refusal(pushed, unfinished) is None) is supersedes


def test_the_refusal_names_both_versions_and_the_rollout() -> None:
    refusal = supersede_refusal("v29", [rolling("v30", "r-30", "awaiting_approval")])

    assert refusal == (
        "v29 is older than v30, which is rolling out (rollout r-30, awaiting approval)"
    )


def test_the_refusal_names_the_newest_version_rolling_out() -> None:
    unfinished = [rolling("v30", "a"), rolling("v32", "b"), rolling("v31", "c")]

    refusal = supersede_refusal("v29", unfinished)

    assert refusal is not None and refusal.startswith("v29 is older than v32")


@pytest.mark.parametrize("pushed", ["v29", "v30-rc.1", "v1"])
def test_force_supersedes_whatever_is_rolling_out(pushed: str) -> None:
    assert supersede_refusal(pushed, [rolling("v30")], force=True) is None


def test_ten_pushes_planned_in_any_order_end_on_the_newest() -> None:
    """What the planner does with v6…v15 arriving shuffled: each push supersedes the rollout
    it meets or is refused; the one left rolling out is v15."""
    tags = [f"v{n}" for n in range(6, 16)]
    for seed in range(50):
        order = random.Random(seed).sample(tags, len(tags))
        running: list[UnfinishedRollout] = []
        for tag in order:
            if supersede_refusal(tag, running) is None:
                running = [rolling(tag)]
        assert [r.tag for r in running] == ["v15"], order


# --- downgrade_refusal ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("running", "pushed", "moved"),
    [
        pytest.param("v28", "v29", True, id="older device is updated"),
        pytest.param("v30", "v29", False, id="newer device is not moved back"),
        pytest.param("v1.10.0", "v1.9.0", False, id="numbers, not text"),
        pytest.param("v2.0.0", "v2.0.0-rc.2", False, id="release to its pre-release"),
        pytest.param("v2.0.0-rc.1", "v2.0.0-rc.2", True, id="pre-release to a later one"),
        pytest.param("v2", "v2.0.0", True, id="same version, another tag"),
        pytest.param("latest", "v29", True, id="device tag not a version"),
        pytest.param("v30", "latest", True, id="pushed tag not a version"),
        pytest.param(None, "v29", True, id="device runs the image untagged"),
    ],
)
def test_a_device_is_moved_unless_it_runs_a_newer_version(
    running: str | None, pushed: str, moved: bool
) -> None:
    assert (downgrade_refusal(running, pushed) is None) is moved


def test_the_downgrade_refusal_names_both_versions() -> None:
    assert downgrade_refusal("v30", "v29") == "runs v30, which is newer than v29"
