"""Rollout figures that tell the truth, over HTTP on both databases: a rollout completed with
rolled-back devices says so, a mixed fleet shows every old image, offline devices are named in
``waiting_for`` and beside their rows, a pause says who paused and why, and the rollouts list
filters and pages in SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.api import create_app
from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.conftest import ADMIN_TOKEN, acting
from tests.integration.engine import OLD, ScriptedDevice, device_rows, push, rollout, tick
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import policy

OLDER = "iotistic/myapp:v1.9.0"
TWO_BATCHES = {
    "update_strategy": "staged",
    "staged_batches": 2,
    "batch_percentages": [50, 100],
    "batch_delay_minutes": 0,
    "health_check_enabled": False,
    "soak_seconds": 0,
    "max_retries": 0,
    "max_failure_rate": 0.5,
}


async def mixed_fleet(
    client: httpx.AsyncClient, count: int, older: int
) -> dict[str, ScriptedDevice]:
    """``count`` online devices; the last ``older`` of them run an older image than the rest."""
    devices = {}
    for i in range(count):
        image = OLDER if i >= count - older else OLD
        device = await register_device(client, uuid=f"dev-{i:02}", apps=target_apps(image))
        devices[device["uuid"]] = ScriptedDevice(client, device)
        await devices[device["uuid"]].report(image)
    return devices


async def run_to_the_end(
    client: httpx.AsyncClient,
    container: Container,
    clock: ManualClock,
    rid: str,
    devices: dict[str, ScriptedDevice],
    crashing: set[str],
) -> dict[str, Any]:
    """Each device of the current batch applies its target (the crashing ones exit, then run
    their old image when sent back) until the rollout ends."""
    for _ in range(10):
        rows = await device_rows(client, rid)
        for uuid, row in rows.items():
            device = devices[uuid]
            if row["status"] == "scheduled":
                await device.apply_target("exited" if uuid in crashing else "running")
            elif row["status"] == "failed":
                await device.report(await device.target_image())  # its own old image
        clock.advance(timedelta(seconds=5))
        await tick(container)
        detail = await rollout(client, rid)
        if detail["status"] not in ("in_progress", "scheduled", "pending"):
            return detail
    raise AssertionError(f"the rollout did not end: {detail['status']}")


async def test_a_rollout_completed_with_rolled_back_devices_says_so_everywhere(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, **TWO_BATCHES)
    devices = await mixed_fleet(client, 10, older=3)
    rid = await push(client)
    detail = await run_to_the_end(client, container, clock, rid, devices, {"dev-01", "dev-08"})

    assert detail["status"] == "completed"  # under its 50 % bound: the status stays
    assert detail["outcome"] == "completed with 2 failures: 1 rolled back, 1 being rolled back"
    await devices["dev-08"].report(OLDER)  # the last one runs its own old image again
    detail = await rollout(client, rid)
    assert detail["failed_devices"] == 0 and detail["rolled_back_devices"] == 2
    assert detail["failures"] == 2
    assert detail["outcome"] == "completed with 2 failures, all rolled back"
    assert detail["progress_percentage"] == 100.0 and detail["finished_devices"] == 10
    assert detail["max_failure_rate"] == 0.5
    assert detail["old_images_spread"] == [
        {"tag": "v2.0.0", "devices": 7},
        {"tag": "v1.9.0", "devices": 3},
    ]
    assert detail["old_images_label"] == "v2.0.0 (7), v1.9.0 (3)"
    assert detail["waiting_for"] is None
    [listed] = (await client.get("/api/v1/rollouts")).json()["items"]
    for name in ("failures", "outcome", "old_images_spread", "progress_percentage"):
        assert listed[name] == detail[name], name


async def test_a_fleet_on_one_old_image_has_no_spread_label(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, **TWO_BATCHES)
    devices = await mixed_fleet(client, 4, older=0)
    rid = await push(client)
    detail = await run_to_the_end(client, container, clock, rid, devices, set())
    assert detail["outcome"] == "completed" and detail["failures"] == 0
    assert detail["old_images_spread"] == [{"tag": "v2.0.0", "devices": 4}]
    assert detail["old_images_label"] is None


async def test_offline_devices_are_named_in_waiting_for_and_beside_their_rows(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, **TWO_BATCHES)
    devices = await mixed_fleet(client, 10, older=0)
    rid = await push(client)
    first = sorted(
        uuid for uuid, row in (await device_rows(client, rid)).items() if row["batch_number"] == 1
    )
    detail = await rollout(client, rid)
    assert detail["waiting_for"] == "batch 1 has 5 devices not finished"

    clock.advance(timedelta(minutes=10))  # nobody polls for ten minutes…
    for uuid in first[:3]:  # …then three of the five come back
        await devices[uuid].report(OLD)
    detail = await rollout(client, rid)
    assert detail["waiting_for"] == "batch 1 has 5 devices not finished, 2 of them offline"
    rows = await device_rows(client, rid)
    assert [rows[u]["online"] for u in first] == [True, True, True, False, False]
    assert rows[first[4]]["last_seen_at"].startswith("2026-01-01T00:00:00")
    assert rows[first[0]]["last_seen_at"].startswith("2026-01-01T00:10:00")


async def test_a_paused_rollout_says_who_paused_it_and_why(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, **TWO_BATCHES)
    await mixed_fleet(client, 4, older=0)
    rid = await push(client)
    response = await client.post(
        f"/api/v1/rollouts/{rid}/pause",
        json={"note": "checking the canary"},
        headers=await acting(client, "alice"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["waiting_for"] == "paused by alice: checking the canary"
    [listed] = (await client.get("/api/v1/rollouts", params={"status": "paused"})).json()["items"]
    assert listed["waiting_for"] == "paused by alice: checking the canary"


async def test_the_failure_gate_judges_after_min_5_or_the_first_batch_by_default(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    created = await policy(client, **TWO_BATCHES)
    assert created["failure_rate_min_devices"] is None
    await mixed_fleet(client, 4, older=0)
    rid = await push(client)
    detail = await rollout(client, rid)
    assert detail["settings"]["failure_rate_min_devices"] == 2  # a first batch of 2
    explicit = await client.put(
        f"/api/v1/image-policies/{created['id']}",
        json=TWO_BATCHES | {"image_pattern": "iotistic/myapp:*", "failure_rate_min_devices": 1},
    )
    assert explicit.status_code == 200, explicit.text
    assert explicit.json()["failure_rate_min_devices"] == 1


# --- the list: filters and pages in SQL --------------------------------------------------------


async def three_rollouts(client: httpx.AsyncClient, clock: ManualClock) -> list[str]:
    """Three rollouts a day apart (each push supersedes the one before), newest last."""
    await policy(client, **TWO_BATCHES)
    await mixed_fleet(client, 4, older=0)
    rids = []
    for tag in ("v2.0.1", "v2.0.2", "v2.0.3"):
        rids.append(await push(client, tag))
        clock.advance(timedelta(days=1))
    return rids


async def listed(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/rollouts", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_the_rollouts_list_pages_by_offset_with_a_total(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    rids = await three_rollouts(client, clock)
    page = await listed(client, limit=2)
    assert [r["rollout_id"] for r in page["items"]] == rids[::-1][:2]
    assert page["total"] == 3 and page["offset"] == 0 and page["next_cursor"] is not None
    page = await listed(client, limit=2, offset=2)
    assert [r["rollout_id"] for r in page["items"]] == [rids[0]]
    assert page["total"] == 3 and page["next_cursor"] is None
    by_cursor = await listed(client, limit=2, cursor=(await listed(client, limit=2))["next_cursor"])
    assert [r["rollout_id"] for r in by_cursor["items"]] == [rids[0]]


async def test_the_rollouts_list_filters_by_status_image_and_created_date(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    rids = await three_rollouts(client, clock)
    running = await listed(client, status="in_progress")
    assert [r["rollout_id"] for r in running["items"]] == [rids[2]] and running["total"] == 1
    assert (await listed(client, image="iotistic/other"))["total"] == 0
    assert (await listed(client, image="iotistic/myapp"))["total"] == 3
    second_day = await listed(client, created_from="2026-01-02", created_until="2026-01-03")
    assert [r["rollout_id"] for r in second_day["items"]] == [rids[1]]
    since = await listed(client, created_from="2026-01-02T00:00:00Z")
    assert since["total"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"created_from": "yesterday"}, "created_from"),
        ({"offset": -1}, "offset"),
        ({"status": "done"}, "status"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_it(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/v1/rollouts", params=params)
    assert response.status_code == 422
    assert field in response.text


# --- the dashboard's list and page ----------------------------------------------------------


@asynccontextmanager
async def dashboard(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """A logged-in dashboard session (cookies, no admin token)."""
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetwave.test") as session:
        answer = await session.post(
            "/ui/login", data={"token": ADMIN_TOKEN, "next": "/ui/rollouts"}
        )
        assert answer.status_code == 303
        yield session


async def test_the_dashboards_list_pages_keep_the_filters_and_a_bad_one_is_named(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    rids = await three_rollouts(client, clock)
    async with dashboard(container) as session:
        page = (await session.get("/ui/rollouts", params={"status": "cancelled"})).text
        assert "(2 matching)" in page
        assert all(f'data-rollout="{rid}"' in page for rid in rids[:2])
        assert f'data-rollout="{rids[2]}"' not in page
        assert 'data-refresh="/ui/rollouts/rows?status=cancelled"' in page
        rows = (await session.get("/ui/rollouts/rows", params={"until": "2026-01-01"})).text
        assert rows.count("data-rollout=") == 1 and f'data-rollout="{rids[0]}"' in rows
        for params, field in (
            ({"from": "monday"}, "from"),
            ({"until": "9999-12-31"}, "until"),
            ({"status": "done"}, "status"),
        ):
            refused = await session.get("/ui/rollouts", params=params)
            assert refused.status_code == 422 and field in refused.text


async def test_the_rollout_page_draws_its_chart_once_a_device_finished(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    await policy(client, **TWO_BATCHES)
    devices = await mixed_fleet(client, 4, older=1)
    rid = await push(client)
    async with dashboard(container) as session:
        page = (await session.get(f"/ui/rollouts/{rid}")).text
        assert "No device has finished yet." in page and "dockerhub webhook" in page
        await run_to_the_end(client, container, clock, rid, devices, {"dev-03"})
        page = (await session.get(f"/ui/rollouts/{rid}")).text
    assert '<svg class="chart" data-chart="failure-rate"' in page
    assert 'class="bound" data-bound="0.5"' in page
    assert "completed with 1 failure" in page
    assert "v2.0.0 <span" in page and "v1.9.0 <span" in page  # the old images' spread


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01"]
)
async def test_a_created_date_at_the_edge_of_time_is_answered_not_a_500(
    client: httpx.AsyncClient, moment: str
) -> None:
    for name in ("created_from", "created_until"):
        response = await client.get("/api/v1/rollouts", params={name: moment})
        assert response.status_code in (200, 422), response.text
