"""Benchmark of the device poll 304 path: ``GET /api/v1/device/{uuid}/state`` + ``If-None-Match``.

What it does, in one run (see bench/README.md), on PostgreSQL and on SQLite in turn
(``--backend``):

1. creates a fresh database (a throwaway PostgreSQL database, dropped at the end, also on
   failure, Ctrl-C or SIGTERM; or a SQLite file in the bench's temporary folder), migrates it
   and inserts ``--devices`` devices (10,000), their target states and target-image index rows;
2. counts the SQL each kind of poll runs, in-process (bench/sql_trace.py);
3. loads the bare FastAPI baseline (bench/bare_app.py, started once for the whole run) with
   wrk, cycling through every device's uuid, key and ETag; every answer must be 304;
4. refreshes every device's last-seen, starts ``fleetwave serve --no-migrate`` on the
   database, checks that a poll with the right ETag answers 304, one without it 200 with the
   device's target state and one with a wrong key 401, polls every device once (as a running
   fleet has) and loads it the same way;
5. loads it with the polls of ``--wrong-keys`` devices (100) sent with a wrong key each, kept
   in a file of their own (every answer must be 401), stops it, and counts the devices whose
   last-seen was written while it ran (expected: 0, every last-seen being fresh).

It prints, per backend, requests/s and latency, the SQL per poll, and ``ratio (<backend>):``.

    .venv/bin/python bench/poll.py [--backend both] [--devices 10000] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import update
from sqlalchemy.engine import Engine

from common import BenchError, Server, main
from device_bench import (
    Device,
    add_arguments,
    app_settings,
    backends,
    bare_server,
    check_arguments,
    first_pass,
    fleetwave_server,
    load,
    make_devices,
    mark_all_seen,
    print_load,
    ratio_line,
    require_tools,
    seeded_database,
    touched_since,
)
from fleetwave.security import new_key
from fleetwave.store.tables import devices
from sql_trace import Probe, print_probes, trace_requests
from wrk import Request, WrkResult, print_table, write_requests


def poll(device: Device, key: str, etag: str | None) -> Request:
    headers = {"X-Device-API-Key": key} | ({"If-None-Match": etag} if etag else {})
    return Request("GET", f"/api/v1/device/{device.uuid}/state", headers)


@dataclass(frozen=True)
class Polls:
    """What wrk cycles through, each in a file of its own: every device's poll with its key
    (answered 304), and the first few devices' polls with a wrong key each (answered 401)."""

    right: list[Request]
    wrong: list[Request]
    right_file: Path
    wrong_file: Path

    @classmethod
    def write(cls, workdir: Path, fleet: list[Device], wrong_keys: dict[str, str]) -> Polls:
        right = [poll(d, d.key, d.etag) for d in fleet]
        wrong = [poll(d, wrong_keys[d.uuid], d.etag) for d in fleet if d.uuid in wrong_keys]
        return cls(
            right,
            wrong,
            write_requests(workdir / "polls.tsv", right),
            write_requests(workdir / "polls-wrong-key.tsv", wrong),
        )


@dataclass(frozen=True)
class Outcome:
    backend: str
    bare: WrkResult
    fleetwave: WrkResult
    refused: WrkResult
    touched: int
    within: float  # seconds from the last-seen refresh to the server's stop
    probes: list[Probe]


# --- SQL per poll --------------------------------------------------------------------------


def last_seen_ago(engine: Engine, device: Device, ago: timedelta) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(devices)
            .where(devices.c.uuid == device.uuid)
            .values(last_connectivity_event=datetime.now(UTC) - ago)
        )


def probe_polls(url: str, workdir: Path, backend: str, fleet: list[Device]) -> list[Probe]:
    """The SQL of each kind of poll; the second and third devices' last-seen made old first."""
    fresh, stale, away = fleet[0], fleet[1], fleet[2]
    wrong_key = new_key("fwd_")
    steps = [
        ("304, last-seen fresh (the common case)", poll(fresh, fresh.key, fresh.etag)),
        (
            "304, last-seen 2 min old (> OFFLINE_AFTER / 4), its first poll",
            poll(stale, stale.key, stale.etag),
        ),
        ("304, last-seen 1 h old (back online), its first poll", poll(away, away.key, away.etag)),
        ("200, no If-None-Match", poll(fresh, fresh.key, None)),
        ("401, a wrong key", poll(fresh, wrong_key, fresh.etag)),
        ("401, the same wrong key again", poll(fresh, wrong_key, fresh.etag)),
    ]
    settings = app_settings(url, workdir, backend)
    return asyncio.run(trace_requests(settings, [poll(fresh, fresh.key, fresh.etag)], steps))


# --- checks and measurements ---------------------------------------------------------------


def check_poll_answers(fleetwave: Server, device: Device, wrong_key: str) -> None:
    """Before measuring: 304 with the right ETag, 200 with the target state without one, 401
    with a wrong key."""
    expected = {device.uuid: {"apps": device.apps, "config": device.config}}
    with httpx.Client(base_url=fleetwave.base_url, timeout=5) as client:
        hit = poll(device, device.key, device.etag).send(client)
        miss = poll(device, device.key, None).send(client)
        refused = poll(device, wrong_key, device.etag).send(client)
    problems = []
    if hit.status_code != 304 or hit.headers.get("etag") != device.etag or hit.content:
        problems.append(f"poll with matching ETag: expected 304, got {hit.status_code}")
    if miss.status_code != 200 or miss.headers.get("etag") != device.etag:
        problems.append(f"poll without ETag: expected 200, got {miss.status_code}")
    elif miss.json() != expected:
        problems.append(f"poll without ETag: body {miss.text[:200]} is not the target state")
    if refused.status_code != 401:
        problems.append(f"poll with a wrong key: expected 401, got {refused.status_code}")
    if problems:
        raise BenchError("; ".join(problems) + f"\n{fleetwave.log_tail()}")
    print("checked: matching ETag -> 304, no ETag -> 200 + target state, wrong key -> 401")


def measure(
    backend: str,
    args: argparse.Namespace,
    workdir: Path,
    fleet: list[Device],
    polls: Polls,
    wrong_key: str,
    bare: Server,
) -> Outcome:
    runs = load(args)
    print(f"\n== {backend} ==", flush=True)
    with seeded_database(backend, args.database_url, workdir, fleet) as (url, engine):
        last_seen_ago(engine, fleet[1], timedelta(minutes=2))
        last_seen_ago(engine, fleet[2], timedelta(hours=1))
        probes = probe_polls(url, workdir, backend, fleet)
        # The baseline just before the server it is compared with: the pair is measured within
        # half a minute, whatever else the machine did between the backends.
        bare_result = runs.measure(bare, polls.right_file, 304)
        # Fresh last-seen for every device: the measured run is the pure 304 read path.
        measured_from = datetime.now(UTC)
        mark_all_seen(engine, measured_from)
        with fleetwave_server(url, workdir, backend) as fleetwave:
            check_poll_answers(fleetwave, fleet[0], wrong_key)
            first_pass(fleetwave, polls.right, 304, "every device's poll")
            result = runs.measure(fleetwave, polls.right_file, 304)
            refused = runs.measure(fleetwave, polls.wrong_file, 401, args.refused_duration)
        # Read once the server has stopped, so that what it wrote behind is in.
        touched = touched_since(engine, measured_from)
        within = (datetime.now(UTC) - measured_from).total_seconds()
        outcome = Outcome(backend, bare_result, result, refused, touched, within, probes)
        print_outcome(outcome)
    return outcome


def print_outcome(outcome: Outcome) -> None:
    print()
    print_table(
        [
            ("bare FastAPI, 304", outcome.bare),
            ("fleetwave, 304", outcome.fleetwave),
            ("fleetwave, wrong key 401", outcome.refused),
        ]
    )
    wrong_vs_right = outcome.refused.requests_per_second / outcome.fleetwave.requests_per_second
    print(f"wrong key (401) / right key (304), requests/s: {wrong_vs_right:.2f}")
    print(
        "last-seen UPDATEs while fleetwave ran (first pass, warm-ups, runs; read after it "
        f"stopped, {outcome.within:.0f} s after every last-seen was refreshed): {outcome.touched}"
    )
    print()
    print_probes("poll", outcome.probes)


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the device poll 304 path against a bare FastAPI baseline, "
        "on PostgreSQL and SQLite."
    )
    add_arguments(parser, devices=10_000)
    parser.add_argument(
        "--refused-duration",
        type=float,
        default=5,
        help="seconds of the wrong-key run (default: %(default)s)",
    )
    parser.add_argument(
        "--wrong-keys",
        type=int,
        default=100,
        help="devices whose polls are also sent with a wrong key (default: %(default)s: each "
        "key comes back within the server's memory of unknown keys)",
    )
    args = parser.parse_args()
    check_arguments(parser, args)
    if not 1 <= args.wrong_keys <= args.devices:
        parser.error("--wrong-keys must be from 1 to --devices")
    return args


def bench(args: argparse.Namespace) -> None:
    require_tools()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetwave-bench-")))
        fleet = make_devices(args.devices)
        wrong = {d.uuid: new_key("fwd_") for d in fleet[: args.wrong_keys]}
        polls = Polls.write(workdir, fleet, wrong)
        bare = stack.enter_context(bare_server(workdir))
        print_load(args, "every answer 304")
        print(
            f"wrong keys: the polls of {len(polls.wrong)} devices, each with a wrong key of its "
            f"own, cycled for {args.refused_duration:g}s (+{args.warmup:g}s warm-up), every "
            "answer 401",
            flush=True,
        )
        wrong_key = wrong[fleet[0].uuid]
        outcomes = [
            measure(b, args, workdir, fleet, polls, wrong_key, bare) for b in backends(args)
        ]
    print()
    for o in outcomes:
        rate = o.fleetwave.requests_per_second
        print(ratio_line(o.backend, rate, o.bare.requests_per_second, "every answer 304"))


if __name__ == "__main__":
    sys.exit(main(bench, parse_args()))
