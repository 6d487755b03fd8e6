"""The device page's and ``devices show``'s pure parts, as tables of cases: services target
against running, metrics and last-seen in words, and which per-device actions apply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleetwave.domain.controls import device_retry_refusal, device_rollback_refusal
from fleetwave.domain.readings import ago, duration, readings, share, size
from fleetwave.domain.service_states import (
    AS_TARGETED,
    CHANGING,
    DIFFERENT,
    NOT_REPORTED,
    NOT_RUNNING,
    NOT_TARGETED,
    ServiceState,
    compare_services,
)
from fleetwave.ui.device_views import finished_at, history_actions

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
V1, V2 = "iotistic/myapp:v1", "iotistic/myapp:v2"
DIGEST = "sha256:" + "a" * 64


def apps(*services: dict[str, Any], app_id: str = "1001") -> dict[str, Any]:
    return {app_id: {"appId": int(app_id), "services": list(services)}}


def service(name: str, image: str, status: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"serviceName": name, "imageName": image}
    if status is not None:
        found["status"] = status
    return found


@pytest.mark.parametrize(
    ("target", "running", "verdict"),
    [
        pytest.param(V2, service("app", V2, "running"), AS_TARGETED, id="runs its target"),
        pytest.param(V2, service("app", V2, "Up"), AS_TARGETED, id="any case, engine words"),
        pytest.param(V2, service("app", V2), AS_TARGETED, id="no state said: as targeted"),
        pytest.param(V2, service("app", V1, "running"), DIFFERENT, id="runs another image"),
        pytest.param(V2, service("app", V2, "exited"), NOT_RUNNING, id="target exited"),
        pytest.param(V2, service("app", V2, "restarting"), NOT_RUNNING, id="target restarting"),
        pytest.param(V2, service("app", V1, "pulling"), CHANGING, id="pulling its target"),
        pytest.param(V2, service("app", V1, "starting"), CHANGING, id="starting"),
        pytest.param(V2, None, NOT_REPORTED, id="absent from the report"),
        pytest.param(
            f"{V2}@{DIGEST}",
            service("app", f"iotistic/myapp@{DIGEST}", "running"),
            AS_TARGETED,
            id="pinned target reported without its tag",
        ),
        pytest.param(
            "myapp:v2",
            service("app", "docker.io/library/myapp:v2", "running"),
            AS_TARGETED,
            id="Docker Hub short and long forms",
        ),
    ],
)
def test_a_service_is_compared_with_its_target(
    target: str, running: dict[str, Any] | None, verdict: str
) -> None:
    reported = apps(running) if running else apps()
    [state] = compare_services(apps(service("app", target)), reported)
    expected = running["status"] if running and "status" in running else None
    image = running["imageName"] if running else None
    assert state == ServiceState("1001/app", target, image, expected, verdict)


def test_services_of_target_and_report_are_all_listed_target_order_first() -> None:
    target = apps(service("web", V2), service("db", "postgres:16"))
    report = apps(service("db", "postgres:16", "running"), service("old", V1, "running"))
    states = compare_services(target, report)
    assert [(s.service, s.verdict) for s in states] == [
        ("1001/web", NOT_REPORTED),
        ("1001/db", AS_TARGETED),
        ("1001/old", NOT_TARGETED),
    ]
    assert compare_services(target, None)[0].verdict == NOT_REPORTED
    assert compare_services({}, None) == []
    assert compare_services({"1": "junk", "2": {"services": ["junk"]}}, None) == []


@pytest.mark.parametrize(
    ("info", "rows"),
    [
        pytest.param({}, [], id="nothing reported"),
        pytest.param(None, [], id="no report"),
        pytest.param(
            {"cpu_usage": 12.5, "memory_usage": 512, "memory_total": 2048},
            [("CPU", "12.5%"), ("Memory", "512 MB of 2.0 GB (25%)")],
            id="the iotistic agent's MB",
        ),
        pytest.param(
            {"storage_usage": 10 * 2**30, "storage_total": 32 * 2**30},
            [("Storage", "10.0 GB of 32.0 GB (31%)")],
            id="bytes",
        ),
        pytest.param({"memory_usage": 300}, [("Memory", "300 MB")], id="used alone"),
        pytest.param({"memory_total": 4096}, [("Memory", "? of 4.0 GB")], id="total alone"),
        pytest.param(
            {"temperature": -5, "uptime": 90061, "local_ip": "10.0.0.7"},
            [("Temperature", "-5 °C"), ("Uptime", "1 d 1 h"), ("Local IP", "10.0.0.7")],
            id="temperature, uptime, address",
        ),
        pytest.param({"cpu_usage": True, "uptime": "long"}, [], id="not numbers: left out"),
    ],
)
def test_metrics_are_written_in_words(info: dict[str, Any] | None, rows: list[Any]) -> None:
    assert readings(info) == rows


@pytest.mark.parametrize(
    ("used", "total", "text"),
    [
        (0, 0, "0 MB of 0 MB"),
        (1536, 2048, "1.5 GB of 2.0 GB (75%)"),
        (5, 3 * 2**20, "5 MB of 3.0 TB (0%)"),
    ],
)
def test_a_share_says_how_much_of_what(used: float, total: float, text: str) -> None:
    assert share(used, total) == text


def test_sizes_switch_units_and_keep_large_ones_round() -> None:
    assert [size(v) for v in (0, 512, 1024, 150 * 1024, 2**24, 5 * 2**40)] == [
        "0 MB",
        "512 MB",
        "1.0 GB",
        "150 GB",
        "16 MB",
        "5.0 TB",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (42, "42 s"),
        (425, "7 min 5 s"),
        (3600, "1 h"),
        (3660, "1 h 1 min"),
        (2 * 86400 + 5, "2 d"),
        (90061.9, "1 d 1 h"),
    ],
)
def test_durations_show_their_two_largest_units(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("then", "text"),
    [
        (None, "never"),
        (NOW, "0 s ago"),
        (NOW - timedelta(seconds=59), "59 s ago"),
        (NOW - timedelta(minutes=5, seconds=30), "5 min ago"),
        (NOW - timedelta(hours=3), "3 h ago"),
        (NOW - timedelta(days=2, hours=23), "2 d ago"),
        (NOW + timedelta(seconds=3), "0 s ago"),  # a clock a little ahead
    ],
)
def test_last_seen_is_said_as_how_long_ago(then: datetime | None, text: str) -> None:
    assert ago(then, NOW) == text


@pytest.mark.parametrize(
    ("rollout", "status", "retries", "reason"),
    [
        ("completed", "rolled_back", (0, 3), None),
        ("in_progress", "failed", (2, 3), None),
        ("paused", "rollback_failed", (0, 1), None),
        ("failed", "failed", (0, 1), None),
        (
            "cancelled",
            "failed",
            (0, 3),
            "the rollout is cancelled; devices are retried only in a rollout in_progress or "
            "paused or completed or failed",
        ),
        ("rolled_back", "rolled_back", (0, 3), "the rollout is rolled_back; devices are"),
        (
            "in_progress",
            "completed",
            (0, 3),
            "it is completed; only a failed or rolled-back device can be retried",
        ),
        ("in_progress", "scheduled", (1, 3), "it is scheduled; only a failed"),
        ("completed", "failed", (3, 3), "it has no retries left (3 of 3 used)"),
        ("completed", "failed", (0, 0), "its rollout allows no retries (max_retries 0)"),
    ],
)
def test_one_device_is_retried_only_where_retry_failed_would_retry_it(
    rollout: str, status: str, retries: tuple[int, int], reason: str | None
) -> None:
    refusal = device_retry_refusal(rollout, status, *retries)
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.startswith(reason)


@pytest.mark.parametrize(
    ("status", "sent_back", "reason"),
    [
        ("completed", False, None),
        ("scheduled", False, None),
        ("failed", False, None),
        ("failed", True, "it is failed and already sent back to its old images"),
        ("rolled_back", True, "it is rolled_back and already sent back to its old images"),
        ("pending", False, "it is pending; only a device the rollout moved can be rolled back"),
        ("skipped", False, "it is skipped; only a device the rollout moved can be rolled back"),
    ],
)
def test_one_device_is_rolled_back_only_if_the_rollout_moved_it_and_it_is_not_back(
    status: str, sent_back: bool, reason: str | None
) -> None:
    assert device_rollback_refusal(status, sent_back) == reason


def history_row(**changes: Any) -> dict[str, Any]:
    return {
        "rollout_id": "02b670dd-1111-2222-3333-444455556666",
        "rollout_status": "completed",
        "status": "rolled_back",
        "rollback_requested_at": NOW,
        "retry_count": 0,
        "max_retries": 2,
        "new_image": V2,
        "update_completed_at": None,
        "rolled_back_at": None,
    } | changes


def test_a_history_row_offers_roll_back_and_retry_each_with_its_reason() -> None:
    back, again = history_actions("pump-1", history_row())
    assert (back.action, back.allowed) == ("rollback", False)
    assert back.reason == "it is rolled_back and already sent back to its old images"
    assert back.question == "Roll pump-1 back to its images from before rollout 02b670dd?"
    assert (again.action, again.allowed, again.reason) == ("retry", True, None)
    assert again.question == f"Give pump-1 {V2} again?"
    back, again = history_actions(
        "pump-1", history_row(status="completed", rollback_requested_at=None)
    )
    assert back.allowed and not again.allowed


def test_a_devices_part_in_a_rollout_ends_when_it_is_healthy_or_back() -> None:
    assert finished_at(history_row()) is None
    assert finished_at(history_row(update_completed_at=NOW)) == NOW
    later = NOW + timedelta(minutes=3)
    assert finished_at(history_row(update_completed_at=NOW, rolled_back_at=later)) == later
