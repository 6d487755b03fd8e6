"""The Containerfile, built and run with no registry at all: a Debian root filesystem made
with mmdebstrap from the machine's apt sources and imported into Podman is the base, the
Python dependencies are wheels from the machine's own pip index (mounted into the build), and
the image then migrates PostgreSQL, serves, answers /readyz and a device's 304, as non-root on
a read-only root filesystem."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.databases import empty_postgres_database
from tests.e2e.processes import free_port
from tests.e2e.realparts import unavailable, wait_until

REPO = Path(__file__).resolve().parents[2]
BASE_PACKAGES = "python3,python3-venv,ca-certificates,libstdc++6"
TOKEN = "container-test-admin-token-0123456789"


@dataclass
class Image:
    name: str
    env: dict[str, str]

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done


def apt_sources() -> list[str]:
    """The machine's configured apt sources, as files mmdebstrap reads in place of a mirror."""
    etc = Path("/etc/apt")
    files = [etc / "sources.list"] if (etc / "sources.list").is_file() else []
    files += sorted(etc.glob("sources.list.d/*.list")) + sorted(
        etc.glob("sources.list.d/*.sources")
    )
    return [str(f) for f in files if f.stat().st_size]


def run(command: list[str], **kwargs: object) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, (
        f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )


def private_podman(workdir: Path) -> dict[str, str]:
    """Podman with its own storage under ``workdir``: nothing kept, nothing shared."""
    driver = (
        subprocess.run(
            ["podman", "info", "--format", "{{.Store.GraphDriverName}}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "vfs"
    )
    (workdir / "containers.conf").write_text(
        "[containers]\n"
        'default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'tmp_dir = "{workdir / "tmp"}"\n'
    )
    (workdir / "storage.conf").write_text(
        f'[storage]\ndriver = "{driver}"\n'
        f'runroot = "{workdir / "run"}"\ngraphroot = "{workdir / "graph"}"\n'
    )
    (workdir / "xdg").mkdir()
    return os.environ | {
        "CONTAINERS_CONF": str(workdir / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(workdir / "storage.conf"),
        "XDG_RUNTIME_DIR": str(workdir / "xdg"),
    }


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    """The image, built once per test session from a freshly debootstrapped base."""
    missing = [c for c in ("podman", "mmdebstrap") if not _which(c)]
    if missing:
        unavailable(f"the image test needs {', '.join(missing)} (Debian: podman mmdebstrap uidmap)")
    workdir = tmp_path_factory.mktemp("image")
    env = private_podman(workdir)
    built = Image("localhost/fleetwave:e2e", env)
    try:
        rootfs = workdir / "rootfs.tar"
        run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=essential",
                f"--include={BASE_PACKAGES}",
                "bookworm",
                str(rootfs),
                *apt_sources(),
            ]
        )
        built.podman("import", str(rootfs), "localhost/fleetwave-base:e2e")
        rootfs.unlink()
        wheels = workdir / "wheels"  # from the index pip is configured with here
        run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(REPO)])
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "-d",
                str(wheels),
                "setuptools>=68",
                "wheel",
            ]
        )
        built.podman(
            "build",
            "--format",
            "docker",
            "--build-arg",
            "BASE=localhost/fleetwave-base:e2e",
            "-v",
            f"{wheels}:/wheels:ro",
            "-t",
            built.name,
            "-f",
            str(REPO / "Containerfile"),
            str(REPO),
        )
        yield built
    finally:
        built.podman("rm", "--all", "--force", "--time", "0", check=False)
        built.podman("system", "reset", "--force", check=False)


def _which(command: str) -> bool:
    from shutil import which

    return which(command) is not None


def test_the_image_migrates_postgres_serves_and_answers_a_device_poll_as_non_root(
    image: Image,
) -> None:
    with empty_postgres_database() as url:
        database = ["-e", f"FLEETWAVE_DATABASE_URL={url}"]
        image.podman(
            "run", "--rm", "--network", "host", "--read-only", *database, image.name, "migrate"
        )
        port = free_port()
        name = f"fleetwave-e2e-{uuid.uuid4().hex[:8]}"
        image.podman(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            *database,
            "-e",
            f"FLEETWAVE_PORT={port}",
            "-e",
            "FLEETWAVE_HOST=127.0.0.1",
            "-e",
            f"FLEETWAVE_ADMIN_TOKEN={TOKEN}",
            image.name,
        )  # the default command: serve --no-migrate
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: _ready(base), "the container's /readyz", timeout=60)
            assert image.podman("exec", name, "id", "-u").stdout.strip() != "0"
            uid_line = image.podman("exec", name, "grep", "^Uid:", "/proc/1/status").stdout
            assert uid_line.split()[1] != "0", uid_line  # the server process itself
            assert image.podman("exec", name, "touch", "/opt/x", check=False).returncode != 0
            assert image.podman("healthcheck", "run", name, check=False).returncode == 0
            a_device_polls_twice_and_gets_304(base)
        finally:
            log = image.podman("logs", name, check=False)
            image.podman("rm", "--force", "--volumes", "--time", "10", name, check=False)
        assert "Traceback" not in log.stdout + log.stderr, log.stderr[-4000:]


def test_the_image_carries_labels_a_healthcheck_and_every_command_compose_runs(
    image: Image,
) -> None:
    inspected = image.podman(
        "image",
        "inspect",
        "--format",
        "{{json .Labels}} {{json .HealthCheck}} {{.User}}",
        image.name,
    ).stdout
    assert '"org.opencontainers.image.title":"fleetwave"' in inspected
    assert "/readyz" in inspected
    assert "10001" in inspected
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    commands = {
        tuple(service["command"])
        for service in compose["services"].values()
        if service.get("image", "").startswith("${FLEETWAVE_IMAGE")
    }
    assert {c[0] for c in commands} >= {"migrate", "serve", "worker"}
    for command in [*sorted(commands), ("agent",)]:
        done = image.podman("run", "--rm", image.name, *command, "--help", check=False)
        assert done.returncode == 0, f"fleetwave {' '.join(command)} --help: {done.stderr}"


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def a_device_polls_twice_and_gets_304(base: str) -> None:
    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"})
    device = admin.post("/api/v1/devices", json={"device_name": "pi-c", "uuid": "pi-c"})
    assert device.status_code == 201, device.text
    as_device = httpx.Client(base_url=base, headers={"X-Device-API-Key": device.json()["api_key"]})
    first = as_device.get("/api/v1/device/pi-c/state")
    assert first.status_code == 200, first.text
    second = as_device.get(
        "/api/v1/device/pi-c/state", headers={"if-none-match": first.headers["etag"]}
    )
    assert second.status_code == 304
