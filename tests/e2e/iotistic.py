"""The original iotistic agent as a real client: built from ``../shared/peers/iotistic-agent``
(unmodified; the build works on a copy, as that folder's README says) and run against
fleetwave and Podman's Docker-compatible socket.

Building takes about 100 s, so a build is kept under ``~/.cache/fleetwave`` (or
``$XDG_CACHE_HOME/fleetwave``), named by a hash of the agent's source and lock file and of the
Node version (its sqlite3 module is compiled for it): the next run with the same source reuses
it. A build is made in a temporary folder beside it and renamed into place when complete.

The agent talks to its engine only at ``/var/run/docker.sock``. It runs in a mount namespace of
its own (``unshare --mount``) where ``/var/run`` is a fresh tmpfs holding a link to Podman's
socket: the host's ``/var/run`` is never touched, whatever is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE_VARIABLE = "FLEETWAVE_IOTISTIC_AGENT_SOURCE"
NODE_HEADERS = Path("/usr/include/node/node.h")
NOT_SOURCE = {"node_modules", "dist"}
# Inside the agent's own mount namespace: a private /var/run with docker.sock naming Podman's.
IN_NAMESPACE = (
    'mount -t tmpfs -o mode=0755 fleetwave-e2e /var/run && ln -s "$1" /var/run/docker.sock '
    '&& exec node "$2"'
)


def source() -> Path:
    """Where the agent's source is: ``$FLEETWAVE_IOTISTIC_AGENT_SOURCE``, else the shared
    folder beside the repository (``../shared/peers/iotistic-agent``)."""
    given = os.environ.get(SOURCE_VARIABLE)
    return Path(given) if given else REPOSITORY.parent / "shared" / "peers" / "iotistic-agent"


def version(agent_source: Path) -> str:
    """The agent's ``package.json`` name and version, e.g. ``device-agent 1.0.0``."""
    package = json.loads((agent_source / "package.json").read_text())
    return f"{package['name']} {package['version']}"


def build_key(agent_source: Path) -> str:
    """A hash of every source file (paths and contents) and the Node version."""
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    digest = hashlib.sha256(node.stdout.strip().encode() + b"\0")
    files = sorted(
        p
        for p in agent_source.rglob("*")
        if p.is_file() and not NOT_SOURCE & set(p.relative_to(agent_source).parts)
    )
    for path in files:
        digest.update(str(path.relative_to(agent_source)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleetwave"


@dataclass(frozen=True)
class Build:
    path: Path  # the built copy: dist/app.js and its node_modules
    seconds: float  # how long getting it took
    cached: bool  # an earlier run's build was reused


def build(agent_source: Path) -> Build:
    """The built agent: an earlier identical build if there is one, else built now."""
    started = time.monotonic()
    root = cache_root()
    built = root / f"iotistic-agent-{build_key(agent_source)}"
    if (built / "dist" / "app.js").exists():
        return Build(built, time.monotonic() - started, cached=True)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{built.name}.partial-", dir=root))
    try:
        _build_in(agent_source, work)
        try:
            work.rename(built)
        except OSError:  # another run finished the same build first
            if not (built / "dist" / "app.js").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Build(built, time.monotonic() - started, cached=False)


def _build_in(agent_source: Path, work: Path) -> None:
    shutil.copytree(
        agent_source, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*NOT_SOURCE)
    )
    for path in (work, *work.rglob("*")):  # the shared folder is read-only; the copy is ours
        path.chmod(path.stat().st_mode | 0o200)
    _drop_unserved_lock_entries(work / "package-lock.json")
    env = os.environ | {
        "npm_config_nodedir": "/usr",  # sqlite3 is compiled here: Debian's Node headers
        "npm_config_update_notifier": "false",
    }
    log = work / "build.log"
    steps = [
        ["npm", "install", "--legacy-peer-deps", "--no-audit", "--no-fund"],
        ["npx", "tsc", "-p", "tsconfig.build.json"],
        ["npm", "run", "copy:migrations"],
    ]
    with log.open("ab") as out:
        for step in steps:
            done = subprocess.run(step, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-40:]
                raise RuntimeError(f"{' '.join(step)} failed:\n" + "\n".join(tail))
    if not (work / "dist" / "app.js").exists():
        raise RuntimeError("the build made no dist/app.js")


def _drop_unserved_lock_entries(lock_file: Path) -> None:
    """The lock pins ``network-checker`` 1.0.6, which the npm registry no longer serves: without
    its entries npm resolves ``^1.0.6`` to a published version."""
    lock = json.loads(lock_file.read_text())
    packages = lock.get("packages", {})
    for key in [k for k in packages if k.endswith("node_modules/network-checker")]:
        del packages[key]
    lock_file.write_text(json.dumps(lock, indent=2) + "\n")


@dataclass
class RunningAgent:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running(
    built: Path, workdir: Path, docker_socket: Path, settings: dict[str, str]
) -> Iterator[RunningAgent]:
    """``node dist/app.js`` in its own mount namespace, configured by ``settings`` (the agent's
    environment variables), its database and logs in ``workdir``; stopped at the end."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "home").mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "home"),
        "DATABASE_PATH": str(workdir / "agent.sqlite"),
        "LOG_DIR": str(workdir / "logs"),
    } | settings
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace.append("--map-root-user")
    command = [*namespace, "sh", "-c", IN_NAMESPACE, "sh", str(docker_socket)]
    log = workdir / "agent.log"
    process = subprocess.Popen(
        [*command, str(built / "dist" / "app.js")],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    copier = threading.Thread(target=_stamped, args=(process, log), daemon=True)
    copier.start()
    agent = RunningAgent(process, log)
    try:
        yield agent
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        copier.join(timeout=10)


def _stamped(process: subprocess.Popen[bytes], log: Path) -> None:
    """Copy the agent's output to ``log``, each line headed by the UTC time it was read: the
    agent's own lines carry no time, and a failure is read against fleetwave's log."""
    assert process.stdout is not None
    with log.open("wb") as out:
        for line in process.stdout:
            stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
            out.write(stamp.encode() + b" " + line)
            out.flush()


def namespaces_work() -> bool:
    """Whether this machine lets us give a process its own /var/run (see the module's note)."""
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace.append("--map-root-user")
    probe = subprocess.run(
        [*namespace, "sh", "-c", "mount -t tmpfs fleetwave-probe /var/run"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0
