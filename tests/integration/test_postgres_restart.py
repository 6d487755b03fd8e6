"""A PostgreSQL restart under a running API, in the middle of a staged rollout: device and
admin requests get 503 with Retry-After while it is down (never 500, never a stale 304 from
memory), the monitor's ticks fail cleanly (logged, the loop goes on, nothing half-written), and
everything recovers by itself: the cache, the listener, and the rollout, which completes.

It stops and starts the real server, so it needs the command that does so
(``FLEETWAVE_TEST_POSTGRES_CTL``, e.g. ``pg_ctlcluster --skip-systemctl-redirect 15 main``;
CI sets it). Other tests' connections are cut too, which is why it is one test, run once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.clock import ManualClock
from tests.conftest import postgres_required
from tests.integration.engine import NEW as PUSHED
from tests.integration.engine import ScriptedDevice, device_rows, fleet_of, push, rollout, tick
from tests.integration.factories import as_device, register_device, report_body, target_apps
from tests.integration.pipeline import policy
from tests.integration.replicas import NEW, Replica, cached_etag, poll, until

CTL_VARIABLE = "FLEETWAVE_TEST_POSTGRES_CTL"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize(
        "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
    ),
]


@pytest.fixture
def postgres_ctl() -> Iterator[list[str]]:
    """The command that stops and starts the server; whatever happens, it is left running."""
    command = os.environ.get(CTL_VARIABLE)
    if not command:
        message = f"restarting PostgreSQL needs {CTL_VARIABLE} (e.g. 'pg_ctlcluster 15 main')"
        if postgres_required():
            pytest.fail(message)
        pytest.skip(message)
    ctl = shlex.split(command)
    yield ctl
    subprocess.run([*ctl, "start"], check=False, timeout=60, capture_output=True)


async def test_a_postgres_restart_mid_rollout_gives_503_then_recovers_and_the_rollout_completes(
    postgres_ctl: list[str],
    here: Replica,
    replica: Replica,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = await register_device(here.client, uuid="rs1", apps=target_apps("other/app:v1"))
    etag = await cached_etag(replica, device)
    watch = replica.container.target_watch
    fleet, rid = await rollout_in_its_first_batch(here)
    before = await rollout_state(here.client, rid)

    await run(*postgres_ctl, "stop", "-m", "fast")
    await until(lambda: not watch.relayed_here, within=15)
    assert not replica.caches("rs1")
    polled = await poll(replica, device, etag)
    assert_unavailable(polled)
    assert "database" in polled.json()["error"]
    reported = await replica.client.patch(
        "/api/v1/device/state", json=report_body("rs1"), headers=as_device(device)
    )
    assert_unavailable(reported)
    assert_unavailable(await here.client.get(f"/api/v1/rollouts/{rid}"))
    assert_unavailable(await here.client.post(f"/api/v1/rollouts/{rid}/pause", json={}))
    await monitor_ticks_fail_and_go_on(here, caplog)

    await run(*postgres_ctl, "start")
    changed = await until_answered(
        lambda: here.client.put("/api/v1/devices/rs1/target-state", json={"apps": target_apps(NEW)})
    )
    answer = await poll(replica, device, etag)
    assert answer.status_code == 200 and answer.headers["etag"] == changed.json()["etag"]
    await until(lambda: watch.relayed_here, within=15)
    assert (await poll(replica, device, answer.headers["etag"])).status_code == 304
    assert replica.caches("rs1")

    assert await rollout_state(here.client, rid) == before  # the failed ticks wrote nothing
    await drive_to_completion(here, clock, fleet, rid)


async def rollout_in_its_first_batch(here: Replica) -> tuple[dict[str, ScriptedDevice], str]:
    """Four devices on the old image, a staged rollout of the new one, its first batch
    updated and in its soak period."""
    await policy(here.client, batch_delay_minutes=1, soak_seconds=60)
    fleet = await fleet_of(here.client, 4)
    rid = await push(here.client)
    for uuid in await device_rows(here.client, rid, batch=1):
        assert await fleet[uuid].apply_target() == PUSHED
    await tick(here.container)
    assert (await rollout(here.client, rid))["status"] == "in_progress"
    return fleet, rid


async def rollout_state(client: httpx.AsyncClient, rid: str) -> dict[str, Any]:
    """Everything the API says of the rollout and of each of its devices."""
    return {"rollout": await rollout(client, rid), "devices": await device_rows(client, rid)}


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()


async def monitor_ticks_fail_and_go_on(here: Replica, caplog: pytest.LogCaptureFixture) -> None:
    """The monitor's loop, run while the database is away: each tick fails and is logged, and
    the loop goes on until it is stopped."""
    caplog.set_level(logging.ERROR, logger="fleetwave.monitor")
    stop = asyncio.Event()
    monitor = asyncio.create_task(here.container.monitor.run(stop, interval=0.05))
    failed = lambda: [r for r in caplog.records if "monitor tick failed" in r.getMessage()]  # noqa: E731
    await until(lambda: len(failed()) >= 2, within=15)
    assert not monitor.done()
    stop.set()
    here.container.waker.wake()
    await asyncio.wait_for(monitor, 15)


async def drive_to_completion(
    here: Replica, clock: ManualClock, fleet: dict[str, ScriptedDevice], rid: str
) -> None:
    """Healthy devices apply whatever they are sent; time passes; the rollout completes."""
    for _ in range(10):
        for uuid, row in (await device_rows(here.client, rid)).items():
            if row["status"] in ("scheduled", "pulling", "updating"):
                await fleet[uuid].apply_target()
        clock.advance(timedelta(minutes=2))
        await tick(here.container)
        if (await rollout(here.client, rid))["status"] == "completed":
            break
    assert (await rollout(here.client, rid))["status"] == "completed"
    for device in fleet.values():
        assert await device.target_image() == PUSHED


async def run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(*command)
    assert await asyncio.wait_for(process.wait(), 60) == 0, command


async def until_answered(
    request: Callable[[], Awaitable[httpx.Response]], within: float = 30
) -> httpx.Response:
    """Retry a request while the server answers 503 (PostgreSQL still starting)."""
    async with asyncio.timeout(within):
        while True:
            response = await request()
            if response.status_code != 503:
                assert response.status_code == 200, response.text
                return response
            await asyncio.sleep(0.2)
