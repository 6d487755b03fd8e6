"""``fleetwave devices show`` and ``rollouts retry-device``, run as real ``fleetwave``
processes against a real ``fleetwave serve`` with devices played over HTTP: a device that took
one rollout and crashed on the next is shown with its services, its rollouts (newest first,
paged) and its latest events, as text and as JSON."""

from __future__ import annotations

from tests.e2e.test_operator_cli import (
    PlayedFleet,
    Server,
    as_json,
    create_policy,
    fleet,
    fleetwave,
    ok,
    register_devices,
    rollout,
    server,
    trigger,
    wait_until,
)

__all__ = ["fleet", "server"]


def test_devices_show_prints_services_rollouts_and_events_of_a_device(
    server: Server, fleet: PlayedFleet
) -> None:
    create_policy(server, "acme/shown", "--batch-delay", "0")
    first, _ = register_devices(server, fleet, "acme/shown", 2)
    good = trigger(server, "acme/shown:v2")
    wait_until(lambda: rollout(server, good)["status"] == "completed", what="v2 everywhere")
    fleet.crash_on.add("v3")
    bad = trigger(server, "acme/shown:v3")
    wait_until(
        lambda: rollout(server, bad)["rolled_back_devices"] == 1,
        what="the first device to crash on v3 and run v2 again",
    )

    shown = ok(server, "devices", "show", first)
    assert f"device {first}  online, last seen" in shown
    assert "app=shown" in shown and "e2e" in shown  # its tag and fleet
    service = next(line for line in shown.splitlines() if line.lstrip().startswith("1001/app"))
    assert service.split() == ["1001/app", "acme/shown:v2", "acme/shown:v2", "running", "as",
                               "targeted"]  # fmt: skip
    assert "rollouts (2 of 2, newest first)" in shown
    assert shown.index(bad) < shown.index(good)
    assert "v2 → v3" in shown and "v1 → v2" in shown and "rolled_back" in shown
    assert "rollback_triggered" in shown and "device_failed" in shown  # its latest events

    report = as_json(server, "devices", "show", first, "--rollouts", "1", "--events", "3")
    assert report["device"]["uuid"] == first and report["current_state"]["apps"]
    assert report["services"] == [
        {
            "service": "1001/app",
            "target": "acme/shown:v2",
            "running": "acme/shown:v2",
            "status": "running",
            "verdict": "as targeted",
        }
    ]
    [newest] = report["rollouts"]["items"]
    assert newest["rollout_id"] == bad and newest["status"] == "rolled_back"
    assert report["rollouts"]["total"] == 2
    assert len(report["events"]) == 3 and {e["device_uuid"] for e in report["events"]} == {first}
    cursor = str(report["rollouts"]["next_cursor"])
    older = as_json(server, "devices", "show", first, "--rollouts", "1", "--rollouts-cursor",
                    cursor)  # fmt: skip
    assert [r["rollout_id"] for r in older["rollouts"]["items"]] == [good]

    refused = fleetwave(server, "rollouts", "retry-device", bad, first)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        f"fleetwave: device {first} cannot be retried: its rollout allows no retries "
        "(max_retries 0) (HTTP 409)\n"
    )
    missing = fleetwave(server, "devices", "show", "no-such-device")
    assert missing.returncode == 1
    assert missing.stderr == "fleetwave: device no-such-device not found (HTTP 404)\n"
