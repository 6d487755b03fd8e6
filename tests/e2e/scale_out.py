"""Scale-out, as run in production: HAProxy on a loopback port in front of two ``fleetwave
serve --no-worker`` replicas, two ``fleetwave worker`` processes beside them, one PostgreSQL,
and ``fleetwave simulate --long-poll`` devices talking to HAProxy only.

Shared by the end-to-end test (tests/e2e/test_scale_out.py), which kills parts of it in the
middle of a staged rollout, and by its bench companion (bench/scale_out.py), which measures
"batch started → device received its new target" through the load balancer.

HAProxy checks each replica's ``/readyz`` (200 only while it reaches its database), so a
replica that lost its database leaves the pool until it is back; its timeouts are longer than
a held poll and a Server-Sent Events stream's heartbeat. Each answer names the replica that
served it (``X-Served-By``), and the servers' states are read from HAProxy's CSV statistics.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from fleetwave.sim.received import batch_starts, device_batches, read_received
from fleetwave.store.db import sync_url
from fleetwave.store.tables import device_rollout_status, rollout_events
from tests.conftest import ADMIN_TOKEN
from tests.e2e.processes import FLEETWAVE, clean_env, free_port, ready
from tests.e2e.workers import WEBHOOK_SECRET, directory, worker_env

HAPROXY = "/usr/sbin/haproxy"
REPOSITORY, OLD_TAG, NEW_TAG = "iotistic/myapp", "v2.0.0", "v2.0.1"
OLD, NEW = f"{REPOSITORY}:{OLD_TAG}", f"{REPOSITORY}:{NEW_TAG}"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LONG_POLL_MAX = 20  # seconds a replica holds a poll at most
HELD = re.compile(r"held polls ([\d,]+) ")


class ScaleOutError(AssertionError):
    """A part did not start, or the rollout did not get where it should in time."""


def wait_for(check: Callable[[], bool], what: str, within: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(every)
    raise ScaleOutError(f"timed out after {within:g} s waiting for {what}")


# --- the processes -----------------------------------------------------------------------------


@dataclass
class Part:
    """One process of the set-up, its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine dies."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=15)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def spawn(name: str, command: Sequence[str], env: dict[str, str], home: Path) -> Part:
    log = directory(home) / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(command), env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT
        )
    return Part(name, process, log)


def haproxy_config(port: int, stats_port: int, replicas: dict[str, int]) -> str:
    """Round robin over the replicas, each checked on ``/readyz`` every second (down after 2
    failures, up after 2 successes; a check may take 5 s, as a busy replica's can: without
    ``timeout check`` it would be the interval, and a loaded pool would empty itself).
    ``timeout server`` outlasts a held poll, ``timeout tunnel`` an event stream. A GET whose
    replica died before answering (a held poll) is sent to the other; any other method is not
    (a registration the dead replica committed would be made twice): its client retries. No
    connection to a replica is reused, so none is ever closed by the replica's keep-alive
    timeout just as HAProxy sends a request on it."""
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{replica_port} check inter 1s fall 2 rise 2"
        for name, replica_port in replicas.items()
    )
    return f"""global
    maxconn 9000

defaults
    mode http
    timeout connect 2s
    timeout check 5s
    timeout client 120s
    timeout server {LONG_POLL_MAX + 40}s
    timeout tunnel 1h
    timeout http-keep-alive 60s
    option redispatch
    option http-server-close
    retries 3
    retry-on conn-failure empty-response

frontend fleetwave
    bind 127.0.0.1:{port}
    maxconn 9000
    http-request disable-l7-retry unless METH_GET
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server maxconn 9000 on-marked-down shutdown-sessions
    http-response set-header X-Served-By %[srv_name]
{servers}

frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


@dataclass
class Cluster:
    """HAProxy, the API replicas and the workers on one PostgreSQL database."""

    home: Path
    database_url: str
    port: int = field(default_factory=free_port)
    stats_port: int = field(default_factory=free_port)
    replica_ports: dict[str, int] = field(default_factory=dict)
    replicas: dict[str, Part] = field(default_factory=dict)
    workers: dict[str, Part] = field(default_factory=dict)
    haproxy: Part | None = None
    retired: list[Part] = field(default_factory=list)  # killed parts, their logs kept

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, name: str, **extra: str) -> dict[str, str]:
        return clean_env(
            directory(self.home / name / "var"),
            FLEETWAVE_DATABASE_URL=self.database_url,
            FLEETWAVE_ADMIN_TOKEN=ADMIN_TOKEN,
            FLEETWAVE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            FLEETWAVE_REGISTER_RATE_PER_MINUTE="1000000",
            FLEETWAVE_LONG_POLL_MAX=str(LONG_POLL_MAX),
            FLEETWAVE_EVENT_STREAM_HEARTBEAT="2",
            FLEETWAVE_LOG_LEVEL="warning",
            **extra,
        )

    def migrate(self) -> None:
        done = subprocess.run(
            [*FLEETWAVE, "migrate"],
            env=self.settings("migrate"),
            cwd=directory(self.home / "migrate"),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ScaleOutError(f"fleetwave migrate failed:\n{done.stderr}")

    def start_replica(self, name: str) -> Part:
        port = self.replica_ports.setdefault(name, free_port())
        env = self.settings(name, FLEETWAVE_PORT=str(port))
        command = [*FLEETWAVE, "serve", "--no-migrate", "--no-worker"]
        replica = self.replicas[name] = spawn(name, command, env, self.home / name)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: ready(base) or replica.process.poll() is not None, name, 30)
        except ScaleOutError:
            raise ScaleOutError(f"replica {name} did not start:\n{replica.output()}") from None
        if replica.process.poll() is not None:
            raise ScaleOutError(f"replica {name} exited:\n{replica.output()}")
        return replica

    def start_worker(self, name: str) -> Part:
        if name in self.workers:
            self.retired.append(self.workers[name])
        data_dir = directory(self.home / name / "var")
        env = worker_env(data_dir, self.database_url, name, interval=0.2)
        env["FLEETWAVE_LOG_LEVEL"] = "info"  # its "rollout monitor running" line
        worker = self.workers[name] = spawn(name, [*FLEETWAVE, "worker"], env, self.home / name)
        wait_for(
            lambda: (
                "rollout monitor running" in worker.output() or worker.process.poll() is not None
            ),
            f"worker {name}",
            30,
        )
        if worker.process.poll() is not None:
            raise ScaleOutError(f"worker {name} exited:\n{worker.output()}")
        return worker

    def start_haproxy(self) -> None:
        config = self.home / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.stats_port, self.replica_ports))
        checked = subprocess.run(
            [HAPROXY, "-c", "-q", "-f", str(config)], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            raise ScaleOutError(f"haproxy refused its configuration:\n{checked.stderr}")
        self.haproxy = spawn("haproxy", [HAPROXY, "-db", "-f", str(config)], {}, self.home)
        wait_for(lambda: set(self.server_states().values()) == {"UP"}, "HAProxy's checks", 20)

    def server_states(self) -> dict[str, str]:
        """Each replica's state as HAProxy sees it: UP, DOWN, or on its way (``UP 1/2``)."""
        answer = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5)
        rows = csv.DictReader(io.StringIO(answer.text.lstrip("# ")))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "replicas" and row["svname"] in self.replica_ports
        }

    def kill_replica(self, name: str) -> None:
        self.replicas[name].kill()
        self.retired.append(self.replicas.pop(name))

    def kill_worker(self, name: str) -> None:
        self.workers[name].kill()

    def parts(self) -> list[Part]:
        found = [*self.retired, *self.replicas.values(), *self.workers.values()]
        return found + ([self.haproxy] if self.haproxy else [])

    def stop(self) -> None:
        for part in self.parts():
            part.stop()

    def failures(self) -> list[str]:
        """Tracebacks any part wrote (a killed part's half-written output aside)."""
        return [
            f"{part.name}: {line}"
            for part in self.parts()
            if part.name != "haproxy"
            for line in part.output().splitlines()
            if "Traceback" in line
        ]


@contextlib.contextmanager
def cluster(
    home: Path, database_url: str, replicas: int = 2, workers: int = 2
) -> Iterator[Cluster]:
    running = Cluster(directory(home), database_url)
    try:
        running.migrate()
        for n in range(1, replicas + 1):
            running.start_replica(f"api{n}")
        for n in range(1, workers + 1):
            running.start_worker(f"worker{n}")
        running.start_haproxy()
        yield running
    finally:
        running.stop()


# --- the simulated devices ---------------------------------------------------------------------


@dataclass
class Simulator:
    part: Part
    devices: int
    received: Path

    def held(self) -> int:
        """Held polls, from its last summary line."""
        found = HELD.findall(self.part.output())
        return int(found[-1].replace(",", "")) if found else 0

    def received_images(self) -> dict[str, datetime]:
        """When each device first received the new image."""
        first: dict[str, datetime] = {}
        lines = self.received.read_text().splitlines() if self.received.exists() else []
        for device, at, images in read_received(lines):
            if NEW in images and (device not in first or at < first[device]):
                first[device] = at
        return first

    def devices_seen(self) -> int:
        lines = self.received.read_text().splitlines() if self.received.exists() else []
        return len({device for device, _, _ in read_received(lines)})


def all_holding(sims: Sequence[Simulator]) -> bool:
    """Every agent received a target and at least 80 % hold a poll: an agent waits up to 1 s
    (0.5 s on average) between a held poll's answer and its next, so with 10 s holds ~95 %
    are held at any instant, fewer on a busy machine; a replica's death cuts ~50 %."""
    for simulator in sims:
        if simulator.part.process.poll() is not None:
            raise ScaleOutError(f"simulator exited:\n{simulator.part.output()[-3000:]}")
    return all(s.devices_seen() == s.devices and s.held() >= s.devices * 0.8 for s in sims)


@contextlib.contextmanager
def simulators(
    home: Path, base: str, devices: int, processes: int = 1, poll_interval: float = 10
) -> Iterator[list[Simulator]]:
    """``processes`` ``fleetwave simulate --long-poll`` sharing ``devices`` agents against
    ``base``; waits until every agent holds a poll."""
    started: list[Simulator] = []
    try:
        for n in range(processes):
            count = devices // processes + (1 if n < devices % processes else 0)
            name = f"sim{n + 1}"
            received = directory(home / name) / "received.jsonl"
            command = [
                *FLEETWAVE,
                "simulate",
                "--server",
                base,
                "--devices",
                str(count),
                "--image",
                OLD,
                "--poll-interval",
                str(poll_interval),
                "--long-poll",
                "--received-log",
                str(received),
                "--seed",
                str(n),
            ]
            env = clean_env(home / name, FLEETWAVE_ADMIN_TOKEN=ADMIN_TOKEN)
            started.append(Simulator(spawn(name, command, env, home / name), count, received))

        wait_for(
            lambda: all_holding(started),
            f"{devices} agents to hold their polls",
            60 + devices / 20,
            0.5,
        )
        yield started
    finally:
        for simulator in started:
            simulator.part.stop(signal.SIGINT)


# --- the rollout -------------------------------------------------------------------------------


def admin_client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers=ADMIN, timeout=30)


def create_policy(admin: httpx.Client) -> None:
    """Staged, 3 batches, no delay between them and no soak: the shortest a policy allows."""
    created = admin.post(
        "/api/v1/image-policies",
        json={
            "image_pattern": f"{REPOSITORY}:*",
            "update_strategy": "staged",
            "staged_batches": 3,
            "batch_delay_minutes": 0,
            "soak_seconds": 0,
            "health_check_enabled": True,
            "max_retries": 0,
        },
    )
    assert created.status_code == 201, created.text


def push(admin: httpx.Client) -> str:
    """Docker Hub's webhook for the new tag, through HAProxy; the rollout it made."""
    answer = admin.post(
        "/api/v1/webhooks/docker-registry",
        params={"secret": WEBHOOK_SECRET},
        json={"repository": {"repo_name": REPOSITORY}, "push_data": {"tag": NEW_TAG}},
    )
    assert answer.status_code in (200, 202), answer.text
    rollout_id: str | None = answer.json().get("rollout_id")
    found: list[str] = [rollout_id] if rollout_id else []

    def planned() -> bool:
        items = admin.get("/api/v1/rollouts", params={"limit": 10}).json()["items"]
        found.extend(i["rollout_id"] for i in items if i["new_tag"] == NEW_TAG)
        return bool(found)

    wait_for(planned, "the rollout to be planned", 60)
    return found[0]


def wait_until_over(admin: httpx.Client, rollout_id: str, within: float) -> dict[str, Any]:
    detail: dict[str, Any] = {}

    def over() -> bool:
        answer = admin.get(f"/api/v1/rollouts/{rollout_id}")
        if answer.status_code != 200:  # 503 while the database restarts
            return False
        detail.update(answer.json())
        return detail["status"] not in ("pending", "in_progress")

    try:
        wait_for(over, f"rollout {rollout_id} to end", within, 0.5)
    except ScaleOutError:
        raise ScaleOutError(f"rollout {rollout_id} did not end: {detail}") from None
    return detail


def delivery_times(
    admin: httpx.Client, rollout_id: str, sims: Sequence[Simulator]
) -> tuple[list[float], int]:
    """Seconds from each device's ``batch_started`` to the poll that brought it the new
    target; and how many devices of the rollout never got it."""
    starts, batches = batch_starts(admin, rollout_id), device_batches(admin, rollout_id)
    first: dict[str, datetime] = {}
    for simulator in sims:
        first |= simulator.received_images()
    times = [
        (first[device] - starts[batch]).total_seconds()
        for device, batch in batches.items()
        if device in first and batch in starts
    ]
    return times, len(batches) - len(times)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * share)) - 1]


# --- the event stream --------------------------------------------------------------------------


class EventStream:
    """``GET /api/v1/events/stream?rollout_id=`` followed in a thread, as a dashboard does:
    when the connection breaks it reconnects with ``Last-Event-ID``. It records every event
    (id, type) and which replica served each connection."""

    def __init__(self, base: str, rollout_id: str) -> None:
        self.base, self.rollout_id = base, rollout_id
        self.events: list[tuple[int, str]] = []
        self.served_by: list[str] = []  # one per connection that opened
        self.breaks: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def __enter__(self) -> EventStream:
        self._thread.start()
        wait_for(lambda: bool(self.served_by), "the event stream to open", 20, 0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def types(self) -> list[str]:
        return [kind for _, kind in self.events]

    def _follow(self) -> None:
        timeout = httpx.Timeout(10, read=15)  # heartbeats come every 2 s
        with httpx.Client(base_url=self.base, headers=ADMIN, timeout=timeout) as http:
            while not self._stop.is_set() and "rollout_completed" not in self.types():
                try:
                    self._read(http)
                except httpx.HTTPError as exc:
                    self.breaks.append(type(exc).__name__)
                    time.sleep(0.2)

    def _read(self, http: httpx.Client) -> None:
        headers = {"Last-Event-ID": str(self.events[-1][0])} if self.events else {}
        params = {"rollout_id": self.rollout_id} | ({} if self.events else {"after": "0"})
        with http.stream("GET", "/api/v1/events/stream", params=params, headers=headers) as answer:
            if answer.status_code != 200:
                self.breaks.append(f"status {answer.status_code}")
                time.sleep(0.2)
                return
            self.served_by.append(answer.headers.get("x-served-by", "?"))
            event_id: int | None = None
            for line in answer.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("id:"):
                    event_id = int(line[3:].strip())
                elif line.startswith("event:") and event_id is not None:
                    self.events.append((event_id, line[6:].strip()))
                    if line[6:].strip() == "rollout_completed":
                        return
        self.breaks.append("closed")


# --- what the database says --------------------------------------------------------------------


def exactly_once_problems(database_url: str, rollout_id: str, devices: int) -> list[str]:
    """Every device row of the rollout is ``completed`` (on the new image), with one event of
    each transition it went through (scheduled, updated) and none of a failure; each batch
    started and completed once, and the rollout completed once."""
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    problems: list[str] = []
    try:
        with engine.connect() as conn:
            statuses = Counter(
                dict(
                    conn.execute(
                        select(device_rollout_status.c.status, func.count())
                        .where(device_rollout_status.c.rollout_id == rollout_id)
                        .group_by(device_rollout_status.c.status)
                    ).all()
                )
            )
            per_device = conn.execute(
                select(rollout_events.c.device_uuid, rollout_events.c.event_type, func.count())
                .where(rollout_events.c.rollout_id == rollout_id)
                .where(rollout_events.c.device_uuid.is_not(None))
                .group_by(rollout_events.c.device_uuid, rollout_events.c.event_type)
            ).all()
    finally:
        engine.dispose()
    if statuses != Counter({"completed": devices}):
        problems.append(f"device rows {dict(statuses)}, not {devices} completed")
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for device, kind, n in per_device:
        counts[kind][device] = n
    for kind in ("device_scheduled", "device_updated"):
        wrong = {d: n for d, n in counts[kind].items() if n != 1}
        if len(counts[kind]) != devices or wrong:
            problems.append(f"{kind}: {len(counts[kind])} devices, some more than once: {wrong}")
    for kind in ("device_failed", "device_retried", "device_rolled_back", "device_skipped"):
        if counts[kind]:
            problems.append(f"{sum(counts[kind].values())} {kind} events")
    rollout_wide = Counter(kind for _, kind in event_types(database_url, rollout_id))
    for kind, expected in (("batch_started", 3), ("batch_completed", 3), ("rollout_completed", 1)):
        if rollout_wide[kind] != expected:
            problems.append(f"{rollout_wide[kind]} {kind} events, not {expected}")
    return problems


def counter_problems(rollout: dict[str, Any], devices: int) -> list[str]:
    """The rollout's counters, as the API gives them, against a rollout where every device
    completed."""
    expected = {
        "status": "completed",
        "total_devices": devices,
        "updated_devices": devices,
        "healthy_devices": devices,
        "finished_devices": devices,
        "failed_devices": 0,
        "rolled_back_devices": 0,
        "failure_rate": 0.0,
    }
    actual = {key: rollout.get(key) for key in expected}
    return [] if actual == expected else [f"counters {actual}, not {expected}"]


def event_types(database_url: str, rollout_id: str) -> list[tuple[int, str]]:
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(rollout_events.c.id, rollout_events.c.event_type)
                .where(rollout_events.c.rollout_id == rollout_id)
                .order_by(rollout_events.c.id)
            ).all()
    finally:
        engine.dispose()
    return [(row[0], row[1]) for row in rows]


def summary(values: Sequence[float]) -> str:
    if not values:
        return "no device"
    return (
        f"p50 {percentile(values, 0.5):.2f} s, p99 {percentile(values, 0.99):.2f} s, "
        f"max {max(values):.2f} s ({len(values)} devices)"
    )


def dump(parts: Sequence[Part], tail: int = 3000) -> str:
    return "\n".join(f"--- {p.name}\n{p.output()[-tail:]}" for p in parts)
