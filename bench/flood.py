"""Benchmark of a wrong-key flood: do a few real devices' polls stay fast while 150 clients
poll with wrong keys? On PostgreSQL and on SQLite in turn (``--backend``).

For each backend (see bench/README.md):

1. creates a fresh database (a throwaway PostgreSQL database, dropped at the end, also on
   failure, Ctrl-C or SIGTERM; or a SQLite file in the bench's temporary folder), migrates it
   and inserts ``--devices`` devices (4), the legitimate ones;
2. starts ``fleetwave serve --no-migrate`` on it (default limits) and has each device poll
   once (answered 304: the server then holds it in its poll cache, as it would in a running
   fleet);
3. **quiet**: each device polls with its key and ETag every ``--interval`` seconds (0.05), on a
   keep-alive connection of its own, for ``--duration`` seconds: every answer must be 304;
4. **flood**: the same, while ``wrk -t2 -c150`` (``--flood-connections``) sends polls with a
   wrong key, each of a new random uuid and key (bench/flood.lua), from the same address as
   the devices (127.0.0.1: a fleet behind the attacker's NAT);
5. with ``--compare-unlimited`` (the default), the flood again against a server whose limits
   are out of reach (1,000,000 failures a minute), to show what the limits change.

It prints per run the devices' poll latency (p50, p99, max), the flood's statuses (429, 401,
403, other) and requests/s, and ``ratio (<backend>): p99 flood / p99 quiet``. Benchmarks print
figures; nothing here asserts a time.

    .venv/bin/python bench/flood.py [--backend both] [--duration 10] [--flood-connections 150]
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    HOST,
    BenchError,
    Server,
    add_database_url_argument,
    fleetwave_command,
    fleetwave_env,
    free_port,
    main,
    running,
    wait_until_ready,
)
from device_bench import (
    ADMIN_TOKEN,
    UNLIMITED_FAILURES,
    WEBHOOK_SECRET,
    Device,
    backends,
    first_pass,
    make_devices,
    require_tools,
    seeded_database,
)
from wrk import Request

FLOOD_SCRIPT = Path(__file__).resolve().parent / "flood.lua"
UNLIMITED = UNLIMITED_FAILURES


def poll(device: Device) -> Request:
    headers = {"X-Device-API-Key": device.key, "If-None-Match": device.etag}
    return Request("GET", f"/api/v1/device/{device.uuid}/state", headers)


@dataclass
class Polls:
    """The devices' polls of one run: latency in ms, and statuses."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ms: float, status: int) -> None:
        with self.lock:
            self.latencies.append(ms)
            self.statuses[status] += 1

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self, label: str) -> str:
        if not self.latencies:
            return f"{label:<34} no poll answered"
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{label:<34} p50 {statistics.median(self.latencies):8.2f} ms  "
            f"p99 {self.percentile(99):8.2f} ms  max {max(self.latencies):8.2f} ms  "
            f"({len(self.latencies)} polls; {statuses})"
        )


def keep_polling(
    server: Server, device: Device, interval: float, stop: threading.Event, polls: Polls
) -> None:
    request = poll(device)
    connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                connection.request(request.method, request.path, None, request.headers)
                answer = connection.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                connection.close()  # a dropped keep-alive: the next poll reconnects
                status = 0
            polls.add((time.perf_counter() - started) * 1000, status)
            stop.wait(interval)
    finally:
        connection.close()


def devices_poll(server: Server, fleet: list[Device], seconds: float, interval: float) -> Polls:
    polls, stop = Polls(), threading.Event()
    pollers = [
        threading.Thread(target=keep_polling, args=(server, d, interval, stop, polls))
        for d in fleet
    ]
    for poller in pollers:
        poller.start()
    time.sleep(seconds)
    stop.set()
    for poller in pollers:
        poller.join()
    return polls


@dataclass(frozen=True)
class Flood:
    figures: dict[str, float]

    def line(self, label: str) -> str:
        f = self.figures
        rate = f["requests"] / (f["duration_us"] / 1e6)
        problems = sum(f[n] for n in ("connect_errors", "read_errors", "write_errors", "timeouts"))
        return (
            f"{label:<34} {f['requests']:.0f} requests ({rate:.0f}/s): 429: {f['s429']:.0f}, "
            f"401: {f['s401']:.0f}, 403: {f['s403']:.0f}, other: {f['other']:.0f}, "
            f"socket errors: {problems:.0f}; p50 {f['p50_us'] / 1000:.2f} ms, "
            f"p99 {f['p99_us'] / 1000:.2f} ms"
        )


def flooded(server: Server, fleet: list[Device], args: argparse.Namespace) -> tuple[Polls, Flood]:
    """The devices' polls while wrk floods; the flood starts a second before they poll."""
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.flood_connections}",
        f"-d{args.duration + 2:g}s", "--timeout", "10s", "-s", str(FLOOD_SCRIPT),
        server.base_url,
    ]  # fmt: skip
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        polls = devices_poll(server, fleet, args.duration, args.interval)
        out, err = wrk.communicate(timeout=args.duration + 30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    found = re.search(r"^FLOOD (.*)$", out, re.MULTILINE)
    if wrk.returncode != 0 or found is None:
        raise BenchError(f"wrk failed ({wrk.returncode}):\n{out}\n{err}")
    figures = {k: float(v) for k, v in (pair.split("=") for pair in found.group(1).split())}
    return polls, Flood(figures)


@contextmanager
def server_on(url: str, workdir: Path, name: str, extra: dict[str, str]) -> Iterator[Server]:
    env = fleetwave_env(url, workdir / f"data-{name}", ADMIN_TOKEN, WEBHOOK_SECRET) | extra
    port = free_port()
    with running(name, fleetwave_command(port), port, env, workdir) as server:
        wait_until_ready(server, "/readyz", 200, {})
        yield server


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> str:
    fleet = make_devices(args.devices)
    with seeded_database(backend, args.database_url, workdir, fleet) as (url, _engine):
        runs = [("limits on (defaults)", {})]
        if args.compare_unlimited:
            runs.append(("limits off", UNLIMITED))
        quiet_p99 = flood_p99 = 0.0
        for label, extra in runs:
            with server_on(url, workdir, f"fleetwave-{backend}-{len(extra)}", extra) as server:
                first_pass(server, [poll(d) for d in fleet], 304, "the devices' polls")
                quiet = devices_poll(server, fleet, args.duration, args.interval)
                polls, flood = flooded(server, fleet, args)
            print(f"--- {backend}, {label}", flush=True)
            print(quiet.line("devices' polls, no flood"))
            print(polls.line("devices' polls, during the flood"))
            print(flood.line("the flood"), flush=True)
            if not extra:
                quiet_p99, flood_p99 = quiet.percentile(99), polls.percentile(99)
    return (
        f"ratio ({backend}): {flood_p99 / quiet_p99:.1f}  (devices' poll p99 during the flood "
        f"{flood_p99:.2f} ms / without {quiet_p99:.2f} ms; limits on)"
    )


def bench(args: argparse.Namespace) -> None:
    require_tools()
    print(
        f"{args.devices} devices polling every {args.interval:g} s, {args.duration:g} s a run; "
        f"flood: wrk -t{args.threads} -c{args.flood_connections}, a new wrong key and uuid a "
        f"request, from the devices' own address",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="fleetwave-flood-") as tmp:
        ratios = [bench_backend(b, args, Path(tmp)) for b in backends(args)]
    print("\n".join(ratios))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    add_database_url_argument(parser)
    parser.add_argument("--devices", type=int, default=4, help="legitimate devices polling")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between polls")
    parser.add_argument("--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--flood-connections", type=int, default=150, help="wrk -c")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument(
        "--compare-unlimited",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="flood a server with the limits out of reach too (default: yes)",
    )
    args = parser.parse_args()
    if args.devices < 1 or args.flood_connections < args.threads:
        parser.error("--devices must be at least 1, --flood-connections at least --threads")
    return args


if __name__ == "__main__":
    sys.exit(main(bench, parse_arguments()))
