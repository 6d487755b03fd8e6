"""A device's own view of its rollouts: the history API (newest first, paged in SQL, 404 for
an unknown device), its latest events (``/api/v1/events?device_uuid=&tail=``), and the one
device retry, with the 409 that says why wherever it does not apply."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.conftest import acting
from tests.integration.engine import NEW, OLD, device_rows, fleet_of, push, rollout, tick
from tests.integration.pipeline import policy, target_image


async def history(client: httpx.AsyncClient, uuid: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/api/v1/devices/{uuid}/rollouts", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def retry(
    client: httpx.AsyncClient, rid: str, uuid: str, *, by: str | None = None, **body: Any
) -> httpx.Response:
    """The retry of one device, as operator ``by`` or else as the admin token."""
    headers = await acting(client, by) if by else None
    url = f"/api/v1/rollouts/{rid}/devices/{uuid}/retry"
    return await client.post(url, json=body or None, headers=headers)


async def test_a_devices_rollouts_come_newest_first_with_its_part_in_each_a_page_at_a_time(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, staged_batches=1, health_check_enabled=False, max_retries=0)
    devices = await fleet_of(client, 2)
    first = await push(client, "v2.0.1")
    assert await devices["dev-00"].apply_target() == NEW
    await devices["dev-01"].apply_target("exited")
    await devices["dev-01"].report(OLD)  # back on its old image after the rollback
    clock.advance(timedelta(seconds=61))
    await tick(container)
    second = await push(client, "v2.0.2")

    newest = await history(client, "dev-01", limit=1)
    assert newest["total"] == 2 and newest["limit"] == 1
    [row] = newest["items"]
    assert row["rollout_id"] == second and row["status"] == "scheduled"
    assert row["rollout_status"] == "in_progress" and row["batch_number"] == 1
    assert (row["old_image_tag"], row["new_image_tag"]) == ("v2.0.0", "v2.0.2")
    assert row["scheduled_at"] is not None and row["update_completed_at"] is None

    older = await history(client, "dev-01", limit=1, cursor=newest["next_cursor"])
    [row] = older["items"]
    assert older["next_cursor"] is None
    assert row["rollout_id"] == first and row["status"] == "rolled_back"
    assert row["image_name"] == "iotistic/myapp" and row["strategy"] == "staged"
    assert row["old_images"] == {"1001/app": OLD} and row["new_image"] == NEW
    assert row["error_message"] and row["rollback_requested_at"] and row["rolled_back_at"]
    assert row["current_image_tag"] == "v2.0.0"

    healthy = (await history(client, "dev-00"))["items"]
    assert [r["rollout_id"] for r in healthy] == [second, first]
    assert healthy[1]["status"] == "completed" and healthy[1]["update_completed_at"]
    assert healthy[0]["old_image_tag"] == "v2.0.1"


async def test_a_device_in_no_rollout_has_an_empty_history_and_an_unknown_one_a_404(
    client: httpx.AsyncClient,
) -> None:
    await fleet_of(client, 1)
    assert await history(client, "dev-00") == {
        "items": [],
        "total": 0,
        "limit": 20,
        "next_cursor": None,
    }
    missing = await client.get("/api/v1/devices/nobody/rollouts")
    assert missing.status_code == 404 and missing.json()["error"] == "device nobody not found"
    bad = await client.get("/api/v1/devices/dev-00/rollouts", params={"cursor": 999})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "cursor"
    too_many = await client.get("/api/v1/devices/dev-00/rollouts", params={"limit": 501})
    assert too_many.status_code == 422


async def test_a_devices_latest_events_come_from_the_event_log_with_tail(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, staged_batches=1, health_check_enabled=False, max_retries=0)
    devices = await fleet_of(client, 2)
    await push(client)
    await devices["dev-01"].apply_target("exited")
    await devices["dev-01"].report(OLD)

    everything = await client.get("/api/v1/events", params={"device_uuid": "dev-01"})
    mine = everything.json()["items"]
    assert len(mine) >= 3 and {e["device_uuid"] for e in mine} == {"dev-01"}
    latest = await client.get("/api/v1/events", params={"device_uuid": "dev-01", "tail": 2})
    assert latest.status_code == 200, latest.text
    assert latest.json()["items"] == mine[-2:]
    assert latest.json()["next_cursor"] == mine[-1]["id"]
    both = await client.get("/api/v1/events", params={"tail": 2, "limit": 5})
    assert both.status_code == 422 and "limit or tail" in both.text


async def failed_alone(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, size: int
) -> tuple[str, str, list[str]]:
    """A rollout where one device never applied its target: it timed out, was sent back and
    runs its old image again (rolled back); the others completed."""
    await policy(
        client, staged_batches=1, max_retries=1, update_timeout_minutes=10, soak_seconds=60
    )
    devices = await fleet_of(client, size)
    rid = await push(client)
    await tick(container)
    silent, *healthy = sorted(devices)
    for uuid in healthy:
        await devices[uuid].apply_target()
    clock.advance(timedelta(seconds=61))
    await tick(container)
    clock.advance(timedelta(minutes=10))
    await tick(container)
    await devices[silent].report(OLD)
    assert (await device_rows(client, rid))[silent]["status"] == "rolled_back"
    return rid, silent, healthy


async def test_one_rolled_back_device_is_retried_alone_and_the_rollout_reopens(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    rid, silent, healthy = await failed_alone(client, container, clock, size=5)
    assert (await rollout(client, rid))["status"] == "completed"

    answer = await retry(client, rid, silent, by="hana", note="it was unplugged")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "in_progress" and answer.json()["completed_at"] is None
    row = (await device_rows(client, rid))[silent]
    assert row["status"] == "scheduled" and row["retry_count"] == 1
    [mine] = (await history(client, silent))["items"]
    assert mine["status"] == "scheduled" and mine["rollback_requested_at"] is None
    await tick(container)  # the monitor gives it the new image again
    assert await target_image(client, silent) == NEW
    assert {await target_image(client, uuid) for uuid in healthy} == {NEW}
    events = (await client.get("/api/v1/events", params={"device_uuid": silent})).json()
    [requested] = [e for e in events["items"] if e["event_type"] == "retry_requested"]
    assert requested["rollout_id"] == rid and "retried by hana" in requested["message"]
    assert requested["event_data"]["note"] == "it was unplugged"

    again = await retry(client, rid, silent)
    assert again.status_code == 409
    assert again.json()["error"] == (
        f"device {silent} cannot be retried: it is scheduled; only a failed or rolled-back "
        "device can be retried"
    )
    completed = await retry(client, rid, healthy[0])
    assert completed.status_code == 409 and "it is completed" in completed.json()["error"]


async def test_a_device_retry_is_refused_where_it_does_not_apply(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    rid, silent, _ = await failed_alone(client, container, clock, size=3)
    stranger = await retry(client, rid, "nobody-00")
    assert stranger.status_code == 404
    assert stranger.json()["error"] == f"device nobody-00 is not part of rollout {rid}"
    assert (await retry(client, "no-such-rollout", silent)).status_code == 404

    undone = await client.post(f"/api/v1/rollouts/{rid}/rollback-all")
    assert undone.status_code == 200 and undone.json()["status"] == "rolled_back"
    refused = await retry(client, rid, silent)
    assert refused.status_code == 409
    assert "the rollout is rolled_back" in refused.json()["error"]
    row = (await device_rows(client, rid))[silent]
    assert row["status"] == "rolled_back" and row["retry_count"] == 0
    assert await target_image(client, silent) == OLD


async def test_a_device_without_retries_left_is_not_retried(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client, staged_batches=1, max_retries=0, health_check_enabled=False)
    devices = await fleet_of(client, 2)
    rid = await push(client)
    await devices["dev-00"].apply_target("exited")
    await devices["dev-00"].report(OLD)
    refused = await retry(client, rid, "dev-00")
    assert refused.status_code == 409
    assert refused.json()["error"].endswith("its rollout allows no retries (max_retries 0)")
    events = (await client.get("/api/v1/events", params={"device_uuid": "dev-00"})).json()
    assert "retry_requested" not in {e["event_type"] for e in events["items"]}
