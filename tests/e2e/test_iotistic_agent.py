"""The original iotistic agent, unchanged, rolls out through fleetwave on real parts (issue 13).

Real parts only: the agent built from ``../shared/peers/iotistic-agent`` (see
``tests/e2e/iotistic.py``) and provisioned with a fleetwave provisioning key; ``fleetwave
serve``; Debian's ``docker-registry`` notifying fleetwave; Podman's Docker-compatible socket,
which the agent finds at ``/var/run/docker.sock`` in a mount namespace of its own. Two
``fleetwave agent --runtime docker`` devices on the same Podman make up the rest of a staged
fleet, so the failure gate has a later batch to hold back (and fleetwave's own agent meets the
pinned rollout too). The iotistic device sorts first (a random hex uuid before ``zz-…``), so it
is every rollout's first batch.

The steps: v1 by target state; v2 by the registry's notification (a tag); v3 pinned to its
digest; v4, which crashes, rolled back to v3 on the iotistic device, and the rollout paused.
At each: ``podman ps``, the containers' answers over HTTP, and fleetwave's view.

The agent runs no device-side checks, so the policy has none: health is the default
"the new containers keep running for ``soak_seconds``", judged from its reports. Its cloud
logging is off here: with it on, one CI run saw the agent go silent after starting v3 (its
polls and reports stopped); the log API is tested with the agent's own body shape in
``tests/integration`` and with fleetwave's agent on Podman.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import iotistic
from tests.e2e.processes import FLEETWAVE, clean_env, free_port
from tests.e2e.realparts import (
    Podman,
    Registry,
    fleetwave_registry_podman,
    require,
    stop_agents,
    unavailable,
    wait_until,
)

TOKEN = "e2e-admin-token-0123456789abcdef"
SECRET = "e2e-registry-secret-0123456789"
REPO = "e2e/iotistic"
FLEET = "iotistic-e2e"
IOTISTIC_LABEL = "iotistic.app-id=1001"
ADDRESSES = {"iotistic": "127.0.3.2", "zz-fleetwave-1": "127.0.3.3", "zz-fleetwave-2": "127.0.3.4"}
HOST_DOCKER_SOCKET = Path("/var/run/docker.sock")
# Lines every poll, report or reconciliation repeats, left out of a failure's logs.
CHATTER = (
    '" 304 ',
    "GET /api/v1/rollouts",
    "containers/json",
    '/json HTTP/1.1" 200',  # Podman's inspections
    "&follow=0&",  # fleetwave's agents reading their containers' output
    "Polling target state",
    "   Endpoint: ",
    "   Current ETag: ",
    "   Response Status: 304",
    "Auto-reconciliation check",
    "RECONCILING STATE",
    "No changes needed",
    "=====",
)


def service(image: str, address: str) -> dict[str, Any]:
    config = {
        "image": image,
        "environment": {"LISTEN": f"{address}:8080"},
        "networkMode": "host",  # Podman here runs containers on the host network only
        "restart": "no",  # a crash stays a crash, for the agent and for its report
    }
    return {"serviceId": 1, "serviceName": "web", "imageName": image, "config": config}


def apps(image: str, address: str) -> dict[str, Any]:
    return {"1001": {"appId": 1001, "appName": FLEET, "services": [service(image, address)]}}


@dataclass(frozen=True)
class Page:
    url: str
    text: str

    def shown(self) -> bool:
        return httpx.get(self.url, timeout=2).text == self.text


@dataclass
class Stack:
    api: httpx.Client
    registry: Registry
    podman: Podman
    server_url: str
    workdir: Path
    iotistic_uuid: str = ""
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def image(self, tag: str) -> str:
        return f"{self.registry.address}/{REPO}:{tag}"

    def fleetwave_device(self, uuid: str, image: str) -> None:
        answer = self.api.post(
            "/api/v1/devices",
            json={"uuid": uuid, "device_name": uuid, "apps": apps(image, ADDRESSES[uuid])},
        )
        assert answer.status_code == 201, answer.text
        command = [
            *FLEETWAVE, "agent", "--server", self.server_url, "--uuid", uuid,
            "--runtime", "docker", "--docker-url", self.podman.socket_url,
            "--poll-interval", "1", "--report-interval", "1", "--device-address", ADDRESSES[uuid],
        ]  # fmt: skip
        env = clean_env(self.workdir / "agent") | {"FLEETWAVE_DEVICE_KEY": answer.json()["api_key"]}
        log = self.workdir / f"agent-{uuid}.log"
        with log.open("wb") as out:
            self.agents[uuid] = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def iotistic_containers(self) -> list[dict[str, Any]]:
        return self.podman.ps(IOTISTIC_LABEL)

    def running_image_ids(self) -> dict[str, list[str]]:
        """``podman ps``: the image ID each device's running containers run."""
        seen = {"iotistic": self._running(self.iotistic_containers())}
        for uuid in self.agents:
            seen[uuid] = self._running(self.podman.ps(f"io.fleetwave.device={uuid}"))
        return seen

    @staticmethod
    def _running(rows: list[dict[str, Any]]) -> list[str]:
        return sorted(r["ImageID"].removeprefix("sha256:") for r in rows if r["State"] == "running")

    def wait_running(self, image_id: str) -> None:
        """Until ``podman ps`` shows every device running ``image_id`` and nothing else."""

        def there() -> bool:
            return all(ids == [image_id] for ids in self.running_image_ids().values())

        try:
            wait_until(there, f"image {image_id[:12]} running everywhere", 90)
        except AssertionError:
            raise AssertionError(f"podman ps: {self.running_image_ids()}\n{self.logs()}") from None

    def wait_answers(self, tag: str) -> None:
        """Until every device's container answers over HTTP with the page of ``tag``."""
        for address in ADDRESSES.values():
            page = Page(f"http://{address}:8080/", f"fleetwave e2e {tag}\n")
            wait_until(page.shown, f"{page.url} to serve {tag}", 10)

    def rollout_for(self, tag: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def started() -> bool:
            items = self.api.get("/api/v1/rollouts").json()["items"]
            found[:] = [r for r in items if r["new_tag"] == tag]
            return bool(found)

        wait_until(started, f"a rollout of {tag}", 30)
        return found[0]

    def wait_status(self, rollout_id: str, statuses: set[str]) -> dict[str, Any]:
        detail: dict[str, Any] = {}

        def reached() -> bool:
            detail.update(self.api.get(f"/api/v1/rollouts/{rollout_id}").json())
            return detail["status"] in statuses

        try:
            wait_until(reached, f"rollout {rollout_id} to reach {statuses}", 180)
        except AssertionError:
            raise AssertionError(f"{self.logs()}\n--- the rollout: {detail}") from None
        return detail

    def device_rows(self, rollout_id: str) -> dict[str, dict[str, Any]]:
        rows = self.api.get(f"/api/v1/rollouts/{rollout_id}/devices").json()["items"]
        return {
            ("iotistic" if r["device_uuid"] == self.iotistic_uuid else r["device_uuid"]): r
            for r in rows
        }

    def explain(self, rollout: dict[str, Any]) -> str:
        """A rollout that ended otherwise than expected: the processes' logs, then its status
        and reason, its devices and its events, for CI's log."""
        rollout_id = rollout["rollout_id"]
        events = self.api.get(f"/api/v1/rollouts/{rollout_id}/events").json()["items"]
        return "\n".join(
            [
                self.logs(),
                f"--- rollout: {rollout}",
                f"--- devices: {self.device_rows(rollout_id)}",
                "--- events:",
                *(str(event) for event in events),
            ]
        )

    def reported_image(self) -> str | None:
        """The image the iotistic agent last reported for its service, if it reported one."""
        current = self.api.get(f"/api/v1/devices/{self.iotistic_uuid}/current-state").json()
        services = (current.get("apps") or {}).get("1001", {}).get("services") or [{}]
        image: str | None = services[0].get("imageName")
        return image

    def target_image(self) -> str:
        target = self.api.get(f"/api/v1/devices/{self.iotistic_uuid}/target-state").json()
        image: str = target["apps"]["1001"]["services"][0]["imageName"]
        return image

    def timed(self, what: str, started: float) -> None:
        self.timings.append((what, time.monotonic() - started))

    def logs(self) -> str:
        """The last lines of each process's log that say something, the iotistic agent's last
        (CI's excerpt of a failure keeps its end), then what Podman holds now."""
        paths = sorted(self.workdir.rglob("*.log"), key=lambda p: (p.name == "agent.log", p))
        parts = []
        for path in paths:
            lines = [
                line
                for line in path.read_text(errors="replace").splitlines()
                if line.strip() and not any(chatter in line for chatter in CHATTER)
            ]
            parts.append(f"--- {path.relative_to(self.workdir)}\n" + "\n".join(lines[-60:]))
        containers = self.podman.run("ps", "--all", "--format", "{{.ID}} {{.Image}} {{.Status}}")
        parts.append(f"--- podman ps --all\n{containers}")
        return "\n".join(parts)


def host_docker_socket() -> tuple[bool, int | None]:
    """Whether ``/var/run/docker.sock`` exists on the host (a dangling link counts), and its
    inode: the test must leave both as they were."""
    if not os.path.lexists(HOST_DOCKER_SOCKET):
        return False, None
    return True, HOST_DOCKER_SOCKET.lstat().st_ino


@pytest.fixture(scope="module")
def built_agent() -> iotistic.Build:
    source = iotistic.source()
    require(
        "podman", "docker-registry", "node", "npm", "unshare",
        paths=(source / "package.json", iotistic.NODE_HEADERS),
        install=f"Debian: podman docker-registry busybox-static nodejs npm libnode-dev "
        f"build-essential; the agent's source at {source} or ${iotistic.SOURCE_VARIABLE}",
    )  # fmt: skip
    if not iotistic.namespaces_work():
        unavailable("the agent needs a mount namespace of its own (unshare --mount), refused here")
    agent = iotistic.build(source)
    return agent


@pytest.fixture(scope="module")
def stack(built_agent: iotistic.Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("iotistic-agent")
    with fleetwave_registry_podman(workdir, TOKEN, SECRET) as parts:
        stack = Stack(parts.api, parts.registry, parts.podman, parts.server_url, workdir)
        try:
            yield stack
        finally:
            stop_agents(stack.agents)


def test_the_iotistic_agent_takes_v1_v2_a_pinned_v3_and_is_rolled_back_from_a_crashing_v4(
    stack: Stack, built_agent: iotistic.Build, capsys: pytest.CaptureFixture[str]
) -> None:
    host_socket = host_docker_socket()
    began = time.monotonic()
    v1_id = stack.registry.push(REPO, "v1", healthy=True)

    # Provisioning: the agent registers itself with the fleet's key and exchanges its own.
    started = time.monotonic()
    key = stack.api.post("/api/v1/provisioning-keys", json={"fleet_id": FLEET, "max_uses": 1})
    assert key.status_code == 201, key.text
    socket = Path(stack.podman.socket_url.removeprefix("unix://"))
    settings = {
        "CLOUD_API_ENDPOINT": stack.server_url,
        "PROVISIONING_API_KEY": key.json()["key"],
        "DEVICE_NAME": "iotistic-e2e",
        "DEVICE_TYPE": "generic-amd64",
        "MAC_ADDRESS": "02:00:00:00:03:02",
        "OS_VERSION": "Debian GNU/Linux 12 (bookworm)",
        "POLL_INTERVAL_MS": "1000",
        "REPORT_INTERVAL_MS": "1000",
        "RECONCILIATION_INTERVAL_MS": "2000",
        "DEVICE_API_PORT": str(free_port()),
        "ENABLE_CLOUD_LOGGING": "false",
    }
    with iotistic.running(built_agent.path, stack.workdir / "iotistic", socket, settings):
        found: list[dict[str, Any]] = []

        def provisioned() -> bool:
            found[:] = stack.api.get("/api/v1/devices", params={"fleet_id": FLEET}).json()["items"]
            return bool(found) and found[0]["is_online"]

        try:
            wait_until(provisioned, "the agent to register and report", 60)
        except AssertionError:
            raise AssertionError(stack.logs()) from None
        stack.iotistic_uuid = found[0]["uuid"]
        assert found[0]["device_name"] == "iotistic-e2e"
        assert stack.iotistic_uuid < "zz", stack.iotistic_uuid  # batch 1 of every rollout
        stack.timed("provisioned", started)

        # v1 by target state, the other two devices registered on v1 with fleetwave's agent.
        started = time.monotonic()
        put = stack.api.put(
            f"/api/v1/devices/{stack.iotistic_uuid}/target-state",
            json={"apps": apps(stack.image("v1"), ADDRESSES["iotistic"])},
        )
        assert put.status_code == 200, put.text
        for uuid in ("zz-fleetwave-1", "zz-fleetwave-2"):
            stack.fleetwave_device(uuid, stack.image("v1"))
        stack.wait_running(v1_id)
        stack.wait_answers("v1")
        wait_until(lambda: stack.reported_image() == stack.image("v1"), "the v1 report", 20)
        stack.timed("v1 by target state", started)

        # v2 by the registry's own notification: a tag (this policy pins no digest yet).
        policy = {
            "image_pattern": f"{stack.registry.address}/{REPO}:*",
            "update_strategy": "staged",
            "staged_batches": 3,
            "batch_delay_minutes": 0,
            "health_check_enabled": True,  # no checks given: the containers keep running
            "soak_seconds": 4,  # longer than a report interval: a crash is seen
            "max_retries": 0,
            "max_failure_rate": 0.3,
            "failure_rate_min_devices": 1,
            "update_timeout_minutes": 2,
            "pin_digest": False,
        }
        created = stack.api.post("/api/v1/image-policies", json=policy)
        assert created.status_code == 201, created.text
        started = time.monotonic()
        v2_id = stack.registry.push(REPO, "v2", healthy=True)
        rollout = stack.rollout_for("v2")
        assert rollout["triggered_by"] == "webhook:distribution", rollout
        assert rollout["batch_sizes"] == [1, 1, 1] and "@" not in rollout["new_image"]
        done = stack.wait_status(rollout["rollout_id"], {"completed", "failed", "paused"})
        assert done["status"] == "completed", stack.explain(done)
        rows = stack.device_rows(rollout["rollout_id"])
        assert rows["iotistic"]["batch_number"] == 1, rows
        assert {r["status"] for r in rows.values()} == {"completed"}, rows
        stack.wait_running(v2_id)
        stack.wait_answers("v2")
        assert stack.reported_image() == stack.image("v2")
        stack.timed("v2 by the registry's notification", started)

        # v3 pinned to its digest: served as repo@sha256:…, which Podman reports back as it is.
        pinned = stack.api.put(
            f"/api/v1/image-policies/{created.json()['id']}", json=policy | {"pin_digest": True}
        )
        assert pinned.status_code == 200, pinned.text
        started = time.monotonic()
        v3_id = stack.registry.push(REPO, "v3", healthy=True)
        v3_digest = stack.registry.manifest_digest(REPO, "v3")
        rollout = stack.rollout_for("v3")
        assert rollout["new_image"] == f"{stack.image('v3')}@{v3_digest}", rollout
        done = stack.wait_status(rollout["rollout_id"], {"completed", "failed", "paused"})
        assert done["status"] == "completed", stack.explain(done)
        rows = stack.device_rows(rollout["rollout_id"])
        assert {r["status"] for r in rows.values()} == {"completed"}, rows
        assert {r["current_image_tag"] for r in rows.values()} == {"v3"}, rows
        stack.wait_running(v3_id)
        stack.wait_answers("v3")
        tagless = f"{stack.registry.address}/{REPO}@{v3_digest}"
        assert stack.target_image() == f"{stack.image('v3')}@{v3_digest}"  # readable in the API
        assert stack.reported_image() == tagless  # what the engine reports
        [container] = stack.iotistic_containers()
        assert container["Image"] == tagless, container
        time.sleep(6)  # three of the agent's reconciliations: the container is left alone
        [still] = stack.iotistic_containers()
        assert (still["Id"], still["State"]) == (container["Id"], "running"), still
        stack.timed("v3 pinned", started)

        # v4 crashes: the iotistic device (batch 1) fails, runs v3 again; the rollout pauses.
        started = time.monotonic()
        stack.registry.push(REPO, "v4", healthy=True, crashes=True)
        rollout = stack.rollout_for("v4")
        paused = stack.wait_status(rollout["rollout_id"], {"paused", "failed", "completed"})
        assert paused["status"] == "paused" and paused["auto_paused"] is True, stack.explain(paused)

        def rolled_back() -> bool:
            return stack.device_rows(rollout["rollout_id"])["iotistic"]["status"] == "rolled_back"

        try:
            wait_until(rolled_back, "the iotistic device to be rolled back", 90)
        except AssertionError:
            raise AssertionError(
                f"{stack.logs()}\n--- its devices: {stack.device_rows(rollout['rollout_id'])}"
            ) from None
        rows = stack.device_rows(rollout["rollout_id"])
        # Docker says "exited", Podman 4.3 "stopped": both are the new image failing
        reason = rows["iotistic"]["error_message"] or ""
        assert reason in ("1001/web is exited", "1001/web is stopped"), (
            f"{rows['iotistic']}\n{stack.logs()}"
        )
        assert rows["zz-fleetwave-1"]["status"] == rows["zz-fleetwave-2"]["status"] == "pending"
        stack.wait_running(v3_id)  # podman ps: v3 again on the iotistic device, v3 elsewhere
        stack.wait_answers("v3")
        events = stack.api.get(f"/api/v1/rollouts/{rollout['rollout_id']}/events").json()
        types = {e["event_type"] for e in events["items"]}
        assert {"device_failed", "rollout_paused", "device_rolled_back"} <= types, types
        stack.timed("v4 crashes, rolled back to v3, paused", started)

    assert host_docker_socket() == host_socket  # /var/run/docker.sock: as it was
    with capsys.disabled():  # shown in CI's log, passed or not
        print(
            f"\niotistic agent {iotistic.version(iotistic.source())}: "
            f"{'from the cache' if built_agent.cached else 'built'} "
            f"in {built_agent.seconds:.1f} s ({built_agent.path}); "
            + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in stack.timings)
            + f"; {time.monotonic() - began:.1f} s in all"
        )
