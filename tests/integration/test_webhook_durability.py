"""A webhook is answered once its pushes are recorded; the plan comes from the record.

With the answer's wait over (or none at all), a push is answered 202 "pending" and planned
after: by the answering process, or by the rollout monitor from the record. Deduplication and
superseding work as when the answer waited for the plan. (A real server killed with SIGKILL
right after answering: tests/e2e/test_webhook_durability.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, insert, select

from fleetwave.api import create_app
from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.rollouts.manager import UpdateOutcome
from fleetwave.settings import Settings
from fleetwave.store.db import Database, sync_url
from fleetwave.store.migrate import current_revision, downgrade, head_revision, upgrade
from fleetwave.store.tables import webhook_deliveries
from tests.conftest import ADMIN_TOKEN
from tests.integration.pipeline import docker_hub_push, fleet, policy, rollouts, target_image
from tests.integration.webhooks import deliver, deliveries, push_setup

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@asynccontextmanager
async def fleetwave(
    settings: Settings, clock: ManualClock, wait: float
) -> AsyncIterator[tuple[Container, httpx.AsyncClient]]:
    """The application with webhook answers waiting ``wait`` seconds for the plan."""
    db = Database(settings.resolved_database_url)
    container = build(settings.model_copy(update={"webhook_answer_wait": wait}), clock, db)
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://fleetwave.test",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            yield container, client
    finally:
        await container.webhooks.settle()
        await db.dispose()


def pending(answer: httpx.Response) -> int:
    """The delivery a 202 answer names, after checking that it is one."""
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["outcome"], body["rollout_id"], body["affected_devices"]) == ("pending", None, 0)
    assert [e["outcome"] for e in body["events"]] == ["pending"]
    delivery: int = body["delivery_id"]
    return delivery


async def outcomes(client: httpx.AsyncClient) -> list[tuple[str | None, str]]:
    """(tag, outcome) of every delivery recorded, oldest first."""
    return [(d["tag"], d["outcome"]) for d in reversed(await deliveries(client))]


# --- the answer ---------------------------------------------------------------------------


async def test_a_push_not_planned_within_the_wait_is_answered_202_and_planned_after(
    settings: Settings, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fleetwave(settings, clock, wait=0.01) as (container, client):
        await policy(client, update_strategy="auto")
        uuids = await fleet(client, 3)
        planning = asyncio.Event()
        plan = container.manager.plan

        async def slow_plan(*args: Any) -> tuple[UpdateOutcome, list[Any]]:
            await planning.wait()  # a plan longer than the answer's wait
            return await plan(*args)

        monkeypatch.setattr(container.manager, "plan", slow_plan)
        delivery = pending(await docker_hub_push(client, "v2.0.1"))
        [recorded] = await deliveries(client)
        assert (recorded["id"], recorded["outcome"], recorded["planned_at"]) == (
            delivery,
            "pending",
            None,
        )
        assert await rollouts(client) == []

        planning.set()  # the plan goes on after the answer
        await container.webhooks.settle()
        [planned] = await deliveries(client)
        [rollout] = await rollouts(client)
        assert (planned["outcome"], planned["rollout_id"]) == (
            "rollout_created",
            rollout["rollout_id"],
        )
        assert planned["planned_at"] is not None and rollout["total_devices"] == 3
        assert await target_image(client, uuids[0]) == "iotistic/myapp:v2.0.1"


async def test_a_push_planned_within_the_wait_is_answered_with_its_rollout(
    settings: Settings, clock: ManualClock
) -> None:
    async with fleetwave(settings, clock, wait=60) as (_, client):
        await policy(client, update_strategy="auto")
        await fleet(client, 2)
        answer = await docker_hub_push(client, "v2.0.1")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["outcome"], body["status"], body["affected_devices"]) == (
            "rollout_created",
            "in_progress",
            2,
        )
        assert "delivery_id" not in body  # the answer the plan always gave
        [delivery] = await deliveries(client)
        assert delivery["rollout_id"] == body["rollout_id"]


async def test_with_no_wait_the_push_is_answered_at_once_and_the_monitor_plans_it(
    settings: Settings, clock: ManualClock
) -> None:
    async with fleetwave(settings, clock, wait=0) as (container, client):
        await policy(client, update_strategy="auto")
        uuids = await fleet(client, 3)
        delivery = pending(await docker_hub_push(client, "v2.0.1"))
        assert await outcomes(client) == [("v2.0.1", "pending")]
        assert await target_image(client, uuids[0]) == "iotistic/myapp:v2.0.0"

        planned, *_ = await container.monitor.tick()  # then the rollout's own turn
        [rollout] = await rollouts(client)
        assert planned.rollout_id == rollout["rollout_id"]
        assert planned.events == [
            f"webhook delivery {delivery}: rollout {rollout['rollout_id']} created"
        ]
        assert await outcomes(client) == [("v2.0.1", "rollout_created")]
        assert await target_image(client, uuids[0]) == "iotistic/myapp:v2.0.1"
        assert rollout["triggered_by"] == "webhook:dockerhub"

        # planned once: the next tick has nothing to plan, a redelivery is a duplicate
        assert not any(
            m.startswith("webhook delivery")
            for a in await container.monitor.tick()
            for m in a.events
        )
        again = await docker_hub_push(client, "v2.0.1")
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
        assert len(await rollouts(client)) == 1


# --- deduplication and superseding, recorded before planned ---------------------------------


async def test_two_deliveries_of_one_push_recorded_before_either_is_planned_make_one_rollout(
    settings: Settings, clock: ManualClock
) -> None:
    async with fleetwave(settings, clock, wait=0) as (container, client):
        body, _ = await push_setup(client, "harbor")
        first = await deliver(client, "harbor", body)
        second = await deliver(client, "harbor", body)
        pending(first)
        assert second.status_code == 200 and second.json()["outcome"] == "duplicate"
        [recorded] = await deliveries(client)
        assert (recorded["outcome"], recorded["deliveries"]) == ("pending", 2)
        assert (
            container.telemetry.value("fleetwave_webhooks_deduplicated_total", provider="harbor")
            == 1
        )

        await container.monitor.tick()
        [rollout] = await rollouts(client)
        [planned] = await deliveries(client)
        assert (planned["outcome"], planned["rollout_id"], planned["deliveries"]) == (
            "rollout_created",
            rollout["rollout_id"],
            2,
        )


async def test_a_version_pushed_twice_before_either_is_planned_makes_one_rollout(
    settings: Settings, clock: ManualClock
) -> None:
    async with fleetwave(settings, clock, wait=0) as (container, client):
        await policy(client)
        await fleet(client, 4)
        # Docker Hub sends no digest: two push times are two pushes of one version
        pending(await docker_hub_push(client, "v2.0.1", pushed_at=1))
        pending(await docker_hub_push(client, "v2.0.1", pushed_at=2))
        await container.monitor.tick()
        [rollout] = await rollouts(client)
        assert await outcomes(client) == [("v2.0.1", "rollout_created"), ("v2.0.1", "duplicate")]
        newest = (await deliveries(client))[0]
        assert newest["reason"] == (
            f"iotistic/myapp:v2.0.1 is already being rolled out by {rollout['rollout_id']}"
        )
        assert (
            container.telemetry.value("fleetwave_webhooks_deduplicated_total", provider="dockerhub")
            == 1
        )


async def test_two_versions_recorded_before_either_is_planned_are_planned_in_order(
    settings: Settings, clock: ManualClock
) -> None:
    async with fleetwave(settings, clock, wait=0) as (container, client):
        await policy(client)
        uuids = await fleet(client, 10)
        pending(await docker_hub_push(client, "v2.0.1", pushed_at=1))
        pending(await docker_hub_push(client, "v2.0.2", pushed_at=2))
        await container.monitor.tick()
        assert await outcomes(client) == [
            ("v2.0.1", "rollout_created"),
            ("v2.0.2", "rollout_created"),
        ]
        by_tag = {r["new_tag"]: r for r in await rollouts(client)}
        older, newer = by_tag["v2.0.1"], by_tag["v2.0.2"]
        assert (older["status"], older["superseded_by"]) == ("cancelled", newer["rollout_id"])
        assert newer["status"] == "in_progress" and newer["total_devices"] == 10
        assert await target_image(client, uuids[0]) == "iotistic/myapp:v2.0.2"


async def test_a_quay_push_of_two_tags_recorded_before_planned_makes_one_rollout(
    settings: Settings, clock: ManualClock
) -> None:
    async with fleetwave(settings, clock, wait=0) as (container, client):
        body, _ = await push_setup(client, "quay")  # "latest" and "v2.0.1", the policy takes v*
        answer = await deliver(client, "quay", body)
        assert answer.status_code == 202
        assert [e["outcome"] for e in answer.json()["events"]] == ["pending", "pending"]
        await container.monitor.tick()
        [rollout] = await rollouts(client)
        assert rollout["new_tag"] == "v2.0.1"
        assert await outcomes(client) == [("v2.0.1", "rollout_created"), ("latest", "ignored")]
        latest = (await deliveries(client))[0]
        assert latest["reason"] == f"same push as {rollout['new_image']}, rolled out once"


# --- several planners ---------------------------------------------------------------------


async def test_two_monitors_ticking_at_once_plan_a_pending_push_once(
    settings: Settings, clock: ManualClock
) -> None:
    async with (
        fleetwave(settings, clock, wait=0) as (first, client),
        fleetwave(settings, clock, wait=0) as (second, _),
    ):
        await policy(client, update_strategy="auto")
        await fleet(client, 5)
        pending(await docker_hub_push(client, "v2.0.1", pushed_at=1))
        pending(await docker_hub_push(client, "v2.0.2", pushed_at=2))
        await asyncio.gather(first.monitor.tick(), second.monitor.tick())
        await first.monitor.tick()  # what a skipped image leaves, the next tick plans
        assert await outcomes(client) == [
            ("v2.0.1", "rollout_created"),
            ("v2.0.2", "rollout_created"),
        ]
        assert sorted(r["new_tag"] for r in await rollouts(client)) == ["v2.0.1", "v2.0.2"]


async def test_a_push_planned_by_another_process_is_answered_with_what_it_made(
    settings: Settings, clock: ManualClock
) -> None:
    async with fleetwave(settings, clock, wait=0) as (container, client):
        await policy(client, update_strategy="auto")
        await fleet(client, 2)
        delivery = pending(await docker_hub_push(client, "v2.0.1"))
        await container.monitor.tick()
        [rollout] = await rollouts(client)
        found = await container.webhooks.planner.plan([delivery])
        assert found == {
            delivery: UpdateOutcome(
                "rollout_created",
                f"rollout {rollout['rollout_id']} created",
                rollout_id=rollout["rollout_id"],
                status="in_progress",
                affected_devices=2,
                image="iotistic/myapp:v2.0.1",
            )
        }


async def test_the_manual_trigger_still_answers_with_its_plan(
    settings: Settings, clock: ManualClock
) -> None:
    async with fleetwave(settings, clock, wait=0) as (_, client):
        await fleet(client, 2)
        answer = await client.post(
            "/api/v1/images/trigger-update", json={"image": "iotistic/myapp:v2.0.1"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == "rollout_created"
        assert await deliveries(client) == []


# --- the schema ---------------------------------------------------------------------------


def test_migration_0003_goes_down_dropping_pending_deliveries_and_up_again(
    database_url: str,
) -> None:
    url = sync_url(database_url)
    engine = create_engine(url)
    row = {
        "provider": "dockerhub",
        "image_name": "iotistic/myapp",
        "tag": "v2",
        "received_at": NOW,
        "last_received_at": NOW,
    }
    with engine.begin() as conn:
        conn.execute(
            insert(webhook_deliveries),
            [
                row | {"dedupe_key": "a", "outcome": "rollout_created", "planned_at": NOW},
                row | {"dedupe_key": "b", "outcome": "pending", "planned_at": None},
            ],
        )
    engine.dispose()
    downgrade(url, "0002")
    assert current_revision(url) == "0002"
    upgrade(url)
    assert current_revision(url) == head_revision()
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(webhook_deliveries.c.dedupe_key, webhook_deliveries.c.planned_at)
        ).all()
    engine.dispose()
    assert [(key, planned is not None) for key, planned in rows] == [("a", True)]
