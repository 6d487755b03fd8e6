"""What the dashboard draws from the services' answers: bars, control positions, the plan, and
the policy form's parsing (pure functions)."""

from __future__ import annotations

from datetime import time

import pytest

from fleetwave.domain.errors import InvalidInput
from fleetwave.ui.policy_form import form_values, policy_fields, problems_by_field
from fleetwave.ui.views import batch_bar, plan_rows, readable, rollout_position, short_tag


def test_a_bar_splits_its_batch_by_outcome_and_counts_missing_rows_as_pending() -> None:
    bar = batch_bar(
        {
            "batch": 2,
            "size": 10,
            "status": "in_progress",
            "counts": {
                "completed": 4,
                "failed": 1,
                "rollback_failed": 1,
                "rolled_back": 1,
                "pulling": 2,
            },
        }
    )
    widths = {s.name: s.width for s in bar.segments}
    assert widths == {
        "completed": 40,
        "failed": 20,
        "rolled-back": 10,
        "updating": 20,
        "skipped": 0,
        "pending": 10,
    }
    starts = [s.start for s in bar.segments]
    assert starts == sorted(starts) and starts[0] == 0
    assert bar.summary == "batch 2: 4 completed, 2 failed, 1 rolled back, 2 updating, 1 pending"


def test_an_empty_batch_draws_nothing() -> None:
    bar = batch_bar({"batch": 1, "size": 0, "status": "waiting", "counts": {}})
    assert all(s.width == 0 for s in bar.segments)


def test_the_control_position_reads_the_current_batch_and_failures() -> None:
    rollout = {
        "status": "in_progress",
        "current_batch": 2,
        "batch_sizes": [1, 4, 5],
        "batches": [
            {"batch": 1, "counts": {"completed": 1}},
            {"batch": 2, "counts": {"updating": 2, "failed": 1, "rolled_back": 1}},
            {"batch": 3, "counts": {"pending": 5}},
        ],
    }
    position = rollout_position(rollout)
    assert (position.total_batches, position.unfinished_in_current_batch) == (3, 2)
    assert position.failed_devices == 2


def test_the_plan_says_batches_delays_window_and_approvals_in_words() -> None:
    rollout = {
        "strategy": "scheduled",
        "batch_sizes": [1, 4, 5],
        "settings": {
            "batch_delay_minutes": 0.5,
            "maintenance_window_start": "02:00:00",
            "maintenance_window_end": "04:00:00",
            "maintenance_window_timezone": "Europe/Paris",
            "approve_each_batch": True,
            "max_failure_rate": 0.2,
            "health_check_enabled": True,
            "auto_rollback": False,
            "update_timeout_minutes": 30,
        },
    }
    plan = dict(plan_rows(rollout))
    assert plan["Batches"] == "1 → 4 → 5 devices (3 batches)"
    assert plan["Delay between batches"] == "30 s"
    assert plan["Maintenance window"] == "02:00:00–04:00:00 Europe/Paris"
    assert plan["Approvals"] == "every batch needs a promote"
    assert plan["Failure bound"] == "20%"
    assert plan["Auto rollback"] == "off"


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("iotistic/myapp:v2.0.1", "v2.0.1"),
        ("iotistic/myapp:v2.0.1@sha256:abc", "v2.0.1"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app"),
        (None, "—"),
    ],
)
def test_short_tags(image: str | None, tag: str) -> None:
    assert short_tag(image) == tag


def test_the_policy_form_parses_lists_tags_json_and_checkboxes() -> None:
    fields = policy_fields(
        {
            "image_pattern": "acme/*",
            "batch_percentages": "5, 25,100",
            "staged_batches": "3",
            "device_tags": "site:lyon, ring=canary",
            "health_check_config": '{"checks": []}',
            "maintenance_window_start": "02:00",
            "maintenance_window_end": "04:00",
            "enabled": "true",
        }
    )
    assert fields.batch_percentages == [5, 25, 100]
    assert fields.device_tags == {"site": "lyon", "ring": "canary"}
    assert fields.health_check_config == {"checks": []}
    assert fields.maintenance_window_start == time(2, 0)
    assert fields.enabled is True and fields.auto_rollback is False  # unchecked box
    assert fields.batch_delay_minutes is None  # left empty: the configured default


def test_the_policy_form_reports_bad_json_and_schema_errors_by_field() -> None:
    with pytest.raises(InvalidInput) as bad_json:
        policy_fields({"image_pattern": "a", "health_check_config": "{nope"})
    assert problems_by_field(bad_json.value)["health_check_config"][0].startswith(
        "is not valid JSON"
    )
    with pytest.raises(InvalidInput) as bad_number:
        policy_fields({"image_pattern": "a", "max_retries": "many", "batch_percentages": "5, x"})
    found = problems_by_field(bad_number.value)
    assert set(found) == {"max_retries", "batch_percentages"}


def test_form_values_show_a_policy_as_the_operator_would_type_it() -> None:
    values = form_values(
        {
            "image_pattern": "acme/*",
            "batch_percentages": [5.0, 25.0, 100.0],
            "device_tags": {"site": "lyon"},
            "maintenance_window_start": time(2, 30),
            "enabled": False,
            "max_failure_rate": 0.25,
        }
    )
    assert values["batch_percentages"] == "5, 25, 100"
    assert values["device_tags"] == "site:lyon"
    assert values["maintenance_window_start"] == "02:30"
    assert values["enabled"] is False and values["max_failure_rate"] == "0.25"
    assert values["fleet_id"] == ""


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain line", "plain line"),
        ("\x1b[31mError\x1b[0m: boom", "Error: boom"),
        ("\x1b[2K\x1b[1Gprogress 50%", "progress 50%"),
        ("bell\x07 and back\x08space", "bell and backspace"),
        ("trace:\n\tat main", "trace:\n\tat main"),
    ],
)
def test_a_log_line_is_shown_without_terminal_escapes(text: str, shown: str) -> None:
    assert readable(text) == shown
