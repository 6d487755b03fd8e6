"""``fleetwave rollouts show 02b670dd``: the short id the dashboard shows works in the CLI (a
real ``fleetwave`` process against a real ``fleetwave serve``), and so does a search of a
rollout's devices."""

from __future__ import annotations

from tests.e2e.test_operator_cli import (
    PlayedFleet,
    Server,
    create_policy,
    fleet,
    fleetwave,
    ok,
    register_devices,
    server,
    trigger,
)

__all__ = ["fleet", "server"]  # fixtures


def test_rollouts_show_takes_the_short_id_and_prints_the_old_and_new_tags(
    server: Server, fleet: PlayedFleet
) -> None:
    create_policy(server, "acme/short", "--batches", "1", "--batch-delay", "0")
    uuids = register_devices(server, fleet, "acme/short", 2)
    rollout_id = trigger(server, "acme/short:v2", "--tag", "app=short", "--fleet", "e2e")

    shown = ok(server, "rollouts", "show", rollout_id[:8])
    assert rollout_id in shown
    lines = {line.split()[0]: line.split()[1:] for line in shown.splitlines() if line.strip()}
    assert lines["old_tag"] == ["v1"] and lines["new_tag"] == ["v2"]

    found = ok(server, "rollouts", "devices", rollout_id[:10], "--search", uuids[1].upper())
    assert uuids[1] in found and uuids[0] not in found

    too_short = fleetwave(server, "rollouts", "show", rollout_id[:5])
    assert too_short.returncode != 0
    assert "at least 8 characters" in too_short.stderr + too_short.stdout
    missing = fleetwave(server, "rollouts", "show", "ffffffff")
    assert missing.returncode != 0 and "not found" in missing.stderr + missing.stdout
