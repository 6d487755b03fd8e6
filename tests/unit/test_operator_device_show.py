"""What ``fleetwave devices show`` prints, from the API's JSON alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fleetwave.operator.client import AdminClient, ApiError
from fleetwave.operator.device_show import device_page, device_report, presence
from fleetwave.operator.render import to_text

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def device(**changes: Any) -> dict[str, Any]:
    return {
        "uuid": "pump-1",
        "device_name": "pump one",
        "fleet_id": "north",
        "tags": {"site": "lyon"},
        "device_type": "raspberrypi4-64",
        "application_id": "7",
        "os_version": "Debian 12",
        "supervisor_version": "1.4.0",
        "capabilities": ["checks.http", "progress"],
        "ip_address": "10.0.0.7",
        "mac_address": None,
        "created_at": "2026-12-01T08:00:00+00:00",
        "is_online": True,
        "last_connectivity_event": "2026-12-06T11:59:18+00:00",
        "not_applying_target": None,
    } | changes


def apps(image: str, status: str | None = None) -> dict[str, Any]:
    service: dict[str, Any] = {"serviceName": "app", "imageName": image}
    if status:
        service["status"] = status
    return {"1001": {"appId": 1001, "services": [service]}}


def history_row(**changes: Any) -> dict[str, Any]:
    return {
        "rollout_id": "02b670dd-aaaa-bbbb-cccc-ddddeeeeffff",
        "rollout_status": "completed",
        "image_name": "iotistic/myapp",
        "batch_number": 2,
        "status": "rolled_back",
        "old_image_tag": "v2.0.0",
        "new_image_tag": "v2.0.1",
        "scheduled_at": "2026-12-06T10:00:00+00:00",
        "update_completed_at": None,
        "rolled_back_at": "2026-12-06T10:03:00+00:00",
        "health_check_passed": False,
        "error_message": "1001/app is exited",
    } | changes


def report(current: dict[str, Any] | None, **pages: Any) -> dict[str, Any]:
    target = {"apps": apps("iotistic/myapp:v2.0.0"), "version": 4}
    rollouts = pages.get("rollouts", {"items": [history_row()], "total": 3, "next_cursor": 41})
    events = [
        {
            "id": 9,
            "timestamp": "2026-12-06T10:03:00+00:00",
            "event_type": "device_rolled_back",
            "device_uuid": "pump-1",
            "message": "running its old image again",
        }
    ]
    return device_report(device(), target, current, rollouts, events)


def test_a_device_is_shown_with_services_metrics_rollouts_and_events() -> None:
    current = {
        "apps": apps("iotistic/myapp:v2.0.0", "running"),
        "reported_at": "2026-12-06T11:59:18+00:00",
        "system_info": {"cpu_usage": 7.5, "memory_usage": 512, "memory_total": 2048},
    }
    text = to_text(device_page(report(current), NOW), width=200)
    assert text.startswith("device pump-1  online, last seen 42 s ago (2026-12-06 11:59:18)")
    assert "site=lyon" in text and "checks.http, progress" in text
    assert re.search(r"^application_id +7 *$", text, re.MULTILINE)
    assert "services (target against running, reported 2026-12-06 11:59:18)" in text
    line = next(row for row in text.splitlines() if row.startswith("1001/app"))
    assert line.split() == [
        "1001/app",
        "iotistic/myapp:v2.0.0",
        "iotistic/myapp:v2.0.0",
        "running",
        "as",
        "targeted",
    ]
    assert "CPU 7.5% · Memory 512 MB of 2.0 GB (25%)" in text
    assert "rollouts (1 of 3, newest first)" in text
    assert "02b670dd-aaaa-bbbb-cccc-ddddeeeeffff" in text and "v2.0.0 → v2.0.1" in text
    assert "12-06 10:03:00" in text and "failed" in text
    assert "older: --rollouts-cursor 41" in text
    assert "device_rolled_back" in text and "running its old image again" in text


def test_a_device_that_never_reported_says_so_and_lists_its_target_as_not_reported() -> None:
    empty = {"items": [], "total": 0, "next_cursor": None}
    shown = report(None, rollouts=empty)
    assert shown["services"] == [
        {
            "service": "1001/app",
            "target": "iotistic/myapp:v2.0.0",
            "running": None,
            "status": None,
            "verdict": "not reported",
        }
    ]
    text = to_text(device_page(shown, NOW), width=200)
    assert "no report yet" in text and "not reported" in text and "in no rollout yet" in text
    assert "metrics" not in text and "older:" not in text


def test_an_offline_device_says_when_it_was_last_seen_and_a_stalled_one_what_it_skips() -> None:
    never = to_text(presence(device(is_online=False, last_connectivity_event=None), NOW))
    assert never.strip() == "device pump-1  offline, last seen never"
    stalled = device(
        not_applying_target={"image": "iotistic/myapp:v2.0.1", "since": "2026-12-06T11:00:00Z"}
    )
    assert "not applying iotistic/myapp:v2.0.1 since 2026-12-06 11:00:00" in to_text(
        presence(stalled, NOW), width=200
    )


def test_the_clients_device_calls_escape_ids_and_a_device_without_a_report_reads_none() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        if request.url.path.endswith("/current-state"):
            missing = "device a b has not reported its state yet"
            return httpx.Response(404, json={"error": missing, "detail": None})
        return httpx.Response(200, json={})

    api = AdminClient("http://fleetwave.test", "secret", transport=httpx.MockTransport(handle))
    assert api.current_state("a b") is None
    api.device_control("r/1", "a b", "retry", {})
    api.device_rollouts("a b", limit=1, cursor=None)
    api.events(device_uuid="a b", tail=3)
    assert seen == [
        "/api/v1/devices/a%20b/current-state",
        "/api/v1/rollouts/r%2F1/devices/a%20b/retry",
        "/api/v1/devices/a%20b/rollouts?limit=1",
        "/api/v1/events?device_uuid=a+b&tail=3",
    ]


def test_a_device_that_is_gone_is_still_an_error_when_its_state_is_read() -> None:
    gone = {"error": "device x not found", "detail": None}
    api = AdminClient(
        "http://fleetwave.test",
        "secret",
        transport=httpx.MockTransport(lambda _: httpx.Response(404, json=gone)),
    )
    with pytest.raises(ApiError):
        api.current_state("x")
