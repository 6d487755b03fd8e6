"""A push to a real registry changes what really runs on the devices.

Real parts only: Debian's ``docker-registry`` notifies fleetwave itself; fleetwave runs as
``fleetwave serve``; each device is a ``fleetwave agent --runtime docker`` process driving
Podman's Docker-compatible socket; images are made here from a static busybox. ``v1`` and ``v2``
serve ``/health``; ``v2-bad`` does not. Each device's service listens on the device's own
loopback address (127.0.0.N), so several devices share one host network.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import FLEETWAVE, clean_env
from tests.e2e.realparts import (
    Podman,
    Registry,
    fleetwave_registry_podman,
    require,
    stop_agents,
    wait_until,
)

TOKEN = "e2e-admin-token-0123456789abcdef"
SECRET = "e2e-registry-secret-0123456789"
HEALTH = [
    {
        "type": "http",
        "name": "health-endpoint",
        "url": "http://{device_ip}:8080/health",
        "timeout_seconds": 2,
        "retries": 2,
        "interval_seconds": 1,
    }
]


@dataclass
class Stack:
    api: httpx.Client
    registry: Registry
    podman: Podman
    server_url: str
    workdir: Path
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)

    def device(
        self, uuid: str, image: str, address: str, entrypoint: list[str] | None = None
    ) -> None:
        """Register a device running ``image`` and start its agent."""
        config: dict[str, Any] = {
            "image": image,
            "environment": {"LISTEN": f"{address}:8080"},
            "networkMode": "host",
            "restart": "always",
        }
        if entrypoint:
            config["entrypoint"] = entrypoint
        service = {"serviceId": 1, "serviceName": "web", "imageName": image, "config": config}
        answer = self.api.post(
            "/api/v1/devices",
            json={
                "uuid": uuid,
                "device_name": uuid,
                "apps": {"1001": {"appId": 1001, "appName": "web", "services": [service]}},
            },
        )
        assert answer.status_code == 201, answer.text
        self.keys[uuid], self.addresses[uuid] = answer.json()["api_key"], address
        self.start_agent(uuid)

    def start_agent(self, uuid: str) -> Path:
        """Start ``uuid``'s agent process; returns its log file."""
        started = len(list(self.workdir.glob(f"agent-{uuid}-*.log")))
        log = self.workdir / f"agent-{uuid}-{started}.log"
        with log.open("wb") as out:
            self.agents[uuid] = subprocess.Popen(
                [
                    *FLEETWAVE,
                    "agent",
                    "--server",
                    self.server_url,
                    "--uuid",
                    uuid,
                    "--runtime",
                    "docker",
                    "--docker-url",
                    self.podman.socket_url,
                    "--poll-interval",
                    "1",
                    "--report-interval",
                    "1",
                    "--device-address",
                    self.addresses[uuid],
                    "--log-interval",
                    "1",
                ],
                env=clean_env(self.workdir / "agent") | {"FLEETWAVE_DEVICE_KEY": self.keys[uuid]},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return log

    def policy(self, repository: str) -> None:
        self.settled(repository)
        answer = self.api.post(
            "/api/v1/image-policies",
            json={
                "image_pattern": f"{self.registry.address}/{repository}:*",
                "update_strategy": "staged",
                "staged_batches": 3,
                "batch_delay_minutes": 0,
                "health_check_enabled": True,
                "health_check_config": HEALTH,
                "soak_seconds": 2,
                "max_retries": 0,
                "max_failure_rate": 0.3,
                "failure_rate_min_devices": 1,
                "update_timeout_minutes": 2,
            },
        )
        assert answer.status_code == 201, answer.text

    def settled(self, repository: str, timeout: float = 30) -> None:
        """Wait until the registry's notifications of what was pushed to ``repository`` have
        reached the server and been settled. Otherwise a policy created next can turn that
        first push into a rollout (a digest pin) that races the devices the test registers:
        on a slower machine it re-pinned some devices' v1 containers mid-test."""
        image = f"{self.registry.address}/{repository}"

        def done() -> bool:
            found = self.api.get("/api/v1/webhooks/deliveries").json()
            mine = [d for d in found if d["image_name"] == image]
            return bool(mine) and all(d["outcome"] != "pending" for d in mine)

        wait_until(done, f"the registry's notifications of {image} settled", timeout)

    def rollout_for(self, image: str, timeout: float = 30) -> dict[str, Any]:
        """The rollout the registry's own notification started for ``image``."""
        found: list[dict[str, Any]] = []

        def started() -> bool:
            rollouts = self.api.get("/api/v1/rollouts").json()["items"]
            found[:] = [r for r in rollouts if f"{r['image_name']}:{r['new_tag']}" == image]
            return bool(found)

        wait_until(started, f"a rollout of {image}", timeout)
        return found[0]

    def wait_status(
        self, rollout_id: str, statuses: set[str], timeout: float = 120
    ) -> dict[str, Any]:
        detail: dict[str, Any] = {}

        def reached() -> bool:
            detail.update(self.api.get(f"/api/v1/rollouts/{rollout_id}").json())
            return detail["status"] in statuses

        try:
            wait_until(reached, f"rollout {rollout_id} to reach {statuses}", timeout)
        except AssertionError:
            raise AssertionError(f"{detail}\n{self.logs()}") from None
        return detail

    def devices(self, rollout_id: str) -> dict[str, dict[str, Any]]:
        rows = self.api.get(f"/api/v1/rollouts/{rollout_id}/devices").json()["items"]
        return {row["device_uuid"]: row for row in rows}

    def wait_rolled_back(self, rollout_id: str) -> dict[str, dict[str, Any]]:
        """The device rows once batch 1's device has run its old image again."""
        rows: dict[str, dict[str, Any]] = {}

        def rolled_back() -> bool:
            rows.update(self.devices(rollout_id))
            return any(
                r["batch_number"] == 1 and r["status"] == "rolled_back" for r in rows.values()
            )

        try:
            wait_until(rolled_back, "the failed device to be rolled back", 60)
        except AssertionError:
            raise AssertionError(f"{rows}\n{self.logs()}") from None
        return rows

    def logs(self) -> str:
        parts = []
        for path in sorted(self.workdir.glob("*.log")):
            lines = [
                line
                for line in path.read_text(errors="replace").splitlines()
                if '" 304 ' not in line and "GET /api/v1/rollouts" not in line
            ]
            parts.append(f"--- {path.name}\n" + "\n".join(lines[-40:]))
        return "\n".join(parts)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require("podman", "docker-registry")
    workdir = tmp_path_factory.mktemp("real-parts")
    with fleetwave_registry_podman(workdir, TOKEN, SECRET) as parts:
        stack = Stack(parts.api, parts.registry, parts.podman, parts.server_url, workdir)
        try:
            yield stack
        finally:
            stop_agents(stack.agents)


def wait_running(stack: Stack, uuids: list[str], image_id: str, timeout: float = 60) -> None:
    try:
        wait_until(
            lambda: all(stack.podman.running_images(u) == [image_id] for u in uuids),
            f"image {image_id[:12]} running on {uuids}",
            timeout,
        )
    except AssertionError:
        seen = {u: stack.podman.running_images(u) for u in uuids}
        raise AssertionError(f"podman ps: {seen}\n{stack.logs()}") from None


def test_a_registry_push_rolls_out_through_podman_and_a_bad_image_is_rolled_back(
    stack: Stack,
) -> None:
    reg = stack.registry.address
    v1, v2, bad = (f"{reg}/e2e/app:{tag}" for tag in ("v1", "v2", "v2-bad"))
    v1_id = stack.registry.push("e2e/app", "v1", healthy=True)
    stack.policy("e2e/app")
    uuids = [f"e2e-app-{i}" for i in range(3)]
    for i, uuid in enumerate(uuids):
        stack.device(uuid, v1, f"127.0.0.{i + 2}")
    wait_running(stack, uuids, v1_id)  # first contact: each agent pulls v1 and starts it
    assert httpx.get("http://127.0.0.2:8080/health", timeout=2).text == "ok\n"

    started = time.monotonic()
    v2_id = stack.registry.push("e2e/app", "v2", healthy=True)
    rollout = stack.rollout_for(v2)
    assert rollout["triggered_by"] == "webhook:distribution", rollout
    assert rollout["batch_sizes"] == [1, 1, 1]
    done = stack.wait_status(rollout["rollout_id"], {"completed", "failed", "paused"})
    assert done["status"] == "completed", done
    assert {r["status"] for r in stack.devices(rollout["rollout_id"]).values()} == {"completed"}
    wait_running(stack, uuids, v2_id)  # podman ps: v2 everywhere
    print(
        f"v1 → v2 on 3 devices through the registry and podman: {time.monotonic() - started:.1f} s"
    )

    # An agent killed outright, then started again, finds its container by its labels and
    # leaves it running: the same container, reported as such.
    before = stack.podman.container_ids(uuids[0])
    stack.agents[uuids[0]].kill()
    stack.agents[uuids[0]].wait(timeout=10)
    log = stack.start_agent(uuids[0])
    wait_until(lambda: "PATCH" in log.read_text(), "the restarted agent's first report", 30)
    time.sleep(2)  # two more polls at the agent's one-second interval
    assert stack.podman.container_ids(uuids[0]) == before
    current = stack.api.get(f"/api/v1/devices/{uuids[0]}/current-state").json()
    assert current["apps"]["1001"]["services"][0]["containerId"] == before[0]

    stack.registry.push("e2e/app", "v2-bad", healthy=False)
    bad_rollout = stack.rollout_for(bad)
    paused = stack.wait_status(bad_rollout["rollout_id"], {"paused", "failed", "completed"})
    assert paused["status"] == "paused", paused
    rows = stack.wait_rolled_back(bad_rollout["rollout_id"])
    [first] = [uuid for uuid, row in rows.items() if row["batch_number"] == 1]
    assert rows[first]["status"] == "rolled_back", rows[first]
    assert {rows[u]["status"] for u in uuids if u != first} == {"pending"}
    wait_running(stack, uuids, v2_id)  # the failed device runs its own previous image again


def test_a_bad_image_on_a_fresh_fleet_is_rolled_back_to_v1_and_the_rollout_pauses(
    stack: Stack,
) -> None:
    reg = stack.registry.address
    v1, bad = f"{reg}/e2e/sensor:v1", f"{reg}/e2e/sensor:v2-bad"
    v1_id = stack.registry.push("e2e/sensor", "v1", healthy=True)
    stack.policy("e2e/sensor")
    uuids = [f"e2e-sensor-{i}" for i in range(3)]
    for i, uuid in enumerate(uuids):
        stack.device(uuid, v1, f"127.0.1.{i + 2}")
    wait_running(stack, uuids, v1_id)

    stack.registry.push("e2e/sensor", "v2-bad", healthy=False)
    rollout = stack.rollout_for(bad)
    paused = stack.wait_status(rollout["rollout_id"], {"paused", "failed", "completed"})
    assert paused["status"] == "paused" and paused["auto_paused"] is True, paused
    rows = stack.wait_rolled_back(rollout["rollout_id"])
    [first] = [uuid for uuid, row in rows.items() if row["batch_number"] == 1]
    assert rows[first]["status"] == "rolled_back"
    assert rows[first]["health_check_passed"] is False, rows[first]
    wait_running(stack, uuids, v1_id)  # podman ps: v1 again on the failed device, v1 elsewhere
    events = stack.api.get(f"/api/v1/rollouts/{rollout['rollout_id']}/events").json()["items"]
    types = [e["event_type"] for e in events]
    assert {"health_check_failed", "rollout_paused", "device_rolled_back"} <= set(types), types
    detail = stack.api.get(f"/api/v1/rollouts/{rollout['rollout_id']}").json()
    assert detail["status"] == "paused" and detail["rolled_back_devices"] == 1, detail


def test_a_tag_missing_from_the_registry_fails_its_pull_and_the_old_container_never_stops(
    stack: Stack,
) -> None:
    """Download-then-kill on real parts: the pull fails, so the old container is never touched."""
    reg = stack.registry.address
    v1 = f"{reg}/e2e/gauge:v1"
    v1_id = stack.registry.push("e2e/gauge", "v1", healthy=True)
    stack.policy("e2e/gauge")
    uuids = [f"e2e-gauge-{i}" for i in range(3)]
    for i, uuid in enumerate(uuids):
        stack.device(uuid, v1, f"127.0.2.{i + 2}")
    wait_running(stack, uuids, v1_id)
    before = {uuid: stack.podman.container_ids(uuid) for uuid in uuids}

    answer = stack.api.post("/api/v1/images/trigger-update", json={"image": f"{reg}/e2e/gauge:v9"})
    assert answer.status_code == 200, answer.text
    rollout_id = answer.json()["rollout_id"]
    paused = stack.wait_status(rollout_id, {"paused", "failed", "completed"})
    assert paused["status"] == "paused", paused
    rows = stack.wait_rolled_back(rollout_id)
    [first] = [uuid for uuid, row in rows.items() if row["batch_number"] == 1]
    assert "pull" in (rows[first]["error_message"] or ""), rows[first]
    assert {uuid: stack.podman.container_ids(uuid) for uuid in uuids} == before
    wait_running(stack, uuids, v1_id)


def test_an_agent_ships_its_containers_output_read_from_podman(stack: Stack) -> None:
    """What the container writes, stdout and stderr, reaches the server's log API."""
    reg = stack.registry.address
    v1 = f"{reg}/e2e/talker:v1"
    v1_id = stack.registry.push("e2e/talker", "v1", healthy=True)
    talk = (
        'echo "talker up on $LISTEN"; echo "[WARN] no config, using defaults" >&2; '
        'trap "exit 0" TERM; /bin/busybox httpd -f -p "$LISTEN" -h /www & wait'
    )
    stack.device("e2e-talker-0", v1, "127.0.3.2", ["/bin/busybox", "sh", "-c", talk])
    wait_running(stack, ["e2e-talker-0"], v1_id)
    lines: list[dict[str, Any]] = []

    def shipped() -> bool:
        lines[:] = stack.api.get("/api/v1/devices/e2e-talker-0/logs").json()["items"]
        return len(lines) >= 2

    try:
        wait_until(shipped, "the container's two lines in the log API", 30)
    except AssertionError:
        raise AssertionError(f"{lines}\n{stack.logs()}") from None
    said = {line["message"]: line for line in lines}
    up, warning = said["talker up on 127.0.3.2:8080"], said["[WARN] no config, using defaults"]
    assert (up["service"], up["stream"], up["level"]) == ("web", "stdout", "info")
    assert (warning["stream"], warning["level"]) == ("stderr", "warn")
    assert len(lines) == 2, lines  # read every second, each line sent once
