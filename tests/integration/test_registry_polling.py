"""Polling registries: the admin API, and polls that feed the webhooks' own path (one rollout
for a push both announced and polled), against a registry of the tests' own."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.clock import ManualClock
from tests.conftest import acting
from tests.integration.fake_registry import PASSWORD, REALM, USERNAME, FakeRegistry
from tests.integration.pipeline import fleet, policy, rollouts
from tests.integration.webhooks import MANIFEST, deliver, deliveries, digest, distribution_event

URL = "https://registry.test"
PATTERN = "registry.test/acme/app:*"
OLD, NEW = digest("1.0.0"), digest("1.1.0")


async def add_registry(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "factory", "url": URL, "poll_interval_seconds": 60} | fields
    response = await client.post("/api/v1/registries", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def poll(container: Container, clock: ManualClock, seconds: float = 61) -> list[Any]:
    clock.advance(timedelta(seconds=seconds))
    return await container.poller.tick()


async def watched(
    client: httpx.AsyncClient, container: Container, fake: FakeRegistry, **fields: Any
) -> dict[str, Any]:
    """Two devices running 1.0.0, a policy for the repository, the registry polled once."""
    await fleet(client, 2, image="registry.test/acme/app:1.0.0")
    await policy(client, image_pattern=PATTERN)
    container.poller.http = fake.factory()
    return await add_registry(client, **fields)


# --- the API -------------------------------------------------------------------------------


async def test_a_registry_is_added_shown_changed_and_removed_without_its_password(
    client: httpx.AsyncClient,
) -> None:
    created = await add_registry(client, username=USERNAME, password=PASSWORD)
    assert created["password_set"] is True and created["username"] == USERNAME
    rid = created["id"]
    assert (await client.get(f"/api/v1/registries/{rid}")).json()["name"] == "factory"
    assert [r["name"] for r in (await client.get("/api/v1/registries")).json()] == ["factory"]
    changed = await client.patch(
        f"/api/v1/registries/{rid}", json={"password": None, "poll_interval_seconds": 5}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["password_set"], changed.json()["poll_interval_seconds"]) == (False, 5)
    assert (await client.delete(f"/api/v1/registries/{rid}")).status_code == 204
    assert (await client.get(f"/api/v1/registries/{rid}")).status_code == 404
    audit = (await client.get("/api/v1/audit", params={"object_type": "registry"})).json()
    assert [e["action"] for e in audit["items"]] == ["deleted", "updated", "created"]
    everything = str(audit) + created.__repr__() + changed.text
    assert PASSWORD not in everything and "fws1:" not in everything


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://registry.test"}, "url"),
        ({"url": "registry.test:5000"}, "url"),
        ({"url": "http://registry.test", "username": "u", "password": "p"}, "insecure"),
        ({"poll_interval_seconds": 0}, "poll_interval_seconds"),
        ({"surprise": True}, "surprise"),
        ({"username": "u", "password": "hidden\x00value"}, "password"),
    ],
)
async def test_a_bad_registry_is_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/registries", json={"name": "r", "url": URL} | body)
    assert response.status_code == 422, response.text
    assert field in response.text and "hidden" not in response.text


@pytest.mark.parametrize("field", ["url", "poll_interval_seconds", "insecure", "enabled"])
async def test_a_change_setting_a_required_field_to_null_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, field: str
) -> None:
    rid = (await add_registry(client))["id"]
    response = await client.patch(f"/api/v1/registries/{rid}", json={field: None})
    assert response.status_code == 422, response.text
    assert f"{field}: cannot be null" in response.text
    assert (await client.get(f"/api/v1/registries/{rid}")).json()["poll_interval_seconds"] == 60


async def test_credentials_over_plain_http_are_taken_when_marked_insecure(
    client: httpx.AsyncClient,
) -> None:
    body = {"url": "http://registry.local:5000", "username": "u", "password": "p"}
    assert (await add_registry(client, **body, insecure=True))["insecure"] is True
    again = await client.post("/api/v1/registries", json={"name": "factory", "url": URL})
    assert again.status_code == 409


async def test_only_admins_manage_registries(client: httpx.AsyncClient) -> None:
    operator = await acting(client, "olga", "operator")
    assert (await client.get("/api/v1/registries", headers=operator)).status_code == 403
    refused = await client.post(
        "/api/v1/registries", json={"name": "x", "url": URL}, headers=operator
    )
    assert refused.status_code == 403


# --- polls -------------------------------------------------------------------------------


async def test_the_first_poll_records_and_a_new_tag_then_starts_a_pinned_rollout(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    fake = FakeRegistry(
        {"acme/app": {"1.0.0": OLD, "0.9.0": digest("0.9"), "0.8.0": digest("0.8")}}
    )
    await watched(client, container, fake)
    [first] = await poll(container, clock)
    assert (first.error, first.pushes) == (None, 0) and await rollouts(client) == []
    assert "GET /v2/acme/app/tags/list" in fake.requests  # and the next page, via Link
    assert sum("tags/list" in r for r in fake.requests) == 2
    fake.repositories["acme/app"]["1.1.0"] = NEW
    [second] = await poll(container, clock)
    assert second.pushes == 1
    [rollout] = await rollouts(client)
    assert rollout["new_image"] == f"registry.test/acme/app:1.1.0@{NEW}"
    assert rollout["triggered_by"] == "poll"
    [third] = await poll(container, clock)
    assert third.pushes == 0 and len(await rollouts(client)) == 1


async def test_a_push_both_announced_and_polled_makes_one_rollout(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    fake = FakeRegistry({"acme/app": {"1.0.0": OLD}})
    await watched(client, container, fake)
    await poll(container, clock)
    fake.repositories["acme/app"]["1.1.0"] = NEW
    event = distribution_event(
        "n-1", "acme/app", NEW, media_type=MANIFEST, tag="1.1.0", host="registry.test"
    )
    announced = (await deliver(client, "distribution", {"events": [event]})).json()
    assert announced["outcome"] == "rollout_created"
    [polled] = await poll(container, clock)
    assert polled.pushes == 1
    assert len(await rollouts(client)) == 1
    [delivery] = await deliveries(client)
    assert (delivery["provider"], delivery["deliveries"]) == ("distribution", 2)


async def test_a_push_polled_first_and_announced_after_makes_one_rollout(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    fake = FakeRegistry({"acme/app": {"1.0.0": OLD}})
    await watched(client, container, fake)
    await poll(container, clock)
    fake.repositories["acme/app"]["1.1.0"] = NEW
    await poll(container, clock)
    event = distribution_event(
        "n-2", "acme/app", NEW, media_type=MANIFEST, tag="1.1.0", host="registry.test"
    )
    announced = (await deliver(client, "distribution", {"events": [event]})).json()
    assert announced["outcome"] == "duplicate"
    [rollout] = await rollouts(client)
    assert rollout["triggered_by"] == "poll"


async def test_a_moved_tag_is_a_push_of_its_new_digest(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    fake = FakeRegistry({"acme/app": {"1.0.0": OLD, "1.1.0": NEW}})
    await watched(client, container, fake)
    await poll(container, clock)
    fake.repositories["acme/app"]["1.1.0"] = digest("1.1.0 rebuilt")
    [polled] = await poll(container, clock)
    assert polled.pushes == 1
    [rollout] = await rollouts(client)
    assert rollout["new_image"].endswith(digest("1.1.0 rebuilt"))


@pytest.mark.parametrize("auth", ["bearer", "basic"])
async def test_a_registry_with_credentials_is_polled_through_its_challenge(
    client: httpx.AsyncClient, container: Container, clock: ManualClock, auth: str
) -> None:
    fake = FakeRegistry({"acme/app": {"1.0.0": OLD}}, auth=auth)
    await watched(client, container, fake, username=USERNAME, password=PASSWORD)
    await poll(container, clock)
    fake.repositories["acme/app"]["1.1.0"] = NEW
    [polled] = await poll(container, clock)
    assert (polled.error, polled.pushes) == (None, 1)
    if auth == "bearer":
        asked = fake.token_requests[0]
        assert asked == {
            "scope": "repository:acme/app:pull",
            "service": "registry.test",
            "account": USERNAME,
        }


async def test_wrong_credentials_are_a_failed_poll_naming_no_secret(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    fake = FakeRegistry({"acme/app": {"1.0.0": OLD}}, auth="bearer")
    created = await watched(client, container, fake, username=USERNAME, password="wrong-0123")
    [polled] = await poll(container, clock)
    assert polled.error == "token request answered 401"
    shown = (await client.get(f"/api/v1/registries/{created['id']}")).json()
    assert "wrong-0123" not in str(shown) and REALM not in str(shown["last_error"])


async def test_credentials_are_not_sent_to_a_plain_http_token_realm_unless_insecure(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    fake = FakeRegistry({"acme/app": {"1.0.0": OLD}}, auth="bearer", realm="http://auth.test/t")
    await watched(client, container, fake, username=USERNAME, password=PASSWORD)
    [polled] = await poll(container, clock)
    assert polled.error is not None and "plain http" in polled.error
    assert fake.token_requests == []


@pytest.mark.parametrize(
    ("misbehave", "error", "backoff"),
    [
        ("garbage", "the tag list of acme/app is not JSON", 120),
        ("redirect-loop", "GET /v2/acme/app/tags/list: redirects without end", 120),
        ("busy", "429 Too Many Requests from GET /v2/acme/app/tags/list", 900),
    ],
)
async def test_a_misbehaving_registry_is_a_failed_poll_that_backs_off_and_starts_nothing(
    client: httpx.AsyncClient,
    container: Container,
    clock: ManualClock,
    misbehave: str,
    error: str,
    backoff: int,
) -> None:
    fake = FakeRegistry({"acme/app": {"1.0.0": OLD}}, misbehave=misbehave)
    created = await watched(client, container, fake)
    [polled] = await poll(container, clock)
    assert polled.error == error
    shown = (await client.get(f"/api/v1/registries/{created['id']}")).json()
    assert (shown["failures"], shown["last_error"]) == (1, error)
    assert await poll(container, clock, backoff - 1) == []  # backing off
    [again] = await poll(container, clock, 1)
    assert again.error == error and await rollouts(client) == []
    metrics = (await client.get("/metrics")).text
    assert 'fleetwave_registry_polls_total{registry="factory",result="failed"} 2.0' in metrics


async def test_two_workers_polling_at_once_poll_a_registry_once(
    client: httpx.AsyncClient, container: Container, clock: ManualClock
) -> None:
    fake = FakeRegistry({"acme/app": {"1.0.0": OLD}}, page_size=10)
    await watched(client, container, fake)
    clock.advance(timedelta(seconds=61))
    first, second = await asyncio.gather(container.poller.tick(), container.poller.tick())
    assert len(first) + len(second) == 1
    assert fake.requests.count("GET /v2/acme/app/tags/list") == 1
