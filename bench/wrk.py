"""Load from wrk for bench/poll.py and bench/report.py: prepared requests replayed in a cycle.

The requests are written to a file, one a line (:func:`write_requests`), which
bench/requests.lua formats once per wrk thread and cycles through; every status other than the
expected one is counted, and a run with any (or any socket error or timeout) fails the bench.
Each measurement is an unmeasured warm-up followed by the measured run (:class:`Load`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common import BenchError, Server

LUA_SCRIPT = Path(__file__).resolve().parent / "requests.lua"
SOCKET_PROBLEMS = ("connect_errors", "read_errors", "write_errors", "timeouts")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def line(self) -> str:
        fields = [
            self.method,
            self.path,
            self.body,
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        if any("\t" in f or "\n" in f for f in fields):
            raise BenchError(f"a request field holds a tab or a newline: {self.path}")
        return "\t".join(fields)

    def send(self, client: httpx.Client) -> httpx.Response:
        """The same request, sent once (checks before measuring)."""
        return client.request(self.method, self.path, headers=self.headers, content=self.body)

    async def send_async(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.request(self.method, self.path, headers=self.headers, content=self.body)


def write_requests(path: Path, requests: Iterable[Request]) -> Path:
    with path.open("w") as handle:
        for request in requests:
            handle.write(request.line() + "\n")
    return path


@dataclass(frozen=True)
class WrkResult:
    figures: dict[str, float]

    @property
    def requests_per_second(self) -> float:
        return self.figures["requests"] / (self.figures["duration_us"] / 1e6)

    def ms(self, name: str) -> float:
        return self.figures[name] / 1000


@dataclass(frozen=True)
class Load:
    """The shape of every run: ``wrk -t<threads> -c<connections> -d<duration>s``."""

    threads: int
    connections: int
    duration: float
    warmup: float

    def describe(self) -> str:
        shape = f"wrk -t{self.threads} -c{self.connections} -d{self.duration:g}s"
        return f"{shape} (+{self.warmup:g}s warm-up each)"

    def measure(
        self, server: Server, requests: Path, status: int, duration: float | None = None
    ) -> WrkResult:
        """An unmeasured warm-up, then the measured run; every answer must be ``status``."""
        if self.warmup > 0:
            self.run(server, requests, status, self.warmup)
        return self.run(server, requests, status, duration or self.duration)

    def run(self, server: Server, requests: Path, status: int, seconds: float) -> WrkResult:
        command = [
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "5s",
            "-s",
            str(LUA_SCRIPT),
            server.base_url,
            "--",
            str(requests),
            str(self.threads),
            str(status),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        line = re.search(r"^BENCH (.*)$", done.stdout, re.MULTILINE)
        if done.returncode != 0 or line is None:
            raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        figures = {k: float(v) for k, v in (pair.split("=") for pair in line.group(1).split())}
        check(server, figures, status, seconds)
        return WrkResult(figures)


def check(server: Server, figures: dict[str, float], status: int, seconds: float) -> None:
    # wrk counts every status >= 400 as a "status error": when one is expected, only the
    # script's own count of unexpected statuses says whether anything went wrong.
    names = ("unexpected", *SOCKET_PROBLEMS) + (("status_errors",) if status < 400 else ())
    problems = [f"{figures[n]:.0f} {n.replace('_', ' ')}" for n in names if figures[n]]
    if problems:
        first = f" (first unexpected status: {figures['first_unexpected']:.0f})"
        raise BenchError(
            f"{server.name}: responses other than {status}: {', '.join(problems)}{first}\n"
            f"{server.log_tail()}"
        )
    if figures["requests"] == 0:
        raise BenchError(f"{server.name}: wrk made no request")
    if figures["duration_us"] < 0.9 * seconds * 1e6:
        raise BenchError(f"{server.name}: wrk stopped after {figures['duration_us'] / 1e6:.1f} s")


def print_table(rows: Iterable[tuple[str, WrkResult]]) -> None:
    print(f"{'':<26}{'requests/s':>12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'requests':>11}")
    for label, r in rows:
        print(
            f"{label:<26}{r.requests_per_second:>12.1f}{r.ms('p50_us'):>9.2f}"
            f"{r.ms('p90_us'):>9.2f}{r.ms('p99_us'):>9.2f}{r.figures['requests']:>11.0f}"
        )
