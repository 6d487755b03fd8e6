"""A PostgreSQL restart under a running API: device requests get 503 with Retry-After while it
is down (never 500, never a stale 304 from memory), and everything recovers by itself.

It stops and starts the real server, so it needs the command that does so
(``FLEETWAVE_TEST_POSTGRES_CTL``, e.g. ``pg_ctlcluster --skip-systemctl-redirect 15 main``;
CI sets it). Other tests' connections are cut too, which is why it is one test, run once.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from tests.conftest import postgres_required
from tests.integration.factories import as_device, register_device, report_body, target_apps
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


async def test_a_postgres_restart_gives_device_requests_503_then_recovers_without_a_restart(
    postgres_ctl: list[str], here: Replica, replica: Replica
) -> None:
    device = await register_device(here.client, uuid="rs1")
    etag = await cached_etag(replica, device)
    watch = replica.container.target_watch

    await run(*postgres_ctl, "stop", "-m", "fast")
    await until(lambda: not watch.relayed_here, within=15)
    assert not replica.caches("rs1")
    polled = await poll(replica, device, etag)
    assert polled.status_code == 503 and polled.headers["retry-after"].isdigit()
    assert "database" in polled.json()["error"]
    reported = await replica.client.patch(
        "/api/v1/device/state", json=report_body("rs1"), headers=as_device(device)
    )
    assert reported.status_code == 503

    await run(*postgres_ctl, "start")
    changed = await until_answered(
        lambda: here.client.put("/api/v1/devices/rs1/target-state", json={"apps": target_apps(NEW)})
    )
    answer = await poll(replica, device, etag)
    assert answer.status_code == 200 and answer.headers["etag"] == changed.json()["etag"]
    await until(lambda: watch.relayed_here, within=15)
    assert (await poll(replica, device, answer.headers["etag"])).status_code == 304
    assert replica.caches("rs1")


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
