"""RolloutSettings are frozen into a rollout as JSON and read back unchanged."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest

from fleetwave.domain.rollout_settings import RolloutSettings

PARIS_NIGHT = RolloutSettings(
    batch_delay=timedelta(minutes=90),
    max_failure_rate=0.05,
    min_finished=3,
    update_timeout=timedelta(minutes=45),
    max_retries=5,
    offline_grace=timedelta(hours=2),
    soak=timedelta(seconds=120),
    health_check_enabled=False,
    health_check_timeout=timedelta(seconds=600),
    auto_rollback=False,
    approve_each_batch=True,
    window_start=time(22, 0),
    window_end=time(4, 30),
    window_timezone="Europe/Paris",
)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(RolloutSettings(), id="defaults, no window"),
        pytest.param(PARIS_NIGHT, id="every field set, window across midnight"),
        pytest.param(
            RolloutSettings(batch_delay=timedelta(seconds=90), soak=timedelta(seconds=1.5)),
            id="fractions of minutes and seconds",
        ),
        pytest.param(RolloutSettings(batch_delay=timedelta(0)), id="no delay"),
    ],
)
def test_settings_survive_a_json_round_trip(settings: RolloutSettings) -> None:
    assert RolloutSettings.from_json(settings.as_json()) == settings


def test_as_json_names_the_policy_fields() -> None:
    # the policy's names and units; fields added later (e.g. health checks) are not pinned here
    expected = {
        "batch_delay_minutes": 90.0,
        "max_failure_rate": 0.05,
        "failure_rate_min_devices": 3,
        "update_timeout_minutes": 45.0,
        "max_retries": 5,
        "offline_grace_minutes": 120.0,
        "soak_seconds": 120.0,
        "health_check_enabled": False,
        "health_check_timeout_seconds": 600.0,
        "auto_rollback": False,
        "approve_each_batch": True,
        "maintenance_window_start": "22:00:00",
        "maintenance_window_end": "04:30:00",
        "maintenance_window_timezone": "Europe/Paris",
    }
    data = PARIS_NIGHT.as_json()
    assert {key: data.get(key, "missing") for key in expected} == expected


def test_no_window_is_written_as_nulls() -> None:
    data = RolloutSettings().as_json()
    assert data["maintenance_window_start"] is None
    assert data["maintenance_window_end"] is None
    assert data["maintenance_window_timezone"] == "UTC"
    assert RolloutSettings.from_json(data).has_window is False


def without_window() -> dict[str, Any]:
    data = RolloutSettings().as_json()
    for key in ("maintenance_window_start", "maintenance_window_end"):
        del data[key]
    del data["maintenance_window_timezone"]
    return data


@pytest.mark.parametrize(
    ("changes", "start", "end", "timezone"),
    [
        pytest.param({}, None, None, "UTC", id="window keys missing (older rows)"),
        pytest.param(
            {"maintenance_window_start": "", "maintenance_window_end": ""},
            None,
            None,
            "UTC",
            id="empty strings: no window",
        ),
        pytest.param({"maintenance_window_timezone": None}, None, None, "UTC", id="null zone"),
        pytest.param(
            {"maintenance_window_start": "02:00", "maintenance_window_end": "04:15:30"},
            time(2, 0),
            time(4, 15, 30),
            "UTC",
            id="short and long clock times",
        ),
        pytest.param(
            {
                "maintenance_window_start": "22:00:00",
                "maintenance_window_end": "04:00:00",
                "maintenance_window_timezone": "America/New_York",
            },
            time(22, 0),
            time(4, 0),
            "America/New_York",
            id="window in a zone",
        ),
    ],
)
def test_from_json_reads_the_window(
    changes: dict[str, Any], start: time | None, end: time | None, timezone: str
) -> None:
    settings = RolloutSettings.from_json(without_window() | changes)
    assert (settings.window_start, settings.window_end, settings.window_timezone) == (
        start,
        end,
        timezone,
    )
    assert settings.has_window is (start is not None)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(None, None, False, id="none"),
        pytest.param(time(2), None, False, id="start only"),
        pytest.param(None, time(4), False, id="end only"),
        pytest.param(time(2), time(4), True, id="both"),
        pytest.param(time(0), time(4), True, id="midnight start is a start"),
    ],
)
def test_has_window_needs_both_ends(start: time | None, end: time | None, expected: bool) -> None:
    assert RolloutSettings(window_start=start, window_end=end).has_window is expected
