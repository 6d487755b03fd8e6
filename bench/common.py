"""Helpers shared by the benchmarks (bench/poll.py, bench/report.py, bench/fanout.py, ...).

- a throwaway PostgreSQL database, created through an admin URL and dropped whatever happens
  (optionally a copy of another database, ``CREATE DATABASE ... TEMPLATE``), or a fresh SQLite
  file (``bench_database``, either backend by name);
- the real server as a separate process (``fleetwave serve --no-migrate``), waited for, and
  stopped at the end;
- ``main``: SIGTERM and Ctrl-C unwind the bench's ExitStack, so servers stop and databases go.

The scripts are run as ``.venv/bin/python bench/<name>.py``, so this module is importable as
``common`` (the script's folder is first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from fleetwave.store.db import describe, sync_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOG_LEVEL = "warning"
HOST = "127.0.0.1"
BACKENDS = ("postgres", "sqlite")


class BenchError(RuntimeError):
    """The bench cannot go on (a check failed, a server did not start, ...)."""


def add_database_url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FLEETWAVE_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="admin connection to PostgreSQL, used to create and drop the bench database "
        "(default: $FLEETWAVE_BENCH_DATABASE_URL or %(default)s)",
    )


# --- throwaway database --------------------------------------------------------------------


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise BenchError(f"{describe(url)} names no database")
    return name


def libpq_url(url: str) -> str:
    """The URL as libpq (``psycopg.connect``) takes it: no SQLAlchemy driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def throwaway_database(admin_url: str, *, template: str | None = None) -> Iterator[str]:
    """Create ``fleetwave_bench_<random>`` and yield its URL; drop it whatever happens.

    With ``template`` (the URL of another database, which must have no open connection), the
    new database is a copy of it: same tables, rows, indexes and planner statistics.
    """
    if make_url(admin_url).get_backend_name() != "postgresql":
        raise BenchError(f"--database-url must be PostgreSQL, not {describe(admin_url)}")
    name = f"fleetwave_bench_{secrets.token_hex(6)}"
    copy_of = f' TEMPLATE "{database_name(template)}"' if template else ""
    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy_of}'))
        made = f"as a copy of {database_name(template)} " if template else ""
        print(f"created database {name} {made}via {describe(admin_url)}", flush=True)
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"dropped database {name}", flush=True)
    finally:
        admin.dispose()


def vacuum(engine: Engine, *tables: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f'VACUUM (ANALYZE) "{table}"'))


@contextmanager
def bench_database(backend: str, admin_url: str, workdir: Path) -> Iterator[str]:
    """A fresh, empty database on ``backend`` (one of BACKENDS), yielded as its URL: a
    throwaway PostgreSQL database (see above), or a new SQLite file in ``workdir``, which goes
    with that folder."""
    if backend == "postgres":
        with throwaway_database(admin_url) as url:
            yield url
        return
    if backend != "sqlite":
        raise BenchError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    path = workdir / f"fleetwave_bench_{secrets.token_hex(6)}.db"
    print(f"created SQLite file {path}", flush=True)
    yield f"sqlite:///{path}"


def analyze(engine: Engine, *tables: str) -> None:
    """Fresh planner statistics after a bulk insert: ``vacuum`` on PostgreSQL (so autovacuum
    has no reason to start mid-measurement), ``ANALYZE`` on SQLite."""
    if engine.dialect.name == "postgresql":
        vacuum(engine, *tables)
        return
    with engine.begin() as conn:
        for table in tables:
            conn.execute(text(f'ANALYZE "{table}"'))


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def memory_kib(self, field: str = "VmHWM") -> int | None:
        """A ``/proc/<pid>/status`` figure in KiB (VmHWM: peak RSS; VmRSS: current RSS)."""
        return proc_status_kib(self.process.pid, field)


def proc_status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name == field:
                    return int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return None


@contextmanager
def running(
    name: str, command: list[str], port: int, env: dict[str, str], workdir: Path
) -> Iterator[Server]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it in order, below
        )
    server = Server(name, port, process, log)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_ready(
    server: Server, path: str, expected: int, headers: dict[str, str], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited ({server.process.returncode}):\n{server.log_tail()}"
            )
        try:
            if (
                httpx.get(server.base_url + path, headers=headers, timeout=2).status_code
                == expected
            ):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.name} not ready after {timeout:g} s:\n{server.log_tail()}")


def fleetwave_executable() -> str:
    beside = Path(sys.executable).parent / "fleetwave"
    found = str(beside) if beside.exists() else shutil.which("fleetwave")
    if found is None:
        raise BenchError("the fleetwave command is not installed (pip install -e . in the venv)")
    return found


def fleetwave_command(port: int) -> list[str]:
    """``fleetwave serve`` on HOST:port, the schema already migrated."""
    return [fleetwave_executable(), "serve", "--no-migrate", "--host", HOST, "--port", str(port)]


def fleetwave_env(
    url: str, data_dir: Path, admin_token: str, webhook_secret: str
) -> dict[str, str]:
    """This process's environment without any FLEETWAVE_* of its own, plus the server's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
    return env | {
        "FLEETWAVE_DATABASE_URL": url,
        "FLEETWAVE_ADMIN_TOKEN": admin_token,
        "FLEETWAVE_WEBHOOK_SECRET": webhook_secret,
        "FLEETWAVE_LOG_LEVEL": LOG_LEVEL,
        "FLEETWAVE_DATA_DIR": str(data_dir),
    }


# --- main ----------------------------------------------------------------------------------


def main(bench: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> int:
    """Run ``bench(args)``; SIGTERM and Ctrl-C unwind it (servers stopped, databases dropped)."""

    def terminated(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, terminated)
    try:
        bench(args)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
