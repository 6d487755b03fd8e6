"""Outbound notifications to a real HTTP listener on loopback: a rollout that pauses itself,
completes or fails, and a rollback that fails, each POSTed as fleetwave JSON or as a Slack
``{"text": …}`` body; a receiver that answers 500 twice still gets it; a dead one holds up
nothing. Both databases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.notifications import Notifier, NotifyTarget
from fleetwave.rollouts.events import Event
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from tests.conftest import ADMIN_TOKEN
from tests.integration.engine import ScriptedDevice, device_rows, rollout, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.health_helpers import HttpServer, Reply, Request, free_port, never
from tests.integration.pipeline import docker_hub_push, policy

OLD, NEW = "iotistic/myapp:v2.0.0", "iotistic/myapp:v2.0.1"


class Receiver:
    """The listener's paths: /flaky answers 500 twice then 200, /hang never answers."""

    def __init__(self) -> None:
        self.flaky_seen = 0

    def answer(self, request: Request) -> Reply:
        if request.path == "/hang":
            return never(request)
        if request.path == "/flaky":
            self.flaky_seen += 1
            return Reply(500, "try later") if self.flaky_seen <= 2 else Reply(200)
        return Reply(200)


@pytest.fixture
async def listener() -> AsyncIterator[HttpServer]:
    async with HttpServer(Receiver().answer) as server:
        yield server


def bodies(server: HttpServer, path: str) -> list[Any]:
    return [r.json() for r in server.requests if r.path == path and r.method == "POST"]


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


@dataclass
class App:
    container: Container
    client: httpx.AsyncClient
    notifier: Notifier


@asynccontextmanager
async def notifying(
    settings: Settings, clock: ManualClock, targets: list[NotifyTarget], **notifier: Any
) -> AsyncIterator[App]:
    """The application with ``targets`` as its notification webhooks, its sender running."""
    db = Database(settings.resolved_database_url)
    container = build(settings.model_copy(update={"notify_webhooks": targets}), clock=clock, db=db)
    assert container.notifier.targets == targets
    if notifier:  # a sender with quicker retries than the default one
        db.committed.remove(container.notifier.publish)
        container.notifier = Notifier(targets, **notifier)
        db.committed.append(container.notifier.publish)
    stop = asyncio.Event()
    sender = asyncio.create_task(container.notifier.run(stop))
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://fleetwave.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            yield App(container, client, container.notifier)
    finally:
        stop.set()
        await asyncio.wait_for(sender, timeout=15)
        await db.dispose()


async def fleet_of(client: httpx.AsyncClient, count: int) -> list[ScriptedDevice]:
    devices = []
    for i in range(count):
        device = await register_device(client, uuid=f"dev-{i:02}", apps=target_apps(OLD))
        devices.append(ScriptedDevice(client, device))
        await devices[-1].report(OLD)
    return devices


async def completed_rollout(app: App, count: int = 2) -> str:
    """An auto rollout whose devices all run the new image: completed on the next tick."""
    await policy(app.client, update_strategy="auto", soak_seconds=0)
    devices = await fleet_of(app.client, count)
    rid: str = (await docker_hub_push(app.client, "v2.0.1")).json()["rollout_id"]
    for device in devices:
        await device.apply_target()
    return rid


def json_target(server: HttpServer, path: str = "/json") -> NotifyTarget:
    return NotifyTarget(url=server.url(path), format="json")


async def test_an_auto_pause_is_notified_with_its_failure_numbers(
    settings: Settings, clock: ManualClock, listener: HttpServer
) -> None:
    async with notifying(settings, clock, [json_target(listener)]) as app:
        client, container = app.client, app.container
        await policy(client, batch_delay_minutes=30, soak_seconds=0, max_retries=0)
        devices = {d.uuid: d for d in await fleet_of(client, 10)}
        rid = (await docker_hub_push(client, "v2.0.1")).json()["rollout_id"]
        for uuid in await device_rows(client, rid, batch=1):
            await devices[uuid].apply_target()
        await tick(container)
        clock.advance(timedelta(minutes=30))
        await tick(container)
        second = sorted(await device_rows(client, rid, batch=2))
        assert len(second) == 4
        for uuid in second[:2]:
            await devices[uuid].apply_target("exited")
        for uuid in second[2:]:
            await devices[uuid].apply_target()
        await tick(container)
        assert (await rollout(client, rid))["auto_paused"] is True

        await eventually(lambda: len(bodies(listener, "/json")) >= 1)
        [notice] = bodies(listener, "/json")
        assert notice["event"] == "rollout_paused" and notice["rollout_id"] == rid
        assert notice["device_uuid"] is None
        assert notice["data"] == {
            "auto": True,
            "failure_rate": 0.4,
            "failed": 2,
            "finished": 5,
            "max_failure_rate": 0.2,
        }
        assert "40.0%" in notice["message"] and "2 of 5" in notice["message"]


async def test_completion_is_notified_as_json_and_to_slack(
    settings: Settings, clock: ManualClock, listener: HttpServer
) -> None:
    targets = [json_target(listener), NotifyTarget(url=listener.url("/slack"), format="slack")]
    async with notifying(settings, clock, targets) as app:
        await policy(app.client, update_strategy="auto", soak_seconds=0)
        devices = await fleet_of(app.client, 2)
        rid = (await docker_hub_push(app.client, "v2.0.1")).json()["rollout_id"]
        # an operator's pause is not news: only the failure gate's is
        for control in ("pause", "resume"):
            response = await app.client.post(f"/api/v1/rollouts/{rid}/{control}")
            assert response.status_code == 200, response.text
        for device in devices:
            await device.apply_target()
        await tick(app.container)
        assert (await rollout(app.client, rid))["status"] == "completed"

        await eventually(
            lambda: bool(bodies(listener, "/json")) and bool(bodies(listener, "/slack"))
        )
        await asyncio.sleep(0.2)  # nothing else comes
        [notice] = bodies(listener, "/json")
        assert notice == {
            "event": "rollout_completed",
            "rollout_id": rid,
            "device_uuid": None,
            "message": "completed; failure rate 0.0%",
            "data": {"failure_rate": 0.0},
        }
        [slack] = bodies(listener, "/slack")
        assert slack == {"text": f"fleetwave: rollout {rid}: completed; failure rate 0.0%"}
        assert app.notifier.delivered == 2 and app.notifier.failed == 0


async def test_a_failed_rollout_is_notified(
    settings: Settings, clock: ManualClock, listener: HttpServer
) -> None:
    async with notifying(settings, clock, [json_target(listener)]) as app:
        await policy(app.client, update_strategy="auto", soak_seconds=0, max_retries=0)
        good, bad = await fleet_of(app.client, 2)
        rid = (await docker_hub_push(app.client, "v2.0.1")).json()["rollout_id"]
        await good.apply_target()
        await bad.apply_target("exited")
        await bad.report(OLD)  # rolled back
        await tick(app.container)
        assert (await rollout(app.client, rid))["status"] == "failed"

        await eventually(lambda: len(bodies(listener, "/json")) >= 1)
        [notice] = bodies(listener, "/json")
        assert notice["event"] == "rollout_failed" and notice["rollout_id"] == rid
        assert notice["data"] == {"failure_rate": 0.5, "max_failure_rate": 0.2}
        assert "50.0%" in notice["message"]


async def test_a_failed_rollback_is_notified_as_json_and_to_slack(
    settings: Settings, clock: ManualClock, listener: HttpServer
) -> None:
    targets = [json_target(listener), NotifyTarget(url=listener.url("/slack"), format="slack")]
    async with notifying(settings, clock, targets) as app:
        await policy(
            app.client, update_strategy="auto", soak_seconds=600, max_retries=0, max_failure_rate=1
        )
        [device] = await fleet_of(app.client, 1)
        rid = (await docker_hub_push(app.client, "v2.0.1")).json()["rollout_id"]
        await device.apply_target()
        await device.report(NEW, "exited", error="exit code 1")
        assert await device.target_image() == OLD
        await device.report(OLD, "exited", error="exit code 2")  # the old image fails too
        assert (await device_rows(app.client, rid))[device.uuid]["status"] == "rollback_failed"

        await eventually(
            lambda: bool(bodies(listener, "/json")) and bool(bodies(listener, "/slack"))
        )
        [notice] = [b for b in bodies(listener, "/json") if b["event"] == "rollback_failed"]
        assert notice["rollout_id"] == rid and notice["device_uuid"] == device.uuid
        assert notice["data"] == {"status": "rollback_failed"}
        [slack] = [b for b in bodies(listener, "/slack") if device.uuid in b["text"]]
        assert slack["text"].startswith(f"fleetwave: rollout {rid}: ")
        assert slack["text"].endswith(f"(device {device.uuid})")


async def test_a_receiver_that_fails_twice_still_gets_the_notification(
    settings: Settings, clock: ManualClock, listener: HttpServer
) -> None:
    targets = [json_target(listener, "/flaky")]
    async with notifying(settings, clock, targets, first_backoff=0.05, timeout=2) as app:
        rid = await completed_rollout(app)
        await tick(app.container)
        await eventually(lambda: app.notifier.delivered == 1)
    attempts = bodies(listener, "/flaky")
    assert len(attempts) == 3  # 500, 500, 200
    assert all(a["event"] == "rollout_completed" and a["rollout_id"] == rid for a in attempts)
    assert app.notifier.failed == 0


async def test_a_receiver_that_never_succeeds_is_given_up_on(
    settings: Settings, clock: ManualClock, listener: HttpServer
) -> None:
    always_500 = Receiver()
    always_500.flaky_seen = -100  # 500s far beyond the attempts
    async with HttpServer(always_500.answer) as broken:
        targets = [json_target(broken, "/flaky")]
        async with notifying(
            settings, clock, targets, attempts=3, first_backoff=0.05, timeout=2
        ) as app:
            await completed_rollout(app)
            await tick(app.container)
            await eventually(lambda: app.notifier.failed == 1)
        assert len(bodies(broken, "/flaky")) == 3 and app.notifier.delivered == 0


async def test_a_dead_receiver_does_not_hold_up_the_monitor_or_the_others(
    settings: Settings, clock: ManualClock, listener: HttpServer
) -> None:
    targets = [
        json_target(listener, "/hang"),  # accepts, never answers
        NotifyTarget(url=f"http://127.0.0.1:{free_port()}/refused"),  # nothing listens
        json_target(listener),
    ]
    async with notifying(
        settings, clock, targets, attempts=2, first_backoff=0.05, timeout=0.5
    ) as app:
        rid = await completed_rollout(app)
        started = time.monotonic()
        await tick(app.container)
        assert time.monotonic() - started < 1.0
        assert (await rollout(app.client, rid))["status"] == "completed"
        await eventually(lambda: len(bodies(listener, "/json")) == 1, within=1.0)
        # and the next rollout goes on while deliveries to the dead ones are still retried
        await docker_hub_push(app.client, "v2.0.2")
        started = time.monotonic()
        await tick(app.container)
        assert time.monotonic() - started < 1.0
        await eventually(lambda: app.notifier.failed == 2)  # both dead ones given up on
    assert app.notifier.delivered == 1
    assert bodies(listener, "/json")[0]["event"] == "rollout_completed"
    assert len(bodies(listener, "/hang")) == 2


def test_without_targets_nothing_is_queued() -> None:
    notifier = Notifier([])
    notifier.publish([_event("rollout_completed")])
    assert notifier.queue.empty()


def test_which_events_are_notable() -> None:
    notifier = Notifier([NotifyTarget(url="http://127.0.0.1:9/")])
    notifier.publish(
        [
            _event("rollout_completed"),
            _event("rollout_failed"),
            _event("rollback_failed", device_uuid="dev-01"),
            _event("rollout_paused", {"auto": True}),
            _event("rollout_paused", {"auto": False}),
            _event("rollout_paused"),
            _event("batch_started"),
            _event("device_failed", device_uuid="dev-01"),
        ]
    )
    queued = []
    while not notifier.queue.empty():
        queued.append(notifier.queue.get_nowait().event_type)
    assert queued == ["rollout_completed", "rollout_failed", "rollback_failed", "rollout_paused"]


def _event(kind: str, data: dict[str, Any] | None = None, device_uuid: str | None = None) -> Any:
    return Event("r-1", kind, "message", data or {}, device_uuid=device_uuid)


async def test_stopping_the_sender_leaves_no_delivery_running(listener: HttpServer) -> None:
    """After ``run`` returns, its HTTP client is closed: a delivery still retrying then would
    fail on the closed client ("Task exception was never retrieved"), uncounted."""
    notifier = Notifier(
        [json_target(listener, "/hang")], attempts=5, first_backoff=0.05, timeout=0.5
    )
    stop = asyncio.Event()
    sender = asyncio.create_task(notifier.run(stop))
    notifier.publish([_event("rollout_completed")])
    await listener.wait_for(1)
    stop.set()
    await asyncio.wait_for(sender, timeout=5)
    left = [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "Notifier._deliver" in getattr(task.get_coro(), "__qualname__", "")
    ]
    for task in left:
        task.cancel()
    assert left == []
