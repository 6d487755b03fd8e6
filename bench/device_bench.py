"""What bench/poll.py and bench/report.py share: a seeded fleet on either backend, the servers.

- the fleet: ``--devices`` devices, each with its own key and a one-app/one-service target
  state, written in one executemany per table (``devices``, ``device_target_state``,
  ``device_target_images``) into a fresh PostgreSQL database or SQLite file, migrated first;
- the servers: the real one (``fleetwave serve --no-migrate``) on that database, and the bare
  FastAPI baseline (bench/bare_app.py), both uvicorn with the same settings;
- the command line both benches take (backend, fleet size, database, load).
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, update
from sqlalchemy.engine import Engine

from common import (
    BACKENDS,
    HOST,
    LOG_LEVEL,
    BenchError,
    Server,
    add_database_url_argument,
    analyze,
    bench_database,
    fleetwave_command,
    fleetwave_env,
    fleetwave_executable,
    free_port,
    running,
    wait_until_ready,
)
from fleetwave.devices.targets import image_rows
from fleetwave.domain.target_state import normalize_target_apps, state_etag
from fleetwave.security import hash_key, new_key
from fleetwave.settings import Settings
from fleetwave.store.db import sync_url
from fleetwave.store.migrate import upgrade
from fleetwave.store.tables import device_target_images, device_target_state, devices
from wrk import Load, Request

BARE_APP = Path(__file__).resolve().parent / "bare_app.py"
ADMIN_TOKEN = "bench-admin-token-" + secrets.token_hex(16)
WEBHOOK_SECRET = "bench-webhook-secret-" + secrets.token_hex(16)  # or one is made in data_dir
IMAGE = "registry.example.com/acme/sensor-gateway:2.4.1"
FIRST_PASS_CONNECTIONS = 8


# --- the fleet -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    number: int
    uuid: str
    key: str
    etag: str
    apps: dict[str, Any]
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return f"bench-{self.number:06d}"


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
                        "imageName": IMAGE,
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
                number=n,
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
            "device_name": d.name,
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
        for d in fleet
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


@contextmanager
def seeded_database(
    backend: str, admin_url: str, workdir: Path, fleet: list[Device]
) -> Iterator[tuple[str, Engine]]:
    """A fresh database on ``backend``, migrated and holding ``fleet``: its URL and an engine."""
    with bench_database(backend, admin_url, workdir) as url:
        started = time.monotonic()
        upgrade(url)
        engine = create_engine(sync_url(url))
        try:
            seed(engine, fleet, datetime.now(UTC))
            analyze(engine, devices.name, device_target_state.name, device_target_images.name)
            took = time.monotonic() - started
            print(f"migrated and seeded {len(fleet)} devices in {took:.1f} s", flush=True)
            yield url, engine
        finally:
            engine.dispose()


def mark_all_seen(engine: Engine, now: datetime) -> None:
    """Make every device's last-seen fresh, so that polls in the next minute do not write it,
    then refresh statistics (on PostgreSQL, vacuum: no autovacuum mid-measurement)."""
    with engine.begin() as conn:
        conn.execute(update(devices).values(is_online=True, last_connectivity_event=now))
    analyze(engine, devices.name)


def touched_since(engine: Engine, moment: datetime) -> int:
    """How many devices had last-seen rewritten after ``moment``."""
    with engine.connect() as conn:
        query = select(func.count()).where(devices.c.last_connectivity_event > moment)
        return int(conn.execute(query).scalar_one())


# --- servers -------------------------------------------------------------------------------


UNLIMITED_FAILURES = {
    "FLEETWAVE_DEVICE_AUTH_FAILURES_PER_ADDRESS": "1000000",
    "FLEETWAVE_DEVICE_AUTH_FAILURES_PER_UUID": "1000000",
}


@contextmanager
def fleetwave_server(url: str, workdir: Path, backend: str) -> Iterator[Server]:
    """``fleetwave serve --no-migrate`` on ``url``, ready; stopped (SIGTERM) on leaving. The
    limits on failed authentications are off: the wrong-key runs measure the refusal itself
    (bench/flood.py measures the limits)."""
    env = fleetwave_env(url, workdir / f"data-{backend}", ADMIN_TOKEN, WEBHOOK_SECRET)
    env |= UNLIMITED_FAILURES
    port = free_port()
    with running(f"fleetwave-{backend}", fleetwave_command(port), port, env, workdir) as server:
        wait_until_ready(server, "/readyz", 200, {})
        yield server


@contextmanager
def bare_server(workdir: Path) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, str(BARE_APP), "--host", HOST, "--port", str(port)]
    command += ["--log-level", LOG_LEVEL]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
    with running("bare", command, port, env, workdir) as server:
        wait_until_ready(server, "/api/v1/device/bench/state", 304, {})
        yield server


def first_pass(server: Server, requests: list[Request], status: int, what: str) -> None:
    """Send every request once, each to be answered ``status``: what a running fleet has done
    before any minute one measures (each device polled or reported once), so that whatever the
    server keeps per device is there, as it would be. A few keep-alive connections of
    http.client, in threads: several times faster than httpx, so this takes seconds."""
    stop = threading.Event()  # set when one share fails, or the bench is interrupted

    def send(share: list[Request]) -> None:
        connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
        try:
            for request in share:
                if stop.is_set():
                    return
                body = request.body.encode() or None
                connection.request(request.method, request.path, body, request.headers)
                answer = connection.getresponse()
                content = answer.read()
                if answer.status != status:
                    raise BenchError(
                        f"{server.name}: {request.method} {request.path} answered "
                        f"{answer.status}, expected {status}: {content[:200]!r}"
                    )
        finally:
            connection.close()

    started = time.monotonic()
    with ThreadPoolExecutor(FIRST_PASS_CONNECTIONS) as pool:
        shares = [requests[i::FIRST_PASS_CONNECTIONS] for i in range(FIRST_PASS_CONNECTIONS)]
        sending = [pool.submit(send, share) for share in shares]
        try:
            for done in sending:
                done.result()
        finally:
            stop.set()
    took = time.monotonic() - started
    print(f"sent {what} once: {len(requests)} requests in {took:.1f} s", flush=True)


def app_settings(url: str, workdir: Path, backend: str) -> Settings:
    """The settings the server gets, for running the application in-process (sql_trace)."""
    return Settings(
        database_url=url,
        admin_token=ADMIN_TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        data_dir=workdir / f"probe-{backend}",
        log_level=LOG_LEVEL,
    )


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


# --- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, *, devices: int) -> None:
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        default="both",
        help="the database the server under test runs on (default: both, one after the other)",
    )
    add_database_url_argument(parser)
    parser.add_argument(
        "--devices", type=int, default=devices, help="on each backend (default: %(default)s)"
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured wrk first")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default: 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default: 2)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.devices < 3:
        parser.error("--devices must be at least 3")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")


def backends(args: argparse.Namespace) -> tuple[str, ...]:
    return BACKENDS if args.backend == "both" else (args.backend,)


def load(args: argparse.Namespace) -> Load:
    return Load(args.threads, args.connections, args.duration, args.warmup)


def require_tools() -> None:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk")
    fleetwave_executable()  # fails early if the command is missing


def print_load(args: argparse.Namespace, what: str) -> None:
    print(
        f"load: {load(args).describe()}, {args.devices} devices cycled, {what}; the same "
        f"{args.devices} devices on each backend ({', '.join(backends(args))}); "
        f"{os.cpu_count()} CPUs shared by wrk, the server under test and PostgreSQL",
        flush=True,
    )


def ratio_line(backend: str, fleetwave: float, bare: float, note: str) -> str:
    return (
        f"ratio ({backend}): {fleetwave / bare:.2f}  "
        f"(fleetwave {fleetwave:.1f} / bare {bare:.1f} requests/s; {note})"
    )
