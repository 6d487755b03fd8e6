"""The real parts of the end-to-end tests: a Distribution registry, Podman's Docker-compatible
socket, and tiny images made here from a static busybox (DESIGN.md §7).

Nothing here touches /etc: Podman reads the files these helpers write, through
``CONTAINERS_CONF``, ``CONTAINERS_REGISTRIES_CONF`` and ``CONTAINERS_STORAGE_CONF``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

BUSYBOX = Path("/bin/busybox")
# The service prints its page when it starts (the iotistic agent waits for a container's first
# log line on Podman) and listens on its device's own loopback address, so several devices
# share the host. A crashing image prints the same line and exits 1 a moment later.
ENTRYPOINT = [
    "/bin/busybox",
    "sh",
    "-c",
    "/bin/busybox cat /www/index.html; "
    'trap "exit 0" TERM; /bin/busybox httpd -f -p "${LISTEN:-127.0.0.1:8080}" -h /www & wait',
]
CRASHING_ENTRYPOINT = [
    "/bin/busybox",
    "sh",
    "-c",
    "/bin/busybox cat /www/index.html; /bin/busybox sleep 1; exit 1",
]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def require(*commands: str, paths: tuple[Path, ...] = (), install: str = "") -> None:
    """Fail in CI (FLEETWAVE_REQUIRE_REAL_PARTS=1), skip on a laptop, when a part is missing."""
    missing = [c for c in commands if shutil.which(c) is None]
    missing += [str(p) for p in (BUSYBOX, *paths) if not p.exists()]
    if not missing:
        return
    install = install or "Debian: podman docker-registry busybox-static"
    unavailable(f"real parts missing: {', '.join(missing)} ({install})")


def unavailable(message: str) -> None:
    """A part cannot be had here: a failure under FLEETWAVE_REQUIRE_REAL_PARTS=1, else a skip."""
    if os.environ.get("FLEETWAVE_REQUIRE_REAL_PARTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def wait_until(check: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Registry:
    address: str  # host:port, as image references name it
    process: subprocess.Popen[bytes]
    log: Path
    auth: httpx.Auth | None = None  # what pushes need, on a registry that asks for it

    def push(self, repository: str, tag: str, *, healthy: bool, crashes: bool = False) -> str:
        """Build the test image and push it with the registry's HTTP API; returns its image ID
        (the digest of its config), which ``podman ps`` shows however the image was named."""
        layer, diff_id = _layer(tag, healthy)
        entrypoint = CRASHING_ENTRYPOINT if crashes else ENTRYPOINT
        config = json.dumps(
            {
                "architecture": _architecture(),
                "os": "linux",
                "config": {"Entrypoint": entrypoint, "Env": ["PATH=/bin"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode()
        with httpx.Client(base_url=f"http://{self.address}", timeout=30, auth=self.auth) as http:
            layer_digest = _upload(http, repository, layer)
            config_digest = _upload(http, repository, config)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": config_digest,
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer_digest,
                            "size": len(layer),
                        }
                    ],
                }
            ).encode()
            answer = http.put(
                f"/v2/{repository}/manifests/{tag}",
                content=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            answer.raise_for_status()
            return config_digest.removeprefix("sha256:")

    def manifest_digest(self, repository: str, tag: str) -> str:
        """The digest the registry serves ``repository:tag`` under (what a pin names)."""
        answer = httpx.head(
            f"http://{self.address}/v2/{repository}/manifests/{tag}",
            headers={"Accept": OCI_MANIFEST},
            timeout=10,
            auth=self.auth,
        )
        answer.raise_for_status()
        return answer.headers["Docker-Content-Digest"]


def _upload(http: httpx.Client, repository: str, blob: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    if http.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
        return digest
    started = http.post(f"/v2/{repository}/blobs/uploads/")
    started.raise_for_status()
    location = httpx.URL(started.headers["Location"])  # carries the upload's own state
    finished = http.put(
        location.copy_add_param("digest", digest),
        content=blob,
        headers={"Content-Type": "application/octet-stream"},
    )
    finished.raise_for_status()
    return digest


def _layer(tag: str, healthy: bool) -> tuple[bytes, str]:
    """A gzipped tar with busybox and a web root; only a healthy image serves /health."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("bin", "www", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        info = tar.gettarinfo(str(BUSYBOX), arcname="bin/busybox")
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        with BUSYBOX.open("rb") as binary:
            tar.addfile(info, binary)
        files = {"www/index.html": f"fleetwave e2e {tag}\n".encode()}
        if healthy:
            files["www/health"] = b"ok\n"
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(uncompressed).hexdigest()
    return gzip.compress(uncompressed, mtime=0), diff_id


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@contextmanager
def registry(
    workdir: Path,
    port: int,
    notify_url: str | None,
    secret: str,
    *,
    auth: dict[str, Any] | None = None,
    push_auth: httpx.Auth | None = None,
) -> Iterator[Registry]:
    """``docker-registry`` on 127.0.0.1:port, notifying ``notify_url`` with a header secret
    (``None``: notifications off); ``auth``: the registry's ``auth`` section, and
    ``push_auth`` what the tests' pushes then send."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "registry.yml"
    settings: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if notify_url is not None:
        settings["notifications"] = {
            "endpoints": [
                {
                    "name": "fleetwave",
                    "url": notify_url,
                    "headers": {"Authorization": [f"Bearer {secret}"]},
                    "timeout": "3s",
                    "threshold": 5,
                    "backoff": "1s",
                }
            ]
        }
    if auth is not None:
        settings["auth"] = auth
    config.write_text(json.dumps(settings))  # YAML is a superset of JSON
    log = workdir / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    found = Registry(f"127.0.0.1:{port}", process, log, push_auth)
    try:
        wait_until(  # 401: up, and asking for credentials
            lambda: httpx.get(f"http://{found.address}/v2/", timeout=1).status_code in (200, 401),
            "the registry",
        )
        yield found
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Podman:
    socket_url: str
    env: dict[str, str]

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def ps(self, label: str) -> list[dict[str, Any]]:
        """``podman ps --all`` for the containers carrying ``label``: ID, Image (the name the
        engine reports), ImageID, State, Names."""
        out = self.run(
            "ps", "--all", "--no-trunc", "--filter", f"label={label}", "--format", "json"
        )
        rows: list[dict[str, Any]] = json.loads(out or "[]")
        return rows

    def container_ids(self, device_uuid: str) -> list[str]:
        """``podman ps`` for one device's running containers: their IDs."""
        out = self.run(
            "ps", "--no-trunc", "--filter", f"label=io.fleetwave.device={device_uuid}",
            "--format", "{{.ID}}",
        )  # fmt: skip
        return sorted(line for line in out.splitlines() if line)

    def running_images(self, device_uuid: str) -> list[str]:
        """``podman ps`` for one device's running containers: the ID of the image each runs."""
        out = self.run(
            "ps",
            "--no-trunc",
            "--filter",
            f"label=io.fleetwave.device={device_uuid}",
            "--format",
            "{{.ImageID}}",
        )
        return sorted(line for line in out.splitlines() if line)


@contextmanager
def podman(workdir: Path, insecure_registry: str) -> Iterator[Podman]:
    """``podman system service`` on a socket of its own, configured as DESIGN.md §7 says; its
    log (at info) has a line per API request answered.

    Its storage, its runtime state and its container locks are its own. Podman's default
    locks are one shared-memory segment per machine (``/dev/shm/libpod_lock``) whatever the
    storage: a fresh instance numbers its containers' locks from the start again, so a lock an
    earlier test's Podman left held (a process killed while holding it) would hang this one's
    container, and every request that lists it, for good. File locks live under ``tmp_dir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "containers.conf").write_text(
        "[containers]\n"
        'default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n'
        'netns = "host"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        'lock_type = "file"\n'  # its own locks, under tmp_dir (see above)
        f'tmp_dir = "{workdir / "tmp"}"\n'
    )
    (workdir / "registries.conf").write_text(
        "unqualified-search-registries = []\n"
        f'[[registry]]\nlocation = "{insecure_registry}"\ninsecure = true\n'
    )
    (workdir / "storage.conf").write_text(
        '[storage]\ndriver = "vfs"\n'
        f'runroot = "{workdir / "run"}"\ngraphroot = "{workdir / "graph"}"\n'
    )
    env = os.environ | {
        "CONTAINERS_CONF": str(workdir / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(workdir / "registries.conf"),
        "CONTAINERS_STORAGE_CONF": str(workdir / "storage.conf"),
        "XDG_RUNTIME_DIR": str(workdir / "xdg"),
    }
    (workdir / "xdg").mkdir(exist_ok=True)
    socket = workdir / "podman.sock"
    log = workdir / "podman.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["podman", "--log-level=info", "system", "service", "--time=0", f"unix://{socket}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    found = Podman(f"unix://{socket}", env)
    try:
        transport = httpx.HTTPTransport(uds=str(socket))
        with httpx.Client(transport=transport, base_url="http://podman") as http:
            wait_until(lambda: http.get("/_ping").status_code == 200, "podman's socket")
        yield found
    finally:
        subprocess.run(
            ["podman", "rm", "--all", "--force", "--time", "0"],
            env=env,
            capture_output=True,
            check=False,
        )
        process.terminate()
        process.wait(timeout=20)
        subprocess.run(
            ["podman", "system", "reset", "--force"], env=env, capture_output=True, check=False
        )


# --- the whole stack: fleetwave, a registry notifying it, Podman ---------------------------


@dataclass
class Parts:
    api: httpx.Client  # fleetwave's API with the admin token
    registry: Registry
    podman: Podman
    server_url: str


@contextmanager
def fleetwave_registry_podman(workdir: Path, token: str, secret: str) -> Iterator[Parts]:
    """``fleetwave serve`` (monitor every 0.5 s), a registry whose notifications it receives,
    and a Podman that pulls from that registry; all stopped at the end."""
    from tests.e2e.processes import fleetwave_server, free_port

    settings = {
        "FLEETWAVE_ADMIN_TOKEN": token,
        "FLEETWAVE_WEBHOOK_SECRET": secret,
        "FLEETWAVE_MONITOR_INTERVAL": "0.5",
    }
    with fleetwave_server(workdir, **settings) as server:
        notify = f"{server.base}/api/v1/webhooks/distribution"
        with (
            registry(workdir / "registry", free_port(), notify, secret) as reg,
            podman(workdir / "podman", reg.address) as runtime,
            httpx.Client(
                base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=10
            ) as api,
        ):
            yield Parts(api, reg, runtime, server.base)


def stop_agents(agents: dict[str, subprocess.Popen[bytes]]) -> None:
    """Ask every agent process to stop, then kill those still running after 20 s."""
    for agent in agents.values():
        agent.terminate()
    for agent in agents.values():
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
