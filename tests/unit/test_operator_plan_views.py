"""The CLI's preview and rings views, from the API's JSON, without a server."""

from __future__ import annotations

from fleetwave.operator.plan_views import preview_view, rings_table
from fleetwave.operator.render import to_text


def test_an_ignored_push_prints_why_and_each_group_left_out() -> None:
    preview = {
        "outcome": "ignored",
        "message": "no device takes iotistic/myapp:v1.0.0: older (3 devices)",
        "batches": [],
        "excluded": {
            "already_on_new_version": {"count": 2, "devices": ["a", "b"]},
            "running_newer_version": [{"reason": "runs v2", "count": 3, "devices": []}],
        },
        "warnings": [],
    }
    text = to_text(preview_view(preview))
    assert "dry run: no device takes iotistic/myapp:v1.0.0" in text
    assert "excluded, already on new version: 2 devices" in text
    assert "excluded, running newer version (runs v2): 3 devices" in text
    assert "BATCH" not in text


def test_rings_table_counts_and_names_the_policies() -> None:
    ring = {"name": "canary", "fleet_id": None, "device_tags": {"ring": "canary"},
            "device_uuids": None, "devices": 4, "used_by_policies": [1, 3]}  # fmt: skip
    text = to_text(rings_table([ring]))
    assert "canary" in text and "ring=canary" in text and "1, 3" in text
    assert to_text(rings_table([])).strip() == "no rings"
