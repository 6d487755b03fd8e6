"""Helpers of the engine's end-to-end tests: real ``fleetwave worker`` processes on one
PostgreSQL, devices played in-process through the app, a probe of what a worker's database
session is doing, and the consistency checks run once every rollout is over."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import signal
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from fleetwave.bootstrap import Container
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import devices, image_rollouts, rollout_events
from tests.conftest import ADMIN_TOKEN
from tests.integration.factories import target_apps

FLEETWAVE = [sys.executable, "-m", "fleetwave.cli"]
WEBHOOK_SECRET = "test-webhook-secret-0123456789"
FINAL_ROLLOUT_STATUSES = ("completed", "failed")
TERMINAL_DEVICE_STATUSES = ("completed", "failed", "rolled_back", "rollback_failed", "skipped")
ADVANCED = re.compile(
    r" fleetwave\.monitor: rollout (?P<rollout>[0-9a-f-]{36}): (?P<message>.*?)"
    r"(?: \(committed after [0-9.]+ s\))?$"
)
ATTEMPT = re.compile(r"^attempt (?P<attempt>\d+):")


# --- worker processes -----------------------------------------------------------------------


def session_url(database_url: str, application_name: str) -> str:
    """The URL with an ``application_name``, to find the worker's sessions in pg_stat_activity."""
    url = make_url(database_url).update_query_dict({"application_name": application_name})
    return url.render_as_string(hide_password=False)


def directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def worker_env(data_dir: Path, database_url: str, name: str, interval: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
    return env | {
        "FLEETWAVE_DATABASE_URL": session_url(database_url, name),
        "FLEETWAVE_ADMIN_TOKEN": ADMIN_TOKEN,
        "FLEETWAVE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "FLEETWAVE_DATA_DIR": str(data_dir),
        "FLEETWAVE_MONITOR_INTERVAL": str(interval),
        "FLEETWAVE_LOG_LEVEL": "info",
    }


class WorkerOutput:
    name: str

    @property
    def output(self) -> list[str]:
        raise NotImplementedError

    def advanced(self) -> list[tuple[str, str]]:
        """(rollout id, message) of each transition this worker logged."""
        found = []
        for line in self.output:
            match = ADVANCED.search(line)
            if match:
                found.append((match["rollout"], match["message"]))
        return found

    def failures(self) -> list[str]:
        return [line for line in self.output if " ERROR " in line or "Traceback" in line]


class Worker(WorkerOutput):
    """One ``fleetwave worker`` process, its output collected line by line."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name, self.process = name, process
        self.lines: list[str] = []
        self.ready = asyncio.Event()
        self.started_at = asyncio.get_running_loop().time()
        self.ready_after: float | None = None  # seconds from start to its monitor running
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls,
        name: str,
        database_url: str,
        data_dir: Path,
        interval: float = 0.05,
        env: dict[str, str] | None = None,
    ) -> Worker:
        process = await asyncio.create_subprocess_exec(
            *FLEETWAVE,
            "worker",
            env=worker_env(data_dir, database_url, name, interval) | (env or {}),
            cwd=data_dir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(name, process)

    @property
    def output(self) -> list[str]:
        return self.lines

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if "rollout monitor running" in line and not self.ready.is_set():
                self.ready_after = asyncio.get_running_loop().time() - self.started_at
                self.ready.set()

    async def wait_ready(self, within: float = 30) -> None:
        try:
            async with asyncio.timeout(within):
                await self.ready.wait()
        except TimeoutError:
            raise AssertionError(
                f"worker {self.name} did not start:\n" + "\n".join(self.lines[-40:])
            ) from None

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine dies."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        await self._reader

    async def stop(self, within: float = 15) -> None:
        """SIGTERM, as an orchestrator stops a worker; it must exit cleanly."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(within):
                code = await self.process.wait()
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"worker {self.name} ignored SIGTERM") from None
        await self._reader
        assert code == 0, f"worker {self.name} exited with {code}:\n" + "\n".join(self.lines)


# A process that imports fleetwave once, then forks a ``fleetwave worker`` for each line it
# reads (the worker's database URL and log file); it prints each child's pid. A worker started
# this way runs the command itself (``fleetwave.cli.main`` with ``worker``) in its own process,
# without paying the second of imports again, so that it can be killed and restarted often.
ZYGOTE = """
import os, signal, sys
import fleetwave.bootstrap, fleetwave.cli, sqlalchemy.dialects.postgresql.psycopg
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
for line in sys.stdin:
    url, log = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:  # die with this process (which ends when the test closes its stdin)
            import ctypes
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ["FLEETWAVE_DATABASE_URL"] = url
        sys.argv = ["fleetwave", "worker"]
        code = 0
        try:
            fleetwave.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
"""


class WorkerForks:
    """Starts ``fleetwave worker`` processes forked from an already-imported fleetwave."""

    def __init__(
        self, process: asyncio.subprocess.Process, database_url: str, data_dir: Path
    ) -> None:
        self.process, self.database_url, self.data_dir = process, database_url, data_dir
        self.started: list[ForkedWorker] = []

    @classmethod
    async def start(cls, database_url: str, data_dir: Path, interval: float = 0.05) -> WorkerForks:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            ZYGOTE,
            env=worker_env(data_dir, database_url, "fw-forks", interval),
            cwd=data_dir,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process, database_url, data_dir)

    async def fork(self, name: str) -> ForkedWorker:
        assert self.process.stdin is not None and self.process.stdout is not None
        log = self.data_dir / f"{name}.log"
        url = session_url(self.database_url, name)
        started_at = asyncio.get_running_loop().time()
        self.process.stdin.write(f"{url}\t{log}\n".encode())
        await self.process.stdin.drain()
        async with asyncio.timeout(30):
            pid = int(await self.process.stdout.readline())
        worker = ForkedWorker(name, pid, log, started_at)
        self.started.append(worker)
        return worker

    async def close(self) -> None:
        for worker in self.started:
            await worker.kill()
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class ForkedWorker(WorkerOutput):
    def __init__(self, name: str, pid: int, log: Path, started_at: float) -> None:
        self.name, self.pid, self.log, self.started_at = name, pid, log, started_at
        self.ready_after: float | None = None
        self.gone = False  # once gone, its pid may be another process's: never signal it

    @property
    def output(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []

    @property
    def alive(self) -> bool:
        if self.gone:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    async def wait_ready(self, within: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not any("rollout monitor running" in line for line in self.output):
            if loop.time() > deadline or not self.alive:
                lines = "\n".join(self.output)
                raise AssertionError(f"worker {self.name} did not start:\n{lines}")
            await asyncio.sleep(0.005)
        self.ready_after = loop.time() - self.started_at

    async def _gone(self, within: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.alive:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.002)
        self.gone = True
        return True

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine dies."""
        if self.gone:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        assert await self._gone(10), f"worker {self.name} survived SIGKILL"

    async def stop(self, within: float = 15) -> None:
        """SIGTERM, as an orchestrator stops a worker; it must exit."""
        if self.gone:
            raise AssertionError(f"worker {self.name} had already exited")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if not await self._gone(within):
            await self.kill()
            raise AssertionError(f"worker {self.name} ignored SIGTERM")


AnyWorker = Worker | ForkedWorker


# --- what a worker's database sessions are doing --------------------------------------------


@dataclass(frozen=True)
class Activity:
    """A worker session inside a transaction that holds a transaction id (it locked or wrote
    rows: every rollout's turn starts with SELECT … FOR UPDATE, which takes one)."""

    xid: str
    query: str


class ActivityProbe:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, database_url: str) -> ActivityProbe:
        url = make_url(database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        return cls(await psycopg.AsyncConnection.connect(dsn, autocommit=True))

    async def close(self) -> None:
        await self.conn.close()

    async def writing(self, application_name: str) -> Activity | None:
        cursor = await self.conn.execute(
            "SELECT backend_xid::text, query FROM pg_stat_activity "
            "WHERE application_name = %s AND backend_xid IS NOT NULL "
            "AND state IN ('active', 'idle in transaction')",
            (application_name,),
        )
        row = await cursor.fetchone()
        return Activity(row[0], row[1] or "") if row else None

    async def outcome(self, xid: str, within: float = 5) -> str:
        """committed, aborted (or in progress still, after ``within`` s) of a transaction."""
        status = "in progress"
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            cursor = await self.conn.execute(
                "SELECT pg_xact_status(((pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
                " >> 32 << 32) + %s::bigint)::text::xid8)",
                (xid,),
            )
            row = await cursor.fetchone()
            status = row[0] if row else "unknown"
            if status != "in progress":
                break
            await asyncio.sleep(0.01)
        return str(status)


@dataclass(frozen=True)
class Kill:
    mode: str
    after: float  # seconds the worker had run since it said it was ready
    activity: Activity | None  # what its session was doing just before the SIGKILL
    outcome: str | None  # what became of that transaction: aborted, or committed (a race)

    @property
    def aborted_a_transaction(self) -> bool:
        return self.outcome == "aborted"

    @property
    def before_commit(self) -> bool:
        """Killed while appending its events: the last step of a rollout's turn."""
        return (
            self.aborted_a_transaction
            and self.activity is not None
            and is_last_step(self.activity.query)
        )


def is_last_step(query: str) -> bool:
    return "rollout_events" in query or "pg_advisory_xact_lock" in query


KILL_MODES = ("random", "in_transaction", "before_commit", "warm")


async def kill_somewhere(
    worker: AnyWorker, probe: ActivityProbe, mode: str, rng: random.Random
) -> Kill:
    """SIGKILL the worker at a random moment 20-300 ms after it said it was running: then
    (``random``: often while it is still starting or in its first, cold tick), or from then on
    as soon as its session holds a transaction id (``in_transaction``: inside a rollout's
    turn), or once that transaction is appending its events (``before_commit``: its last step
    before COMMIT) — 300 ms later at the latest —, or 20-300 ms after it has logged a
    transition (``warm``: a worker that got work done; at most 3 s is waited for one)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    activity = None
    if mode == "warm":
        before, deadline = len(worker.advanced()), loop.time() + 3
        while loop.time() < deadline:
            await asyncio.sleep(0.005)
            if len(worker.advanced()) > before:
                break
    await asyncio.sleep(rng.uniform(0.02, 0.3))
    if mode in ("random", "warm"):
        activity = await probe.writing(worker.name)
    else:
        deadline = loop.time() + 0.3
        while loop.time() < deadline:
            seen = await probe.writing(worker.name)
            if seen is not None and (mode == "in_transaction" or is_last_step(seen.query)):
                activity = seen
                break
            await asyncio.sleep(0)
    after = loop.time() - started
    await worker.kill()
    outcome = await probe.outcome(activity.xid) if activity is not None else None
    return Kill(mode, after, activity, outcome)


# --- devices played in-process ----------------------------------------------------------------


@dataclass
class PlayedDevice:
    uuid: str
    api_key: str
    image: str  # the image it was told last, and acted on
    crashes_on: set[str] = field(default_factory=set)  # images it cannot run
    seen_etag: str | None = None
    busy: bool = False

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Device-API-Key": self.api_key, "Authorization": ""}


class Devices:
    """Devices as a real agent plays them: each polls its target state and, when the image
    changes, reports ``pulling`` then ``running`` (or ``exited`` for an image it crashes on);
    a rollback is a change too, so it reports its old image running again. Which devices to
    poll is read from their ETags (one query a round) so that hundreds stay cheap to play."""

    def __init__(
        self, container: Container, client: httpx.AsyncClient, concurrency: int = 8
    ) -> None:
        self.container, self.client = container, client
        self.played: dict[str, PlayedDevice] = {}
        self.errors: list[str] = []
        self.reports = self.polls = 0
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def register(self, uuid: str, image: str) -> PlayedDevice:
        response = await self.client.post(
            "/api/v1/devices", json={"uuid": uuid, "device_name": uuid, "apps": target_apps(image)}
        )
        assert response.status_code == 201, response.text
        device = PlayedDevice(uuid, response.json()["api_key"], image)
        self.played[uuid] = device
        await self.report(device, image, "running")  # online, running its image
        return device

    async def report(self, device: PlayedDevice, image: str, status: str) -> None:
        service = {"serviceName": "app", "imageName": image, "status": status}
        if status == "exited":
            service["error"] = "exit code 1"
        body = {
            device.uuid: {
                "apps": {"1001": {"appId": 1001, "services": [service]}},
                "is_online": True,
            }
        }
        self.reports += 1
        response = await self.client.patch(
            "/api/v1/device/state", json=body, headers=device.headers
        )
        if response.status_code != 200:
            self.errors.append(f"{device.uuid} reporting {status} {image}: {response.text}")

    async def target(self, device: PlayedDevice) -> dict[str, Any]:
        """The apps of the device's target state, as its poll serves them."""
        self.polls += 1
        response = await self.client.get(
            f"/api/v1/device/{device.uuid}/state", headers=device.headers
        )
        assert response.status_code == 200, response.text
        apps: dict[str, Any] = response.json()[device.uuid]["apps"]
        return apps

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                async with self.container.db.single_read() as conn:
                    rows = await conn.execute(select(devices.c.uuid, devices.c.target_etag))
                    etags = {uuid: etag for uuid, etag in rows}
                for uuid, etag in etags.items():
                    device = self.played.get(uuid)
                    if device is None or device.busy or device.seen_etag == etag:
                        continue
                    device.busy = True
                    task = asyncio.create_task(self._follow(device, etag))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await stop.wait()
        finally:  # what devices are doing is finished, not cut off half-way
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=30)

    async def _follow(self, device: PlayedDevice, etag: str) -> None:
        try:
            async with self._limit:
                apps = await self.target(device)
                image = apps["1001"]["services"][0]["imageName"]
                if image != device.image:
                    device.image = image
                    await self.report(device, image, "pulling")
                    await self.report(
                        device, image, "exited" if image in device.crashes_on else "running"
                    )
                device.seen_etag = etag
        except Exception as exc:  # recorded, and the test fails on it at the end
            self.errors.append(f"{device.uuid}: {exc!r}")
        finally:
            device.busy = False


# --- the state of the rollouts ----------------------------------------------------------------


async def rollout_rows(container: Container) -> dict[str, Any]:
    async with container.db.read() as conn:
        rows = await conn.execute(select(image_rollouts).order_by(image_rollouts.c.id))
        return {row.rollout_id: row for row in rows}


async def device_status_counts(container: Container) -> dict[str, Counter[str]]:
    async with container.db.read() as conn:
        rows = await conn.execute(
            select(device_rows.c.rollout_id, device_rows.c.status, func.count()).group_by(
                device_rows.c.rollout_id, device_rows.c.status
            )
        )
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for rollout_id, status, n in rows:
            counts[rollout_id][status] = n
        return counts


def settled(rollout: Any, counts: Counter[str]) -> bool:
    """Over, and every device on a final status with nothing left to report (a failed
    device waits for its rollback to be reported running)."""
    return rollout.status in FINAL_ROLLOUT_STATUSES and set(counts) <= {
        "completed",
        "rolled_back",
        "skipped",
    }


async def describe(container: Container) -> str:
    counts = await device_status_counts(container)
    return "\n".join(
        f"{r.rollout_id} {r.image_name}:{r.new_tag} {r.status} batch {r.current_batch}/"
        f"{len(r.batch_sizes or [])} {dict(counts[r.rollout_id])}"
        for r in (await rollout_rows(container)).values()
    )


# --- consistency checks -----------------------------------------------------------------------


def event_key(event: Any) -> tuple[str, str, str | None, Any]:
    data = event.event_data or {}
    return (event.rollout_id, event.event_type, event.device_uuid, data.get("batch"))


async def consistency_problems(
    container: Container, client: httpx.AsyncClient, expected_status: dict[str, str]
) -> list[str]:
    """Everything that does not add up, once every rollout is over (empty: all is well).

    - each rollout reached the final status expected of it, and each device row is terminal;
    - the counters on the rollout equal the counts of its device rows;
    - one ``batch_started`` and one ``batch_completed`` per batch, in order, and one
      conclusion (``rollout_completed`` or ``rollout_failed``) after the last batch;
    - one ``device_scheduled`` per device and attempt;
    - no event twice for the same (rollout, type, device, batch);
    - the event log, paged through the API, has strictly increasing ids and misses none.
    """
    problems: list[str] = []
    rollouts = await rollout_rows(container)
    async with container.db.read() as conn:
        rows = list(await conn.execute(select(device_rows)))
        events = list(await conn.execute(select(rollout_events).order_by(rollout_events.c.id)))
    by_rollout_rows: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_rollout_rows[row.rollout_id].append(row)
    by_rollout_events: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        by_rollout_events[event.rollout_id].append(event)

    if set(rollouts) != set(expected_status):
        problems.append(f"rollouts {sorted(rollouts)} are not the {sorted(expected_status)}")
    for rid, rollout in rollouts.items():
        name = f"rollout {rid} ({rollout.image_name}:{rollout.new_tag})"
        if rollout.status != expected_status.get(rid):
            problems.append(f"{name} is {rollout.status}, not {expected_status.get(rid)}")
        statuses = Counter(row.status for row in by_rollout_rows[rid])
        unfinished = {s: n for s, n in statuses.items() if s not in TERMINAL_DEVICE_STATUSES}
        if unfinished:
            problems.append(f"{name} has devices not terminal: {unfinished}")
        if sum(statuses.values()) != rollout.total_devices:
            problems.append(f"{name}: {sum(statuses.values())} rows, {rollout.total_devices} total")
        failed = statuses["failed"] + statuses["rollback_failed"]
        finished = statuses["completed"] + failed + statuses["rolled_back"]
        rate = round((failed + statuses["rolled_back"]) / finished, 4) if finished else 0.0
        counters = {
            "healthy_devices": statuses["completed"],
            "failed_devices": failed,
            "rolled_back_devices": statuses["rolled_back"],
            "updated_devices": statuses["health_checking"] + statuses["completed"],
            "failure_rate": rate,
        }
        actual = {k: getattr(rollout, k) for k in counters}
        actual["failure_rate"] = round(float(actual["failure_rate"]), 4)
        if actual != counters:
            problems.append(f"{name}: counters {actual} but its device rows say {counters}")

        mine = by_rollout_events[rid]
        batches = range(1, len(rollout.batch_sizes or []) + 1)
        order: list[int] = []
        for batch in batches:
            for kind in ("batch_started", "batch_completed"):
                found = [
                    e.id
                    for e in mine
                    if e.event_type == kind and (e.event_data or {}).get("batch") == batch
                ]
                if len(found) != 1:
                    problems.append(f"{name}: {len(found)} {kind} events for batch {batch}")
                order += found[:1]
        conclusions = [e for e in mine if e.event_type in ("rollout_completed", "rollout_failed")]
        if len(conclusions) != 1:
            problems.append(f"{name}: {len(conclusions)} conclusions {conclusions}")
        elif conclusions[0].event_type != f"rollout_{rollout.status}":
            problems.append(f"{name} is {rollout.status} but {conclusions[0].event_type} says")
        order += [e.id for e in conclusions[:1]]
        if order != sorted(order):
            problems.append(f"{name}: batch and conclusion events out of order: {order}")
        scheduled = Counter(
            (e.device_uuid, _attempt(e.message)) for e in mine if e.event_type == "device_scheduled"
        )
        for row in by_rollout_rows[rid]:
            for attempt in range(1, row.retry_count + 2):
                if row.status != "pending" and scheduled[(row.device_uuid, attempt)] != 1:
                    problems.append(
                        f"{name}: device {row.device_uuid} scheduled "
                        f"{scheduled[(row.device_uuid, attempt)]} times for attempt {attempt}"
                    )
        extra = set(scheduled) - {
            (row.device_uuid, a)
            for row in by_rollout_rows[rid]
            for a in range(1, row.retry_count + 2)
        }
        if extra:
            problems.append(f"{name}: device_scheduled for devices/attempts it has not: {extra}")

    twice = [key for key, n in Counter(event_key(e) for e in events).items() if n > 1]
    if twice:
        problems.append(f"events twice for the same (rollout, type, device, batch): {twice[:10]}")
    ids = [e.id for e in events]
    if len(set(ids)) != len(ids):
        problems.append("duplicate event ids")
    paged = await page_event_ids(client)
    if any(b <= a for a, b in itertools.pairwise(paged)):
        problems.append("the event log, paged through the API, is not in increasing id order")
    if paged != ids:
        problems.append(f"paging the event log gave {len(paged)} events, the table has {len(ids)}")
    return problems


def _attempt(message: str | None) -> int:
    match = ATTEMPT.match(message or "")
    return int(match["attempt"]) if match else 1


async def page_event_ids(client: httpx.AsyncClient) -> list[int]:
    ids: list[int] = []
    after = 0
    while True:
        response = await client.get("/api/v1/events", params={"after": after, "limit": 1000})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if not items:
            return ids
        ids += [item["id"] for item in items]
        after = items[-1]["id"]


async def events_by_rollout(container: Container) -> dict[str, Counter[str]]:
    async with container.db.read() as conn:
        rows = await conn.execute(
            select(rollout_events.c.rollout_id, rollout_events.c.event_type, func.count()).group_by(
                rollout_events.c.rollout_id, rollout_events.c.event_type
            )
        )
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for rollout_id, kind, n in rows:
            counts[rollout_id][kind] = n
        return counts
