"""The README's quick start, run for real: the ``fleetwave`` command, a server process on
SQLite, and a newcomer's curl steps made with an HTTP client."""

from __future__ import annotations

import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import FLEETWAVE, RunningServer, clean_env, fleetwave_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with fleetwave_server(tmp_path) as running:
        yield running


def test_a_newcomer_registers_a_device_targets_it_polls_it_and_reports(
    server: RunningServer,
) -> None:
    base, data_dir = server.base, server.data_dir
    token_file = data_dir / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})

    device = admin.post("/api/v1/devices", json={"device_name": "pi-1", "uuid": "pi-1"}).json()
    key = device["api_key"]
    target = {
        "apps": {
            "1001": {
                "appId": 1001,
                "appName": "web",
                "services": [
                    {
                        "serviceId": 1,
                        "serviceName": "app",
                        "imageName": "iotistic/myapp:v2.0.0",
                        "config": {"image": "iotistic/myapp:v2.0.0", "ports": ["8080:80"]},
                    }
                ],
            }
        }
    }
    assert admin.put("/api/v1/devices/pi-1/target-state", json=target).json()["version"] == 2

    as_device = httpx.Client(base_url=base, headers={"X-Device-API-Key": key})
    first = as_device.get("/api/v1/device/pi-1/state")
    assert first.status_code == 200
    assert first.json()["pi-1"]["apps"]["1001"]["services"][0]["imageName"].endswith("v2.0.0")
    second = as_device.get(
        "/api/v1/device/pi-1/state", headers={"if-none-match": first.headers["etag"]}
    )
    assert second.status_code == 304

    report = {
        "pi-1": {
            "apps": {
                "1001": {
                    "appId": 1001,
                    "services": [
                        {
                            "serviceName": "app",
                            "imageName": "iotistic/myapp:v2.0.0",
                            "status": "running",
                            "containerId": "abc",
                        }
                    ],
                }
            },
            "is_online": True,
        }
    }
    assert as_device.patch("/api/v1/device/state", json=report).status_code == 200
    current = admin.get("/api/v1/devices/pi-1/current-state").json()
    assert current["apps"]["1001"]["services"][0]["status"] == "running"
    assert admin.get("/api/v1/devices/pi-1").json()["is_online"] is True
    assert admin.get("/api/v1/devices", headers={"Authorization": "Bearer x"}).status_code == 401

    output = server.stop()
    assert token not in output and key not in output
    assert str(token_file.resolve()) in output


def test_the_cli_finds_the_admin_token_in_the_data_directory(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "var")
    first = subprocess.run(
        [*FLEETWAVE, "admin-token", "--show"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    again = subprocess.run(
        [*FLEETWAVE, "admin-token", "--show"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert first.stdout == again.stdout and len(first.stdout.strip()) > 40


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FLEETWAVE_MAX_FAILURE_RATE", "1.5"),
        ("FLEETWAVE_STAGED_BATCHES", "[0.1, 0.5, 0.9]"),
        ("FLEETWAVE_STAGED_BATCHES", "[0.5, 0.1, 1.0]"),
        ("FLEETWAVE_DEFAULT_STRATEGY", "yolo"),
    ],
)
def test_invalid_settings_stop_start_up_naming_the_setting(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = clean_env(tmp_path / "var", **{variable: value})
    for command in (["migrate"], ["serve"]):
        result = subprocess.run(
            [*FLEETWAVE, *command],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2
        assert variable in result.stderr


def test_the_plans_scenario_over_http_with_a_docker_hub_webhook(
    server: RunningServer,
) -> None:
    base, data_dir = server.base, server.data_dir
    token = (data_dir / "admin-token").read_text().strip()
    secret = (data_dir / "webhook-secret").read_text().strip()
    assert stat.S_IMODE((data_dir / "webhook-secret").stat().st_mode) == 0o600
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    created = admin.post(
        "/api/v1/image-policies",
        json={
            "image_pattern": "iotistic/myapp:*",
            "update_strategy": "staged",
            "staged_batches": 3,
            "batch_delay_minutes": 5,
            "health_check_enabled": True,
        },
    )
    assert created.status_code == 201, created.text
    service = {"serviceId": 1, "serviceName": "app", "imageName": "iotistic/myapp:v2.0.0"}
    for i in range(10):
        apps = {"1001": {"appId": 1001, "appName": "web", "services": [service]}}
        device = {"uuid": f"pump-{i}", "device_name": f"pump {i}", "apps": apps}
        assert admin.post("/api/v1/devices", json=device).status_code == 201

    push = {"repository": {"repo_name": "iotistic/myapp"}, "push_data": {"tag": "v2.0.1"}}
    refused = httpx.post(f"{base}/api/v1/webhooks/docker-registry?secret=wrong", json=push)
    assert refused.status_code == 401
    answer = httpx.post(f"{base}/api/v1/webhooks/docker-registry?secret={secret}", json=push)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "in_progress" and answer.json()["affected_devices"] == 10

    [rollout] = admin.get("/api/v1/rollouts").json()["items"]
    assert rollout["batch_sizes"] == [1, 4, 5]
    first = admin.get(f"/api/v1/rollouts/{rollout['rollout_id']}/devices?batch=1").json()
    [uuid] = [d["device_uuid"] for d in first["items"]]
    target = admin.get(f"/api/v1/devices/{uuid}/target-state").json()
    assert target["apps"]["1001"]["services"][0]["imageName"] == "iotistic/myapp:v2.0.1"

    output = server.stop()
    assert "/api/v1/webhooks/docker-registry?secret=<redacted>" in output
    assert secret not in output and token not in output


def wait_for(check: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_the_embedded_monitor_wakes_on_a_device_report_and_monitor_tick_reports(
    tmp_path: Path,
) -> None:
    settings = {
        "FLEETWAVE_MONITOR_INTERVAL": "600",  # only a wake-up can move it within the test
        "FLEETWAVE_ADMIN_TOKEN": "e2e-admin-token-0123456789abcdef",
        "FLEETWAVE_WEBHOOK_SECRET": "e2e-webhook-secret",
    }
    with fleetwave_server(tmp_path, **settings) as server:
        base = server.base
        admin = httpx.Client(
            base_url=base, headers={"Authorization": "Bearer e2e-admin-token-0123456789abcdef"}
        )
        admin.post(
            "/api/v1/image-policies",
            json={
                "image_pattern": "iotistic/myapp",
                "update_strategy": "staged",
                "batch_delay_minutes": 0,
                "soak_seconds": 0,
                "health_check_enabled": False,
            },
        ).raise_for_status()
        keys = {}
        service = {"serviceId": 1, "serviceName": "app", "imageName": "iotistic/myapp:v1"}
        for i in range(3):
            apps = {"1001": {"appId": 1001, "appName": "web", "services": [service]}}
            device = admin.post(
                "/api/v1/devices", json={"uuid": f"d{i}", "device_name": "d", "apps": apps}
            ).json()
            keys[device["uuid"]] = device["api_key"]
        answer = admin.post("/api/v1/images/trigger-update", json={"image": "iotistic/myapp:v2"})
        rid = answer.json()["rollout_id"]
        [first] = [
            d["device_uuid"]
            for d in admin.get(f"/api/v1/rollouts/{rid}/devices?batch=1").json()["items"]
        ]
        report = {
            first: {
                "apps": {
                    "1001": {
                        "appId": 1001,
                        "services": [
                            {
                                "serviceName": "app",
                                "imageName": "iotistic/myapp:v2",
                                "status": "running",
                            }
                        ],
                    }
                }
            }
        }
        httpx.patch(
            f"{base}/api/v1/device/state", json=report, headers={"X-Device-API-Key": keys[first]}
        ).raise_for_status()
        wait_for(lambda: admin.get(f"/api/v1/rollouts/{rid}").json()["current_batch"] == 2)
        output = server.stop()
    assert "batch 2 of 3 started" in output

    ticked = subprocess.run(
        [*FLEETWAVE, "monitor", "tick"],
        env=clean_env(server.data_dir, **settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"{rid}: waiting: batch 2 has 1 device not finished" in ticked.stdout
