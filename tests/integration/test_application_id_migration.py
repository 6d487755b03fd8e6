"""The iotistic applicationId is a device attribute, not a tag: self-registration keeps it in
``devices.application_id``, and migration 0006 moves the tags earlier registrations wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, select, text

from fleetwave.store.db import sync_url
from fleetwave.store.migrate import downgrade, upgrade
from fleetwave.store.tables import devices
from tests.integration.test_provisioning import make_key, register, registration

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_a_self_registered_device_keeps_its_application_id_beside_its_tags(
    client: httpx.AsyncClient,
) -> None:
    key = await make_key(client)
    answer = await register(client, key["key"], registration("u-7", applicationId=7))
    assert answer.status_code == 201, answer.text
    assert answer.json()["applicationId"] == 7  # the agent's own answer is unchanged
    device = (await client.get("/api/v1/devices/u-7")).json()
    assert device["tags"] == {} and device["application_id"] == "7"
    named = await register(client, key["key"], registration("u-8", applicationId="app-8"))
    assert named.status_code == 201
    assert (await client.get("/api/v1/devices/u-8")).json()["application_id"] == "app-8"
    tagged = await client.get("/api/v1/devices", params={"tag": "applicationId:7"})
    assert tagged.json()["total"] == 0


def device_row(uuid: str, tags: dict[str, str], provisioned: bool) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "device_name": uuid,
        "tags": tags,
        "api_key_hash": f"hash-{uuid}",
        "target_etag": '"e"',
        "provisioning_key_id": 1 if provisioned else None,
        "created_at": NOW,
        "updated_at": NOW,
    }


def test_migration_0006_moves_the_application_id_tags_of_self_registered_devices(
    database_url: str,
) -> None:
    downgrade(database_url, "0005")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO provisioning_keys (id, key_hash, key_prefix, fleet_id, uses)"
                    " VALUES (1, 'h', 'fwp_', 'f', 2)"
                )
            )
            rows = [
                device_row("enrolled", {"applicationId": "1", "site": "lyon"}, provisioned=True),
                device_row("enrolled-bare", {}, provisioned=True),
                device_row("by-hand", {"applicationId": "mine"}, provisioned=False),
            ]
            conn.execute(insert(devices).values(rows))  # the columns of 0005 only
        upgrade(database_url)
        with engine.connect() as conn:
            found = {
                r.uuid: (r.tags, r.application_id)
                for r in conn.execute(
                    select(devices.c.uuid, devices.c.tags, devices.c.application_id)
                )
            }
        assert found == {
            "enrolled": ({"site": "lyon"}, "1"),
            "enrolled-bare": ({}, None),
            "by-hand": ({"applicationId": "mine"}, None),
        }
        downgrade(database_url, "0005")
        with engine.connect() as conn:
            tags = dict(conn.execute(text("SELECT uuid, tags FROM devices")).all())
        decoded = {k: v if isinstance(v, dict) else json.loads(v) for k, v in tags.items()}
        assert decoded["enrolled"] == {"site": "lyon", "applicationId": "1"}
    finally:
        engine.dispose()
        upgrade(database_url)
