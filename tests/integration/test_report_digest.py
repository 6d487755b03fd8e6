"""Unchanged reports: a report with the same content, answering the same target, as the last
one writes nothing but last-seen (one SELECT finds the device, its target version and the last
report's digest). A new target — an operator's, a batch's, a rollback's — makes the same
content count again, so a device rolled back that reports exactly what it reported before the
rollout is still seen to be back on its old image. The key is checked before the body is read.
Both databases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.integration.engine import NEW, OLD, device_rows, push, tick
from tests.integration.factories import (
    as_device,
    recorded_statements,
    register_device,
    report_body,
    target_apps,
)
from tests.integration.pipeline import policy, target_image

REPORT = "/api/v1/device/state"
UNCHANGED = "fleetwave_device_reports_unchanged_total"


@pytest.fixture(autouse=True)
async def cache_trusted(container: Container) -> None:
    """On PostgreSQL the poll cache trusts NOTIFYs only: listen before the first request."""
    await container.target_watch.listening()


async def send(
    client: httpx.AsyncClient, device: dict[str, Any], body: dict[str, Any]
) -> httpx.Response:
    response = await client.patch(REPORT, json=body, headers=as_device(device))
    assert response.status_code == 200, response.text
    return response


async def current_state(client: httpx.AsyncClient, uuid: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/devices/{uuid}/current-state")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def unchanged(container: Container) -> float:
    return container.telemetry.value(UNCHANGED)


def writes(statements: list[str]) -> list[str]:
    return [s for s in statements if not s.upper().startswith("SELECT")]


async def test_a_report_identical_to_the_last_runs_one_select_and_writes_nothing(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await register_device(client, uuid="same")
    body = report_body("same")
    await send(client, device, body)
    reported_at = clock.now()
    clock.advance(timedelta(seconds=20))
    with recorded_statements(container.db.engine) as statements:
        await send(client, device, body)
    assert len(statements) == 1 and statements[0].upper().startswith("SELECT"), statements
    assert unchanged(container) == 1
    state = await current_state(client, "same")
    assert state["apps"] == body["same"]["apps"]
    assert state["system_info"]["cpu_usage"] == 12.5
    assert datetime.fromisoformat(state["reported_at"]) == reported_at  # nothing rewritten


async def test_a_changed_report_is_stored_in_full(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await register_device(client, uuid="moving")
    await send(client, device, report_body("moving"))
    clock.advance(timedelta(seconds=20))
    with recorded_statements(container.db.engine) as statements:
        await send(client, device, report_body("moving", cpu_usage=80.0))
    assert writes(statements), statements
    assert unchanged(container) == 0
    state = await current_state(client, "moving")
    assert state["system_info"]["cpu_usage"] == 80.0
    assert datetime.fromisoformat(state["reported_at"]) == clock.now()


async def test_the_same_report_after_the_target_changed_is_judged_again(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await register_device(client, uuid="retargeted")
    body = report_body("retargeted")
    await send(client, device, body)
    await send(client, device, body)
    assert unchanged(container) == 1
    put = await client.put(
        "/api/v1/devices/retargeted/target-state", json={"apps": target_apps(NEW)}
    )
    assert put.status_code == 200, put.text
    clock.advance(timedelta(seconds=20))
    with recorded_statements(container.db.engine) as statements:
        await send(client, device, body)
    assert writes(statements), statements
    assert unchanged(container) == 1
    state = await current_state(client, "retargeted")
    assert datetime.fromisoformat(state["reported_at"]) == clock.now()
    await send(client, device, body)  # and under the new target, unchanged again
    assert unchanged(container) == 2


async def test_a_report_saying_offline_is_stored_even_when_it_is_the_same_as_the_last(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await register_device(client, uuid="off")
    body = report_body("off", is_online=False)
    await send(client, device, body)
    clock.advance(timedelta(seconds=20))
    await send(client, device, body)
    assert unchanged(container) == 0
    facts = (await client.get("/api/v1/devices/off")).json()
    assert facts["is_online"] is False
    assert datetime.fromisoformat(facts["last_connectivity_event"]) == clock.now()


async def test_an_unchanged_report_from_a_device_gone_silent_brings_it_back_online_at_once(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    device = await register_device(client, uuid="back")
    body = report_body("back")
    await send(client, device, body)
    clock.advance(container.settings.device_offline_after + timedelta(seconds=1))
    assert (await client.get("/api/v1/devices/back")).json()["is_online"] is False
    await send(client, device, body)
    assert unchanged(container) == 1
    facts = (await client.get("/api/v1/devices/back")).json()
    assert facts["is_online"] is True
    assert datetime.fromisoformat(facts["last_connectivity_event"]) == clock.now()


async def test_a_device_rolled_back_after_a_timeout_is_rolled_back_by_the_report_it_sent_before(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    """The device runs OLD and says so; its batch gives it NEW; it never moves and keeps
    saying the very same thing; it times out and is sent back to OLD — and the same bytes it
    sent at the start now mean "back on the old image"."""
    await policy(
        client,
        staged_batches=1,
        update_timeout_minutes=10,
        soak_seconds=60,
        max_retries=0,
        auto_rollback=True,
    )
    device = await register_device(client, uuid="stuck", apps=target_apps(OLD))
    same_bytes = json.dumps(report_body("stuck", OLD)).encode()
    headers = as_device(device) | {"Content-Type": "application/json"}

    async def says_it_runs_old() -> None:
        response = await client.patch(REPORT, content=same_bytes, headers=headers)
        assert response.status_code == 200, response.text

    await says_it_runs_old()
    await says_it_runs_old()
    assert unchanged(container) == 1

    rid = await push(client)
    assert await target_image(client, "stuck") == NEW
    await tick(container)  # online: its update timer starts now
    for _ in range(10):  # a report a minute, saying nothing new
        await says_it_runs_old()
        clock.advance(timedelta(minutes=1))
    assert unchanged(container) == 10  # the first under the new target was judged, then not
    assert (await device_rows(client, rid))["stuck"]["status"] == "scheduled"

    await tick(container)
    row = (await device_rows(client, rid))["stuck"]
    # it kept reporting: it times out as a device seen not applying its target
    assert row["status"] == "failed" and "did not apply its target within" in row["error_message"]
    assert row["not_applying_since"] is not None
    assert await target_image(client, "stuck") == OLD  # auto_rollback

    await says_it_runs_old()
    assert unchanged(container) == 10
    assert (await device_rows(client, rid))["stuck"]["status"] == "rolled_back"
    detail = (await client.get(f"/api/v1/rollouts/{rid}")).json()
    assert detail["rolled_back_devices"] == 1


async def test_a_report_with_a_wrong_key_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="guarded")
    body_read: list[bytes] = []

    async def garbage() -> AsyncIterator[bytes]:
        body_read.append(b"{nope")
        yield b"{nope"

    wrong = {"X-Device-API-Key": "x" * 40, "Authorization": "", "Content-Type": "application/json"}
    refused = await client.patch(REPORT, content=garbage(), headers=wrong)
    assert refused.status_code == 401, refused.text
    assert body_read == []
    missing = {"Authorization": "", "Content-Type": "application/json"}
    refused = await client.patch(REPORT, content=b"{nope", headers=missing)
    assert refused.status_code == 401, refused.text
    right = as_device(device) | {"Content-Type": "application/json"}
    read = await client.patch(REPORT, content=garbage(), headers=right)  # the key is its own
    assert read.status_code == 422 and body_read == [b"{nope"]


async def test_a_report_with_the_right_key_and_invalid_json_is_refused_as_before(
    client: httpx.AsyncClient,
) -> None:
    device = await register_device(client, uuid="garbled")
    headers = as_device(device) | {"Content-Type": "application/json"}
    refused = await client.patch(REPORT, content=b"{nope", headers=headers)
    assert refused.status_code == 422 and "JSON" in refused.json()["error"]
    assert (await client.get("/api/v1/devices/garbled/current-state")).status_code == 404


async def test_reports_arriving_together_find_their_devices_in_one_read(
    client: httpx.AsyncClient, container: Container
) -> None:
    """A batch's devices all report within moments: the reports the server is handling at once
    look their keys up together, one SELECT for all of them, each finding its own device."""
    devices = [await register_device(client, uuid=f"together-{i}") for i in range(20)]
    bodies = [report_body(d["uuid"]) for d in devices]
    for device, body in zip(devices, bodies, strict=True):
        await send(client, device, body)
    with recorded_statements(container.db.engine) as statements:
        answers = await asyncio.gather(
            *(send(client, d, b) for d, b in zip(devices, bodies, strict=True))
        )
    assert [a.json()["uuid"] for a in answers] == [d["uuid"] for d in devices]
    key_reads = [s for s in statements if s.upper().startswith("SELECT") and "api_key_hash" in s]
    assert len(key_reads) == 1, key_reads
    assert unchanged(container) == 20
