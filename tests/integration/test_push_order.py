"""An older push never undoes a newer one: when tags are versions, the newest one rolls out
whatever order the pushes arrive and are planned in; a push older than the version rolling
out (or than the devices run) is recorded as ignored, with the reason. Tags that are not
versions keep "the latest push wins". An operator rolls back on purpose with ``force``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from tests.conftest import admin_client
from tests.integration.pipeline import docker_hub_push, fleet, policy, rollouts, target_image
from tests.integration.replicas import Replica
from tests.integration.webhooks import deliveries

TEN = [f"v{n}" for n in range(6, 16)]


@pytest.fixture
async def unplanned(settings: Settings, clock: ManualClock) -> AsyncIterator[Container]:
    """The application answering webhooks at once and leaving their plans to the monitor."""
    db = Database(settings.resolved_database_url)
    yield build(settings.model_copy(update={"webhook_answer_wait": 0}), clock, db)
    await db.dispose()


@pytest.fixture
async def monitor_client(unplanned: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(unplanned) as http:
        yield http


async def push(client: httpx.AsyncClient, tag: str, at: int = 1) -> dict[str, Any]:
    answer = await docker_hub_push(client, tag, pushed_at=at)
    assert answer.status_code in (200, 202), answer.text
    body: dict[str, Any] = answer.json()
    return body


async def trigger(client: httpx.AsyncClient, image: str, **fields: Any) -> httpx.Response:
    return await client.post("/api/v1/images/trigger-update", json={"image": image} | fields)


async def unfinished(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return [r for r in await rollouts(client) if r["status"] not in ("cancelled", "completed")]


async def reasons(client: httpx.AsyncClient) -> dict[str, tuple[str, str | None]]:
    return {d["tag"]: (d["outcome"], d["reason"]) for d in await deliveries(client)}


async def targets(client: httpx.AsyncClient, uuids: list[str]) -> set[str]:
    return {await target_image(client, uuid) for uuid in uuids}


# --- webhooks: the newest version wins --------------------------------------------------------


async def test_ten_pushes_at_once_on_two_replicas_end_with_the_newest_rolling_out(
    client: httpx.AsyncClient, container: Container, replica: Replica
) -> None:
    await policy(client, update_strategy="auto")
    uuids = await fleet(client, 4, image="iotistic/myapp:v5")
    order = random.Random(12).sample(TEN, len(TEN))
    apps = [client, replica.client]

    await asyncio.gather(*(push(apps[at % 2], tag, at) for at, tag in enumerate(order)))
    await asyncio.gather(container.webhooks.settle(), replica.container.webhooks.settle())

    [running] = await unfinished(client)
    assert (running["new_tag"], running["status"], running["total_devices"]) == (
        "v15",
        "in_progress",
        4,
    )
    assert await targets(client, uuids) == {"iotistic/myapp:v15"}
    recorded = await reasons(client)
    assert set(recorded) == set(TEN)
    assert recorded["v15"][0] == "rollout_created"
    for tag, (outcome, reason) in recorded.items():
        assert outcome in ("rollout_created", "ignored"), (tag, outcome, reason)
        if outcome == "ignored":
            assert reason is not None and f"{tag} is older than" in reason


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(TEN, id="oldest first"),
        pytest.param(TEN[::-1], id="newest first"),
        pytest.param(random.Random(3).sample(TEN, len(TEN)), id="shuffled"),
    ],
)
async def test_pushes_planned_by_the_monitor_in_any_order_end_on_the_newest(
    order: list[str], monitor_client: httpx.AsyncClient, unplanned: Container
) -> None:
    client = monitor_client
    await policy(client)  # staged: later batches still run v5 when the next push is planned
    uuids = await fleet(client, 6, image="iotistic/myapp:v5")
    for at, tag in enumerate(order):
        assert (await push(client, tag, at))["outcome"] == "pending"

    await unplanned.monitor.tick()

    [running] = await unfinished(client)
    assert (running["new_tag"], running["total_devices"]) == ("v15", 6)
    assert await targets(client, uuids) == {"iotistic/myapp:v5", "iotistic/myapp:v15"}
    superseded = [r for r in await rollouts(client) if r["status"] == "cancelled"]
    assert all(r["superseded_by"] for r in superseded)
    # only pushes newer than every one planned before them made a rollout
    created = [t for t, (outcome, _) in (await reasons(client)).items() if outcome != "ignored"]
    newest_so_far = [t for i, t in enumerate(order) if int(t[1:]) > max(
        (int(s[1:]) for s in order[:i]), default=0
    )]  # fmt: skip
    assert sorted(created) == sorted(newest_so_far)


async def test_an_older_push_after_a_newer_one_is_ignored_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    await policy(client)  # staged: the rollout of v30 is still going on
    uuids = await fleet(client, 6, image="iotistic/myapp:v28")
    v30 = await push(client, "v30", 1)
    assert v30["outcome"] == "rollout_created"

    v29 = await push(client, "v29", 2)

    assert (v29["outcome"], v29["rollout_id"]) == ("ignored", None)
    expected = (
        f"iotistic/myapp:v29 is older than v30, which is rolling out "
        f"(rollout {v30['rollout_id']}, in progress)"
    )
    assert v29["message"] == expected
    assert (await reasons(client))["v29"] == ("ignored", expected)
    [running] = await unfinished(client)
    assert (running["rollout_id"], running["new_tag"]) == (v30["rollout_id"], "v30")
    assert await targets(client, uuids) <= {"iotistic/myapp:v28", "iotistic/myapp:v30"}


async def test_a_push_older_than_what_the_devices_run_downgrades_none_of_them(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, update_strategy="auto")
    newer = await fleet(client, 2, image="iotistic/myapp:v30", prefix="newer")

    v29 = await push(client, "v29")

    assert v29["outcome"] == "ignored"
    assert v29["message"] == (
        "no device takes iotistic/myapp:v29: runs v30, which is newer than v29 (2 devices)"
    )
    assert await rollouts(client) == []
    assert await targets(client, newer) == {"iotistic/myapp:v30"}

    older = await fleet(client, 1, image="iotistic/myapp:v28", prefix="older")
    mixed = await push(client, "v29", 2)  # a fleet on both sides: only the older ones move
    assert (mixed["outcome"], mixed["affected_devices"]) == ("rollout_created", 1)
    assert await targets(client, older) == {"iotistic/myapp:v29"}
    assert await targets(client, newer) == {"iotistic/myapp:v30"}
    [rollout] = await rollouts(client)
    [kept] = rollout["filters_applied"]["excluded"]["running_newer_version"]
    assert kept["devices"] == newer


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("v30", "latest", id="a version then latest"),
        pytest.param("latest", "v1", id="latest then a version"),
        pytest.param("build-b", "build-a", id="neither a version"),
    ],
)
async def test_tags_that_are_not_versions_keep_the_latest_push_winning(
    client: httpx.AsyncClient, first: str, second: str
) -> None:
    await policy(client, update_strategy="auto")
    uuids = await fleet(client, 2, image="iotistic/myapp:stable")
    earlier = await push(client, first, 1)

    later = await push(client, second, 2)

    assert later["outcome"] == "rollout_created", later
    [running] = await unfinished(client)
    assert running["new_tag"] == second
    by_id = {r["rollout_id"]: r for r in await rollouts(client)}
    assert by_id[earlier["rollout_id"]]["superseded_by"] == later["rollout_id"]
    assert await targets(client, uuids) == {f"iotistic/myapp:{second}"}


# --- the operator: refused without force, a deliberate rollback with it ----------------------


async def test_triggering_an_older_version_than_is_rolling_out_is_refused_with_409(
    client: httpx.AsyncClient,
) -> None:
    uuids = await fleet(client, 3, image="iotistic/myapp:v28")
    v30 = (await trigger(client, "iotistic/myapp:v30", strategy="auto")).json()

    refused = await trigger(client, "iotistic/myapp:v29")

    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == (
        f"iotistic/myapp:v29 is older than v30, which is rolling out "
        f"(rollout {v30['rollout_id']}, in progress); "
        'send "force": true to roll back to iotistic/myapp:v29'
    )
    [running] = await rollouts(client)  # nothing written
    assert (running["rollout_id"], running["status"]) == (v30["rollout_id"], "in_progress")
    assert await targets(client, uuids) == {"iotistic/myapp:v30"}


async def test_a_forced_trigger_rolls_back_to_an_older_version(
    client: httpx.AsyncClient,
) -> None:
    uuids = await fleet(client, 3, image="iotistic/myapp:v28")
    v30 = (await trigger(client, "iotistic/myapp:v30", strategy="auto")).json()

    forced = await trigger(client, "iotistic/myapp:v29", strategy="auto", force=True)

    assert forced.status_code == 200, forced.text
    body = forced.json()
    assert (body["outcome"], body["affected_devices"]) == ("rollout_created", 3)
    by_id = {r["rollout_id"]: r for r in await rollouts(client)}
    assert by_id[v30["rollout_id"]]["superseded_by"] == body["rollout_id"]
    assert by_id[body["rollout_id"]]["filters_applied"]["forced"] is True
    assert await targets(client, uuids) == {"iotistic/myapp:v29"}


async def test_triggering_a_version_older_than_every_device_runs_needs_force(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, update_strategy="auto", semver_policy="minor")
    uuids = await fleet(client, 2, image="iotistic/myapp:v2.3.0")

    refused = await trigger(client, "iotistic/myapp:v2.2.0")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == (
        "no device takes iotistic/myapp:v2.2.0: runs v2.3.0, which is newer than v2.2.0 "
        '(2 devices); send "force": true to roll back to iotistic/myapp:v2.2.0'
    )
    assert await rollouts(client) == []

    forced = await trigger(client, "iotistic/myapp:v2.2.0", force=True)
    assert forced.status_code == 200 and forced.json()["affected_devices"] == 2
    [rollout] = await rollouts(client)
    assert (rollout["old_tag"], rollout["new_tag"]) == ("v2.3.0", "v2.2.0")
    assert await targets(client, uuids) == {"iotistic/myapp:v2.2.0"}


async def test_force_going_up_changes_nothing_and_a_later_older_push_is_still_ignored(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, update_strategy="auto")
    uuids = await fleet(client, 2, image="iotistic/myapp:v28")
    await trigger(client, "iotistic/myapp:v29", force=True)  # force changes nothing going up

    newer = await trigger(client, "iotistic/myapp:v31")
    assert newer.status_code == 200 and newer.json()["outcome"] == "rollout_created"

    older = await push(client, "v30")
    assert older["outcome"] == "ignored" and "v30 is older than v31" in older["message"]
    assert await targets(client, uuids) == {"iotistic/myapp:v31"}
