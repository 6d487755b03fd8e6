"""Benchmark of the device poll 304 path: ``GET /api/v1/device/{uuid}/state`` + ``If-None-Match``.

What it does, in one run (see bench/README.md):

1. creates a throwaway PostgreSQL database ``fleetwave_bench_<random>`` through the admin URL
   (``--database-url``, ``$FLEETWAVE_BENCH_DATABASE_URL`` or postgres@127.0.0.1:5432), migrates
   it, and drops it at the end, also on failure, Ctrl-C or SIGTERM;
2. inserts ``--devices`` devices (10,000), their target states and target-image index rows,
   one executemany per table;
3. counts the SQL a poll runs, in-process (``build`` + ``create_app`` + httpx ASGITransport,
   a ``before_cursor_execute`` listener on ``container.db.engine.sync_engine``);
4. starts ``fleetwave serve --no-migrate`` and the bare FastAPI baseline (bench/bare_app.py),
   both uvicorn with the same settings, checks that a poll with the right ETag answers 304
   and one without answers 200 with the device's target state;
5. loads each server with wrk (bench/poll.lua cycles through every device's uuid, key and
   ETag), fails if any response is not 304, and prints requests/s, latency and the ratio.

    .venv/bin/python bench/poll.py [--devices 10000] [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, event, func, insert, select, update
from sqlalchemy.engine import Engine

from common import (
    HOST,
    LOG_LEVEL,
    BenchError,
    Server,
    add_database_url_argument,
    fleetwave_command,
    fleetwave_env,
    fleetwave_executable,
    free_port,
    main,
    running,
    throwaway_database,
    vacuum,
    wait_until_ready,
)
from fleetwave.api import create_app
from fleetwave.bootstrap import build
from fleetwave.devices.targets import image_rows
from fleetwave.domain.target_state import normalize_target_apps, state_etag
from fleetwave.security import hash_key, new_key
from fleetwave.settings import Settings
from fleetwave.store.db import sync_url
from fleetwave.store.migrate import upgrade
from fleetwave.store.tables import device_target_images, device_target_state, devices

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "poll.lua"
BARE_APP = BENCH_DIR / "bare_app.py"
ADMIN_TOKEN = "bench-admin-token-" + secrets.token_hex(16)
WEBHOOK_SECRET = "bench-webhook-secret-" + secrets.token_hex(16)  # or one is made in data_dir


# --- devices -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    uuid: str
    key: str
    etag: str
    apps: dict[str, Any]
    config: dict[str, Any]


def target_state(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A realistic target state: one app with one service, plus a little device config."""
    apps = normalize_target_apps(
        {
            "1001": {
                "appId": 1001,
                "appName": "sensor-gateway",
                "services": [
                    {
                        "serviceId": 1,
                        "serviceName": "gateway",
                        "imageName": "registry.example.com/acme/sensor-gateway:2.4.1",
                        "config": {
                            "ports": ["8080:8080"],
                            "environment": {"DEVICE_NAME": name, "LOG_LEVEL": "info"},
                            "volumes": ["gateway-data:/data"],
                            "restart": "unless-stopped",
                        },
                    }
                ],
            }
        }
    )
    config = {"HOST_CONFIG_gpu_mem": "16", "SUPERVISOR_POLL_INTERVAL": "60000"}
    return apps, config


def make_devices(count: int) -> list[Device]:
    made = []
    for n in range(count):
        apps, config = target_state(f"bench-{n:06d}")
        made.append(
            Device(
                uuid=secrets.token_hex(16),
                key=new_key("fwd_"),
                etag=state_etag(apps, config),
                apps=apps,
                config=config,
            )
        )
    return made


def seed(engine: Engine, fleet: list[Device], now: datetime) -> None:
    """One executemany per table; SQLAlchemy sends each as multi-row INSERT ... VALUES pages
    (PostgreSQL caps one statement at 65,535 bind parameters, so 10,000 rows cannot be one)."""
    device_rows = [
        {
            "uuid": d.uuid,
            "device_name": f"bench-{n:06d}",
            "device_type": "raspberrypi4-64",
            "fleet_id": "bench",
            "tags": {"site": "bench"},
            "is_online": True,
            "last_connectivity_event": now,
            "api_key_hash": hash_key(d.key),
            "target_etag": d.etag,
            "created_at": now,
            "updated_at": now,
        }
        for n, d in enumerate(fleet)
    ]
    state_rows = [
        {"device_uuid": d.uuid, "apps": d.apps, "config": d.config, "version": 1, "updated_at": now}
        for d in fleet
    ]
    # device_target_images is kept in step with the target states (see devices/targets.py).
    image_index_rows = [row for d in fleet for row in image_rows(d.uuid, d.apps)]
    with engine.begin() as conn:
        conn.execute(insert(devices), device_rows)
        conn.execute(insert(device_target_state), state_rows)
        conn.execute(insert(device_target_images), image_index_rows)


def mark_all_seen(engine: Engine, now: datetime) -> None:
    """Make every device's last-seen fresh, so that polls in the next minute do not write it,
    then vacuum, so that autovacuum has no reason to start in the middle of a measurement."""
    with engine.begin() as conn:
        conn.execute(update(devices).values(is_online=True, last_connectivity_event=now))
    vacuum(engine, devices.name)


def touched_since(engine: Engine, moment: datetime) -> int:
    """How many devices had last-seen rewritten (by a poll) after ``moment``."""
    with engine.connect() as conn:
        query = select(func.count()).where(devices.c.last_connectivity_event > moment)
        return int(conn.execute(query).scalar_one())


def write_devices_file(path: Path, fleet: list[Device]) -> None:
    with path.open("w") as handle:
        for d in fleet:
            handle.write(f"{d.uuid}\t{d.key}\t{d.etag}\n")


# --- SQL per poll, counted in-process ------------------------------------------------------


@dataclass
class SqlTrace:
    statements: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.statements.clear()
        self.events.clear()


@dataclass(frozen=True)
class PollProbe:
    label: str
    status: int
    statements: list[str]
    events: Counter[str]


async def probe_polls(url: str, data_dir: Path, fresh: Device, stale: Device) -> list[PollProbe]:
    """Run a few polls through the real application in-process and record their SQL."""
    settings = Settings(
        database_url=url,
        admin_token=ADMIN_TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        data_dir=data_dir,
        log_level=LOG_LEVEL,
    )
    container = build(settings)
    engine = container.db.engine.sync_engine
    trace = SqlTrace()

    def on_execute(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        trace.statements.append(" ".join(statement.split()))

    def counter(name: str) -> Any:
        def count(*_args: Any) -> None:
            trace.events[name] += 1

        return count

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "begin", counter("BEGIN"))
    event.listen(engine, "commit", counter("COMMIT"))
    event.listen(engine, "rollback", counter("ROLLBACK"))
    event.listen(engine, "checkout", counter("pool checkout"))
    # pool_pre_ping pings on every checkout, below the Connection events: count it too.
    dialect = engine.dialect
    original_ping = dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        trace.events["pre-ping"] += 1
        return original_ping(dbapi_connection)

    dialect.do_ping = counting_ping  # type: ignore[method-assign]

    probes = []
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def poll(label: str, device: Device, etag: str | None) -> None:
                headers = {"X-Device-API-Key": device.key}
                if etag is not None:
                    headers["If-None-Match"] = etag
                trace.reset()
                response = await client.get(f"/api/v1/device/{device.uuid}/state", headers=headers)
                probes.append(
                    PollProbe(label, response.status_code, list(trace.statements), +trace.events)
                )

            # Warm up: the first connection runs the dialect's start-up queries.
            await poll("warm-up", fresh, fresh.etag)
            await poll("304, last-seen fresh (the common case)", fresh, fresh.etag)
            await poll("304, last-seen stale (> OFFLINE_AFTER / 4)", stale, stale.etag)
            await poll("200, no If-None-Match", fresh, None)
    finally:
        await container.db.dispose()
    return probes[1:]


# --- servers -------------------------------------------------------------------------------


def check_poll_answers(fleetwave: Server, bare: Server, device: Device) -> None:
    """Before measuring: 304 with the right ETag, 200 with the target state without one."""
    path = f"/api/v1/device/{device.uuid}/state"
    key = {"X-Device-API-Key": device.key}
    with httpx.Client(timeout=5) as client:
        hit = client.get(fleetwave.base_url + path, headers=key | {"If-None-Match": device.etag})
        if hit.status_code != 304 or hit.headers.get("etag") != device.etag or hit.content:
            raise BenchError(f"poll with matching ETag: expected 304, got {hit.status_code}")
        miss = client.get(fleetwave.base_url + path, headers=key)
        expected = {device.uuid: {"apps": device.apps, "config": device.config}}
        if miss.status_code != 200 or miss.headers.get("etag") != device.etag:
            raise BenchError(f"poll without ETag: expected 200, got {miss.status_code}")
        if miss.json() != expected:
            raise BenchError(f"poll without ETag: body {miss.text[:200]} is not the target state")
        baseline = client.get(bare.base_url + path, headers=key | {"If-None-Match": device.etag})
        if baseline.status_code != 304:
            raise BenchError(f"bare app: expected 304, got {baseline.status_code}")
    print("checked: matching ETag -> 304, no ETag -> 200 + target state, bare app -> 304")


# --- wrk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    figures: dict[str, float]

    @property
    def requests_per_second(self) -> float:
        return self.figures["requests"] / (self.figures["duration_us"] / 1e6)

    def ms(self, name: str) -> float:
        return self.figures[name] / 1000


def run_wrk(
    server: Server, devices_file: Path, threads: int, connections: int, seconds: float
) -> WrkResult:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        server.base_url,
        "--",
        str(devices_file),
        str(threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    line = re.search(r"^BENCH (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    figures = {k: float(v) for k, v in (pair.split("=") for pair in line.group(1).split())}
    result = WrkResult(figures)
    problems = [
        f"{figures[name]:.0f} {name.replace('_', ' ')}"
        for name in (
            "unexpected",
            "status_errors",
            "connect_errors",
            "read_errors",
            "write_errors",
            "timeouts",
        )
        if figures[name]
    ]
    if problems:
        first = f" (first unexpected status: {figures['first_unexpected']:.0f})"
        raise BenchError(
            f"{server.name}: responses other than 304: {', '.join(problems)}{first}\n"
            f"{server.log_tail()}"
        )
    if figures["requests"] == 0:
        raise BenchError(f"{server.name}: wrk made no request")
    if figures["duration_us"] < 0.9 * seconds * 1e6:
        raise BenchError(f"{server.name}: wrk stopped after {figures['duration_us'] / 1e6:.1f} s")
    return result


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the device poll 304 path against a bare FastAPI baseline."
    )
    add_database_url_argument(parser)
    parser.add_argument("--devices", type=int, default=10_000, help="default: %(default)s")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured wrk first")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default: 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default: 2)")
    args = parser.parse_args()
    if args.devices < 2:
        parser.error("--devices must be at least 2")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return args


def bench(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk")
    fleetwave_executable()  # fails early if the command is missing
    cpus = os.cpu_count()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetwave-bench-")))
        url = stack.enter_context(throwaway_database(args.database_url))
        upgrade(url)
        engine = create_engine(sync_url(url))
        stack.callback(engine.dispose)

        started = time.monotonic()
        fleet = make_devices(args.devices)
        seed(engine, fleet, datetime.now(UTC))
        vacuum(engine, devices.name, device_target_state.name, device_target_images.name)
        devices_file = workdir / "devices.tsv"
        write_devices_file(devices_file, fleet)
        print(f"seeded {len(fleet)} devices in {time.monotonic() - started:.1f} s", flush=True)

        # SQL per poll, in-process. The second device's last-seen is made stale first.
        fresh, stale = fleet[0], fleet[1]
        with engine.begin() as conn:
            an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
            conn.execute(
                update(devices)
                .where(devices.c.uuid == stale.uuid)
                .values(last_connectivity_event=an_hour_ago)
            )
        probes = asyncio.run(probe_polls(url, workdir, fresh, stale))

        env = fleetwave_env(url, workdir / "data", ADMIN_TOKEN, WEBHOOK_SECRET)
        fw_port, bare_port = free_port(), free_port()
        fw_command = fleetwave_command(fw_port)
        bare_command = [sys.executable, str(BARE_APP), "--host", HOST, "--port", str(bare_port)]
        fw = stack.enter_context(running("fleetwave", fw_command, fw_port, env, workdir))
        bare = stack.enter_context(
            running("bare", [*bare_command, "--log-level", LOG_LEVEL], bare_port, env, workdir)
        )
        wait_until_ready(fw, "/readyz", 200, {})
        wait_until_ready(bare, f"/api/v1/device/{fresh.uuid}/state", 304, {})
        check_poll_answers(fw, bare, fresh)

        shape = f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s"
        print(
            f"load: {shape} (+{args.warmup:g}s warm-up each), {len(fleet)} devices cycled; "
            f"{cpus} CPUs shared by wrk, the server under test and PostgreSQL",
            flush=True,
        )

        def measure(server: Server) -> WrkResult:
            if args.warmup > 0:
                run_wrk(server, devices_file, args.threads, args.connections, args.warmup)
            return run_wrk(server, devices_file, args.threads, args.connections, args.duration)

        results = {"bare": measure(bare)}
        # Fresh last-seen for every device: the measured run is the pure 304 read path.
        measured_from = datetime.now(UTC)
        mark_all_seen(engine, measured_from)
        results["fleetwave"] = measure(fw)
        touched = touched_since(engine, measured_from)

        report(results, probes, touched)


def report(results: dict[str, WrkResult], probes: list[PollProbe], touched: int) -> None:
    print()
    print(f"{'':<14}{'requests/s':>12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'requests':>11}")
    for name, label in (("bare", "bare FastAPI"), ("fleetwave", "fleetwave")):
        r = results[name]
        print(
            f"{label:<14}{r.requests_per_second:>12.1f}{r.ms('p50_us'):>9.2f}"
            f"{r.ms('p90_us'):>9.2f}{r.ms('p99_us'):>9.2f}{r.figures['requests']:>11.0f}"
        )
    ratio = results["fleetwave"].requests_per_second / results["bare"].requests_per_second
    print(f"ratio: {ratio:.2f}  (fleetwave / bare, requests/s; every response was 304)")
    print(f"last-seen UPDATEs during the fleetwave runs (warm-up + measured): {touched}")
    print()
    print("SQL per poll (in-process, before_cursor_execute on container.db.engine.sync_engine):")
    for probe in probes:
        events = ", ".join(f"{n} {name}" for name, n in sorted(probe.events.items()))
        print(f"  {probe.label}: HTTP {probe.status}, {len(probe.statements)} statement(s)")
        for statement in probe.statements:
            print(f"    {statement}")
        print(f"    also: {events or 'nothing'}")


if __name__ == "__main__":
    sys.exit(main(bench, parse_args()))
