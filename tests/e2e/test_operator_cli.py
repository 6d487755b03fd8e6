"""The operator CLI, run as a real ``fleetwave`` process against a real ``fleetwave serve``:
policies, devices, a manual trigger, reading rollouts, steering them, and ``rollouts watch``
ending with the exit code of how each rollout ended.

Devices are played by a thread speaking the device protocol over HTTP (poll, then report
pulling and running — or exited on a tag that crashes); batch delays are 0, or skipped with
``promote``, so nothing waits on a clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import FLEETWAVE, clean_env, fleetwave_server, free_port


@dataclass
class Server:
    url: str
    token: str
    data_dir: Path
    port: int

    def env(self, **extra: str) -> dict[str, str]:
        """The CLI's environment: the server named by FLEETWAVE_URL / FLEETWAVE_ADMIN_TOKEN."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWAVE_")}
        return env | {"FLEETWAVE_URL": self.url, "FLEETWAVE_ADMIN_TOKEN": self.token} | extra

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("operator")
    with fleetwave_server(home, FLEETWAVE_MONITOR_INTERVAL="0.1") as running:
        token = (running.data_dir / "admin-token").read_text().strip()
        yield Server(running.base, token, running.data_dir, int(running.base.rsplit(":", 1)[1]))


def wait_until(condition: Callable[[], Any], *, timeout: float = 20, what: str = "") -> Any:
    """Poll a condition (not a clock): the server reacts to reports within milliseconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def fleetwave(
    server: Server, *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLEETWAVE, *args],
        env=env or server.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=server.data_dir.parent,  # no ./.env of the working tree
    )


def ok(server: Server, *args: str) -> str:
    result = fleetwave(server, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(server: Server, *args: str) -> Any:
    return json.loads(ok(server, *args, "--json"))


# --- devices played over HTTP -----------------------------------------------------------------


@dataclass
class PlayedDevice:
    uuid: str
    key: str
    reported: str = ""


@dataclass
class PlayedFleet:
    """Agents in a thread: each polls its target and reports it running, or exited when its
    tag is one that crashes."""

    url: str
    crash_on: set[str] = field(default_factory=set)
    devices: list[PlayedDevice] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def add(self, uuid: str, key: str, image: str) -> None:
        device = PlayedDevice(uuid, key)
        with httpx.Client(base_url=self.url) as http:
            self.report(http, device, image, "running")
        self.devices.append(device)

    def run(self) -> None:
        with httpx.Client(base_url=self.url) as http:
            while not self.stop.is_set():
                for device in self.devices:
                    self.step(http, device)
                self.stop.wait(0.05)

    def step(self, http: httpx.Client, device: PlayedDevice) -> None:
        state = http.get(f"/api/v1/device/{device.uuid}/state", headers=self.headers(device))
        services = state.json()[device.uuid]["apps"]["1001"]["services"]
        image = services[0]["imageName"]
        if image != device.reported:
            self.report(http, device, image, "pulling")
            crashes = image.rpartition(":")[2] in self.crash_on
            self.report(http, device, image, "exited" if crashes else "running")

    def report(self, http: httpx.Client, device: PlayedDevice, image: str, status: str) -> None:
        service = {"serviceName": "app", "imageName": image, "status": status}
        body = {device.uuid: {"apps": {"1001": {"appId": 1001, "services": [service]}}}}
        answer = http.patch("/api/v1/device/state", json=body, headers=self.headers(device))
        assert answer.status_code == 200, answer.text
        device.reported = image

    @staticmethod
    def headers(device: PlayedDevice) -> dict[str, str]:
        return {"X-Device-API-Key": device.key}


@pytest.fixture
def fleet(server: Server) -> Iterator[PlayedFleet]:
    played = PlayedFleet(server.url)
    thread = threading.Thread(target=played.run, daemon=True)
    thread.start()
    yield played
    played.stop.set()
    thread.join(timeout=10)


def register_devices(server: Server, fleet: PlayedFleet, repository: str, count: int) -> list[str]:
    """``count`` devices running ``repository:v1``, registered with the CLI, played by ``fleet``."""
    name = repository.rpartition("/")[2]
    uuids = []
    for i in range(count):
        device = as_json(
            server, "devices", "register", f"{name} {i}", "--uuid", f"{name}-{i}",
            "--fleet", "e2e", "--tag", f"app={name}", "--image", f"{repository}:v1",
        )  # fmt: skip
        fleet.add(device["uuid"], device["api_key"], f"{repository}:v1")
        uuids.append(device["uuid"])
    return uuids


def create_policy(server: Server, repository: str, *flags: str) -> dict[str, Any]:
    base = ("--no-health-checks", "--set", "soak_seconds=0", "--set", "max_retries=0")
    policy: dict[str, Any] = as_json(server, "policies", "create", f"{repository}:*", *base, *flags)
    return policy


def trigger(server: Server, image: str, *flags: str) -> str:
    answer = as_json(server, "trigger", image, *flags)
    assert answer["outcome"] == "rollout_created", answer
    rollout_id: str = answer["rollout_id"]
    return rollout_id


def rollout(server: Server, rollout_id: str) -> dict[str, Any]:
    with server.admin() as admin:
        detail: dict[str, Any] = admin.get(f"/api/v1/rollouts/{rollout_id}").json()
        return detail


# --- policies -----------------------------------------------------------------------------------


def test_policies_are_created_shown_updated_listed_and_deleted(server: Server) -> None:
    flags = ("--strategy", "staged", "--batches", "3", "--batch-delay", "0")
    created = create_policy(server, "acme/crud", *flags, "--tag", "ring=canary", "--priority", "5")
    policy_id = str(created["id"])
    assert created["device_tags"] == {"ring": "canary"} and created["soak_seconds"] == 0

    shown = ok(server, "policies", "show", policy_id)
    assert "acme/crud:*" in shown and "ring=canary" in shown

    updated = as_json(server, "policies", "update", policy_id, "--priority", "7", "--disable")
    assert (updated["priority"], updated["enabled"]) == (7, False)
    assert (updated["staged_batches"], updated["device_tags"]) == (3, {"ring": "canary"})

    listed = ok(server, "policies", "list")
    row = next(line for line in listed.splitlines() if "acme/crud:*" in line)
    assert row.split()[0] == policy_id and row.split()[-2:] == ["no", "7"]

    assert ok(server, "policies", "delete", policy_id).strip() == f"policy {policy_id} deleted"
    gone = fleetwave(server, "policies", "show", policy_id)
    assert gone.returncode == 1
    assert gone.stderr == f"fleetwave: policy {policy_id} not found (HTTP 404)\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--max-failure-rate", "2"), "max_failure_rate: Input should be less than or equal to 1"),
        (("--set", "colour=blue"), "colour: Extra inputs are not permitted"),
        (("--strategy", "scheduled"), "a scheduled policy needs a maintenance window"),
    ],
)
def test_an_invalid_policy_is_refused_with_the_apis_message_and_exit_1(
    server: Server, flags: tuple[str, ...], message: str
) -> None:
    refused = fleetwave(server, "policies", "create", "acme/invalid:*", *flags)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.startswith("fleetwave: invalid ")
    assert message in refused.stderr and refused.stderr.rstrip().endswith("(HTTP 422)")
    assert refused.stderr.count("\n") == 1


def test_a_bad_command_line_value_is_a_usage_error_before_any_request(server: Server) -> None:
    result = fleetwave(server, "policies", "create", "acme/x:*", "--window", "tonight")
    assert result.returncode == 2
    assert "--window 'tonight': write HH:MM-HH:MM" in result.stderr


# --- devices ------------------------------------------------------------------------------------


def test_devices_are_registered_listed_and_shown(server: Server) -> None:
    registered = ok(server, "devices", "register", "pump one", "--uuid", "pump-one",
                    "--fleet", "north", "--tag", "site=lyon", "--ip", "10.0.0.7")  # fmt: skip
    assert "api key (shown once" in registered and "fwd_" in registered

    page = as_json(server, "devices", "list", "--fleet", "north", "--tag", "site=lyon")
    assert [d["uuid"] for d in page["items"]] == ["pump-one"]
    assert "pump-one" not in ok(server, "devices", "list", "--tag", "site=paris")

    shown = ok(server, "devices", "show", "pump-one")
    assert "site=lyon" in shown and "10.0.0.7" in shown
    missing = fleetwave(server, "devices", "show", "no-such-device")
    assert missing.returncode == 1 and "not found (HTTP 404)" in missing.stderr


def ship_logs(server: Server, uuid: str, key: str, lines: list[dict[str, Any]]) -> None:
    """Lines as the iotistic agent ships them: NDJSON with the device's key."""
    body = "".join(json.dumps(line) + "\n" for line in lines)
    headers = {"X-Device-API-Key": key, "Content-Type": "application/x-ndjson"}
    answer = httpx.post(f"{server.url}/api/v1/device/{uuid}/logs", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def as_at_a_terminal() -> None:
    """Ctrl-C as a terminal's command finds it. A pytest started in the background (``&``,
    ``nohup``) has SIGINT ignored, and so, inherited, would the follower: Python then never
    turns SIGINT into KeyboardInterrupt, as a background job should not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_devices_logs_are_printed_filtered_and_followed_until_ctrl_c(server: Server) -> None:
    device = as_json(server, "devices", "register", "logger", "--uuid", "logger-1")
    app = {"serviceName": "app", "source": {"type": "container", "name": "app"}}
    ship_logs(server, "logger-1", device["api_key"], [
        app | {"message": "listening on :8080", "timestamp": 1_767_225_600_000, "level": "info"},
        app | {"message": "\x1b[31mdb gone\x1b[0m", "timestamp": 1_767_225_601_000,
               "level": "error", "isStdErr": True},
        {"message": "container app restarted", "source": {"type": "system"}, "level": "warn"},
    ])  # fmt: skip

    printed = ok(server, "devices", "logs", "logger-1").splitlines()
    assert printed[0] == "2026-01-01 00:00:00.000  app          info   listening on :8080"
    assert printed[1].endswith("app          error  \\x1b[31mdb gone\\x1b[0m")
    assert printed[2].endswith("[system]     warn   container app restarted")
    assert ok(server, "devices", "logs", "logger-1", "--level", "WARNING").count("\n") == 2
    assert (
        ok(server, "devices", "logs", "logger-1", "--service", "app", "--tail", "1").count(
            "db gone"
        )
        == 1
    )
    assert (
        ok(server, "devices", "logs", "logger-1", "--since", "2026-01-01T00:00:01Z").count("\n")
        == 2
    )
    lines = [json.loads(line) for line in ok(server, "devices", "logs", "logger-1", "--json")
             .splitlines()]  # fmt: skip
    assert [line["level"] for line in lines] == ["info", "error", "warn"]
    missing = fleetwave(server, "devices", "logs", "nobody")
    assert missing.returncode == 1 and "device nobody not found (HTTP 404)" in missing.stderr
    bad = fleetwave(server, "devices", "logs", "logger-1", "--since", "lately")
    assert bad.returncode == 2 and "--since 'lately'" in bad.stderr

    follower = subprocess.Popen(
        [*FLEETWAVE, "devices", "logs", "logger-1", "--follow", "--tail", "1",
         "--interval", "0.1", "--level", "error"],
        env=server.env(PYTHONFAULTHANDLER="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=server.data_dir.parent, preexec_fn=as_at_a_terminal,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        assert "db gone" in follower.stdout.readline()
        ship_logs(server, "logger-1", device["api_key"], [
            app | {"message": "quiet", "level": "info"},
            app | {"message": "crashed: out of memory", "level": "error"},
        ])  # fmt: skip
        assert "crashed: out of memory" in follower.stdout.readline()
        follower.send_signal(signal.SIGINT)
        try:
            out, err = follower.communicate(timeout=15)
        except subprocess.TimeoutExpired:  # the stacks say where it waits
            follower.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            pytest.fail(f"the follower ignored Ctrl-C:\n{follower.communicate(timeout=15)[1]}")
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert out == "" and err == ""


# --- rollouts -----------------------------------------------------------------------------------


def test_a_triggered_rollout_is_read_and_watched_to_completion(
    server: Server, fleet: PlayedFleet
) -> None:
    create_policy(server, "acme/ok", "--batches", "2", "--batch-delay", "0")
    uuids = register_devices(server, fleet, "acme/ok", 3)
    rollout_id = trigger(server, "acme/ok:v2", "--tag", "app=ok", "--fleet", "e2e")

    watched = fleetwave(server, "rollouts", "watch", rollout_id, "--interval", "0.1")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "rollout_completed" in watched.stdout
    assert watched.stdout.rstrip().endswith(f"rollout {rollout_id} completed (exit 0)")

    listed = ok(server, "rollouts", "list", "--image", "acme/ok")
    assert rollout_id in listed and "v1 → v2" in listed and "completed" in listed
    shown = ok(server, "rollouts", "show", rollout_id)
    assert "batch 1 " in shown and "batch 2 " in shown and "completed 2" in shown
    detail = as_json(server, "rollouts", "show", rollout_id)
    assert (detail["status"], detail["batch_sizes"], detail["healthy_devices"]) == (
        "completed", [2, 1], 3,
    )  # fmt: skip

    devices = as_json(server, "rollouts", "devices", rollout_id, "--batch", "1")
    assert len(devices["items"]) == 2 and {d["status"] for d in devices["items"]} == {"completed"}
    table = ok(server, "rollouts", "devices", rollout_id)
    assert all(uuid in table for uuid in uuids) and "3 of 3 devices" in table

    events = as_json(server, "rollouts", "events", rollout_id)
    kinds = [e["event_type"] for e in events["items"]]
    assert kinds[0] == "rollout_created" and kinds[-1] == "rollout_completed"
    later = as_json(server, "rollouts", "events", rollout_id, "--after", str(events["next_cursor"]))
    assert later["items"] == []
    assert "rollout_completed" in ok(server, "rollouts", "events", rollout_id, "--type",
                                     "rollout_completed")  # fmt: skip

    back = as_json(server, "rollouts", "rollback-device", rollout_id, uuids[0])
    assert back["rollout_id"] == rollout_id
    wait_until(
        lambda: rollout(server, rollout_id)["rolled_back_devices"] == 1,
        what="the device to report its old image",
    )


def test_rings_are_managed_and_a_dry_run_prints_the_ringed_batches_starting_nothing(
    server: Server, fleet: PlayedFleet
) -> None:
    uuids = register_devices(server, fleet, "acme/ringed", 3)
    ok(server, "rings", "create", "ringed-canary", "--device", uuids[0])
    ok(server, "rings", "create", "ringed-rest", "--tag", "app=ringed")
    ok(server, "rings", "create", "ringed-ghost", "--tag", "app=nobody")
    create_policy(
        server, "acme/ringed", "--set", 'rings=["ringed-canary","ringed-ghost","ringed-rest"]'
    )
    listed = ok(server, "rings", "list")
    assert "ringed-canary" in listed and "ringed-rest" in listed

    dry = ok(server, "trigger", "acme/ringed:v2", "--dry-run")

    assert "dry run: would roll acme/ringed:v2 out to 3 devices in 2 batches" in dry
    assert "ringed-canary" in dry and uuids[0] in dry and "ringed-rest" in dry
    assert "warning: ring 'ringed-ghost' selects none" in dry
    preview = as_json(server, "trigger", "acme/ringed:v2", "--dry-run")
    assert [(b["ring"], b["devices"]) for b in preview["batches"]] == [
        ("ringed-canary", 1), ("ringed-rest", 2),
    ]  # fmt: skip
    assert as_json(server, "rollouts", "list", "--image", "acme/ringed")["total"] == 0
    refused = fleetwave(server, "rings", "delete", "ringed-rest")
    assert refused.returncode == 1 and "used by policies" in refused.stderr


def test_an_older_version_is_refused_without_force_and_rolled_back_to_with_it(
    server: Server, fleet: PlayedFleet
) -> None:
    create_policy(server, "acme/back", "--batch-delay", "0")
    uuids = register_devices(server, fleet, "acme/back", 2)
    newer = trigger(server, "acme/back:v3")
    wait_until(lambda: rollout(server, newer)["status"] == "completed", what="v3 everywhere")

    refused = fleetwave(server, "trigger", "acme/back:v2")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        "fleetwave: no device takes acme/back:v2: runs v3, which is newer than v2 (2 devices); "
        'send "force": true to roll back to acme/back:v2 (HTTP 409)\n'
    )

    rollback = trigger(server, "acme/back:v2", "--force")
    assert rollout(server, rollback)["total_devices"] == len(uuids)
    wait_until(lambda: rollout(server, rollback)["status"] == "completed", what="back on v2")
    assert {d.reported for d in fleet.devices} == {"acme/back:v2"}


def test_pause_watch_resume_promote_and_watch_to_the_end(
    server: Server, fleet: PlayedFleet
) -> None:
    create_policy(server, "acme/slow", "--batches", "2", "--batch-delay", "30")
    register_devices(server, fleet, "acme/slow", 2)
    rollout_id = trigger(server, "acme/slow:v2")
    wait_until(
        lambda: "delay" in (rollout(server, rollout_id)["waiting_for"] or ""),
        what="the first batch to finish",
    )

    paused = ok(server, "rollouts", "pause", rollout_id, "--note", "checking a report")
    assert f"pause: rollout {rollout_id} is now paused" in paused
    watched = fleetwave(server, "rollouts", "watch", rollout_id)
    assert watched.returncode == 13
    assert f"rollout {rollout_id} is paused (exit 13)" in watched.stdout
    again = fleetwave(server, "rollouts", "pause", rollout_id)
    assert again.returncode == 1 and "(HTTP 409)" in again.stderr

    assert as_json(server, "rollouts", "resume", rollout_id)["status"] == "in_progress"
    timed_out = fleetwave(server, "rollouts", "watch", rollout_id, "--timeout", "0.3",
                          "--interval", "0.1")  # fmt: skip
    assert timed_out.returncode == 14  # still waiting for its 30-minute delay
    promoted = ok(server, "rollouts", "promote", rollout_id)
    assert "promote: rollout" in promoted

    watched = fleetwave(server, "rollouts", "watch", rollout_id, "--interval", "0.1", "--json")
    assert watched.returncode == 0, watched.stderr
    lines = [json.loads(line) for line in watched.stdout.splitlines()]
    kinds = [line.get("event_type") for line in lines[:-1]]
    assert {"rollout_paused", "rollout_resumed", "rollout_promoted"} <= set(kinds)
    assert kinds[-1] == "rollout_completed"
    assert lines[-1]["status"] == "completed" and lines[-1]["rollout_id"] == rollout_id


def test_trigger_watch_keeps_watching_through_a_pause_until_its_timeout(
    server: Server, fleet: PlayedFleet
) -> None:
    create_policy(server, "acme/hold", "--batches", "2", "--batch-delay", "30")
    register_devices(server, fleet, "acme/hold", 2)
    watching = subprocess.Popen(
        [*FLEETWAVE, "trigger", "acme/hold:v2", "--watch", "--through-pause",
         "--timeout", "4", "--interval", "0.1"],
        env=server.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=server.data_dir.parent,
    )  # fmt: skip
    with server.admin() as admin:
        rollout_id = wait_until(
            lambda: next(iter(admin.get("/api/v1/rollouts", params={"image": "acme/hold"})
                              .json()["items"]), {}).get("rollout_id"),
            what="the triggered rollout",
        )  # fmt: skip
        wait_until(
            lambda: "delay" in (rollout(server, rollout_id)["waiting_for"] or ""),
            what="the first batch to finish",
        )
        assert admin.post(f"/api/v1/rollouts/{rollout_id}/pause").status_code == 200
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 14, out + err  # not 13: it watched on through the pause
    assert f"rollout {rollout_id} is not finished yet (timeout) (exit 14)" in out


def test_trigger_refuses_watch_flags_without_watch(server: Server) -> None:
    result = fleetwave(server, "trigger", "acme/none:v2", "--through-pause")
    assert result.returncode == 2
    assert "--timeout and --through-pause need --watch" in result.stderr


def test_watch_exits_10_on_a_failed_rollout_and_12_once_it_is_rolled_back(
    server: Server, fleet: PlayedFleet
) -> None:
    fleet.crash_on.add("v2-bad")
    create_policy(server, "acme/bad", "--strategy", "auto")
    register_devices(server, fleet, "acme/bad", 2)
    rollout_id = trigger(server, "acme/bad:v2-bad")

    watched = fleetwave(server, "rollouts", "watch", rollout_id, "--interval", "0.1")
    assert watched.returncode == 10, watched.stdout + watched.stderr
    assert "device_failed" in watched.stdout and "rollout_failed" in watched.stdout
    assert f"rollout {rollout_id} failed (exit 10)" in watched.stdout

    ok(server, "rollouts", "rollback-all", rollout_id, "--note", "bad release")
    assert fleetwave(server, "rollouts", "watch", rollout_id).returncode == 12


# --- where the server is, and who may speak to it -----------------------------------------------


def test_without_flags_or_environment_the_cli_uses_the_local_data_directory(
    server: Server,
) -> None:
    env = clean_env(server.data_dir, FLEETWAVE_PORT=str(server.port))
    result = fleetwave(server, "policies", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_a_wrong_token_exits_4_and_says_so(server: Server) -> None:
    result = fleetwave(server, "rollouts", "list", "--token", "fwa_wrong")
    assert result.returncode == 4
    assert f"the server at {server.url} refused the token" in result.stderr


def test_no_token_anywhere_exits_4_without_making_one(server: Server, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "empty", FLEETWAVE_URL=server.url)
    result = fleetwave(server, "rollouts", "list", env=env)
    assert result.returncode == 4
    assert "admin-token does not exist; pass --token or set FLEETWAVE_ADMIN_TOKEN" in result.stderr
    assert not (tmp_path / "empty" / "admin-token").exists()


def test_no_server_exits_3_naming_the_url(server: Server) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = fleetwave(server, "rollouts", "watch", "r-1", "--url", nowhere)
    assert result.returncode == 3
    assert f"cannot reach fleetwave at {nowhere} (connection refused)" in result.stderr
