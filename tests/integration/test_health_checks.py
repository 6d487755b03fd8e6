"""Each kind of health check against real things on loopback: an HTTP server, a TCP listener,
a port with nothing behind it, a server that never answers, scripts run as custom checks; the
prober's bound on concurrency measured where it matters (in the server); and the checks a
rollout runs, through the API, on both databases."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.domain.health import CheckSpec, parse_checks
from fleetwave.health.custom import CustomChecks
from fleetwave.health.probes import Probe, Prober, run_check
from tests.integration.engine import ScriptedDevice, device_rows, rollout, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.health_helpers import (
    HttpServer,
    Reply,
    Request,
    TcpListener,
    free_port,
    in_turn,
    never,
)
from tests.integration.pipeline import docker_hub_push, policy

OLD, NEW = "iotistic/myapp:v2.0.0", "iotistic/myapp:v2.0.1"


def http_check(url: str, **fields: Any) -> CheckSpec:
    [check] = parse_checks([{"type": "http", "url": url, "timeout_seconds": 2} | fields])
    return check


def tcp_check(port: int, host: str = "127.0.0.1", **fields: Any) -> CheckSpec:
    [check] = parse_checks(
        [{"type": "tcp", "host": host, "port": port, "timeout_seconds": 2} | fields]
    )
    return check


# --- http -----------------------------------------------------------------------------------


async def test_http_check_passes_on_200_then_fails_on_500() -> None:
    answers = in_turn(Reply(200, "fine"), Reply(500, "database down"))
    async with HttpServer(answers) as server:
        check = http_check(server.url("/health"))
        assert await run_check(check) == (True, "HTTP 200")
        passed, detail = await run_check(check)
        assert not passed and "500" in detail and detail == "HTTP 500, expected 200"
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/health")] * 2


async def test_http_check_expects_the_status_it_is_told() -> None:
    async with HttpServer(lambda request: Reply(204, "")) as server:
        assert (await run_check(http_check(server.url(), expected_status=204)))[0]
        passed, detail = await run_check(http_check(server.url()))
        assert not passed and detail == "HTTP 204, expected 200"


async def test_http_check_body_contains() -> None:
    async with HttpServer(lambda request: Reply(200, '{"status": "ready"}')) as server:
        ready = http_check(server.url(), body_contains='"ready"')
        assert await run_check(ready) == (True, "HTTP 200")
        passed, detail = await run_check(http_check(server.url(), body_contains="healthy"))
        assert not passed and detail == "HTTP 200 without 'healthy' in the body"


async def test_http_check_shares_a_client_when_given_one() -> None:
    async with HttpServer() as server, httpx.AsyncClient() as client:
        check = http_check(server.url())
        results = [await run_check(check, client) for _ in range(3)]
    assert results == [(True, "HTTP 200")] * 3 and len(server.requests) == 3


async def test_http_check_against_nothing_listening_fails() -> None:
    passed, detail = await run_check(http_check(f"http://127.0.0.1:{free_port()}/health"))
    assert not passed and detail.startswith("ConnectError")


async def test_http_check_that_gets_no_answer_fails_within_its_timeout() -> None:
    async with HttpServer(never) as server:
        check = http_check(server.url(), timeout_seconds=0.5)
        started = time.monotonic()
        passed, detail = await run_check(check)
        elapsed = time.monotonic() - started
        assert len(server.requests) == 1  # it was reached, and kept silent
    assert not passed and ("0.5 s" in detail or "Timeout" in detail), detail
    assert 0.4 <= elapsed < 1.5


async def test_device_ip_is_filled_in_for_a_server_side_probe() -> None:
    async with HttpServer(hosts=["127.0.0.2"]) as server:
        [check] = parse_checks(
            [
                {
                    "type": "http",
                    "url": f"http://{{device_ip}}:{server.port}/health",
                    "run_on": "server",
                }
            ]
        )
        assert await run_check(check.with_device("127.0.0.2")) == (True, "HTTP 200")
    assert server.requests[0].host == "127.0.0.2"


# --- tcp ------------------------------------------------------------------------------------


async def test_tcp_check_passes_against_a_listener_that_accepts_and_closes() -> None:
    async with TcpListener() as listener:
        passed, detail = await run_check(tcp_check(listener.port))
        await asyncio.sleep(0.05)
    assert passed and detail == f"connected to 127.0.0.1:{listener.port}"
    assert listener.accepted == 1


async def test_tcp_check_fails_when_nothing_listens() -> None:
    passed, detail = await run_check(tcp_check(free_port()))
    assert not passed and "ConnectionRefusedError" in detail


async def test_checks_the_server_does_not_run_are_not_passed() -> None:
    [check] = parse_checks([{"type": "custom", "command": ["/bin/true"]}])
    assert await run_check(check) == (False, "a custom check is not run here")


# --- the prober -----------------------------------------------------------------------------


async def test_prober_runs_500_probes_never_more_than_10_at_once() -> None:
    async with HttpServer(delay=0.03) as server:
        check = http_check(server.url("/health"))
        probes = [Probe(f"dev-{i:03}", check) for i in range(500)]
        clock = ManualClock()
        results = await Prober(clock, concurrency=10).run(probes)
    assert len(server.requests) == 500
    assert server.max_in_flight == 10  # bounded, and the bound is used
    assert [uuid for uuid, _ in results] == [p.device_uuid for p in probes]
    assert all(r.passed and r.check == "http-1" and r.at == clock.now() for _, r in results)


async def test_prober_keeps_each_probes_own_result() -> None:
    def by_path(request: Request) -> Reply:
        return Reply(500 if request.path == "/bad" else 200)

    async with HttpServer(by_path) as server:
        good, bad = http_check(server.url("/good")), http_check(server.url("/bad"))
        results = await Prober(ManualClock(), concurrency=2).run(
            [Probe("a", good), Probe("b", bad), Probe("c", good)]
        )
    assert [(uuid, r.passed, r.detail) for uuid, r in results] == [
        ("a", True, "HTTP 200"),
        ("b", False, "HTTP 500, expected 200"),
        ("c", True, "HTTP 200"),
    ]
    assert await Prober(ManualClock()).run([]) == []


# --- custom checks --------------------------------------------------------------------------


def script(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


async def test_custom_check_exit_0_passes(tmp_path: Path) -> None:
    ok = script(tmp_path / "checks", "ok.sh", "echo all good")
    assert await CustomChecks(tmp_path / "checks").run([str(ok)], 5) == (True, "all good")
    quiet = script(tmp_path / "checks", "quiet.sh", "exit 0")
    assert await CustomChecks(tmp_path / "checks").run([str(quiet)], 5) == (True, "exit 0")


async def test_custom_check_exit_1_fails_with_its_output(tmp_path: Path) -> None:
    bad = script(tmp_path / "checks", "bad.sh", "echo checking\necho 'db is down' >&2\nexit 1")
    passed, detail = await CustomChecks(tmp_path / "checks").run([str(bad)], 5)
    assert not passed and detail == "exit 1: checking\ndb is down"


async def test_custom_check_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    hangs = script(tmp_path / "checks", "hangs.sh", f"sleep 30 &\necho $! > {pid_file}\nwait")
    started = time.monotonic()
    passed, detail = await CustomChecks(tmp_path / "checks").run([str(hangs)], 0.5)
    elapsed = time.monotonic() - started
    assert not passed and detail == "still running after 0.5 s: killed"
    assert elapsed < 3
    # what it started was killed too (its process group), not left sleeping
    sleeper = int(pid_file.read_text())
    for _ in range(50):
        if not _alive(sleeper):
            break
        await asyncio.sleep(0.05)
    assert not _alive(sleeper)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie is dead, only not yet reaped


async def test_custom_checks_are_refused_unless_allowed(tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    ok = script(tmp_path / "checks", "ok.sh", f"touch {canary}")
    passed, detail = await CustomChecks(None).run([str(ok)], 5)
    assert not passed and "not allowed" in detail
    assert not canary.exists()


async def test_a_program_outside_the_allowed_directory_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    outside = script(tmp_path / "elsewhere", "evil.sh", f"touch {canary}")
    (tmp_path / "checks").mkdir()
    checks = CustomChecks(tmp_path / "checks")
    passed, detail = await checks.run([str(outside)], 5)
    assert not passed and "outside the allowed directory" in detail
    dotted = str(tmp_path / "checks" / ".." / "elsewhere" / "evil.sh")
    passed, detail = await checks.run([dotted], 5)
    assert not passed and "outside the allowed directory" in detail
    assert not canary.exists()


async def test_a_symlink_escaping_the_allowed_directory_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    outside = script(tmp_path / "elsewhere", "evil.sh", f"touch {canary}")
    (tmp_path / "checks").mkdir()
    link = tmp_path / "checks" / "looks-fine.sh"
    link.symlink_to(outside)
    passed, detail = await CustomChecks(tmp_path / "checks").run([str(link)], 5)
    assert not passed and "outside the allowed directory" in detail
    assert not canary.exists()


async def test_a_symlink_inside_the_allowed_directory_runs(tmp_path: Path) -> None:
    real = script(tmp_path / "checks" / "lib", "real.sh", "echo real")
    link = tmp_path / "checks" / "alias.sh"
    link.symlink_to(real)
    assert await CustomChecks(tmp_path / "checks").run([str(link)], 5) == (True, "real")


async def test_relative_missing_and_non_executable_programs_are_refused(tmp_path: Path) -> None:
    checks = CustomChecks(tmp_path / "checks")
    script(tmp_path / "checks", "ok.sh", "exit 0")
    plain = tmp_path / "checks" / "plain.sh"
    plain.write_text("#!/bin/sh\nexit 0\n")
    plain.chmod(0o644)
    cases = {
        "checks/ok.sh": "absolute path",
        str(tmp_path / "checks" / "missing.sh"): "not an executable file",
        str(plain): "not an executable file",
        str(tmp_path / "checks"): "not an executable file",
    }
    for program, fragment in cases.items():
        passed, detail = await checks.run([program], 5)
        assert not passed and fragment in detail, (program, detail)
    assert await checks.run([], 5) == (False, "no command")


async def test_arguments_reach_the_program_literally_without_a_shell(tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    echo = script(tmp_path / "checks", "args.sh", "printf '%s\\n' \"$@\"")
    arguments = [
        f"x; rm -rf {tmp_path}; touch {canary}",
        f"$(touch {canary})",
        f"`touch {canary}`",
        "a b  c",
        "*",
        "| cat /etc/passwd",
    ]
    passed, detail = await CustomChecks(tmp_path / "checks").run([str(echo), *arguments], 5)
    assert passed, detail
    assert detail.split("\n") == arguments
    assert not canary.exists() and echo.exists()


async def test_a_custom_check_sees_no_stdin(tmp_path: Path) -> None:
    reads = script(tmp_path / "checks", "reads.sh", "cat; echo done")
    started = time.monotonic()
    assert await CustomChecks(tmp_path / "checks").run([str(reads)], 5) == (True, "done")
    assert time.monotonic() - started < 3


def test_allowed_dir_is_resolved(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert CustomChecks(tmp_path / "link").allowed_dir == real.resolve()
    ok = script(real, "ok.sh", "exit 0")
    assert CustomChecks(tmp_path / "link").refusal([str(ok)]) is None
    assert os.access(ok, os.X_OK)


# --- through the API, on both databases -----------------------------------------------------


async def one_device(
    client: httpx.AsyncClient, uuid: str = "dev-00", ip: str | None = None
) -> ScriptedDevice:
    fields = {"ip_address": ip} if ip else {}
    device = await register_device(client, uuid=uuid, apps=target_apps(OLD), **fields)
    scripted = ScriptedDevice(client, device)
    await scripted.report(OLD)
    return scripted


async def test_a_container_that_exits_on_the_new_image_fails_the_device(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client, update_strategy="auto", soak_seconds=600, max_retries=0, max_failure_rate=1
    )
    device = await one_device(client)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    assert await device.apply_target() == NEW
    assert (await device_rows(client, rid))[device.uuid]["status"] == "health_checking"
    clock.advance(timedelta(seconds=30))
    await tick(container)  # the default check: still within the 600 s soak
    assert (await device_rows(client, rid))[device.uuid]["status"] == "health_checking"

    await device.report(NEW, "exited", error="exit code 137")
    row = (await device_rows(client, rid))[device.uuid]
    assert row["status"] == "failed"
    assert "is exited: exit code 137" in row["error_message"]
    assert await device.target_image() == OLD  # rolled back to its own old image
    await device.report(OLD)
    assert (await device_rows(client, rid))[device.uuid]["status"] == "rolled_back"
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["rolled_back_devices"] == 1 and detail["healthy_devices"] == 0
    assert detail["status"] == "completed"  # max_failure_rate 1: finished, not failed


async def test_the_default_check_passes_after_the_soak(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, update_strategy="auto", soak_seconds=120)
    device = await one_device(client)
    rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
    await device.apply_target()
    clock.advance(timedelta(seconds=119))
    await tick(container)
    assert (await device_rows(client, rid))[device.uuid]["status"] == "health_checking"
    clock.advance(timedelta(seconds=1))
    await tick(container)
    row = (await device_rows(client, rid))[device.uuid]
    assert row["status"] == "completed" and row["health_check_passed"] is True
    assert row["health_check_details"]["checks"]["containers-running"]["passed"] is True


async def test_server_side_tcp_and_http_checks_probe_the_devices_address(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    async with TcpListener() as listener, HttpServer(hosts=["127.0.0.1"]) as web:
        await policy(
            client,
            update_strategy="auto",
            max_failure_rate=1,
            max_retries=0,
            health_check_config=[
                {
                    "type": "tcp",
                    "name": "port",
                    "port": listener.port,
                    "run_on": "server",
                    "retries": 0,
                    "timeout_seconds": 2,
                },
                {
                    "type": "http",
                    "name": "web",
                    "url": f"http://{{device_ip}}:{web.port}/health",
                    "run_on": "server",
                    "retries": 0,
                    "timeout_seconds": 2,
                },
            ],
        )
        reachable = await one_device(client, "dev-ok", "127.0.0.1")
        unreachable = await one_device(client, "dev-bad", "127.0.0.2")  # nothing listens there
        rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
        for device in (reachable, unreachable):
            await device.apply_target()
        await tick(container)
    rows = await device_rows(client, rid)
    assert rows["dev-ok"]["status"] == "completed"
    assert rows["dev-ok"]["health_check_details"]["checks"]["web"]["passed"] is True
    bad = rows["dev-bad"]
    assert bad["status"] == "failed" and bad["health_check_passed"] is False
    assert bad["health_check_details"]["verdict"] == "failed"
    assert bad["health_check_details"]["failed_check"] in ("port", "web")
    failed = bad["health_check_details"]["checks"][bad["health_check_details"]["failed_check"]]
    assert "Connect" in failed["last_error"]
    assert [r.host for r in web.requests] == ["127.0.0.1"]
    assert listener.accepted == 1


async def test_a_policy_with_bad_checks_gets_a_422_naming_the_check_field(
    client: httpx.AsyncClient,
) -> None:
    cases = [
        ([{"type": "tcp", "port": 70000}], "health_check_config[0].port"),
        ({"checks": [{"type": "http"}]}, "health_check_config.checks[0].url"),
        (
            [{"type": "custom", "command": "/opt/check; reboot"}],
            "health_check_config[0].command",
        ),
        (
            [{"type": "container_running", "run_on": "server"}],
            "health_check_config[0].run_on",
        ),
        ([{"type": "metric", "metric": "load", "max": 1}], "health_check_config[0].metric"),
        ([{"type": "metric", "metric": "cpu_usage", "min": 5, "max": 1}], "[0].min"),
        ([{"type": "metric", "metric": "cpu_usage"}], "health_check_config[0]: needs a bound"),
        (
            [{"type": "prometheus", "url": "file:///x", "query": "up", "max": 1}],
            "health_check_config[0].url",
        ),
    ]
    for config, field in cases:
        response = await client.post(
            "/api/v1/image-policies",
            json={"image_pattern": "iotistic/myapp:*", "health_check_config": config},
        )
        assert response.status_code == 422, response.text
        assert field in response.json()["error"], (field, response.text)
    created = await policy(
        client, soak_seconds=45, health_check_config=None, health_check_enabled=True
    )
    assert created["effective_health_checks"] == [
        {
            "name": "containers-running",
            "type": "container_running",
            "run_on": "device",
            "timeout_seconds": 30,
            "retries": 0,
            "interval_seconds": 10,
            "min_uptime_seconds": 45,
        }
    ]
