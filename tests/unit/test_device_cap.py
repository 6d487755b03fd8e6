"""The caps on devices in flight (domain.device_cap), the setting that sets the fleet's, and
what ``decide`` says while a cap holds a batch back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetwave.domain.device_cap import DeviceCap
from fleetwave.domain.engine import RolloutSnapshot, Wait, decide
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("cap", "fleet", "mine", "room", "note"),
    [
        (DeviceCap(), 100, 5, None, None),
        (DeviceCap(fleet=40), 10, 0, 30, "fleet-wide cap 40"),
        (DeviceCap(fleet=40), 45, 0, 0, "fleet-wide cap 40"),
        (DeviceCap(rollout=5), 100, 2, 3, "policy cap 5"),
        (DeviceCap(fleet=40, rollout=5), 38, 2, 2, "policy cap 5"),
        (DeviceCap(fleet=4, rollout=5), 0, 0, 4, "fleet-wide cap 4"),
    ],
)
def test_room_is_the_least_any_cap_leaves(
    cap: DeviceCap, fleet: int, mine: int, room: int | None, note: str | None
) -> None:
    assert cap.room(fleet, mine) == room
    assert cap.note() == note


def test_a_batch_held_back_by_the_cap_says_how_far_it_started() -> None:
    snapshot = RolloutSnapshot(
        status="in_progress",
        strategy="staged",
        current_batch=2,
        batch_sizes=(10, 400, 600),
        counts={1: {"completed": 10}, 2: {"scheduled": 30, "completed": 10, "pending": 360}},
        settings=RolloutSettings(),
        now=datetime(2026, 1, 1, tzinfo=UTC),
        cap_note="fleet-wide cap 40",
    )
    [wait] = decide(snapshot)
    assert isinstance(wait, Wait)
    assert wait.reason == "batch 2: 40 of 400 devices started, fleet-wide cap 40"


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_fleet_wide_cap_of_zero_or_below_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FLEETWAVE_MAX_UPDATING_DEVICES", value)
    with pytest.raises(SettingsError, match="FLEETWAVE_MAX_UPDATING_DEVICES"):
        load_settings()


def test_the_fleet_wide_cap_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETWAVE_MAX_UPDATING_DEVICES", "40")
    assert load_settings().max_updating_devices == 40
