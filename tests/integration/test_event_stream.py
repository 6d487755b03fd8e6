"""The live event stream: replay after Last-Event-ID, live delivery, the rollout filter, auth,
heartbeats, shutdown; and on PostgreSQL, an event committed by another replica."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from fleetwave.bootstrap import Container, build
from fleetwave.clock import ManualClock
from fleetwave.rollouts.controls import Actor
from fleetwave.sessions import SESSION_COOKIE
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.users.authentication import ADMIN as ADMIN_TOKEN_PRINCIPAL
from tests.conftest import ADMIN_TOKEN, acting
from tests.integration.engine import fleet_of, push
from tests.integration.event_stream import SseReader, serving
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import policy

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
STREAM = "/api/v1/events/stream"


async def event_ids(client: httpx.AsyncClient) -> list[int]:
    page = (await client.get("/api/v1/events", params={"limit": 1000})).json()
    return [event["id"] for event in page["items"]]


async def test_a_reconnecting_client_gets_every_event_after_its_last_id_then_live_ones(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client)
    await fleet_of(client, 3)
    rollout_id = await push(client)
    ids = await event_ids(client)
    assert len(ids) >= 3
    async with serving(container) as base, httpx.AsyncClient(base_url=base) as http:
        headers = ADMIN | {"Last-Event-ID": str(ids[0])}
        async with http.stream("GET", STREAM, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = SseReader(response)
            replayed = await reader.events(len(ids) - 1)
            assert [int(m.id or 0) for m in replayed] == ids[1:]
            assert replayed[0].json["id"] == ids[1]
            assert replayed[0].event == replayed[0].json["event_type"]

            al = await acting(client, "al")
            paused = await client.post(f"/api/v1/rollouts/{rollout_id}/pause", headers=al)
            assert paused.status_code == 200
            [live] = await reader.events(1)
            assert live.event == "rollout_paused"
            assert live.json["rollout_id"] == rollout_id
            assert live.json["event_data"]["by"] == "al"
            assert int(live.id or 0) > ids[-1]


async def test_without_a_cursor_the_stream_starts_with_the_next_event(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client)
    await fleet_of(client, 2)
    rollout_id = await push(client)
    async with (
        serving(container) as base,
        httpx.AsyncClient(base_url=base) as http,
        http.stream("GET", STREAM, headers=ADMIN) as response,
    ):
        reader = SseReader(response)
        opening = await reader.next()
        assert opening.comments == ["connected"]
        await client.post(f"/api/v1/rollouts/{rollout_id}/pause")
        [event] = await reader.events(1)
        assert event.event == "rollout_paused"


async def test_after_in_the_query_replays_like_last_event_id(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client)
    await fleet_of(client, 2)
    await push(client)
    ids = await event_ids(client)
    async with serving(container) as base, httpx.AsyncClient(base_url=base) as http:
        params = {"after": ids[-2]}
        async with http.stream("GET", STREAM, headers=ADMIN, params=params) as response:
            [event] = await SseReader(response).events(1)
            assert int(event.id or 0) == ids[-1]


async def test_the_rollout_filter_keeps_only_that_rollouts_events(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client)
    await fleet_of(client, 2)
    for i in range(2):
        await register_device(client, uuid=f"other-{i}", apps=target_apps("acme/other:v1.0.0"))
    mine = await push(client)
    answer = await client.post("/api/v1/images/trigger-update", json={"image": "acme/other:v1.0.1"})
    other = answer.json()["rollout_id"]
    assert other and other != mine
    async with serving(container) as base, httpx.AsyncClient(base_url=base) as http:
        params = {"rollout_id": mine[:8], "after": 0}  # a short id will do
        async with http.stream("GET", STREAM, headers=ADMIN, params=params) as response:
            reader = SseReader(response)
            await client.post(f"/api/v1/rollouts/{other}/pause")
            await client.post(f"/api/v1/rollouts/{mine}/pause")
            seen = []
            while not seen or seen[-1].event != "rollout_paused":
                seen += await reader.events(1)
            assert {m.json["rollout_id"] for m in seen} == {mine}


async def test_the_stream_needs_the_admin_token_or_a_dashboard_session(
    client: httpx.AsyncClient, container: Container
) -> None:
    await policy(client)
    await fleet_of(client, 1)
    await push(client)
    cookie = await container.authenticator.open_session(ADMIN_TOKEN_PRINCIPAL)
    async with serving(container) as base, httpx.AsyncClient(base_url=base) as http:
        assert (await http.get(STREAM)).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await http.get(STREAM, headers=wrong)).status_code == 401
        forged = {"Cookie": f"{SESSION_COOKIE}={cookie[:-3]}abc"}
        assert (await http.get(STREAM, headers=forged)).status_code == 401
        # A wrong bearer token is refused even beside a good cookie.
        both = wrong | {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        assert (await http.get(STREAM, headers=both)).status_code == 401
        session = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        async with http.stream("GET", STREAM, headers=session, params={"after": 0}) as response:
            assert response.status_code == 200
            assert (await SseReader(response).events(1))[0].event
        missing = await http.get(STREAM, headers=ADMIN, params={"rollout_id": "nope"})
        assert missing.status_code == 404
        bad = await http.get(STREAM, headers=ADMIN | {"Last-Event-ID": "x"})
        assert bad.status_code == 422
        assert "Last-Event-ID" in bad.json()["error"]


async def test_a_quiet_stream_sends_heartbeats_and_ends_when_the_server_shuts_down(
    container: Container,
) -> None:
    container.event_stream.heartbeat_seconds = 0.1
    async with (
        serving(container) as base,
        httpx.AsyncClient(base_url=base) as http,
        http.stream("GET", STREAM, headers=ADMIN) as response,
    ):
        reader = SseReader(response)
        await reader.next()
        heartbeat = await reader.next(within=2)
        assert heartbeat.comments == ["heartbeat"]
        container.broadcast.shut_down()
        assert all(not m.event for m in await reader.until_end(within=2))
    assert container.broadcast.subscribers == 0


async def test_a_client_that_disconnects_is_unsubscribed(container: Container) -> None:
    async with serving(container) as base, httpx.AsyncClient(base_url=base) as http:
        async with http.stream("GET", STREAM, headers=ADMIN) as response:
            await SseReader(response).next()
            assert container.broadcast.subscribers == 1
        async with asyncio.timeout(5):
            while container.broadcast.subscribers:  # noqa: ASYNC110
                await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_an_event_committed_by_another_replica_reaches_the_stream_on_postgres(
    client: httpx.AsyncClient, container: Container, settings: Settings, tmp_path: Path
) -> None:
    await policy(client)
    await fleet_of(client, 2)
    rollout_id = await push(client)
    other_db = Database(settings.resolved_database_url)
    replica = build(settings, clock=ManualClock(), db=other_db)
    try:
        async with serving(container) as base, httpx.AsyncClient(base_url=base) as http:
            params = {"rollout_id": rollout_id}
            async with http.stream("GET", STREAM, headers=ADMIN, params=params) as response:
                reader = SseReader(response)
                await reader.next()
                # Replica B's commit wakes no one here in-process: only its NOTIFY can (and
                # the heartbeat's re-read comes after 15 s, beyond the 5 s waited).
                await replica.controls.apply("pause", rollout_id, Actor("replica-b"))
                [event] = await reader.events(1, within=5)
                assert event.event == "rollout_paused"
                assert event.json["event_data"]["by"] == "replica-b"
    finally:
        await other_db.dispose()
