"""Benchmark of the device report: ``PATCH /api/v1/device/state`` with unchanged content.

Every device reports what it runs (the iotistic agent's shape: its one service running, online,
OS version, local IP), with its own key and a body that never changes, so that what is measured
is the report of a device where nothing happened: the common case. What it does, in one run
(see bench/README.md), on PostgreSQL and on SQLite in turn (``--backend``):

1. creates a fresh database (a throwaway PostgreSQL database, dropped at the end, also on
   failure, Ctrl-C or SIGTERM; or a SQLite file in the bench's temporary folder), migrates it
   and inserts ``--devices`` devices (2,000) with their target states;
2. counts the SQL a report runs, in-process (bench/sql_trace.py): unchanged, then changed;
3. loads the bare FastAPI baseline (bench/bare_app.py, started once for the whole run: it reads
   the body, ``json.loads`` it and answers ``{"status": "ok", "uuid": ...}``) with wrk, cycling
   through every device's report;
4. starts ``fleetwave serve --no-migrate`` on the database, checks that a report answers 200
   ``{"status": "ok", "uuid": ...}`` and that a changed report is stored (read back through
   ``GET /api/v1/devices/{uuid}/current-state``), sends every device's report once (so what
   is stored is what wrk then sends), loads it the same way, and checks two devices' stored
   state again.

It prints, per backend, requests/s and latency, the SQL per report, and ``ratio (<backend>):``.

    .venv/bin/python bench/report.py [--backend both] [--devices 2000] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from common import BenchError, Server, main
from device_bench import (
    Device,
    add_arguments,
    admin_headers,
    app_settings,
    backends,
    bare_server,
    check_arguments,
    first_pass,
    fleetwave_server,
    load,
    make_devices,
    print_load,
    ratio_line,
    require_tools,
    seeded_database,
)
from sql_trace import Probe, print_probes, trace_requests
from wrk import Request, WrkResult, print_table, write_requests

OS_VERSION = "Raspbian GNU/Linux 12 (bookworm)"


# --- reports -------------------------------------------------------------------------------


def running_apps(device: Device, container_id: str) -> dict[str, Any]:
    """``ContainerManager.getCurrentState()`` of a device running its target: every service
    of every app, with its container and ``status: running``."""
    return {
        app_id: {
            "appId": app["appId"],
            "appName": app["appName"],
            "services": [
                service
                | {
                    "appId": app["appId"],
                    "appName": app["appName"],
                    "containerId": container_id,
                    "status": "running",
                }
                for service in app["services"]
            ],
        }
        for app_id, app in device.apps.items()
    }


def container_id(device: Device, restarts: int = 0) -> str:
    """A Docker container id (64 hex digits), the same for a device until it restarts."""
    return hashlib.sha256(f"{device.uuid}/{restarts}".encode()).hexdigest()


def report(device: Device, restarts: int = 0) -> Request:
    """The device's report, as its agent sends it (``restarts`` > 0: a changed one)."""
    n = device.number
    state = {
        "apps": running_apps(device, container_id(device, restarts)),
        "is_online": True,
        "os_version": OS_VERSION,
        "supervisor_version": "1.0.0",
        "local_ip": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}",
    }
    headers = {"Content-Type": "application/json", "X-Device-API-Key": device.key}
    body = json.dumps({device.uuid: state}, separators=(",", ":"))
    return Request("PATCH", "/api/v1/device/state", headers, body)


def sent_apps(request: Request) -> Any:
    [state] = json.loads(request.body).values()
    return state["apps"]


@dataclass(frozen=True)
class Outcome:
    backend: str
    bare: WrkResult
    fleetwave: WrkResult
    probes: list[Probe]


def probe_reports(url: str, workdir: Path, backend: str, device: Device) -> list[Probe]:
    steps = [
        ("unchanged report (what wrk sends)", report(device)),
        ("changed report (its container restarted)", report(device, restarts=1)),
        ("the first report again (changed back)", report(device)),
    ]
    settings = app_settings(url, workdir, backend)
    return asyncio.run(trace_requests(settings, [report(device)], steps))


# --- checks --------------------------------------------------------------------------------


def check_report_answer(server: Server, device: Device) -> None:
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        answer = report(device).send(client)
    expected = {"status": "ok", "uuid": device.uuid}
    if answer.status_code != 200 or answer.json() != expected:
        raise BenchError(
            f"{server.name}: report answered {answer.status_code} {answer.text[:200]}, "
            f"expected 200 {expected}"
        )


def check_stored(client: httpx.Client, device: Device, request: Request, when: str) -> None:
    stored = client.get(f"/api/v1/devices/{device.uuid}/current-state", headers=admin_headers())
    if stored.status_code != 200 or stored.json()["apps"] != sent_apps(request):
        raise BenchError(
            f"{when}: the current state of {device.uuid} is not the one reported "
            f"({stored.status_code} {stored.text[:200]})"
        )


def check_reports_stored(fleetwave: Server, device: Device) -> None:
    """A changed report is stored, and so is the first one sent again (the digest of the
    last report is what a report is compared with, not that of any earlier one)."""
    with httpx.Client(base_url=fleetwave.base_url, timeout=5) as client:
        for request, when in (
            (report(device, restarts=1), "after a changed report"),
            (report(device), "after the first report again"),
        ):
            answer = request.send(client)
            if answer.status_code != 200:
                raise BenchError(f"{when}: answered {answer.status_code} {answer.text[:200]}")
            check_stored(client, device, request, when)


# --- measurements --------------------------------------------------------------------------


def measure(
    backend: str,
    args: argparse.Namespace,
    workdir: Path,
    fleet: list[Device],
    reports: Path,
    bare: Server,
) -> Outcome:
    runs = load(args)
    print(f"\n== {backend} ==", flush=True)
    with seeded_database(backend, args.database_url, workdir, fleet) as (url, _engine):
        probes = probe_reports(url, workdir, backend, fleet[0])
        # The baseline just before the server it is compared with (see bench/poll.py).
        bare_result = runs.measure(bare, reports, 200)
        with fleetwave_server(url, workdir, backend) as fleetwave:
            check_report_answer(fleetwave, fleet[0])
            check_reports_stored(fleetwave, fleet[0])
            print("checked: report -> 200 {status: ok, uuid}; a changed report is stored")
            first_pass(fleetwave, [report(d) for d in fleet], 200, "every device's report")
            result = runs.measure(fleetwave, reports, 200)
            with httpx.Client(base_url=fleetwave.base_url, timeout=5) as client:
                for device in (fleet[0], fleet[-1]):
                    check_stored(client, device, report(device), "after the run")
        outcome = Outcome(backend, bare_result, result, probes)
        print_outcome(outcome)
    return outcome


def print_outcome(outcome: Outcome) -> None:
    print()
    print_table([("bare FastAPI, 200", outcome.bare), ("fleetwave, 200", outcome.fleetwave)])
    print()
    print_probes("report", outcome.probes)


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the device report (unchanged content) against a bare FastAPI "
        "route that parses the same JSON, on PostgreSQL and SQLite."
    )
    add_arguments(parser, devices=2_000)
    args = parser.parse_args()
    check_arguments(parser, args)
    return args


def bench(args: argparse.Namespace) -> None:
    require_tools()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetwave-bench-")))
        fleet = make_devices(args.devices)
        reports = write_requests(workdir / "reports.tsv", (report(d) for d in fleet))
        bare = stack.enter_context(bare_server(workdir))
        check_report_answer(bare, fleet[0])
        print_load(args, "each device's own unchanged report, every answer 200")
        outcomes = [measure(b, args, workdir, fleet, reports, bare) for b in backends(args)]
    print()
    note = "every answer 200, the report unchanged"
    for o in outcomes:
        print(
            ratio_line(o.backend, o.fleetwave.requests_per_second, o.bare.requests_per_second, note)
        )


if __name__ == "__main__":
    sys.exit(main(bench, parse_args()))
