"""The poll cache stays true across replicas: a change committed on one replica is answered by
the other as soon as its notification has arrived (NOTIFY on PostgreSQL, the change file on
SQLite), and while the listener is down the cache is off."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fleetwave.settings import Settings
from fleetwave.store.db import Database
from tests.integration.factories import register_device, target_apps
from tests.integration.replicas import NEW, Replica, cached_etag, poll, record_statements, until


async def test_a_target_set_on_one_replica_is_served_by_the_other_once_notified(
    here: Replica, replica: Replica
) -> None:
    device = await register_device(here.client, uuid="co1")
    etag = await cached_etag(replica, device)
    changed = await here.client.put(
        "/api/v1/devices/co1/target-state", json={"apps": target_apps(NEW)}
    )
    assert changed.status_code == 200
    await until(lambda: not replica.caches("co1"))
    answer = await poll(replica, device, etag)
    assert answer.status_code == 200 and answer.headers["etag"] == changed.json()["etag"]
    services = answer.json()["co1"]["apps"]["1001"]["services"]
    assert services[0]["imageName"] == NEW


async def test_a_key_rotated_on_one_replica_is_refused_by_the_other_once_notified(
    here: Replica, replica: Replica
) -> None:
    device = await register_device(here.client, uuid="co2")
    etag = await cached_etag(replica, device)
    rotated = (await here.client.post("/api/v1/devices/co2/rotate-key")).json()
    await until(lambda: not replica.caches("co2"))
    assert (await poll(replica, device, etag)).status_code == 401
    assert (await poll(replica, device | rotated, etag)).status_code == 304


async def test_a_device_deleted_on_one_replica_is_refused_by_the_other_once_notified(
    here: Replica, replica: Replica
) -> None:
    device = await register_device(here.client, uuid="co3")
    etag = await cached_etag(replica, device)
    assert (await here.client.delete("/api/v1/devices/co3")).status_code == 204
    await until(lambda: not replica.caches("co3"))
    assert (await poll(replica, device, etag)).status_code == 401


async def test_a_rollout_batch_planned_on_one_replica_reaches_polls_on_the_other(
    here: Replica, replica: Replica
) -> None:
    devices = [await register_device(here.client, uuid=f"cb{n}") for n in range(3)]
    etags = [await cached_etag(replica, d) for d in devices]
    pushed = await here.client.post(
        "/api/v1/images/trigger-update", json={"image": NEW, "strategy": "auto"}
    )
    assert pushed.status_code == 200, pushed.text
    await until(lambda: not any(replica.caches(d["uuid"]) for d in devices))
    answers = [await poll(replica, d, e) for d, e in zip(devices, etags, strict=True)]
    assert [a.status_code for a in answers] == [200, 200, 200]


async def test_a_wrong_key_never_fills_the_cache_with_unknown_devices(here: Replica) -> None:
    await register_device(here.client, uuid="known")
    cache = here.container.target_watch.cache
    before = len(cache)
    for n in range(50):
        answer = await here.client.get(
            f"/api/v1/device/ghost-{n}/state", headers={"X-Device-API-Key": "k" * 40}
        )
        assert answer.status_code == 401
    assert len(cache) == before


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_while_the_listener_is_down_polls_read_the_database_on_postgres(
    here: Replica, replica: Replica, settings: Settings
) -> None:
    device = await register_device(here.client, uuid="co4")
    etag = await cached_etag(replica, device)
    watch = replica.container.target_watch
    await terminate_listeners(settings.resolved_database_url)
    await until(lambda: not watch.relayed_here)
    assert not replica.caches("co4")  # off: nothing is answered from memory
    # A change whose notification the replica cannot receive: it must read it all the same.
    changed = await here.client.put(
        "/api/v1/devices/co4/target-state", json={"apps": target_apps(NEW)}
    )
    answer = await poll(replica, device, etag)
    assert answer.status_code == 200 and answer.headers["etag"] == changed.json()["etag"]
    await until(lambda: watch.relayed_here)  # the relay reconnects by itself
    assert (await poll(replica, device, answer.headers["etag"])).status_code == 304
    assert replica.caches("co4")


async def terminate_listeners(url: str) -> None:
    """Cut every LISTEN connection of this database, as a network fault or restart would."""
    db = Database(url)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                )
            )
    finally:
        await db.dispose()


async def test_a_wrong_key_is_refused_from_memory_after_its_first_refusal(here: Replica) -> None:
    mine = await register_device(here.client, uuid="mine1")
    await register_device(here.client, uuid="theirs1")
    await cached_etag(here, mine)
    statements = record_statements(here.container)
    wrong = {"X-Device-API-Key": "w" * 40, "Authorization": ""}
    first = await here.client.get("/api/v1/device/theirs1/state", headers=wrong)
    assert first.status_code == 401 and statements  # looked up once
    statements.clear()
    again = [
        await here.client.get(f"/api/v1/device/{u}/state", headers=wrong)
        for u in ("theirs1", "ghost")
    ]
    borrowed = await poll(here, mine | {"uuid": "theirs1"})  # mine's key on their state
    assert [a.status_code for a in again] == [401, 401]
    assert borrowed.status_code == 403 and "mine1" in borrowed.json()["error"]
    assert again[0].headers["www-authenticate"] == "Bearer"
    assert statements == []
