"""What time alone decides in a rollout, with a manual clock and a monitor driven by ``tick``:
update timeouts (not counting time a device was offline before its batch), the offline grace
period, the soak period (or none without health checks), maintenance windows across midnight,
and a report waking the monitor at once. Nothing here waits for real time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from fleetwave.store.tables import device_rollout_status
from tests.integration.engine import (
    NEW,
    OLD,
    batch_devices,
    device_rows,
    fleet_of,
    push,
    rollout,
    tick,
)
from tests.integration.pipeline import policy, target_image

PARIS = ZoneInfo("Europe/Paris")


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Paris in January 2026 (UTC+1), as the UTC instant."""
    return datetime(2026, 1, day, hour, minute, tzinfo=PARIS).astimezone(UTC)


async def targets(client: httpx.AsyncClient, uuids: list[str]) -> set[str]:
    return {await target_image(client, uuid) for uuid in uuids}


async def events_of(client: httpx.AsyncClient, rollout_id: str, kind: str) -> list[Any]:
    response = await client.get(f"/api/v1/rollouts/{rollout_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["event_type"] == kind]


async def failure_reason(container: Container, rollout_id: str, uuid: str) -> str | None:
    """Not part of the API's device rows; read from the table."""
    rows = device_rollout_status.c
    async with container.db.read() as conn:
        reason: str | None = (
            await conn.execute(
                select(rows.failure_reason).where(
                    rows.rollout_id == rollout_id, rows.device_uuid == uuid
                )
            )
        ).scalar_one()
    return reason


def instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- update timeout ---------------------------------------------------------------------------


async def test_a_device_that_never_runs_the_new_image_times_out_and_is_rolled_back(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client,
        staged_batches=1,
        update_timeout_minutes=10,
        soak_seconds=60,
        max_retries=3,
        auto_rollback=True,
    )
    devices = await fleet_of(client, 2)
    rid = await push(client)
    await tick(container)  # both online: their update timers start now
    good, silent = sorted(devices)
    await devices[good].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    clock.advance(timedelta(minutes=8))  # 9 min 1 s after the batch began
    await tick(container)
    assert (await device_rows(client, rid))[silent]["status"] == "scheduled"
    assert await target_image(client, silent) == NEW

    clock.advance(timedelta(minutes=1))
    await tick(container)
    row = (await device_rows(client, rid))[silent]
    assert row["status"] == "failed" and "new image within" in row["error_message"]
    assert await failure_reason(container, rid, silent) == "timeout"
    [failed] = await events_of(client, rid, "device_failed")
    assert failed["device_uuid"] == silent and failed["event_data"]["reason"] == "timeout"
    # auto_rollback: back to its own old image
    assert await target_image(client, silent) == OLD
    [rollback] = await events_of(client, rid, "rollback_triggered")
    assert rollback["device_uuid"] == silent
    await devices[silent].report(OLD)
    assert (await device_rows(client, rid))[silent]["status"] == "rolled_back"
    detail = await rollout(client, rid)
    assert (detail["healthy_devices"], detail["rolled_back_devices"]) == (1, 1)


async def test_the_update_timer_ignores_time_offline_before_the_batch_and_starts_on_return(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client,
        staged_batches=1,
        update_timeout_minutes=10,
        offline_grace_minutes=120,
        soak_seconds=60,
    )
    devices = await fleet_of(client, 2)
    here, away = sorted(devices)
    clock.advance(timedelta(minutes=30))
    await devices[here].report(OLD)  # "away" has been silent for 30 minutes: offline
    rid = await push(client)
    assert await batch_devices(client, rid, 1) == [here, away]
    await tick(container)
    rows = await device_rows(client, rid)
    assert rows[here]["update_started_at"] and rows[away]["update_started_at"] is None
    await devices[here].apply_target()

    clock.advance(timedelta(minutes=45))  # far past the timeout, inside the grace period
    await tick(container)
    row = (await device_rows(client, rid))[away]
    assert row["status"] == "scheduled" and row["update_started_at"] is None

    returned = clock.now()
    assert await devices[away].target_image() == NEW
    await devices[away].report(OLD)  # back, still on the old image
    await tick(container)
    row = (await device_rows(client, rid))[away]
    assert instant(row["update_started_at"]) == returned
    clock.advance(timedelta(minutes=9))
    await tick(container)
    assert (await device_rows(client, rid))[away]["status"] == "scheduled"  # a full timeout
    clock.advance(timedelta(minutes=1))
    await tick(container)
    assert (await device_rows(client, rid))[away]["status"] == "failed"
    assert await failure_reason(container, rid, away) == "timeout"


# --- offline grace --------------------------------------------------------------------------


async def test_a_device_offline_past_the_grace_period_is_skipped_and_completes_on_return(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client,
        staged_batches=2,
        batch_percentages=[50, 100],
        batch_delay_minutes=0,
        offline_grace_minutes=15,
        update_timeout_minutes=60,
        soak_seconds=60,
    )
    devices = await fleet_of(client, 4)
    clock.advance(timedelta(minutes=10))
    await devices["dev-00"].report(OLD)  # the only one still online
    rid = await push(client)
    first = await batch_devices(client, rid, 1)
    assert first == ["dev-00", "dev-01"]
    online, offline = first
    await tick(container)
    await devices[online].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    clock.advance(timedelta(minutes=13))  # 14 min 1 s after the batch began
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["current_batch"] == 1 and detail["batches"][0]["status"] == "in_progress"
    assert (await device_rows(client, rid))[offline]["status"] == "scheduled"

    clock.advance(timedelta(minutes=1))
    await tick(container)
    row = (await device_rows(client, rid))[offline]
    assert row["status"] == "skipped" and "grace" in row["error_message"]
    detail = await rollout(client, rid)
    assert detail["failure_rate"] == 0.0 and detail["failed_devices"] == 0
    assert detail["batches"][0]["counts"] == {"completed": 1, "skipped": 1}
    assert detail["batches"][0]["status"] == "done"
    assert detail["current_batch"] == 2 and detail["status"] == "in_progress"
    [skipped] = await events_of(client, rid, "device_skipped")
    assert skipped["device_uuid"] == offline

    # it returns: its target still names the new image, which it runs
    assert await devices[offline].apply_target() == NEW
    row = (await device_rows(client, rid))[offline]
    assert row["status"] == "completed"
    for uuid in await batch_devices(client, rid, 2):
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "completed" and detail["healthy_devices"] == 4
    assert detail["failure_rate"] == 0.0


# --- health checks off ------------------------------------------------------------------------


async def test_without_health_checks_running_the_new_image_completes_at_once(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, staged_batches=1, health_check_enabled=False, soak_seconds=3600)
    devices = await fleet_of(client, 2)
    rid = await push(client)
    first, second = sorted(devices)
    await devices[first].apply_target()
    row = (await device_rows(client, rid))[first]
    assert row["status"] == "completed"
    assert instant(row["update_completed_at"]) == clock.now()
    detail = await rollout(client, rid)
    assert (detail["healthy_devices"], detail["updated_devices"]) == (1, 1)
    await devices[second].apply_target()
    await tick(container)  # the clock has not moved: no soak
    detail = await rollout(client, rid)
    assert detail["status"] == "completed" and detail["healthy_devices"] == 2


# --- maintenance window -----------------------------------------------------------------------

WINDOW = {
    "update_strategy": "scheduled",
    "maintenance_window_start": "22:00",
    "maintenance_window_end": "04:00",
    "maintenance_window_timezone": "Europe/Paris",
}


async def test_a_scheduled_rollout_runs_batches_only_when_they_start_inside_the_window(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client,
        batch_delay_minutes=30,
        soak_seconds=60,
        update_timeout_minutes=720,
        offline_grace_minutes=720,
        **WINDOW,
    )
    clock.set(paris(5, 15))
    devices = await fleet_of(client, 10)
    rid = await push(client)

    async def state() -> tuple[str, int]:
        detail = await rollout(client, rid)  # readable throughout
        return detail["status"], detail["current_batch"]

    assert await state() == ("scheduled", 0)
    await tick(container)
    assert await state() == ("scheduled", 0)
    clock.set(paris(5, 21, 59))
    await tick(container)
    assert await state() == ("scheduled", 0)
    assert await targets(client, list(devices)) == {OLD}

    clock.set(paris(5, 22))  # the window opens
    await tick(container)
    assert await state() == ("in_progress", 1)
    first = await batch_devices(client, rid, 1)
    assert await targets(client, first) == {NEW}
    for uuid in first:
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    clock.advance(timedelta(minutes=30))  # 22:31, still inside the window
    await tick(container)
    assert await state() == ("in_progress", 2)

    second = await batch_devices(client, rid, 2)
    laggard, prompt = second[0], second[1:]
    for uuid in prompt:
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    clock.set(paris(6, 4, 30))  # the window has closed; batch 2 is not stopped
    await tick(container)
    assert await state() == ("in_progress", 2)
    assert (await device_rows(client, rid))[laggard]["status"] == "scheduled"
    assert await devices[laggard].apply_target() == NEW
    assert (await device_rows(client, rid))[laggard]["status"] == "health_checking"
    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["batches"][1]["counts"] == {"completed": 4}

    third = await batch_devices(client, rid, 3)
    for moment in (paris(6, 5, 2), paris(6, 12), paris(6, 21, 59)):
        clock.set(moment)
        await tick(container)
        assert await state() == ("in_progress", 2)  # batch 3 waits for the next window
        assert await targets(client, third) == {OLD}
    clock.set(paris(6, 22))
    await tick(container)
    assert await state() == ("in_progress", 3)
    assert await targets(client, third) == {NEW}
    for uuid in third:
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    assert await state() == ("completed", 3)
    detail = await rollout(client, rid)
    assert detail["healthy_devices"] == 10 and detail["failure_rate"] == 0.0


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every real wait asked for (asyncio.sleep or time.sleep with a positive delay)."""
    asked: list[float] = []
    real_async_sleep, real_sleep = asyncio.sleep, time.sleep

    async def async_sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
        if delay > 0:
            asked.append(delay)
        return await real_async_sleep(delay, *args, **kwargs)

    def sleep(delay: float) -> None:
        if delay > 0:
            asked.append(delay)
        real_sleep(delay)

    monkeypatch.setattr(asyncio, "sleep", async_sleep)
    monkeypatch.setattr(time, "sleep", sleep)
    return asked


async def test_a_three_batch_night_of_updates_runs_without_waiting_for_real_time(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, sleeps: list[float]
) -> None:
    await policy(client, batch_delay_minutes=30, soak_seconds=60, **WINDOW)
    clock.set(paris(5, 21))
    devices = await fleet_of(client, 3)
    started = time.perf_counter()
    simulated = clock.now()

    rid = await push(client)
    await tick(container)
    assert (await rollout(client, rid))["status"] == "scheduled"
    clock.set(paris(5, 22))
    for batch in (1, 2, 3):
        await tick(container)
        assert (await rollout(client, rid))["current_batch"] == batch
        for uuid in await batch_devices(client, rid, batch):
            await devices[uuid].apply_target()
        clock.advance(timedelta(seconds=61))
        await tick(container)
        clock.advance(timedelta(minutes=30))
    detail = await rollout(client, rid)

    elapsed = time.perf_counter() - started
    assert detail["status"] == "completed" and detail["healthy_devices"] == 3
    assert [b["size"] for b in detail["batches"]] == [1, 1, 1]
    assert clock.now() - simulated > timedelta(hours=2)
    assert sleeps == []  # the clock moved; nothing waited for it
    # Real time is only the requests' own work (a few seconds on a loaded machine), so the
    # bound is loose: it fails only if something waited for real minutes.
    assert elapsed < 60, f"{elapsed:.2f} s of real time for a simulated night"


# --- waking the monitor -----------------------------------------------------------------------


async def test_a_report_that_moves_a_device_wakes_the_monitor_and_one_that_does_not_stays_quiet(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_percentages=[20, 60, 100])
    devices = await fleet_of(client, 10)
    rid = await push(client)
    first = (await batch_devices(client, rid, 1))[0]
    waiting = (await batch_devices(client, rid, 3))[0]
    await container.waker.wait(0)  # drain whatever earlier requests signalled

    await devices[waiting].report(OLD)  # a pending device: nothing changes
    assert await container.waker.wait(0) is False

    await devices[first].report(NEW, "pulling")
    assert (await device_rows(client, rid))[first]["status"] == "pulling"
    started = time.perf_counter()
    assert await asyncio.wait_for(container.waker.wait(5), 1) is True
    assert time.perf_counter() - started < 1

    await devices[first].report(NEW, "pulling")  # the same again: no move
    assert await container.waker.wait(0) is False


async def test_a_running_monitor_finishes_a_rollout_as_soon_as_the_last_device_reports(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, staged_batches=1, health_check_enabled=False)
    devices = await fleet_of(client, 1)
    rid = await push(client)
    [device] = devices.values()
    stop = asyncio.Event()
    monitor = asyncio.create_task(container.monitor.run(stop, interval=3600))
    try:
        await asyncio.sleep(0.05)  # its first tick: batch 1 is running, nothing to do
        assert (await rollout(client, rid))["status"] == "in_progress"
        await device.apply_target()
        status = None
        for _ in range(300):
            status = (await rollout(client, rid))["status"]
            if status == "completed":
                break
            await asyncio.sleep(0.01)
        assert status == "completed"  # long before the hour-long interval
    finally:
        stop.set()
        container.waker.wake()
        await asyncio.wait_for(monitor, 10)
