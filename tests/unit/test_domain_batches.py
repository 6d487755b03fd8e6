"""A rollout's devices cut into batches: fractions, sizes that cover everyone, percentages."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from fleetwave.domain.batches import (
    MAX_BATCHES,
    batch_fractions,
    batch_sizes,
    check_percentages,
)
from fleetwave.domain.errors import InvalidInput

DEFAULTS = [0.1, 0.5, 1.0]
THIRDS = [1 / 3, 2 / 3, 1.0]
QUARTERS = [0.25, 0.5, 0.75, 1.0]


# --- batch_fractions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "staged_batches", "percentages", "defaults", "expected"),
    [
        pytest.param("auto", 3, None, DEFAULTS, [1.0], id="auto is one batch"),
        pytest.param("auto", 3, [10, 50, 100], DEFAULTS, [1.0], id="auto ignores percentages"),
        pytest.param("auto", 5, None, DEFAULTS, [1.0], id="auto ignores staged_batches"),
        pytest.param("staged", 3, [20, 100], DEFAULTS, [0.2, 1.0], id="explicit percentages"),
        pytest.param(
            "staged", 2, [5, 25, 60, 100], DEFAULTS, [0.05, 0.25, 0.6, 1.0], id="percentages win"
        ),
        pytest.param("staged", 3, None, DEFAULTS, DEFAULTS, id="as many as defaults"),
        pytest.param("staged", 3, [], DEFAULTS, DEFAULTS, id="empty percentages are none"),
        pytest.param("manual", 3, None, DEFAULTS, DEFAULTS, id="manual uses defaults too"),
        pytest.param("staged", 4, None, DEFAULTS, QUARTERS, id="4 batches: quarters"),
        pytest.param("staged", 2, None, DEFAULTS, [0.5, 1.0], id="2 batches: halves"),
        pytest.param("staged", 1, None, DEFAULTS, [1.0], id="1 batch"),
        pytest.param(
            "scheduled", 5, None, DEFAULTS, [0.2, 0.4, 0.6, 0.8, 1.0], id="scheduled, 5 batches"
        ),
        pytest.param(
            "staged", 3, None, [0.05, 0.25, 0.5, 1.0], THIRDS, id="defaults of another length"
        ),
    ],
)
def test_batch_fractions(
    strategy: str,
    staged_batches: int,
    percentages: list[float] | None,
    defaults: list[float],
    expected: list[float],
) -> None:
    assert batch_fractions(strategy, staged_batches, percentages, defaults) == pytest.approx(
        expected
    )


def test_batch_fractions_returns_a_copy_of_the_defaults() -> None:
    defaults = [0.1, 0.5, 1.0]
    fractions = batch_fractions("staged", 3, None, defaults)
    fractions.append(2.0)

    assert defaults == [0.1, 0.5, 1.0]


# --- batch_sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "fractions", "expected"),
    [
        pytest.param(10, DEFAULTS, [1, 4, 5], id="10 devices: 10/50/100"),
        pytest.param(100, DEFAULTS, [10, 40, 50], id="100 devices"),
        pytest.param(1000, DEFAULTS, [100, 400, 500], id="1000 devices"),
        pytest.param(30, DEFAULTS, [3, 12, 15], id="30: 0.1*30 is 3.0000000000000004"),
        pytest.param(5, DEFAULTS, [1, 2, 2], id="5 devices"),
        pytest.param(3, DEFAULTS, [1, 1, 1], id="3 devices, 3 batches"),
        pytest.param(2, DEFAULTS, [1, 1], id="2 devices: a batch dropped"),
        pytest.param(1, DEFAULTS, [1], id="1 device"),
        pytest.param(0, DEFAULTS, [], id="no devices"),
        pytest.param(7, THIRDS, [3, 2, 2], id="7 in thirds"),
        pytest.param(9, THIRDS, [3, 3, 3], id="9 in thirds"),
        pytest.param(10, QUARTERS, [3, 2, 3, 2], id="10 in quarters"),
        pytest.param(4, QUARTERS, [1, 1, 1, 1], id="4 in quarters"),
        pytest.param(3, QUARTERS, [1, 1, 1], id="3 in quarters"),
        pytest.param(10, [0.7, 1.0], [7, 3], id="0.7*10 is 7.000000000000001"),
        pytest.param(10, [1.0], [10], id="one batch"),
        pytest.param(10, [0.1, 0.5], [1, 4, 5], id="short of 1.0: the rest added"),
        pytest.param(10, [0.5], [5, 5], id="half, then the rest"),
        pytest.param(10, [], [10], id="no fractions: everyone at once"),
        pytest.param(0, [], [], id="nothing at all"),
        pytest.param(10, [0.01, 1.0], [1, 9], id="tiny canary still one device"),
        pytest.param(10, [0.99, 1.0], [10], id="first batch reaches everyone"),
    ],
)
def test_batch_sizes(total: int, fractions: list[float], expected: list[int]) -> None:
    assert batch_sizes(total, fractions) == expected


FRACTION_LISTS = [
    [1.0],
    DEFAULTS,
    THIRDS,
    QUARTERS,
    [0.05, 0.25, 0.5, 1.0],
    [0.2, 0.4, 0.6, 0.8, 1.0],
    [0.1, 0.5],
    [0.01, 1.0],
    [0.5],
    [0.999],
    [],
    [0.33, 0.66, 0.99],
]


@pytest.mark.parametrize(
    "fractions", [pytest.param(f, id=repr([round(x, 3) for x in f])) for f in FRACTION_LISTS]
)
def test_batch_sizes_always_cover_everyone_with_no_empty_batch(fractions: Sequence[float]) -> None:
    for total in range(201):
        sizes = batch_sizes(total, fractions)

        assert sum(sizes) == total, total
        assert all(size > 0 for size in sizes), (total, sizes)
        assert len(sizes) <= len(fractions) + 1, (total, sizes)
        if total and fractions:
            # the canary is never bigger than its fraction asks (but has someone in it)
            assert sizes[0] <= max(1, math.ceil(fractions[0] * total)), (total, sizes)


@pytest.mark.parametrize(
    "fractions", [pytest.param(f, id=repr([round(x, 3) for x in f])) for f in FRACTION_LISTS[:6]]
)
def test_with_enough_devices_every_batch_reaches_its_fraction(fractions: Sequence[float]) -> None:
    for total in range(len(fractions) * 10, 201):
        sizes = batch_sizes(total, fractions)
        reached = [sum(sizes[: i + 1]) for i in range(len(sizes))]

        assert len(sizes) == len(fractions), total
        for fraction, cumulative in zip(fractions, reached, strict=True):
            assert cumulative >= fraction * total - 1e-9, (total, sizes)


# --- check_percentages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "percentages",
    [
        pytest.param([100], id="one batch"),
        pytest.param([10, 50, 100], id="the plan's default"),
        pytest.param([0.5, 100], id="fractional canary"),
        pytest.param([25, 50, 75, 100], id="quarters"),
        pytest.param([99.9, 100], id="almost everyone first"),
        pytest.param([i + 1 for i in range(MAX_BATCHES)], id="as many batches as allowed"),
    ],
)
def test_check_percentages_accepts_increasing_percentages_ending_at_100(
    percentages: list[float],
) -> None:
    check_percentages(percentages)


@pytest.mark.parametrize(
    ("percentages", "fragment"),
    [
        pytest.param([], "at least one", id="empty"),
        pytest.param(
            [i / 1000 for i in range(1, 100_000)] + [100], "at most 100 batches", id="100,000"
        ),
        pytest.param([i + 1 for i in range(MAX_BATCHES)] + [100.5], "at most 100", id="101"),
        pytest.param([0, 100], "(0, 100]", id="zero"),
        pytest.param([-10, 100], "(0, 100]", id="negative"),
        pytest.param([50, 150], "(0, 100]", id="over 100"),
        pytest.param([50, 50, 100], "must increase", id="repeated"),
        pytest.param([60, 40, 100], "must increase", id="decreasing"),
        pytest.param([100, 100], "must increase", id="100 twice"),
        pytest.param([10, 50], "must be 100", id="stops short"),
        pytest.param([10, 99.9], "must be 100", id="stops just short"),
    ],
)
def test_check_percentages_refuses_bad_lists_naming_the_field(
    percentages: list[float], fragment: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_percentages(percentages, field="policy.batch_percentages")

    [problem] = caught.value.problems
    assert problem.field == "policy.batch_percentages"
    assert fragment in problem.message


def test_the_default_field_of_bad_percentages_is_batch_percentages() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_percentages([])

    assert [p.field for p in caught.value.problems] == ["batch_percentages"]
