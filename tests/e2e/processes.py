"""Real fleetwave processes for the end-to-end and browser tests: ``fleetwave migrate`` then
``fleetwave serve`` on a free loopback port, with its output kept in a file (a pipe nobody
reads would fill up and stall the server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

FLEETWAVE = [sys.executable, "-m", "fleetwave.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment without the caller's own FLEETWAVE_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
    return env | {"FLEETWAVE_DATA_DIR": str(data_dir)} | extra


@dataclass
class RunningServer:
    base: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        """Terminate the server and return everything it wrote."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        return self.output()


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def fleetwave_server(
    home: Path, *, serve_args: Sequence[str] = (), **settings: str
) -> Iterator[RunningServer]:
    """A migrated, ready ``fleetwave serve [serve_args]`` in ``home`` (its data directory
    ``home/var``), with ``settings`` as FLEETWAVE_ variables; stopped at the end."""
    home.mkdir(parents=True, exist_ok=True)
    data_dir, port = home / "var", free_port()
    env = clean_env(data_dir, FLEETWAVE_PORT=str(port), **settings)
    migrated = subprocess.run(
        [*FLEETWAVE, "migrate"], env=env, cwd=home, capture_output=True, text=True, check=False
    )
    assert migrated.returncode == 0, migrated.stderr
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*FLEETWAVE, "serve", "--no-migrate", *serve_args],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", data_dir, process, log)
    try:
        deadline = time.monotonic() + 20
        while not ready(server.base):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"server did not become ready:\n{server.stop()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
