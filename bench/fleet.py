"""A simulated fleet takes a staged rollout: ``fleetwave simulate`` against ``fleetwave serve``.

What it does, in one run (see bench/README.md):

1. starts ``fleetwave serve`` (the monitor inside) on a fresh SQLite file or a throwaway
   PostgreSQL database (``--database``), creates a staged policy (3 batches), and starts
   ``--processes`` ``fleetwave simulate`` processes that share ``--devices`` real agents on
   simulated runtimes (``--long-poll``: held polls), each registering its share; their agents
   start spread over one poll interval;
2. waits until every agent runs the first image, then measures an idle window
   (``--idle-seconds``): the agents only poll;
3. posts Docker Hub's webhook for the new tag and follows the rollout until it ends;
4. samples CPU time and memory of the server, of each simulator and of the bench database's
   PostgreSQL backends from /proc every second, and prints: the server's CPU per 1,000 devices
   while idle, its peak memory, each process's CPU idle and during the rollout, and how long
   each device took from its batch's ``batch_started`` event to the poll that brought it the
   new target (the simulators' ``--received-log``: one wall clock, this machine's).

    .venv/bin/python bench/fleet.py                      # 1,000 devices, SQLite, plain polls
    .venv/bin/python bench/fleet.py --database postgres --long-poll --devices 10000 \\
        --poll-interval 60 --idle-seconds 120
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from common import (
    BACKENDS,
    HOST,
    BenchError,
    Server,
    add_database_url_argument,
    bench_database,
    database_name,
    fleetwave_env,
    fleetwave_executable,
    free_port,
    main,
    proc_status_kib,
    running,
    wait_until_ready,
)
from fleetwave.sim.received import batch_starts, device_batches, read_received

TOKEN = secrets.token_hex(24)
SECRET = secrets.token_hex(24)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REPOSITORY, OLD_TAG, NEW_TAG = "iotistic/myapp", "v2.0.0", "v2.0.1"
LOAD = re.compile(
    r"held polls ([\d,]+) \(([\d,]+) answered\), "
    r"waiting for a slot ([\d,]+) \(([\d,]+) answered\), loop lag (\d+) ms \(gc (\d+) ms\)"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--database", choices=BACKENDS, default="sqlite")
    add_database_url_argument(parser)
    parser.add_argument("--long-poll", action="store_true", help="agents hold their polls")
    parser.add_argument("--processes", type=int, default=1, help="simulators sharing the fleet")
    parser.add_argument("--poll-interval", type=float, default=10)
    parser.add_argument("--idle-seconds", type=float, default=60, help="idle window measured")
    parser.add_argument("--fail", default=f"{NEW_TAG}:0.02")
    parser.add_argument(
        "--pull-seconds",
        default="0",
        help="how long each simulated pull takes: SECONDS, or MIN-MAX drawn per device",
    )
    parser.add_argument("--batch-delay-minutes", type=int, default=0)
    parser.add_argument(
        "--batch-chunk",
        type=int,
        help="the server's FLEETWAVE_BATCH_CHUNK (default: its own, 10,000: each batch of "
        "this bench in one transaction); e.g. 1000 writes a 5,000-device batch in five",
    )
    parser.add_argument(
        "--max-retries", type=int, default=0, help="a crash on start is not worth retrying"
    )
    parser.add_argument("--timeout", type=float, default=900, help="for the rollout to end")
    parser.add_argument(
        "--worker",
        action="store_true",
        help="the monitor in its own `fleetwave worker` process, the API `serve --no-worker` "
        "(PostgreSQL only), as docs/operations.md deploys a large fleet",
    )
    args = parser.parse_args()
    if args.worker and args.database != "postgres":
        parser.error("--worker needs --database postgres (a worker beside the API shares it)")
    return args


# --- sampling ------------------------------------------------------------------------------


@dataclass
class Sampler:
    """CPU seconds of some processes (each a function giving its pids), every second."""

    pids: dict[str, Callable[[], list[int]]]
    cpu: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.monotonic()
            for name, pids in self.pids.items():
                self.cpu.setdefault(name, []).append((now, sum(map(cpu_seconds, pids()))))
            self.stop.wait(1)

    def share(self, name: str, start: float, end: float) -> float:
        """CPU used between two instants, as a share of one core."""
        samples = [s for s in self.cpu.get(name, []) if start <= s[0] <= end]
        if len(samples) < 2:
            return float("nan")
        (t0, c0), (t1, c1) = samples[0], samples[-1]
        return (c1 - c0) / (t1 - t0)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def pid_of(process: subprocess.Popen[Any]) -> Callable[[], list[int]]:
    return lambda: [process.pid]


def backends_of(database: str) -> Callable[[], list[int]]:
    """The PostgreSQL processes serving ``database`` (their title names it)."""

    def pids() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    title = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                    found.append(int(entry.name))
        return found

    return pids


# --- simulators ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """How a simulator kept up over a while, from its summary lines (-1: no line)."""

    held: int = -1  # fewest held polls in flight
    waiting: int = -1  # most requests waiting for a slot
    lag_ms: int = -1  # worst event-loop lag
    gc_ms: int = -1  # longest garbage collection
    answered_per_second: float = 0.0  # requests answered (held polls and the others)


@dataclass
class Simulator:
    name: str
    devices: int
    process: subprocess.Popen[str]
    received: Path
    lines: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, line)

    def follow(self, log: Path) -> None:
        assert self.process.stdout is not None
        with log.open("w", buffering=1) as out:
            for line in self.process.stdout:
                self.lines.append((time.monotonic(), line.rstrip()))
                out.write(f"{time.time():.3f} {line}")

    def all_running(self) -> bool:
        """Its last summary line: every device runs the first image, its container running."""
        n = self.devices
        last = [line for _, line in self.lines[-3:]]
        return any(
            line.startswith(f"{REPOSITORY}:{OLD_TAG}: {n} | running: {n} |") for line in last
        )

    def registered_in(self) -> str:
        for _, line in self.lines:
            if line.startswith("registered "):
                return line.rsplit(" in ", 1)[1]
        return "?"

    def load(self, start: float, end: float) -> Load:
        """What its summary lines say between two instants."""
        lines = [(t, LOAD.search(line)) for t, line in self.lines if start <= t <= end]
        found = [(t, [int(g.replace(",", "")) for g in m.groups()]) for t, m in lines if m]
        if len(found) < 2:
            return Load()
        (t0, first), (t1, last) = found[0], found[-1]
        return Load(
            held=min(f[0] for _, f in found),
            waiting=max(f[2] for _, f in found),
            lag_ms=max(f[4] for _, f in found),
            gc_ms=max(f[5] for _, f in found),
            answered_per_second=(last[1] + last[3] - first[1] - first[3]) / (t1 - t0),
        )

    def tail(self, count: int = 10) -> str:
        return "\n".join(line for _, line in self.lines[-count:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def simulators(
    args: argparse.Namespace, env: dict[str, str], server: str, work: Path
) -> Iterator[list[Simulator]]:
    """``--processes`` simulators sharing ``--devices``; stopped at the end."""
    started: list[Simulator] = []
    try:
        for index in range(args.processes):
            share = args.devices // args.processes + (index < args.devices % args.processes)
            received = work / f"received-{index + 1}.jsonl"
            command = [
                fleetwave_executable(),
                "simulate",
                "--server",
                server,
                "--devices",
                str(share),
                "--poll-interval",
                str(args.poll_interval),
                "--fail",
                args.fail,
                "--seed",
                str(index + 1),
                "--received-log",
                str(received),
                "--pull-seconds",
                args.pull_seconds,
                *(["--long-poll"] if args.long_poll else []),
            ]
            process = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # Ctrl-C reaches the bench only; it stops them
            )
            simulator = Simulator(f"simulator {index + 1}", share, process, received)
            started.append(simulator)
            log = work / f"simulator-{index + 1}.log"
            threading.Thread(target=simulator.follow, args=(log,), daemon=True).start()
        yield started
    finally:
        for simulator in started:
            simulator.stop()


# --- the server's side ---------------------------------------------------------------------


def create_policy(admin: httpx.Client, args: argparse.Namespace) -> None:
    created = admin.post(
        "/api/v1/image-policies",
        json={
            "image_pattern": f"{REPOSITORY}:*",
            "update_strategy": "staged",
            "staged_batches": 3,
            "batch_delay_minutes": args.batch_delay_minutes,
            "health_check_enabled": True,
            "soak_seconds": 0,
            "max_retries": args.max_retries,
        },
    )
    created.raise_for_status()


def push(admin: httpx.Client) -> str:
    """Docker Hub's webhook for the new tag; the rollout it made."""
    answer = admin.post(
        "/api/v1/webhooks/docker-registry",
        params={"secret": SECRET},
        json={"repository": {"repo_name": REPOSITORY}, "push_data": {"tag": NEW_TAG}},
    )
    answer.raise_for_status()
    rollout_id: str | None = answer.json().get("rollout_id")
    if rollout_id is not None:
        return rollout_id
    found: list[str] = []  # a push answered 202 (recorded, being planned): find its rollout

    def planned() -> bool:
        items = admin.get("/api/v1/rollouts", params={"limit": 10}).json()["items"]
        found.extend(i["rollout_id"] for i in items if i["new_tag"] == NEW_TAG)
        return bool(found)

    wait(planned, "the rollout to be planned", 120)
    return found[0]


def follow(admin: httpx.Client, rollout_id: str, timeout: float) -> dict[str, Any]:
    detail: dict[str, Any] = {}

    def ended() -> bool:
        detail.update(admin.get(f"/api/v1/rollouts/{rollout_id}").json())
        return detail["status"] not in ("pending", "in_progress")

    wait(ended, "the rollout to end", timeout, every=1)
    return detail


# --- figures -------------------------------------------------------------------------------


def delivery_times(
    starts: dict[int, datetime], batches: dict[str, int], logs: Sequence[Path]
) -> tuple[dict[int, list[float]], int]:
    """Per batch, seconds from its ``batch_started`` to each device's first poll that brought
    the new image; and how many devices of the rollout never got it."""
    new_image = f"{REPOSITORY}:{NEW_TAG}"
    first: dict[str, datetime] = {}
    for log in logs:
        for device, at, images in read_received(log.read_text().splitlines()):
            if new_image in images and (device not in first or at < first[device]):
                first[device] = at
    times: dict[int, list[float]] = {batch: [] for batch in sorted(starts)}
    missing = 0
    for device, batch in batches.items():
        if device in first and batch in starts:
            times[batch].append((first[device] - starts[batch]).total_seconds())
        else:
            missing += 1
    return times, missing


BATCH_COMMITTED = re.compile(r"batch (\d+) of \d+ started: .*\(committed after ([\d.]+) s\)")


def batch_commits(server_log: Path) -> dict[int, float]:
    """Per batch, seconds from its ``batch_started`` to the commit of the transaction that
    wrote it (the monitor's log line): the part of the delay before any device could know."""
    text = server_log.read_text(errors="replace")
    return {int(batch): float(seconds) for batch, seconds in BATCH_COMMITTED.findall(text)}


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * share)) - 1]


def spread(values: Sequence[float]) -> str:
    if not values:
        return "no device"
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return (
        f"min {min(values):.2f} s, p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(values):.2f} s "
        f"({len(values)} devices)"
    )


def mib(pid: int) -> str:
    return f"{(proc_status_kib(pid, 'VmHWM') or 0) / 1024:.0f} MiB"


# --- the run -------------------------------------------------------------------------------


def wait(check: Callable[[], bool], what: str, timeout: float, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(every)
    raise BenchError(f"timed out waiting for {what}")


def raise_open_files_limit() -> None:
    """10,000 held polls are 10,000 sockets in the server (which inherits this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bench(args: argparse.Namespace) -> None:
    raise_open_files_limit()
    work = Path(tempfile.mkdtemp(prefix="fleetwave-bench-fleet-"))
    polling = "long-poll" if args.long_poll else "plain polls"
    print(
        f"{args.devices} devices in {args.processes} simulator(s) on {args.database}, "
        f"{polling} every {args.poll_interval:g} s, pulls of {args.pull_seconds} s; "
        f"logs in {work}",
        flush=True,
    )
    with ExitStack() as stack:
        url = stack.enter_context(bench_database(args.database, args.database_url, work))
        port = free_port()
        env = fleetwave_env(url, work / "var", TOKEN, SECRET)
        env["FLEETWAVE_LOG_LEVEL"] = "info"  # the monitor's lines: when each batch committed
        if args.batch_chunk is not None:
            env["FLEETWAVE_BATCH_CHUNK"] = str(args.batch_chunk)
        serve = [fleetwave_executable(), "serve", "--host", HOST, "--port", str(port)]
        server = stack.enter_context(
            running("server", serve + ["--no-worker"] * args.worker, port, env, work)
        )
        wait_until_ready(server, "/readyz", 200, {}, timeout=120)
        monitor = server
        if args.worker:  # started after serve has migrated the database
            worker = [fleetwave_executable(), "worker"]
            monitor = stack.enter_context(running("worker", worker, port, env, work))
        admin = stack.enter_context(
            httpx.Client(
                base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
            )
        )
        create_policy(admin, args)
        sims = stack.enter_context(simulators(args, env, server.base_url, work))
        pids = {"server": pid_of(server.process)} | {s.name: pid_of(s.process) for s in sims}
        if monitor is not server:
            pids["worker"] = pid_of(monitor.process)
        if args.database == "postgres":
            pids["postgres"] = backends_of(database_name(url))
        sampler = Sampler(pids)
        threading.Thread(target=sampler.run, daemon=True).start()
        stack.callback(sampler.stop.set)
        run(args, admin, server, monitor, sims, sampler, work)


def run(
    args: argparse.Namespace,
    admin: httpx.Client,
    server: Server,
    monitor: Server,  # the process whose log says when each batch committed
    sims: list[Simulator],
    sampler: Sampler,
    work: Path,
) -> None:
    started = time.monotonic()

    def all_running() -> bool:
        for sim in sims:
            if sim.process.poll() is not None:
                raise BenchError(f"{sim.name} exited ({sim.process.returncode}):\n{sim.tail()}")
        return all(sim.all_running() for sim in sims)

    wait(all_running, f"every agent to run {OLD_TAG}", args.poll_interval + 600)
    settled = time.monotonic()
    registered = ", ".join(sim.registered_in() for sim in sims)
    print(
        f"{args.devices} devices registered (in {registered}) and running {OLD_TAG} "
        f"{settled - started:.1f} s after the simulators started",
        flush=True,
    )

    # An agent's first poll is a plain one (the offer of long-poll comes with its answer), its
    # next one a poll interval later is held: only then does the fleet poll as it will.
    time.sleep(args.poll_interval if args.long_poll else 2)
    idle_start = time.monotonic()
    time.sleep(args.idle_seconds)
    idle_end = time.monotonic()

    pushed = time.monotonic()
    rollout_id = push(admin)
    detail = follow(admin, rollout_id, args.timeout)
    finished = time.monotonic()
    peaks = {"server": mib(server.process.pid)} | {sim.name: mib(sim.process.pid) for sim in sims}
    if monitor is not server:
        peaks["worker"] = mib(monitor.process.pid)
    starts = batch_starts(admin, rollout_id)
    batches = device_batches(admin, rollout_id)
    kept = {"batch_started": {b: at.isoformat() for b, at in starts.items()}, "devices": batches}
    (work / "batches.json").write_text(json.dumps(kept))  # beside the received logs
    for sim in sims:
        sim.stop()  # its received log is complete
    times, missing = delivery_times(starts, batches, [sim.received for sim in sims])

    seconds = idle_end - idle_start
    print(f"\nidle window: {seconds:.0f} s, agents only polling")
    loads = [sim.load(idle_start, idle_end) for sim in sims]
    schedule = args.devices / (args.poll_interval + (0.5 if args.long_poll else 0))
    print(
        f"  requests answered to the agents: {sum(x.answered_per_second for x in loads):.1f}/s "
        f"(their schedule: {schedule:.1f} polls/s)"
    )
    idle = sampler.share("server", idle_start, idle_end)
    print(
        f"  server CPU: {idle:.1%} of a core = {idle / (args.devices / 1000):.2%} of a core "
        f"per 1,000 devices"
    )
    print(
        f"\nrollout {detail['status']} in {finished - pushed:.1f} s: batches "
        f"{detail['batch_sizes']}, {detail['healthy_devices']} healthy, "
        f"{detail['rolled_back_devices']} rolled back, {detail['failed_devices']} failed"
    )
    every = [t for batch in times.values() for t in batch]
    print(f"  batch started → device received its new target: {spread(every)}")
    commits = batch_commits(monitor.log)
    for batch, values in times.items():
        committed = (
            f"; written and committed after {commits[batch]:.2f} s" if batch in commits else ""
        )
        print(f"    batch {batch}: {spread(values)}{committed}")
    if missing:
        print(f"  {missing} devices of the rollout never received the new target")

    print("\nper process: CPU (share of one core) idle / during the rollout, peak memory")
    for name in sampler.pids:
        line = (
            f"  {name:12}: {sampler.share(name, idle_start, idle_end):6.1%} / "
            f"{sampler.share(name, pushed, finished):6.1%}"
        )
        print(line + (f", peak {peaks[name]}" if name in peaks else ""))
    for sim, idle_load in zip(sims, loads, strict=True):
        busy = sim.load(pushed, finished)
        print(
            f"  {sim.name} keeping up: idle: held polls ≥ {idle_load.held}, waiting for a slot "
            f"≤ {idle_load.waiting}, loop lag ≤ {idle_load.lag_ms} ms (gc ≤ {idle_load.gc_ms} "
            f"ms); rollout: waiting ≤ {busy.waiting}, loop lag ≤ {busy.lag_ms} ms (gc ≤ "
            f"{busy.gc_ms} ms)"
        )


if __name__ == "__main__":
    sys.exit(main(bench, parse_args()))
