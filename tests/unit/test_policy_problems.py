"""A policy's problems come all at once, each with its field: the fields' own refusals and the
rules across fields, which still run when another field is bad."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from fleetwave.policies.schemas import PolicyCreate

GOOD = {"image_pattern": "iotistic/app:*"}
BAD_CHECK = {"checks": [{"name": "web", "type": "smoke-signals"}]}


def refused_fields(body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        PolicyCreate.model_validate(body)
    return [".".join(str(part) for part in error["loc"]) for error in refused.value.errors()]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            GOOD
            | {
                "max_failure_rate": 1.5,
                "maintenance_window_timezone": "Mars/Olympus_Mons",
                "batch_percentages": [50, 20, 100],
                "health_check_config": BAD_CHECK,
            },
            [
                "max_failure_rate",
                "health_check_config.checks[0].type",
                "batch_percentages",
                "maintenance_window_timezone",
            ],
        ),
        (  # the rules alone, every one of them
            GOOD
            | {
                "batch_percentages": [10, 50],
                "maintenance_window_start": "02:00",
                "maintenance_window_timezone": "Nowhere/Town",
            },
            ["batch_percentages", "maintenance_window_end", "maintenance_window_timezone"],
        ),
        (  # a refused pattern: the other rules still run
            {"image_pattern": "UPPER CASE:*", "batch_percentages": [60, 40, 100]},
            ["image_pattern", "batch_percentages"],
        ),
        (  # no pattern at all
            {"maintenance_window_timezone": "Nowhere/Town"},
            ["image_pattern", "maintenance_window_timezone"],
        ),
        (  # a bad field is not refused twice by the rules that read it
            GOOD | {"batch_percentages": [50, "x"], "staged_batches": 5},
            ["batch_percentages.1"],
        ),
        (  # a cross-field rule whose fields both passed
            GOOD | {"batch_percentages": [50, 100], "staged_batches": 3},
            ["batch_percentages"],
        ),
        (
            GOOD | {"update_strategy": "scheduled", "priority": "high"},
            ["priority", "maintenance_window_start"],
        ),
    ],
)
def test_every_problem_of_a_policy_is_named_with_its_field(
    body: dict[str, Any], fields: list[str]
) -> None:
    assert refused_fields(body) == fields


def test_a_good_policy_passes_its_rules() -> None:
    policy = PolicyCreate.model_validate(
        GOOD
        | {
            "batch_percentages": [10, 50, 100],
            "maintenance_window_start": "22:00",
            "maintenance_window_end": "04:00",
            "maintenance_window_timezone": "Europe/Paris",
            "update_strategy": "scheduled",
        }
    )
    assert policy.batch_percentages == [10, 50, 100]


def test_a_body_that_is_not_an_object_is_refused_once() -> None:
    with pytest.raises(ValidationError) as refused:
        PolicyCreate.model_validate(["not", "a", "policy"])
    assert len(refused.value.errors()) == 1
