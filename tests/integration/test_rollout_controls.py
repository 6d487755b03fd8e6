"""Operator controls of a rollout, driven end to end with scripted devices and a manual clock:
approve and reject a manual rollout, promote batch by batch, pause and resume, promote past the
delay (never past unfinished devices or the failure gate), cancel (putting back what has not
started), retry the failed devices, and the 409 each control answers where it does not apply."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.conftest import acting
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


async def control(
    client: httpx.AsyncClient, rollout_id: str, name: str, *, by: str | None = None, **body: Any
) -> httpx.Response:
    """The control ``name``, as user ``by`` (an operator) or else as the admin token."""
    headers = await acting(client, by) if by else None
    url = f"/api/v1/rollouts/{rollout_id}/{name}"
    return await client.post(url, json=body or None, headers=headers)


async def applied(
    client: httpx.AsyncClient, rollout_id: str, name: str, *, by: str | None = None, **body: Any
) -> Any:
    response = await control(client, rollout_id, name, by=by, **body)
    assert response.status_code == 200, response.text
    return response.json()


async def targets(client: httpx.AsyncClient, uuids: list[str]) -> set[str]:
    return {await target_image(client, uuid) for uuid in uuids}


async def events_of(client: httpx.AsyncClient, rollout_id: str, kind: str) -> list[Any]:
    response = await client.get(f"/api/v1/rollouts/{rollout_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["event_type"] == kind]


# --- manual strategy: approve, reject, promote each batch -----------------------------------


async def test_a_manual_rollout_waits_for_approval_then_starts_batch_one_naming_who_approved(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, update_strategy="manual", batch_delay_minutes=30)
    devices = await fleet_of(client, 10)
    rid = await push(client)

    detail = await rollout(client, rid)
    assert detail["status"] == "awaiting_approval" and detail["current_batch"] == 0
    clock.advance(timedelta(hours=3))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "awaiting_approval" and detail["current_batch"] == 0
    assert await targets(client, list(devices)) == {OLD}
    assert {r["status"] for r in (await device_rows(client, rid)).values()} == {"pending"}

    detail = await applied(client, rid, "approve", by="alice", note="release 2.0.1 signed off")
    assert detail["status"] == "in_progress" and detail["current_batch"] == 1
    first = await batch_devices(client, rid, 1)
    assert first == ["dev-00"]
    assert await targets(client, first) == {NEW}
    assert await targets(client, [u for u in devices if u not in first]) == {OLD}
    [approved] = await events_of(client, rid, "rollout_approved")
    assert "alice" in approved["message"]
    assert approved["event_data"]["by"] == "alice"
    assert approved["event_data"]["note"] == "release 2.0.1 signed off"
    assert await events_of(client, rid, "batch_started")


async def test_rejecting_a_manual_rollout_cancels_it_and_leaves_every_target_alone(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, update_strategy="manual")
    devices = await fleet_of(client, 5)
    rid = await push(client)

    detail = await applied(client, rid, "reject", by="bob", note="wrong build")
    assert detail["status"] == "cancelled" and detail["completed_at"]
    assert detail["current_batch"] == 0
    assert {r["status"] for r in (await device_rows(client, rid)).values()} == {"skipped"}
    assert await targets(client, list(devices)) == {OLD}
    [rejected] = await events_of(client, rid, "rollout_rejected")
    assert "bob" in rejected["message"] and rejected["event_data"]["by"] == "bob"
    clock.advance(timedelta(hours=1))
    await tick(container)
    assert (await rollout(client, rid))["status"] == "cancelled"
    assert await targets(client, list(devices)) == {OLD}
    assert not await events_of(client, rid, "batch_started")


async def test_approve_each_batch_holds_the_next_batch_past_the_delay_until_promoted(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client,
        update_strategy="manual",
        approve_each_batch=True,
        batch_delay_minutes=30,
        soak_seconds=60,
        batch_percentages=[20, 60, 100],
    )
    devices = await fleet_of(client, 10)
    rid = await push(client)
    await applied(client, rid, "approve", by="carol")
    for uuid in await batch_devices(client, rid, 1):
        assert await devices[uuid].apply_target() == NEW
    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["batches"][0]["counts"] == {"completed": 2}

    clock.advance(timedelta(hours=2))  # far past the 30-minute delay
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "in_progress" and detail["current_batch"] == 1
    second = await batch_devices(client, rid, 2)
    assert len(second) == 4 and await targets(client, second) == {OLD}

    detail = await applied(client, rid, "promote", by="carol", note="batch 1 looks fine")
    assert detail["current_batch"] == 2
    assert await targets(client, second) == {NEW}
    assert await targets(client, await batch_devices(client, rid, 3)) == {OLD}
    [promoted] = await events_of(client, rid, "rollout_promoted")
    assert promoted["event_data"]["by"] == "carol" and promoted["event_data"]["batch"] == 2


# --- pause and resume -----------------------------------------------------------------------


async def test_a_paused_rollout_starts_no_batch_but_lets_updating_devices_finish(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=30, soak_seconds=60, batch_percentages=[20, 60, 100])
    devices = await fleet_of(client, 10)
    rid = await push(client)
    early, late = await batch_devices(client, rid, 1)
    await devices[early].apply_target()
    assert (await device_rows(client, rid))[early]["status"] == "health_checking"

    detail = await applied(client, rid, "pause", by="dave", note="watching the metrics")
    assert detail["status"] == "paused" and detail["auto_paused"] is False
    assert detail["paused_at"]
    # a device told to update before the pause still goes through every step
    assert await devices[late].target_image() == NEW
    await devices[late].report(NEW, "pulling")
    assert (await device_rows(client, rid))[late]["status"] == "pulling"
    await devices[late].report(NEW, "running")
    assert (await device_rows(client, rid))[late]["status"] == "health_checking"
    clock.advance(timedelta(seconds=61))
    await tick(container)
    rows = await device_rows(client, rid, batch=1)
    assert {r["status"] for r in rows.values()} == {"completed"}

    clock.advance(timedelta(hours=2))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "paused" and detail["current_batch"] == 1
    second = await batch_devices(client, rid, 2)
    assert await targets(client, second) == {OLD}
    assert len(await events_of(client, rid, "batch_started")) == 1

    detail = await applied(client, rid, "resume", by="dave")
    assert detail["status"] == "in_progress" and detail["resumed_at"]
    assert detail["current_batch"] == 2
    assert await targets(client, second) == {NEW}
    [paused] = await events_of(client, rid, "rollout_paused")
    assert paused["event_data"]["auto"] is False and paused["event_data"]["by"] == "dave"
    assert paused["event_data"]["note"] == "watching the metrics"
    [resumed] = await events_of(client, rid, "rollout_resumed")
    assert resumed["event_data"]["by"] == "dave"


async def test_an_automatic_pause_is_marked_auto_and_a_manual_one_is_not(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=30, soak_seconds=60, max_retries=0)
    devices = await fleet_of(client, 10)
    rid = await push(client)
    [first] = await batch_devices(client, rid, 1)
    await devices[first].apply_target("exited")  # 1 of 1 finished failed: 100% > 20%
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "paused" and detail["auto_paused"] is True
    [auto] = await events_of(client, rid, "rollout_paused")
    assert auto["event_data"]["auto"] is True

    again = await control(client, rid, "pause", by="erin")
    assert again.status_code == 409
    assert "cannot pause a rollout that is paused" in again.json()["error"]

    detail = await applied(client, rid, "resume", by="erin", force=True)
    assert detail["status"] == "in_progress" and detail["auto_paused"] is False
    detail = await applied(client, rid, "pause", by="erin")
    assert detail["status"] == "paused" and detail["auto_paused"] is False
    manual = (await events_of(client, rid, "rollout_paused"))[-1]
    assert manual["event_data"]["auto"] is False and manual["event_data"]["by"] == "erin"
    clock.advance(timedelta(hours=1))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "paused" and detail["auto_paused"] is False
    assert detail["current_batch"] == 1


# --- promote ----------------------------------------------------------------------------------


async def test_promote_skips_the_delay_but_never_unfinished_devices_or_the_last_batch(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, batch_delay_minutes=30, soak_seconds=60, batch_percentages=[20, 60, 100])
    devices = await fleet_of(client, 10)
    rid = await push(client)
    for uuid in await batch_devices(client, rid, 1):
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    assert (await rollout(client, rid))["current_batch"] == 1  # the 30-minute delay runs

    detail = await applied(client, rid, "promote", by="heidi")
    assert detail["current_batch"] == 2  # at once, 29 minutes early
    second = await batch_devices(client, rid, 2)
    assert await targets(client, second) == {NEW}
    [promoted] = await events_of(client, rid, "rollout_promoted")
    assert promoted["event_data"] == {"by": "heidi", "note": None, "batch": 2}

    refused = await control(client, rid, "promote", by="heidi")
    assert refused.status_code == 409
    assert "batch 2 still has 4 devices not finished" in refused.json()["error"]
    third = await batch_devices(client, rid, 3)
    assert (await rollout(client, rid))["current_batch"] == 2
    assert await targets(client, third) == {OLD}

    for uuid in second:
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await applied(client, rid, "promote")
    assert detail["current_batch"] == 3 and await targets(client, third) == {NEW}
    last = await control(client, rid, "promote")
    assert last.status_code == 409 and "batch 3 is the last" in last.json()["error"]


async def test_promote_is_refused_while_the_failure_gate_is_tripped(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(
        client,
        batch_delay_minutes=30,
        max_retries=0,
        health_check_enabled=False,
        batch_percentages=[20, 60, 100],
    )
    devices = await fleet_of(client, 10)
    rid = await push(client)
    bad, good = await batch_devices(client, rid, 1)
    await devices[bad].apply_target("exited")
    await devices[good].apply_target()
    rows = await device_rows(client, rid, batch=1)
    assert (rows[bad]["status"], rows[good]["status"]) == ("failed", "completed")
    assert (await rollout(client, rid))["status"] == "in_progress"  # no tick yet

    refused = await control(client, rid, "promote", by="ivan")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert "50.0%" in error and "failure gate" in error
    assert (await rollout(client, rid))["current_batch"] == 1
    assert await targets(client, await batch_devices(client, rid, 2)) == {OLD}
    assert not await events_of(client, rid, "rollout_promoted")

    await tick(container)
    assert (await rollout(client, rid))["status"] == "paused"
    paused = await control(client, rid, "promote", by="ivan")
    assert paused.status_code == 409
    assert "cannot promote a rollout that is paused" in paused.json()["error"]


# --- cancel -----------------------------------------------------------------------------------


async def test_cancel_leaves_a_device_confirmed_healthy_on_the_new_image(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, soak_seconds=60, batch_percentages=[30, 60, 100])
    devices = await fleet_of(client, 10)
    rid = await push(client)
    healthy, unjudged, _ = await batch_devices(client, rid, 1)
    await devices[healthy].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    await devices[unjudged].apply_target()
    rows = await device_rows(client, rid)
    assert (rows[healthy]["status"], rows[unjudged]["status"]) == ("completed", "health_checking")

    await applied(client, rid, "cancel")
    rows = await device_rows(client, rid)
    assert (rows[healthy]["status"], rows[unjudged]["status"]) == ("completed", "skipped")
    assert await target_image(client, healthy) == NEW
    assert await target_image(client, unjudged) == OLD


async def test_cancel_skips_what_has_not_started_and_puts_back_what_is_not_confirmed_healthy(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, soak_seconds=60, batch_percentages=[30, 60, 100])
    devices = await fleet_of(client, 10)
    rid = await push(client)
    running, pulling, waiting = await batch_devices(client, rid, 1)
    await devices[running].apply_target()
    await devices[pulling].report(NEW, "pulling")
    rows = await device_rows(client, rid)
    assert [rows[u]["status"] for u in (running, pulling, waiting)] == [
        "health_checking",
        "pulling",
        "scheduled",
    ]
    later = sorted(u for u in devices if rows[u]["batch_number"] > 1)

    detail = await applied(client, rid, "cancel", by="frank", note="bad build")
    assert detail["status"] == "cancelled" and detail["completed_at"]
    assert "frank" in detail["error_message"]
    rows = await device_rows(client, rid)
    assert {rows[u]["status"] for u in later} == {"skipped"}
    assert rows[pulling]["status"] == rows[waiting]["status"] == "skipped"
    # not confirmed healthy, whether on the new image yet or not: back to where they were
    assert rows[running]["status"] == "skipped"
    assert await targets(client, [running, pulling, waiting]) == {OLD}
    assert await targets(client, later) == {OLD}

    [cancelled] = await events_of(client, rid, "rollout_cancelled")
    assert "frank" in cancelled["message"]
    assert cancelled["event_data"]["by"] == "frank"
    assert cancelled["event_data"]["note"] == "bad build"
    assert cancelled["event_data"]["reverted"] == 3
    reverted = {e["device_uuid"] for e in await events_of(client, rid, "rollback_triggered")}
    assert reverted == {running, pulling, waiting}

    clock.advance(timedelta(hours=2))
    await tick(container)
    assert (await rollout(client, rid))["status"] == "cancelled"
    assert await targets(client, later + [running, pulling, waiting]) == {OLD}
    assert len(await events_of(client, rid, "batch_started")) == 1


# --- retry-failed -----------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "concluded"), [(3, "failed"), (5, "completed")])
async def test_retry_failed_gives_timed_out_devices_the_new_image_again_and_reopens_the_rollout(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, size: int, concluded: str
) -> None:
    await policy(
        client, staged_batches=1, max_retries=1, update_timeout_minutes=10, soak_seconds=60
    )
    devices = await fleet_of(client, size)
    rid = await push(client)
    await tick(container)  # the update timers start: every device is online
    silent, *healthy = sorted(devices)
    for uuid in healthy:
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    clock.advance(timedelta(minutes=10))
    await tick(container)
    row = (await device_rows(client, rid))[silent]
    assert row["status"] == "failed" and row["retry_count"] == 0
    assert await devices[silent].target_image() == OLD  # rolled back
    await devices[silent].report(OLD)
    assert (await device_rows(client, rid))[silent]["status"] == "rolled_back"
    detail = await rollout(client, rid)
    assert detail["status"] == concluded and detail["completed_at"]

    detail = await applied(client, rid, "retry-failed", by="gina", note="registry was down")
    assert detail["status"] == "in_progress"
    assert detail["completed_at"] is None and detail["error_message"] is None
    row = (await device_rows(client, rid))[silent]
    assert row["status"] == "scheduled" and row["retry_count"] == 1
    service = (await devices[silent].target())["1001"]["services"][0]
    assert service["imageName"] == NEW
    assert service["config"]["labels"]["io.fleetwave.attempt"] == "1"
    [requested] = await events_of(client, rid, "retry_requested")
    assert requested["event_data"]["by"] == "gina" and requested["event_data"]["devices"] == 1

    await devices[silent].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "completed"
    assert detail["healthy_devices"] == size and detail["failure_rate"] == 0.0
    again = await control(client, rid, "retry-failed")
    assert again.status_code == 409 and "retries left" in again.json()["error"]


async def test_retry_failed_is_refused_when_no_failed_device_has_retries_left(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, staged_batches=1, max_retries=0, health_check_enabled=False)
    devices = await fleet_of(client, 2)
    rid = await push(client)
    bad, good = sorted(devices)
    await devices[bad].apply_target("exited")
    await devices[bad].report(OLD)
    await devices[good].apply_target()
    await tick(container)
    detail = await rollout(client, rid)
    assert detail["status"] == "failed" and detail["rolled_back_devices"] == 1

    refused = await control(client, rid, "retry-failed", by="gina")
    assert refused.status_code == 409
    assert "no failed device of this rollout has retries left" in refused.json()["error"]
    detail = await rollout(client, rid)
    assert detail["status"] == "failed" and detail["completed_at"]
    assert (await device_rows(client, rid))[bad]["status"] == "rolled_back"
    assert await target_image(client, bad) == OLD
    assert not await events_of(client, rid, "retry_requested")


# --- where a control does not apply -----------------------------------------------------------

CONTROLS = ("approve", "reject", "pause", "resume", "cancel", "promote", "retry-failed")


async def assert_refused(
    client: httpx.AsyncClient, rollout_id: str, status: str, controls: tuple[str, ...]
) -> None:
    for name in controls:
        response = await control(client, rollout_id, name, by="zoe")
        assert response.status_code == 409, (name, status, response.text)
        assert f"cannot {name} a rollout that is {status}" in response.json()["error"], name
        assert (await rollout(client, rollout_id))["status"] == status


async def trigger(client: httpx.AsyncClient, image: str, strategy: str) -> str:
    response = await client.post(
        "/api/v1/images/trigger-update", json={"image": image, "strategy": strategy}
    )
    assert response.status_code == 200, response.text
    rollout_id: str = response.json()["rollout_id"]
    assert rollout_id
    return rollout_id


async def test_each_control_answers_409_naming_the_status_where_it_does_not_apply(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, staged_batches=1, health_check_enabled=False)
    devices = await fleet_of(client, 2)

    rid = await trigger(client, NEW, "manual")
    assert (await rollout(client, rid))["status"] == "awaiting_approval"
    await assert_refused(
        client, rid, "awaiting_approval", ("pause", "resume", "promote", "retry-failed")
    )
    await applied(client, rid, "approve")
    await assert_refused(client, rid, "in_progress", ("approve", "reject", "resume"))
    await applied(client, rid, "pause")
    await assert_refused(client, rid, "paused", ("approve", "reject", "pause", "promote"))
    await applied(client, rid, "resume")
    for device in devices.values():
        await device.apply_target()
    await tick(container)
    assert (await rollout(client, rid))["status"] == "completed"
    await assert_refused(
        client, rid, "completed", ("approve", "reject", "pause", "resume", "cancel", "promote")
    )

    later = await trigger(client, "iotistic/myapp:v2.0.2", "scheduled")
    assert (await rollout(client, later))["status"] == "scheduled"
    await assert_refused(
        client, later, "scheduled", ("approve", "reject", "resume", "promote", "retry-failed")
    )
    await applied(client, later, "cancel")
    await assert_refused(client, later, "cancelled", CONTROLS)


async def test_controls_answer_404_for_an_unknown_rollout_and_422_for_an_unknown_control(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, update_strategy="manual")
    await fleet_of(client, 1)
    rid = await push(client)
    for name in CONTROLS:
        missing = await control(client, "no-such-rollout", name)
        assert missing.status_code == 404, (name, missing.text)
        assert "no-such-rollout" in missing.json()["error"]
    unknown = await control(client, rid, "explode")
    assert unknown.status_code == 422, unknown.text
    assert "control" in unknown.json()["error"]
    assert (await rollout(client, rid))["status"] == "awaiting_approval"
    invalid = await client.post(f"/api/v1/rollouts/{rid}/approve", json={"who": "mallory"})
    assert invalid.status_code == 422, invalid.text
    assert (await rollout(client, rid))["status"] == "awaiting_approval"
