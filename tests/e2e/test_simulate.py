"""``fleetwave simulate --long-poll`` against a real server: the agents hold their polls, a
push reaches them well within one poll interval, and every target a device received is a line
of ``--received-log``."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.processes import FLEETWAVE, clean_env, fleetwave_server

TOKEN = "simulate-e2e-admin-token-0123456789abcdef"
SECRET = "simulate-e2e-webhook-secret-0123456789"
DEVICES, POLL_INTERVAL = 20, 6
OLD, NEW = "iotistic/myapp:v2.0.0", "iotistic/myapp:v2.0.1"


def received(log: Path) -> list[dict[str, object]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.endswith("}")]


def wait_for(check: object, what: str, output: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{output.read_text()[-2000:]}")


def test_long_polling_agents_get_a_push_within_a_poll_interval_and_log_it(
    tmp_path: Path,
) -> None:
    settings = {"FLEETWAVE_ADMIN_TOKEN": TOKEN, "FLEETWAVE_WEBHOOK_SECRET": SECRET}
    with fleetwave_server(tmp_path / "server", **settings) as server:
        admin = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {TOKEN}"})
        admin.post(
            "/api/v1/image-policies",
            json={"image_pattern": "iotistic/myapp:*", "update_strategy": "auto"},
        ).raise_for_status()
        log, output = tmp_path / "received.jsonl", tmp_path / "simulate.out"
        with output.open("w") as out:
            simulator = subprocess.Popen(
                [
                    *FLEETWAVE,
                    "simulate",
                    "--server",
                    server.base,
                    "--devices",
                    str(DEVICES),
                    "--poll-interval",
                    str(POLL_INTERVAL),
                    "--long-poll",
                    "--received-log",
                    str(log),
                ],
                env=clean_env(server.data_dir, FLEETWAVE_ADMIN_TOKEN=TOKEN),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:

            def every_poll_held() -> bool:
                lines = output.read_text().splitlines()
                return bool(lines) and f"held polls {DEVICES} " in lines[-1]

            wait_for(every_poll_held, "every agent to hold a poll", output, 4 * POLL_INTERVAL)
            assert [r["images"] for r in received(log)] == [[OLD]] * DEVICES

            pushed = time.monotonic()
            admin.post(
                "/api/v1/webhooks/docker-registry",
                params={"secret": SECRET},
                json={
                    "repository": {"repo_name": "iotistic/myapp"},
                    "push_data": {"tag": "v2.0.1"},
                },
            ).raise_for_status()

            def all_received() -> bool:
                return sum(r["images"] == [NEW] for r in received(log)) == DEVICES

            wait_for(all_received, "every device to receive v2.0.1", output, 2 * POLL_INTERVAL)
            assert time.monotonic() - pushed < POLL_INTERVAL / 2  # held polls, not the next poll
        finally:
            simulator.send_signal(signal.SIGINT)
            simulator.wait(timeout=20)
    assert simulator.returncode == 0
    text = output.read_text()
    assert re.search(rf"^registered {DEVICES} devices in [\d.]+ s$", text, re.MULTILINE)
    assert re.search(r"loop lag \d+ ms \(gc \d+ ms\)$", text, re.MULTILINE)
    devices = {r["device"] for r in received(log)}
    assert len(devices) == DEVICES
