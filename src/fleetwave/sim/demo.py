"""``fleetwave demo``: the original plan's "Expected Flow", live, on a fresh machine.

It starts a real server (``fleetwave serve`` in a subprocess, fresh SQLite in a temporary data
directory), runs a fleet of real agents on simulated runtimes (a few of them crash on the new
image, chosen by a seed), creates a staged policy, announces the new version with a Docker Hub
webhook over HTTP, and follows the rollout through the admin API — rollout detail and event
log — until it ends: batches, failures, rollbacks, completion. Nothing is faked but the
containers: the batches wait for the devices' own reports.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from rich.console import Console

from fleetwave.sim import view
from fleetwave.sim.display import Display, LiveDisplay, PlainDisplay
from fleetwave.sim.simulator import FleetSimulator
from fleetwave.sim.transport import QueuedTransport

READY_TIMEOUT = 30.0
FOLLOW_INTERVAL = 0.25
EVENT_PAGE = 1000


@dataclass(frozen=True)
class DemoOptions:
    devices: int = 50
    image: str = "iotistic/myapp:v2.0.0"
    new_tag: str = "v2.0.1"
    fail_rate: float = 0.06
    seed: int = 3
    batches: int = 3
    soak_seconds: int = 3
    poll_interval: float = 1.0
    report_interval: float = 1.0
    max_failure_rate: float = 0.2
    timeout: float = 120.0

    @property
    def repository(self) -> str:
        return self.image.rpartition(":")[0]


@dataclass
class DemoResult:
    rollout: dict[str, Any]
    events: list[dict[str, Any]]
    images: Counter[str]
    states: Counter[str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return bool(self.rollout["status"] == "completed")


class DemoError(RuntimeError):
    """The demo could not go on (server did not start, rollout did not end in time)."""


# --- the server ------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    token: str
    webhook_secret: str
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(data_dir: Path, port: int, token: str, secret: str) -> dict[str, str]:
    """The environment of the demo's server: the caller's own FLEETWAVE_* settings (a
    PostgreSQL URL, say) are left out, so the demo always starts from an empty SQLite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
    return env | {
        "FLEETWAVE_DATA_DIR": str(data_dir),
        "FLEETWAVE_PORT": str(port),
        "FLEETWAVE_ADMIN_TOKEN": token,
        "FLEETWAVE_WEBHOOK_SECRET": secret,
        "FLEETWAVE_MONITOR_INTERVAL": "0.5",
        "FLEETWAVE_LOG_LEVEL": "warning",
    }


def start_server(data_dir: Path) -> Server:
    port, token, secret = free_port(), secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fleetwave.cli", "serve", "--host", "127.0.0.1"],
            env=server_env(data_dir, port, token, secret),
            cwd=data_dir,  # no stray .env is read
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the server itself
        )
    return Server(process, f"http://127.0.0.1:{port}", token, secret, log)


async def wait_ready(http: httpx.AsyncClient, server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    tail = server.log.read_text(errors="replace")[-2000:]
    raise DemoError(f"the server did not start; its log ends with:\n{tail}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


# --- the admin API and the registry ------------------------------------------------------------


def admin(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


async def create_policy(
    http: httpx.AsyncClient, server: Server, options: DemoOptions
) -> dict[str, Any]:
    """A staged policy with short delays: no wait between batches (delays are whole minutes),
    each updated device watched for ``soak_seconds``, a failed one rolled back at once."""
    body = {
        "image_pattern": f"{options.repository}:*",
        "update_strategy": "staged",
        "staged_batches": options.batches,
        "batch_delay_minutes": 0,
        "soak_seconds": options.soak_seconds,
        "health_check_enabled": True,
        "max_retries": 0,
        "max_failure_rate": options.max_failure_rate,
        "update_timeout_minutes": 1,
        "auto_rollback": True,
        "description": "fleetwave demo",
    }
    response = await http.post("/api/v1/image-policies", json=body, headers=admin(server))
    response.raise_for_status()
    policy: dict[str, Any] = response.json()
    return policy


def docker_hub_payload(repository: str, tag: str, pushed_at: int) -> dict[str, Any]:
    """What Docker Hub posts on a push (its documented shape; no digest, no signature)."""
    namespace, _, name = repository.rpartition("/")
    return {
        "callback_url": f"https://registry.hub.docker.com/u/{repository}/hook/demo/",
        "push_data": {"pushed_at": pushed_at, "pusher": "demo", "tag": tag},
        "repository": {
            "name": name,
            "namespace": namespace or "library",
            "owner": namespace or "library",
            "repo_name": repository,
            "repo_url": f"https://hub.docker.com/r/{repository}",
            "is_private": False,
            "status": "Active",
        },
    }


async def push_webhook(
    http: httpx.AsyncClient, server: Server, options: DemoOptions
) -> dict[str, Any]:
    payload = docker_hub_payload(options.repository, options.new_tag, int(time.time()))
    response = await http.post(f"/api/v1/webhooks/dockerhub/{server.webhook_secret}", json=payload)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    if not answer.get("rollout_id"):
        raise DemoError(f"the webhook made no rollout: {answer.get('message')}")
    return answer


async def read_rollout(http: httpx.AsyncClient, server: Server, rid: str) -> dict[str, Any]:
    response = await http.get(f"/api/v1/rollouts/{rid}", headers=admin(server))
    response.raise_for_status()
    rollout: dict[str, Any] = response.json()
    return rollout


async def read_events(
    http: httpx.AsyncClient, server: Server, rid: str, after: int
) -> tuple[list[dict[str, Any]], int]:
    """Every event after the cursor, and the cursor to read on from."""
    events: list[dict[str, Any]] = []
    while True:
        response = await http.get(
            f"/api/v1/rollouts/{rid}/events",
            params={"after": after, "limit": EVENT_PAGE},
            headers=admin(server),
        )
        response.raise_for_status()
        page = response.json()
        events += page["items"]
        after = page["next_cursor"]
        if len(page["items"]) < EVENT_PAGE:
            return events, after


async def resume(http: httpx.AsyncClient, server: Server, rid: str) -> None:
    """What an operator does after looking at the failures: resume past the gate."""
    body = {"force": True, "note": "failures inspected; carry on"}  # acts as admin-token
    response = await http.post(f"/api/v1/rollouts/{rid}/resume", json=body, headers=admin(server))
    response.raise_for_status()


# --- the fleet -------------------------------------------------------------------------------


async def wait_until_running(fleet: FleetSimulator, image: str, deadline: float) -> None:
    """Until every device runs ``image`` (so every one is online when the rollout is planned)."""
    while time.monotonic() < deadline:
        summary = await fleet.summary()
        if summary["images"][image] == fleet.count and summary["states"]["running"] == fleet.count:
            return
        await asyncio.sleep(0.1)
    raise DemoError(f"the devices did not all start {image} in time")


# --- following the rollout ---------------------------------------------------------------------


async def follow(
    http: httpx.AsyncClient, server: Server, rid: str, display: Display, deadline: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Show the rollout until it ends and its last rollbacks are done; resume it (as an
    operator would) if its failure gate pauses it. Returns its last detail and every event."""
    cursor, events = 0, []
    while True:
        rollout = await read_rollout(http, server, rid)
        new, cursor = await read_events(http, server, rid, cursor)  # read after the detail
        events += new
        display.update(rollout, new)
        if view.settled(rollout):
            return rollout, events
        if rollout["status"] == "paused" and rollout["auto_paused"]:
            display.note("the failure gate paused the rollout; the operator resumes it (force)")
            await resume(http, server, rid)
        if time.monotonic() > deadline:
            raise DemoError(f"the rollout did not end in time (status {rollout['status']})")
        await asyncio.sleep(FOLLOW_INTERVAL)


async def run_demo(options: DemoOptions, display: Display) -> DemoResult:
    started = time.monotonic()
    deadline = started + options.timeout
    with tempfile.TemporaryDirectory(prefix="fleetwave-demo-") as tmp:
        server = start_server(Path(tmp))
        try:
            transport = QueuedTransport(limit=50)
            async with httpx.AsyncClient(
                base_url=server.url, transport=transport, timeout=30
            ) as http:
                return await _run(http, server, options, display, started, deadline)
        finally:
            stop_server(server)


async def _run(
    http: httpx.AsyncClient,
    server: Server,
    options: DemoOptions,
    display: Display,
    started: float,
    deadline: float,
) -> DemoResult:
    timings: dict[str, float] = {}
    await wait_ready(http, server)
    timings["server"] = time.monotonic() - started
    display.note(f"server ready at {server.url} (fresh SQLite) in {timings['server']:.1f} s")
    policy = await create_policy(http, server, options)
    display.note(
        f"policy {policy['id']}: {policy['image_pattern']} staged in {options.batches} batches,"
        f" soak {options.soak_seconds} s, no retries, auto-rollback,"
        f" pause above {options.max_failure_rate:.0%} failures"
    )
    fleet = FleetSimulator(
        http,
        server.token,
        count=options.devices,
        image=options.image,
        failures={options.new_tag: options.fail_rate},
        poll_interval=options.poll_interval,
        report_interval=options.report_interval,
        seed=options.seed,
    )
    await fleet.register()
    stop_agents = asyncio.Event()
    agents = asyncio.create_task(fleet.run(stop_agents))
    try:
        await wait_until_running(fleet, options.image, deadline)
        timings["fleet"] = time.monotonic() - started - timings["server"]
        bad = sum(1 for device in fleet.devices if options.new_tag in device.bad_tags)
        display.note(
            f"{options.devices} devices ({fleet.pattern}) run {options.image};"
            f" {bad} of them will crash on {options.new_tag} (seed {options.seed})"
        )
        answer = await push_webhook(http, server, options)
        display.note(
            f"Docker Hub webhook: {options.repository}:{options.new_tag} pushed"
            f" → rollout {answer['rollout_id']} ({answer['affected_devices']} devices)"
        )
        pushed = time.monotonic()
        rollout, events = await follow(http, server, answer["rollout_id"], display, deadline)
        timings["rollout"] = time.monotonic() - pushed
    finally:
        stop_agents.set()
        await agents
    summary = await fleet.summary()
    timings["total"] = time.monotonic() - started
    return DemoResult(rollout, events, summary["images"], summary["states"], timings)


# --- the command -------------------------------------------------------------------------------


def print_summary(result: DemoResult, out: TextIO) -> None:
    for line in view.summary_lines(result.rollout, result.events, result.images, result.states):
        print(line, file=out)
    t = result.timings
    print(
        f"wall time {t['total']:.1f} s: server {t['server']:.1f} s,"
        f" fleet up {t['fleet']:.1f} s, push → settled {t['rollout']:.1f} s",
        file=out,
        flush=True,
    )


def main(options: DemoOptions, *, plain: bool = False) -> int:
    """Run the demo; 0 when the rollout completed, 1 when it did not, 130 on Ctrl-C."""
    console = Console()
    display: Display = (
        PlainDisplay(sys.stdout) if plain or not console.is_terminal else LiveDisplay(console)
    )
    print(
        f"fleetwave demo: {options.devices} devices on {options.image},"
        f" {options.repository}:{options.new_tag} rolled out in {options.batches} batches",
        flush=True,
    )
    try:
        result = asyncio.run(_interruptible(run_demo(options, display)))
    except asyncio.CancelledError:
        display.close()
        print("stopped (Ctrl-C); the server and the agents were shut down", file=sys.stderr)
        return 130
    except (DemoError, httpx.HTTPError) as exc:
        display.close()
        print(f"fleetwave demo: {exc}", file=sys.stderr)
        return 1
    display.close()
    print_summary(result, sys.stdout)
    return 0 if result.succeeded else 1


async def _interruptible(work: Any) -> DemoResult:
    """Run ``work`` so that SIGINT / SIGTERM cancel it: its ``finally`` blocks stop the agents
    and the server."""
    task: asyncio.Task[DemoResult] = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
