"""A simulated fleet takes a staged rollout: ``fleetwave simulate`` against ``make run``'s server.

What it does, in one run (see bench/README.md):

1. starts ``fleetwave serve`` as ``make run`` does (SQLite in a fresh data directory, the
   monitor inside), and ``fleetwave simulate --devices N`` (N real agents on simulated
   runtimes, one process, their failures per tag and rate);
2. creates a staged policy (3 batches: 10 %, 50 %, 100 %) and waits until every agent has
   reported the first image running;
3. posts Docker Hub's webhook for the new tag and follows the rollout until it ends;
4. samples the CPU time and memory of both processes from /proc every second, and prints
   the wall time of the rollout, each process's CPU (as a share of one core) before and
   during the rollout, and their peak memory.

    .venv/bin/python bench/fleet.py [--devices 1000] [--poll-interval 10] [--fail v2.0.1:0.02]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common import fleetwave_executable, free_port, proc_status_kib

TOKEN = secrets.token_hex(24)
SECRET = secrets.token_hex(24)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sampler:
    """CPU seconds and peak resident memory of some processes, every second."""

    pids: dict[str, int]
    cpu: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.monotonic()
            for name, pid in self.pids.items():
                self.cpu.setdefault(name, []).append((now, cpu_seconds(pid)))
            self.stop.wait(1)

    def share(self, name: str, start: float, end: float) -> float:
        """CPU used between two instants, as a share of one core."""
        samples = [s for s in self.cpu[name] if start <= s[0] <= end]
        if len(samples) < 2:
            return float("nan")
        (t0, c0), (t1, c1) = samples[0], samples[-1]
        return (c1 - c0) / (t1 - t0)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=10)
    parser.add_argument("--fail", default="v2.0.1:0.02")
    parser.add_argument("--batch-delay-minutes", type=int, default=0)
    parser.add_argument(
        "--max-retries", type=int, default=0, help="a crash on start is not worth retrying"
    )
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fleetwave-bench-fleet-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")} | {
        "FLEETWAVE_DATA_DIR": str(work / "var"),
        "FLEETWAVE_PORT": str(port),
        "FLEETWAVE_ADMIN_TOKEN": TOKEN,
        "FLEETWAVE_WEBHOOK_SECRET": SECRET,
        "FLEETWAVE_LOG_LEVEL": "warning",
    }
    fleetwave = fleetwave_executable()
    server_log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [fleetwave, "serve"], env=env, cwd=work, stdout=server_log, stderr=subprocess.STDOUT
    )
    simulator: subprocess.Popen[str] | None = None
    try:
        admin = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        wait(lambda: admin.get("/readyz").status_code == 200, "the server", 30)
        created = admin.post(
            "/api/v1/image-policies",
            json={
                "image_pattern": "iotistic/myapp:*",
                "update_strategy": "staged",
                "staged_batches": 3,
                "batch_delay_minutes": args.batch_delay_minutes,
                "health_check_enabled": True,
                "soak_seconds": 0,
                "max_retries": args.max_retries,
            },
        )
        created.raise_for_status()
        simulator = subprocess.Popen(
            [
                fleetwave,
                "simulate",
                "--server",
                base,
                "--devices",
                str(args.devices),
                "--poll-interval",
                str(args.poll_interval),
                "--fail",
                args.fail,
                "--seed",
                "1",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        sampler = Sampler({"server": server.pid, "simulator": simulator.pid})
        threading.Thread(target=sampler.run, daemon=True).start()
        lines: list[str] = []
        threading.Thread(target=follow, args=(simulator, lines), daemon=True).start()

        started = time.monotonic()
        wait(lambda: all_running(lines, args.devices), "every agent to run v2.0.0", 300)
        settled = time.monotonic()
        took = settled - started
        print(f"{args.devices} devices registered and running v2.0.0 after {took:.1f} s")

        pushed = time.monotonic()
        answer = admin.post(
            "/api/v1/webhooks/docker-registry",
            params={"secret": SECRET},
            json={"repository": {"repo_name": "iotistic/myapp"}, "push_data": {"tag": "v2.0.1"}},
        )
        answer.raise_for_status()
        rollout_id = answer.json()["rollout_id"]
        detail: dict[str, object] = {}

        def ended() -> bool:
            detail.update(admin.get(f"/api/v1/rollouts/{rollout_id}").json())
            return detail["status"] not in ("pending", "in_progress")

        wait(ended, "the rollout to end", args.timeout)
        finished = time.monotonic()
        print(
            f"rollout {detail['status']} in {finished - pushed:.1f} s: "
            f"batches {detail['batch_sizes']}, {detail['healthy_devices']} healthy, "
            f"{detail['rolled_back_devices']} rolled back, {detail['failed_devices']} failed"
        )
        for name in ("server", "simulator"):
            pid = sampler.pids[name]
            print(
                f"{name:9}: CPU {sampler.share(name, settled - 20, settled):.0%} of a core "
                f"while idle polling, {sampler.share(name, pushed, finished):.0%} during the "
                f"rollout; peak memory {(proc_status_kib(pid, 'VmHWM') or 0) / 1024:.0f} MiB"
            )
        sampler.stop.set()
        print("last simulator line:", lines[-1] if lines else "(none)")
    finally:
        for process in (simulator, server):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def follow(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip())


def all_running(lines: list[str], count: int) -> bool:
    """The simulator's summary line says every device runs the first image."""
    return any(f"iotistic/myapp:v2.0.0: {count}" in line for line in lines[-3:])


def wait(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"timed out waiting for {what}")


if __name__ == "__main__":
    main()
