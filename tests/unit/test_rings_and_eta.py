"""Deployment rings in the plan, and the preview's batch times: pure rules as tables."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from fleetwave.domain.rings import Ring, first_ring
from fleetwave.domain.rollout_eta import batch_etas, next_window
from fleetwave.domain.rollout_plan import Candidate, ServiceImage, plan_rollout
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.tags import TagRule

OLD = (ServiceImage("1/web", "acme/app:v1", "v1", None),)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("uuid", "fleet", "tags", "ring"),
    [
        ("a", "f1", {"ring": "canary"}, 0),  # canary first, though fleet f1 is ring 1
        ("b", "f1", {}, 1),
        ("c", None, {}, 2),  # the everyone ring: no selector
        ("d", "f2", {"ring": "canary"}, 0),
    ],
)
def test_a_device_takes_the_first_ring_that_selects_it(
    uuid: str, fleet: str | None, tags: dict[str, str], ring: int
) -> None:
    rings = [Ring("canary", device_tags={"ring": "canary"}), Ring("early", "f1"), Ring("all")]
    assert first_ring(rings, uuid, fleet, tags) == ring


def test_a_ring_listing_uuids_selects_only_them() -> None:
    ring = Ring("lab", device_uuids=frozenset({"x"}))
    assert [ring.selects(u, None, {}) for u in ("x", "y")] == [True, False]


def test_ringed_plan_makes_one_batch_per_ring_with_devices_and_leaves_out_the_unringed() -> None:
    candidates = [
        Candidate("e1", True, OLD, ring=2),
        Candidate("c1", False, OLD, ring=0),
        Candidate("c2", True, OLD, ring=0),
        Candidate("n1", True, OLD, ring=None),
    ]
    plan = plan_rollout(
        candidates,
        new_tag="v2",
        new_digest=None,
        rule=TagRule(),
        fractions=[0.5, 1.0],
        rings=["canary", "empty", "everyone"],
    )
    assert plan.batch_sizes == [2, 1]
    assert plan.batch_rings == ["canary", "everyone"]
    assert [(d.uuid, d.batch_number) for d in plan.devices] == [("c2", 1), ("c1", 1), ("e1", 2)]
    assert plan.excluded["in_no_ring"] == {"count": 1, "devices": ["n1"]}


SETTINGS = RolloutSettings(
    batch_delay=timedelta(minutes=10),
    update_timeout=timedelta(minutes=30),
    soak=timedelta(minutes=5),
)


def test_batches_follow_each_other_after_timeout_soak_and_delay() -> None:
    etas = batch_etas(2, "staged", SETTINGS, NOW)
    assert [(e.starts_at - NOW, e.ends_by - NOW) for e in etas] == [
        (timedelta(0), timedelta(minutes=35)),
        (timedelta(minutes=45), timedelta(minutes=80)),
    ]
    assert [e.waits_for for e in etas] == [(), ("batch_delay",)]


def test_a_scheduled_rollout_starts_each_batch_in_the_window() -> None:
    windowed = RolloutSettings(
        batch_delay=timedelta(0),
        update_timeout=timedelta(hours=1),
        soak=timedelta(0),
        window_start=time(2),
        window_end=time(3),
        window_timezone="Europe/Paris",
    )
    etas = batch_etas(2, "scheduled", windowed, NOW)  # 01:00 in Paris
    assert etas[0].starts_at == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert etas[1].starts_at == datetime(2026, 1, 2, 1, tzinfo=UTC)  # the window closed
    assert etas[1].waits_for == ("maintenance_window",)
    window = next_window(windowed, NOW)
    assert window is not None and window["timezone"] == "Europe/Paris"


def test_a_manual_rollout_waits_for_approval_once_or_per_batch() -> None:
    once = batch_etas(3, "manual", SETTINGS, NOW)
    each = batch_etas(3, "manual", RolloutSettings(approve_each_batch=True), NOW)
    assert ["approval" in e.waits_for for e in once] == [True, False, False]
    assert ["approval" in e.waits_for for e in each] == [True, True, True]
