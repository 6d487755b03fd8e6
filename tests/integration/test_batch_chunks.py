"""A large batch is started in chunks (``FLEETWAVE_BATCH_CHUNK``): each chunk's targets are
committed, and announced to the held polls, in a transaction of its own, one after the other in
the same tick; the batch's event counts them all and each device is scheduled once. A monitor
that stops between chunks leaves the rest pending, and the next tick starts them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.devices.targets import DevicesChanged
from fleetwave.rollouts.monitor import RolloutMonitor
from fleetwave.settings import Settings
from tests.integration.engine import (
    NEW,
    ScriptedDevice,
    batch_devices,
    device_rows,
    fleet_of,
    push,
    tick,
)
from tests.integration.pipeline import policy

CHUNK = 4
DEVICES = 23


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"batch_chunk": CHUNK})


class Announcements:
    """The devices each committed transaction announced, in commit order."""

    def __init__(self, container: Container) -> None:
        self.commits: list[set[str]] = []
        container.db.committed.append(self.heard)

    def heard(self, published: list[object]) -> None:
        uuids = {u for item in published if isinstance(item, DevicesChanged) for u in item.uuids}
        if uuids:
            self.commits.append(uuids)


async def first_batch_done(
    client: httpx.AsyncClient, fleet: dict[str, ScriptedDevice]
) -> tuple[str, list[str]]:
    await policy(client, staged_batches=2, batch_delay_minutes=0, health_check_enabled=False)
    rollout_id = await push(client)
    for uuid in await batch_devices(client, rollout_id, 1):
        await fleet[uuid].apply_target()
    return rollout_id, await batch_devices(client, rollout_id, 2)


async def of_batch(
    client: httpx.AsyncClient, rollout_id: str, kind: str, batch: int = 2
) -> list[dict[str, Any]]:
    """The rollout's events of one kind about one batch."""
    response = await client.get(
        "/api/v1/events", params={"rollout_id": rollout_id, "event_type": kind, "limit": 1000}
    )
    items: list[dict[str, Any]] = response.json()["items"]
    return [e for e in items if (e["event_data"] or {}).get("batch") == batch]


async def test_a_batch_is_written_chunk_by_chunk_in_one_tick_and_counted_once(
    container: Container, client: httpx.AsyncClient
) -> None:
    fleet = await fleet_of(client, DEVICES)
    rollout_id, second = await first_batch_done(client, fleet)
    assert len(second) > 2 * CHUNK
    announced = Announcements(container)

    await tick(container)

    rows = await device_rows(client, rollout_id)
    assert {rows[u]["status"] for u in second} == {"scheduled"}
    assert {await fleet[u].target_image() for u in second} == {NEW}
    chunks = [commit for commit in announced.commits if commit <= set(second)]
    full, rest = divmod(len(second), CHUNK)
    assert [len(c) for c in chunks] == [CHUNK] * full + ([rest] if rest else [])
    assert set().union(*chunks) == set(second)
    started = await of_batch(client, rollout_id, "batch_started")
    assert [e["message"] for e in started] == [f"batch 2 of 2 started: {len(second)} devices"]
    scheduled = [e["device_uuid"] for e in await of_batch(client, rollout_id, "device_scheduled")]
    assert sorted(scheduled) == sorted(second)


async def test_a_monitor_stopped_between_chunks_leaves_the_rest_to_the_next_tick(
    container: Container, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = await fleet_of(client, DEVICES)
    rollout_id, second = await first_batch_done(client, fleet)

    async def stopped(self: RolloutMonitor, rollout_id: str) -> bool:
        return False  # the process died after the first chunk's commit

    with monkeypatch.context() as patched:
        patched.setattr(RolloutMonitor, "_next_chunk", stopped)
        await tick(container)
    rows = await device_rows(client, rollout_id)
    assert sorted(rows[u]["status"] for u in second).count("scheduled") == CHUNK

    await tick(container)

    rows = await device_rows(client, rollout_id)
    assert {rows[u]["status"] for u in second} == {"scheduled"}
    started = await of_batch(client, rollout_id, "batch_started")
    assert len(started) == 1
    scheduled = [e["device_uuid"] for e in await of_batch(client, rollout_id, "device_scheduled")]
    assert sorted(scheduled) == sorted(second)
