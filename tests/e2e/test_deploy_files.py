"""deploy/: the compose stack, HAProxy's configuration and the systemd units are checked by the
tools that will read them (haproxy -c, systemd-analyze verify) and against the CLI: every
command a compose service or a unit runs is a real ``fleetwave`` subcommand."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.processes import FLEETWAVE
from tests.e2e.realparts import unavailable

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
BINARY = "/opt/fleetwave/bin/fleetwave"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def fleetwave_commands() -> list[list[str]]:
    services = compose()["services"].values()
    from_compose = [s["command"] for s in services if "FLEETWAVE_IMAGE" in s["image"]]
    from_units = [
        shlex.split(line.split(BINARY, 1)[1])
        for unit in UNITS
        for line in unit.read_text().splitlines()
        if line.startswith(("ExecStart=", "ExecStartPre=")) and BINARY in line
    ]
    return from_compose + from_units


def test_compose_runs_one_migration_job_before_two_api_replicas_and_one_worker() -> None:
    services = compose()["services"]
    assert set(services) >= {"postgres", "migrate", "api-1", "api-2", "worker", "haproxy"}
    assert set(services) >= {"prometheus", "grafana"}
    for name in ("api-1", "api-2", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    apis = [n for n, s in services.items() if s.get("command", [None])[0] == "serve"]
    assert sorted(apis) == ["api-1", "api-2"]
    assert all("--no-worker" in services[n]["command"] for n in apis)
    assert [n for n, s in services.items() if s.get("command") == ["worker"]] == ["worker"]
    for service in services.values():  # every file a service mounts is in the repository
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
    for name in services:
        for needed in services[name].get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown {needed}"


def test_haproxy_balances_the_compose_replicas_on_readyz_and_prometheus_scrapes_them() -> None:
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    assert "http-check send meth GET uri /readyz" in config
    servers = re.findall(r"^\s*server (\S+) (\S+):3001 check", config, re.MULTILINE)
    assert sorted(s for s, _ in servers) == ["api-1", "api-2"]
    scraped = yaml.safe_load((DEPLOY / "prometheus" / "compose.yml").read_text())
    targets = {
        t for job in scraped["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert targets >= {"api-1:9464", "api-2:9464", "worker:9464", "haproxy:8405"}
    if shutil.which("haproxy") is None:
        unavailable("haproxy -c needs haproxy (Debian: haproxy)")
    done = subprocess.run(
        ["haproxy", "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALERT" not in done.stdout + done.stderr


@pytest.mark.parametrize("command", fleetwave_commands(), ids=" ".join)
def test_every_deployed_command_is_a_real_fleetwave_subcommand(command: list[str]) -> None:
    args = [a for a in command if not a.startswith("$")]
    done = subprocess.run(
        [*FLEETWAVE, *args, "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"fleetwave {' '.join(args)} --help:\n{done.stderr}"


def verify(units: list[Path], tmp_path: Path) -> str:
    """``systemd-analyze verify`` on copies whose ExecStart points at a stub executable
    (verify checks that the binary exists), returning everything it said."""
    if shutil.which("systemd-analyze") is None:
        unavailable("verifying the units needs systemd-analyze (Debian: systemd)")
    stub = tmp_path / "bin" / "fleetwave"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    copies = []
    for unit in units:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(BINARY, str(stub)))
        copies.append(str(copy))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *copies],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{done.returncode}\n{done.stdout}{done.stderr}".strip()


def test_the_systemd_units_verify_cleanly_and_are_hardened(tmp_path: Path) -> None:
    assert [u.name for u in UNITS] == [
        "fleetwave-agent.service",
        "fleetwave-worker.service",
        "fleetwave.service",
    ]
    assert verify(UNITS, tmp_path) == "0"
    for unit in UNITS:
        text = unit.read_text()
        for setting in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes"):
            assert setting in text, f"{unit.name} lacks {setting}"
        assert "StateDirectory=" in text and "Restart=on-failure" in text
        assert "EnvironmentFile=" in text


def test_verifying_catches_a_misspelt_setting(tmp_path: Path) -> None:
    typo = tmp_path / "src" / "fleetwave.service"
    typo.parent.mkdir()
    typo.write_text(UNITS[-1].read_text().replace("ProtectSystem=", "ProtectSytem="))
    said = verify([typo], tmp_path)
    assert "Unknown key" in said and "ProtectSytem" in said
