"""Reports give way to woken polls: while held polls a change woke are being answered, a
device's report waits before routing (at most a bound), then is stored as usual."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.devices import give_way, woken_reads
from fleetwave.devices.target_watch import TargetWatch
from tests.integration.engine import NEW, OLD
from tests.integration.factories import as_device, register_device, report_body, target_apps


@pytest.fixture(autouse=True)
async def _close_watch(container: Container) -> AsyncIterator[None]:
    yield
    await container.target_watch.close()  # its LISTEN connection, on PostgreSQL


async def held_poll(
    client: httpx.AsyncClient, container: Container, device: dict[str, Any]
) -> asyncio.Task[httpx.Response]:
    url = f"/api/v1/device/{device['uuid']}/state"
    first = await client.get(url, headers=as_device(device))
    assert first.status_code == 200, first.text
    headers = as_device(device) | {"if-none-match": first.headers["etag"]}
    poll = asyncio.create_task(client.get(url, headers=headers, params={"wait": 30}))
    async with asyncio.timeout(5):
        while container.target_watch.waiting < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return poll


def gate_woken_reads(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Woken polls' reads wait for the returned event: their polls stay unanswered."""
    gate = asyncio.Event()
    read = woken_reads.served_targets

    async def gated(*args: Any) -> Any:
        await gate.wait()
        return await read(*args)

    monkeypatch.setattr(woken_reads, "served_targets", gated)
    return gate


async def settle() -> None:
    """Let every request that can run, run (in-process transport: no network in between)."""
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_a_report_waits_while_a_woken_poll_is_answered_then_is_stored(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    polling = await register_device(client, uuid="gw-poll", apps=target_apps(OLD))
    reporting = await register_device(client, uuid="gw-report", apps=target_apps(OLD))
    poll = await held_poll(client, container, polling)
    gate = gate_woken_reads(monkeypatch)
    changed = await client.put(
        "/api/v1/devices/gw-poll/target-state", json={"apps": target_apps(NEW)}
    )
    assert changed.status_code == 200, changed.text
    await settle()  # the poll is woken; its read waits at the gate
    report = asyncio.create_task(
        client.patch(
            "/api/v1/device/state",
            json=report_body("gw-report", "iotistic/myapp:v9"),
            headers=as_device(reporting),
        )
    )
    await settle()
    assert not poll.done() and not report.done()  # the report waits for the woken poll
    gate.set()
    answered = await asyncio.wait_for(poll, 5)
    assert answered.status_code == 200, answered.text
    stored = await asyncio.wait_for(report, 5)
    assert stored.status_code == 200, stored.text
    current = await client.get("/api/v1/devices/gw-report/current-state")
    assert "iotistic/myapp:v9" in current.text


async def test_a_report_is_not_held_up_by_polls_that_wait_unwoken(
    client: httpx.AsyncClient, container: Container
) -> None:
    polling = await register_device(client, uuid="gw-idle", apps=target_apps(OLD))
    reporting = await register_device(client, uuid="gw-alone", apps=target_apps(OLD))
    poll = await held_poll(client, container, polling)
    answer = await asyncio.wait_for(
        client.patch(
            "/api/v1/device/state",
            json=report_body("gw-alone"),
            headers=as_device(reporting),
        ),
        5,
    )
    assert answer.status_code == 200, answer.text
    assert not poll.done()
    poll.cancel()


async def test_a_report_waits_no_longer_than_the_bound(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(give_way, "LONGEST_WAIT", 0.05)
    polling = await register_device(client, uuid="gw-stuck", apps=target_apps(OLD))
    reporting = await register_device(client, uuid="gw-late", apps=target_apps(OLD))
    poll = await held_poll(client, container, polling)
    gate_woken_reads(monkeypatch)  # never opened: the woken poll stays unanswered
    container.target_watch.wake(["gw-stuck"])
    answer = await asyncio.wait_for(
        client.patch(
            "/api/v1/device/state", json=report_body("gw-late"), headers=as_device(reporting)
        ),
        5,
    )
    assert answer.status_code == 200, answer.text
    assert not poll.done()
    poll.cancel()


async def test_a_woken_poll_that_waits_again_or_ends_counts_as_answered() -> None:
    watch = TargetWatch("sqlite+aiosqlite:///:memory:", cache_size=10)
    async with watch.watch("d1") as first, watch.watch("d2"):
        watch.wake(["d1", "d2"])
        waiting = asyncio.create_task(watch.woken_answered(5))
        await asyncio.sleep(0)
        assert not waiting.done()
        assert await first.wait(0) is True  # d1 looks again, then waits anew
        await asyncio.sleep(0)
        assert not waiting.done()  # d2 is still being answered
    await asyncio.wait_for(waiting, 1)  # d2's hold ended
