"""The agent's budget of log lines: shared fairly between services, newest lines kept,
every drop counted."""

from __future__ import annotations

import pytest

from fleetwave.agent.log_budget import batches, bounded, fair_shares, ration


@pytest.mark.parametrize(
    ("demands", "budget", "shares"),
    [
        ({}, 10, {}),
        ({"app": 5}, 10, {"app": 5}),
        ({"app": 50}, 10, {"app": 10}),
        ({"app": 50}, 0, {"app": 0}),
        ({"app": 500, "db": 3}, 50, {"app": 47, "db": 3}),  # the quiet one keeps all it said
        ({"a": 100, "b": 5, "c": 50}, 60, {"a": 28, "b": 5, "c": 27}),
        ({"a": 10, "b": 10, "c": 10}, 10, {"a": 4, "b": 3, "c": 3}),  # remainder by name
        ({"a": 1, "b": 1, "c": 1}, 2, {"a": 1, "b": 1, "c": 0}),
        ({"a": 0, "b": 9}, 5, {"a": 0, "b": 5}),
        ({"a": 3, "b": 4}, 100, {"a": 3, "b": 4}),
    ],
)
def test_the_budget_is_shared_max_min_fair(
    demands: dict[str, int], budget: int, shares: dict[str, int]
) -> None:
    assert fair_shares(demands, budget) == shares
    assert sum(shares.values()) == min(budget, sum(demands.values()))


def test_each_service_keeps_its_newest_lines_and_the_drops_are_counted() -> None:
    kept, dropped = ration({"app": list(range(10)), "db": ["x", "y"], "idle": []}, 6)
    assert kept == {"app": [6, 7, 8, 9], "db": ["x", "y"], "idle": []}
    assert dropped == {"app": 6}


@pytest.mark.parametrize(
    ("queue", "limit", "left", "gone"),
    [([1, 2, 3], 5, [1, 2, 3], 0), ([1, 2, 3, 4, 5], 3, [3, 4, 5], 2), ([1], 0, [], 1)],
)
def test_a_queue_that_cannot_be_sent_keeps_its_newest(
    queue: list[int], limit: int, left: list[int], gone: int
) -> None:
    assert bounded(queue, limit) == (left, gone)


@pytest.mark.parametrize(
    ("sizes", "limit", "runs"),
    [
        ([], 30, []),
        ([10, 10, 10], 30, [(0, 3)]),
        ([10, 10, 30, 5], 30, [(0, 2), (2, 3), (3, 4)]),
        ([100, 1, 1], 30, [(0, 1), (1, 3)]),  # too big for any batch: sent alone
    ],
)
def test_lines_go_in_batches_of_at_most_so_many_bytes(
    sizes: list[int], limit: int, runs: list[tuple[int, int]]
) -> None:
    assert [(run.start, run.stop) for run in batches(sizes, limit)] == runs
