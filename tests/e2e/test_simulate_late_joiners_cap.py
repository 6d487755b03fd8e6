"""``fleetwave simulate`` against a real server with ``FLEETWAVE_MAX_UPDATING_DEVICES``:
a second simulator adds devices while the rollout runs, and they join it; the rollout's
devices in flight, read from the API every 100 ms, never pass the cap. Kept lean: a dozen
devices, fast polls, no health checks."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from fleetwave.domain.device_cap import IN_FLIGHT_STATUSES
from tests.e2e.processes import FLEETWAVE, clean_env, fleetwave_server

TOKEN = "simulate-cap-e2e-admin-token-0123456789abcdef"
SECRET = "simulate-cap-e2e-webhook-secret-0123456789"
CAP, FIRST, LATE = 3, 8, 4


def simulator(server: str, data_dir: Path, devices: int, output: Path) -> subprocess.Popen[bytes]:
    with output.open("w") as out:
        return subprocess.Popen(
            [*FLEETWAVE, "simulate", "--server", server, "--devices", str(devices)]
            + ["--poll-interval", "0.5"],
            env=clean_env(data_dir, FLEETWAVE_ADMIN_TOKEN=TOKEN),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def in_flight(rollout: dict[str, Any]) -> int:
    return sum(
        n
        for batch in rollout["batches"]
        for s, n in batch["counts"].items()
        if s in IN_FLIGHT_STATUSES
    )


def test_devices_added_while_a_rollout_runs_join_it_and_the_cap_holds(tmp_path: Path) -> None:
    settings = {
        "FLEETWAVE_ADMIN_TOKEN": TOKEN,
        "FLEETWAVE_WEBHOOK_SECRET": SECRET,
        "FLEETWAVE_MAX_UPDATING_DEVICES": str(CAP),
        "FLEETWAVE_MONITOR_INTERVAL": "0.2",
    }
    with fleetwave_server(tmp_path / "server", **settings) as server:
        admin = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {TOKEN}"})
        admin.post(
            "/api/v1/image-policies",
            json={
                "image_pattern": "iotistic/myapp:*",
                "update_strategy": "auto",
                "health_check_enabled": False,
            },
        ).raise_for_status()
        first = simulator(server.base, server.data_dir, FIRST, tmp_path / "first.out")
        late: subprocess.Popen[bytes] | None = None
        try:
            deadline = time.monotonic() + 30
            while admin.get("/api/v1/devices", params={"limit": 1}).json()["total"] < FIRST:
                assert time.monotonic() < deadline, (tmp_path / "first.out").read_text()
                time.sleep(0.1)
            rollout_id = admin.post(
                "/api/v1/webhooks/docker-registry",
                params={"secret": SECRET},
                json={
                    "repository": {"repo_name": "iotistic/myapp"},
                    "push_data": {"tag": "v2.0.1"},
                },
            ).json()["rollout_id"]
            late = simulator(server.base, server.data_dir, LATE, tmp_path / "late.out")
            seen, waiting, running_when_joined = [], set(), False
            deadline = time.monotonic() + 40
            while True:
                rollout = admin.get(f"/api/v1/rollouts/{rollout_id}").json()
                seen.append(in_flight(rollout))
                waiting.add(rollout["waiting_for"])
                running_when_joined |= (
                    rollout["total_devices"] > FIRST and rollout["status"] == "in_progress"
                )
                if rollout["status"] == "completed" and rollout["healthy_devices"] == FIRST + LATE:
                    break
                assert time.monotonic() < deadline, (rollout, server.output()[-3000:])
                time.sleep(0.1)
        finally:
            for process in (first, late):
                if process is not None:
                    process.send_signal(signal.SIGINT)
                    process.wait(timeout=20)
        events = admin.get(f"/api/v1/rollouts/{rollout_id}/events", params={"limit": 1000}).json()[
            "items"
        ]
    assert max(seen) <= CAP, seen
    assert max(seen) == CAP  # the cap was reached, so it was what held devices back
    assert any(w and f"fleet-wide cap {CAP}" in w for w in waiting), waiting
    assert running_when_joined
    joined = {e["device_uuid"] for e in events if e["event_type"] == "device_joined"}
    assert len(joined) == LATE
