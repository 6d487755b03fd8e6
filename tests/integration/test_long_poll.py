"""Long-poll on the device poll (``?wait=N``): a poll that would be 304 is held until the
device's target changes (admin, rollout batch, another replica on PostgreSQL) or the wait ends;
plain polls are unchanged, and every answer advertises the offer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from fleetwave.agent.agent import LONG_POLL_JITTER, Agent
from fleetwave.agent.client import DeviceClient
from fleetwave.agent.simulated import SimulatedRuntime
from fleetwave.api import create_app
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.devices import woken_reads
from fleetwave.devices.targets import DevicesChanged
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from tests.integration.engine import NEW, OLD, batch_devices, fleet_of, push, tick
from tests.integration.factories import (
    as_device,
    recorded_statements,
    register_device,
    target_apps,
)
from tests.integration.pipeline import policy
from tests.integration.replicas import notifications_arrived

HEADER = "X-Fleetwave-Long-Poll"


@pytest.fixture(autouse=True)
async def _close_watch(container: Container) -> AsyncIterator[None]:
    yield
    await container.target_watch.close()  # its LISTEN connection, on PostgreSQL


def state_url(uuid: str) -> str:
    return f"/api/v1/device/{uuid}/state"


async def first_poll(client: httpx.AsyncClient, device: dict[str, Any]) -> str:
    answer = await client.get(state_url(device["uuid"]), headers=as_device(device))
    assert answer.status_code == 200, answer.text
    etag: str = answer.headers["etag"]
    return etag


def held_poll(
    client: httpx.AsyncClient, device: dict[str, Any], etag: str, wait: float
) -> asyncio.Task[httpx.Response]:
    headers = as_device(device) | {"if-none-match": etag}
    return asyncio.create_task(
        client.get(state_url(device["uuid"]), headers=headers, params={"wait": wait})
    )


async def until_held(container: Container, count: int) -> None:
    async with asyncio.timeout(5):
        while container.target_watch.waiting < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def holding(
    client: httpx.AsyncClient, container: Container, fleet: dict[str, Any]
) -> dict[str, asyncio.Task[httpx.Response]]:
    """Each device of ``fleet`` (scripted agents by uuid) polled once, then holding a poll
    with the ETag it got; returns the held polls once the server holds them all."""
    devices = {
        uuid: {"uuid": uuid, "api_key": d.headers["X-Device-API-Key"]} for uuid, d in fleet.items()
    }
    etags = {uuid: await first_poll(client, device) for uuid, device in devices.items()}
    polls = {uuid: held_poll(client, devices[uuid], etags[uuid], 30) for uuid in devices}
    await until_held(container, len(polls))
    return polls


def image_of(answer: httpx.Response, uuid: str) -> str:
    image: str = answer.json()[uuid]["apps"]["1001"]["services"][0]["imageName"]
    return image


async def test_a_held_poll_answers_the_new_target_as_soon_as_an_admin_changes_it(
    client: httpx.AsyncClient, container: Container
) -> None:
    device = await register_device(client, uuid="lp1", apps=target_apps(OLD))
    etag = await first_poll(client, device)
    started = time.monotonic()
    poll = held_poll(client, device, etag, wait=30)
    await until_held(container, 1)
    assert not poll.done()
    changed = await client.put("/api/v1/devices/lp1/target-state", json={"apps": target_apps(NEW)})
    assert changed.status_code == 200, changed.text
    answer = await asyncio.wait_for(poll, 5)
    assert time.monotonic() - started < 5
    assert answer.status_code == 200
    assert image_of(answer, "lp1") == NEW
    assert answer.headers["etag"] != etag and answer.headers[HEADER] == "60"
    assert container.target_watch.waiting == 0


async def test_a_held_poll_answers_304_when_the_wait_ends_unchanged(
    client: httpx.AsyncClient, container: Container
) -> None:
    device = await register_device(client, uuid="lp2")
    other = await register_device(client, uuid="lp2-other")
    etag = await first_poll(client, device)
    started = time.monotonic()
    poll = held_poll(client, device, etag, wait=0.2)
    await until_held(container, 1)
    # another device's new target wakes no one here (or wakes and re-reads: still 304)
    await client.put("/api/v1/devices/lp2-other/target-state", json={"apps": target_apps(NEW)})
    answer = await asyncio.wait_for(poll, 5)
    assert answer.status_code == 304 and answer.content == b""
    assert time.monotonic() - started >= 0.2
    assert answer.headers["etag"] == etag and answer.headers[HEADER] == "60"
    assert other["uuid"] == "lp2-other"


async def test_a_long_poll_whose_etag_is_stale_answers_at_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    device = await register_device(client, uuid="lp3")
    answer = await held_poll(client, device, '"an-old-etag"', wait=30)
    assert answer.status_code == 200 and image_of(answer, "lp3") == OLD
    assert container.target_watch.waiting == 0


@pytest.mark.parametrize("wait", ["soon", "-1", "60.5", "nan", "inf", ""])
async def test_a_wait_that_is_not_0_to_the_maximum_is_refused_naming_wait(
    client: httpx.AsyncClient, wait: str
) -> None:
    device = await register_device(client, uuid="lp4")
    answer = await client.get(state_url("lp4"), headers=as_device(device), params={"wait": wait})
    assert answer.status_code == 422, answer.text
    assert [p["field"] for p in answer.json()["detail"]] == ["wait"]


async def test_every_poll_answer_advertises_the_offer_and_a_plain_poll_is_not_held(
    client: httpx.AsyncClient, container: Container
) -> None:
    device = await register_device(client, uuid="lp5")
    first = await client.get(state_url("lp5"), headers=as_device(device))
    assert first.status_code == 200 and first.headers[HEADER] == "60"
    started = time.monotonic()
    headers = as_device(device) | {"if-none-match": first.headers["etag"]}
    plain = await client.get(state_url("lp5"), headers=headers)
    assert plain.status_code == 304 and plain.headers[HEADER] == "60"
    zero = await client.get(state_url("lp5"), headers=headers, params={"wait": 0})
    assert zero.status_code == 304
    assert time.monotonic() - started < 1
    assert container.target_watch.waiting == 0


async def test_a_wrong_key_is_refused_before_any_hold(client: httpx.AsyncClient) -> None:
    await register_device(client, uuid="lp6")
    answer = await client.get(
        state_url("lp6"),
        headers={"X-Device-API-Key": "fwd_wrong", "Authorization": ""},
        params={"wait": 30},
    )
    assert answer.status_code == 401


async def test_rollout_batches_wake_the_held_polls_of_their_devices_only(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=0, soak_seconds=0)
    scripted = await fleet_of(client, 10)
    polls = await holding(client, container, scripted)

    rollout_id = await push(client)  # starts batch 1
    first = await batch_devices(client, rollout_id, 1)
    assert len(first) == 1
    done, _ = await asyncio.wait([polls[u] for u in first], timeout=5)
    assert {image_of(task.result(), u) for u, task in polls.items() if task in done} == {NEW}
    await asyncio.sleep(0.1)
    assert {u for u, task in polls.items() if task.done()} == set(first)

    await scripted[first[0]].apply_target()
    clock.advance(timedelta(seconds=1))
    await tick(container)  # batch 1 healthy: the monitor starts batch 2
    second = await batch_devices(client, rollout_id, 2)
    assert len(second) == 4
    done, _ = await asyncio.wait([polls[u] for u in second], timeout=5)
    assert len(done) == 4 and {task.result().status_code for task in done} == {200}
    rest = [task for u, task in polls.items() if u not in first + second]
    assert not any(task.done() for task in rest)
    container.target_watch.shut_down()  # releases the rest at once, unchanged
    answers = await asyncio.wait_for(asyncio.gather(*rest), 5)
    assert {answer.status_code for answer in answers} == {304}


async def test_the_polls_a_batch_wakes_are_answered_from_one_read_of_all_their_targets(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client, update_strategy="auto")  # one batch: everyone at once
    polls = await holding(client, container, await fleet_of(client, 40))
    with recorded_statements(container.db.engine) as statements:
        await push(client)
        answers = await asyncio.wait_for(asyncio.gather(*polls.values()), 5)
    assert {image_of(a, uuid) for uuid, a in zip(polls, answers, strict=True)} == {NEW}
    reads = [s for s in statements if s.startswith("SELECT") and "devices.target_etag" in s]
    assert len(reads) == 1, reads  # 40 woken polls, one query for their targets and ETags


async def test_polls_memory_answers_are_held_before_routing_and_refilled_when_woken(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's woken polls are answered without the framework, and the read that answered
    them refills the poll cache: each device's next long-poll, with its new ETag, is held
    without a query."""
    await policy(client, update_strategy="auto")  # one batch: everyone at once
    scripted = await fleet_of(client, 10)
    devices = {
        u: {"uuid": u, "api_key": d.headers["X-Device-API-Key"]} for u, d in scripted.items()
    }
    polls = await holding(client, container, scripted)

    async def routed(*_: Any, **__: Any) -> None:
        raise AssertionError("a poll memory could answer went to the route")

    monkeypatch.setattr(container.protocol, "poll", routed)
    changes: list[DevicesChanged] = []
    container.db.committed.append(
        lambda items: changes.extend(c for c in items if isinstance(c, DevicesChanged))
    )
    await push(client)
    answers = await asyncio.wait_for(asyncio.gather(*polls.values()), 5)
    assert {image_of(a, uuid) for uuid, a in zip(polls, answers, strict=True)} == {NEW}
    # this process hears of the batch again through NOTIFY, on PostgreSQL, maybe only now
    await notifications_arrived(container)
    for change in changes:
        container.target_watch.relayed(" ".join([str(change.tag), *change.uuids]))
    with recorded_statements(container.db.engine) as statements:
        again = [
            held_poll(client, devices[uuid], answer.headers["etag"], wait=30)
            for uuid, answer in zip(polls, answers, strict=True)
        ]
        await until_held(container, len(again))
    assert statements == []
    container.target_watch.shut_down()
    assert {a.status_code for a in await asyncio.gather(*again)} == {304}


async def test_a_change_heard_first_through_notify_is_acted_on_once_and_never_missed(
    client: httpx.AsyncClient, container: Container
) -> None:
    """This process hears of its own changes on commit and through NOTIFY, in either order (and
    of one whose commit ended in an error only through NOTIFY): each device is woken once."""
    watch = container.target_watch
    devices = {u: await register_device(client, uuid=u) for u in ("h1", "h2", "h3")}
    await notifications_arrived(container)  # of their creation, on PostgreSQL
    etags = {u: await first_poll(client, d) for u, d in devices.items()}
    assert all(watch.cache.get(u) is not None for u in devices)
    watch.relayed("@elsewhere.1 h1 h2")  # a notification before its commit is heard
    assert watch.cache.get("h1") is None and watch.cache.get("h3") is not None
    for uuid in ("h1", "h2"):
        assert (await client.get(state_url(uuid), headers=as_device(devices[uuid]))).is_success
    assert watch.cache.get("h1") is not None
    watch.published([DevicesChanged(frozenset(devices), "@elsewhere.1")])  # its commit
    assert watch.cache.get("h1") is not None and watch.cache.get("h3") is None
    watch.relayed("@elsewhere.1 h3")  # its last notification: nothing new
    assert (await client.get(state_url("h3"), headers=as_device(devices["h3"]))).is_success
    watch.relayed("@elsewhere.1 h3")
    assert watch.cache.get("h3") is not None
    assert etags.keys() == devices.keys()


async def test_a_poll_held_from_memory_answers_503_if_its_target_cannot_be_read(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = await register_device(client, uuid="lp9")
    etag = await first_poll(client, device)
    poll = held_poll(client, device, etag, wait=30)
    await until_held(container, 1)

    async def unreachable(*_: Any) -> None:
        raise OperationalError("SELECT ...", {}, ConnectionError("the database went away"))

    monkeypatch.setattr(woken_reads, "served_targets", unreachable)
    container.target_watch.wake(["lp9"])
    answer = await asyncio.wait_for(poll, 5)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert "database is unavailable" in answer.json()["error"]


async def test_shutting_down_answers_held_polls_at_once_and_holds_no_new_one(
    client: httpx.AsyncClient, container: Container
) -> None:
    device = await register_device(client, uuid="lp7")
    etag = await first_poll(client, device)
    poll = held_poll(client, device, etag, wait=30)
    await until_held(container, 1)
    container.target_watch.shut_down()
    assert (await asyncio.wait_for(poll, 2)).status_code == 304
    started = time.monotonic()
    assert (await held_poll(client, device, etag, wait=30)).status_code == 304
    assert time.monotonic() - started < 2


async def test_with_long_poll_off_there_is_no_offer_and_a_wait_is_refused(
    settings: Settings, clock: ManualClock
) -> None:
    off = settings.model_copy(update={"long_poll_max": 0})
    db = Database(off.resolved_database_url)
    container = build(off, clock=clock, db=db)
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        admin = {"Authorization": f"Bearer {container.admin_token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=admin
        ) as http:
            device = await register_device(http, uuid="lp8")
            plain = await http.get(state_url("lp8"), headers=as_device(device))
            assert plain.status_code == 200 and HEADER not in plain.headers
            held = await http.get(state_url("lp8"), headers=as_device(device), params={"wait": 1})
            assert held.status_code == 422 and "from 0 to 0" in held.json()["error"]
    finally:
        await container.target_watch.close()
        await db.dispose()


async def test_the_agent_long_polls_and_starts_a_new_target_as_soon_as_it_is_set(
    client: httpx.AsyncClient, container: Container
) -> None:
    device = await register_device(client, uuid="lp10", apps=target_apps(OLD))
    runtime = SimulatedRuntime()
    agent = Agent(
        DeviceClient(client, "lp10", device["api_key"]),
        runtime,
        poll_interval=30,
        report_interval=0,
    )
    assert 27 <= await agent.step() <= 33  # no offer seen yet: a plain poll, then the interval
    assert agent.client.long_poll_max == 60
    step = asyncio.create_task(agent.step())  # held: ?wait=30
    await until_held(container, 1)
    await client.put("/api/v1/devices/lp10/target-state", json={"apps": target_apps(NEW)})
    assert await asyncio.wait_for(step, 5) <= LONG_POLL_JITTER
    [running] = await runtime.containers()
    assert running.image == NEW and running.state == "running"


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_target_changed_by_another_replica_wakes_a_held_poll_on_postgres(
    client: httpx.AsyncClient, container: Container, settings: Settings
) -> None:
    device = await register_device(client, uuid="lp9", apps=target_apps(OLD))
    etag = await first_poll(client, device)
    other_db = Database(settings.resolved_database_url)
    replica = build(settings, clock=ManualClock(), db=other_db)
    try:
        poll = held_poll(client, device, etag, wait=30)
        await until_held(container, 1)
        # Replica B's commit wakes no one here in-process: only its NOTIFY can.
        await replica.devices.set_target_state("lp9", target_apps(NEW), {})
        answer = await asyncio.wait_for(poll, 5)
        assert answer.status_code == 200 and image_of(answer, "lp9") == NEW
    finally:
        await replica.target_watch.close()
        await other_db.dispose()
