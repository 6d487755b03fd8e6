"""``fleetwave demo`` run for real, as a newcomer runs it: the command starts its own server
and fleet, and its output must tell the whole story — a completed rollout, devices rolled
back, everyone else on the new version — and Ctrl-C must leave nothing running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

FLEETWAVE = [sys.executable, "-m", "fleetwave.cli"]
NEW, OLD = "iotistic/myapp:v2.0.1", "iotistic/myapp:v2.0.0"


def demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}


def counted(line: str) -> dict[str, int]:
    """A summary line of names and counts, e.g. ``devices run: <image> × 19, <image> × 1``."""  # noqa: RUF002
    items = line.split(": ", 1)[1].split(", ")
    return {name: int(n) for name, n in (item.rsplit(" × ", 1) for item in items)}


def test_the_demo_rolls_out_in_batches_rolls_back_the_failures_and_completes(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    run = subprocess.run(
        [*FLEETWAVE, "demo", "--devices", "20", "--plain"],
        env=demo_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    took = time.monotonic() - started
    output = run.stdout
    assert run.returncode == 0, output + run.stderr
    assert took < 120, f"the demo took {took:.0f} s"

    assert re.search(r"Docker Hub webhook: iotistic/myapp:v2.0.1 pushed → rollout \S+", output)
    for batch in (1, 2, 3):
        assert f"batch_started        batch {batch} of 3 started" in output
    assert "rollout_completed" in output
    [ended] = [line for line in output.splitlines() if line.startswith("rollout ")]
    assert re.fullmatch(r"rollout \S+ completed in [\d.]+ s \(push → completed\)", ended)

    batch_lines = [line for line in output.splitlines() if line.startswith("  batch ")]
    assert len(batch_lines) == 3
    rolled_back = sum(int(n) for n in re.findall(r"(\d+) rolled back", "\n".join(batch_lines)))
    assert rolled_back > 0
    assert "device_failed" in output and "device_rolled_back" in output

    [devices_run] = [line for line in output.splitlines() if line.startswith("devices run: ")]
    assert counted(devices_run) == {NEW: 20 - rolled_back, OLD: rolled_back}
    [containers] = [line for line in output.splitlines() if line.startswith("containers: ")]
    assert counted(containers) == {"running": 20}
    assert re.search(r"^wall time [\d.]+ s", output, re.MULTILINE)


def test_ctrl_c_stops_the_demo_and_its_server(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*FLEETWAVE, "demo", "--devices", "10", "--plain"],
        env=demo_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = None
    deadline = time.monotonic() + 60
    for line in process.stdout:  # wait until the rollout is under way
        found = re.search(r"server ready at (\S+)", line)
        url = found[1] if found else url
        if "batch_started" in line or time.monotonic() > deadline:
            break
    assert url is not None
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the demo did not stop on Ctrl-C")
    assert process.returncode == 130
    assert process.stderr is not None and "stopped (Ctrl-C)" in process.stderr.read()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)
