"""Registry webhooks end to end: each provider's documented payload, its proof of the secret,
the events that change nothing, bursts and redeliveries, and the payloads refused."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from fleetwave.bootstrap import Container
from fleetwave.registries.payloads import NO_TAG, PROVIDERS
from fleetwave.web import MAX_BODY_BYTES
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import fleet, policy, rollouts, target_image
from tests.integration.webhooks import (
    INDEX,
    LAYER,
    MANIFEST,
    NO_ADMIN,
    OLD_TAG,
    PUSHES,
    SECRET,
    WITH_DIGEST,
    WRONG,
    as_bytes,
    deliver,
    deliveries,
    digest,
    distribution_event,
    github_headers,
    load,
    new_target,
    proofs,
    push_setup,
    pushed,
    raw,
    target_state,
)

GENERIC = "/api/v1/webhooks/docker-registry"
COUNTED = ("received", "rejected", "deduplicated")


def counted(container: Container, provider: str, what: str) -> float:
    """The provider's ``fleetwave_webhooks_<what>_total`` counter."""
    return container.telemetry.value(f"fleetwave_webhooks_{what}_total", provider=provider)


# --- 1. Each provider's documented push ------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_providers_documented_push_rolls_out_to_the_devices_running_its_repository(
    client: httpx.AsyncClient, provider: str
) -> None:
    body, push = await push_setup(client, provider)
    response = await deliver(client, provider, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "rollout_created" and answer["status"] == "in_progress"
    assert answer["affected_devices"] == 1 and answer["provider"] == provider
    [rollout] = await rollouts(client)
    assert rollout["rollout_id"] == answer["rollout_id"]
    assert (rollout["old_tag"], rollout["new_tag"]) == (OLD_TAG, push.tag)
    assert rollout["triggered_by"] == f"webhook:{provider}"
    expected = new_target(push)
    assert ("@sha256:" in expected) == (provider in WITH_DIGEST)
    assert await target_image(client, "runs-it") == expected
    assert await target_image(client, "other") == f"iotistic/unrelated:{OLD_TAG}"


@pytest.mark.parametrize("provider", WITH_DIGEST)
async def test_a_policy_that_does_not_pin_digests_targets_the_new_tag_alone(
    client: httpx.AsyncClient, provider: str
) -> None:
    body, push = await push_setup(client, provider, pin_digest=False)
    answer = (await deliver(client, provider, body)).json()
    assert answer["outcome"] == "rollout_created" and answer["affected_devices"] == 1
    assert push.digest is not None
    assert await target_image(client, "runs-it") == f"{push.repository}:{push.tag}"
    [rollout] = await rollouts(client)
    assert "@" not in rollout["new_image"]


# --- 2. Proof of the secret --------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_each_provider_is_accepted_with_its_proof_of_the_secret_and_refused_without(
    client: httpx.AsyncClient, container: Container, provider: str
) -> None:
    body, push = await push_setup(client, provider)
    accepted, rejected = proofs(provider, body)
    for attempt in rejected:
        response = await client.post(**attempt)
        assert response.status_code == 401, (attempt, response.text)
        assert response.json()["error"] == f"{provider} webhook failed verification"
    assert counted(container, provider, "rejected") == len(rejected)
    assert counted(container, provider, "received") == 0
    assert await rollouts(client) == [] and await deliveries(client) == []
    assert await target_image(client, "runs-it") == f"{push.repository}:{OLD_TAG}"

    answers = [await client.post(**attempt) for attempt in accepted]
    assert [a.status_code for a in answers] == [200] * len(accepted), answers[-1].text
    outcomes = [a.json()["outcome"] for a in answers]
    assert outcomes == ["rollout_created"] + ["duplicate"] * (len(accepted) - 1)
    assert len(await rollouts(client)) == 1
    assert counted(container, provider, "rejected") == len(rejected)
    assert await target_image(client, "runs-it") == new_target(push)


async def test_the_generic_endpoint_asks_the_recognised_provider_for_its_proof(
    client: httpx.AsyncClient, container: Container
) -> None:
    cases = [  # provider, body, a proof another provider would give
        (
            "harbor",
            raw("harbor/push_artifact.json"),
            {"headers": NO_ADMIN, "params": {"secret": SECRET}},
        ),
        ("dockerhub", raw("dockerhub/push.json"), {"headers": {"Authorization": SECRET}}),
        (
            "ghcr",
            raw(PUSHES["ghcr"][0]),
            {"headers": github_headers() | NO_ADMIN, "params": {"secret": SECRET}},
        ),
    ]
    for provider, body, other_proof in cases:
        refused = await client.post(GENERIC, content=body, **other_proof)
        assert refused.status_code == 401, refused.text
        assert counted(container, provider, "rejected") == 1
        assert await deliveries(client) == []
    for provider, body, _ in cases:
        answer = await deliver(client, provider, body, endpoint="docker-registry")
        assert answer.status_code == 200, answer.text
        assert answer.json()["provider"] == provider
        assert "no enabled policy" in answer.json()["message"]
    assert sorted(d["provider"] for d in await deliveries(client)) == [
        "dockerhub",
        "ghcr",
        "harbor",
    ]


# --- 3. Events that are not pushes -------------------------------------------------------------

RUNNING = [
    "registrycluster.local/library/test",
    "192.168.100.227:5000/hello-world",
    "hub.harbor.com/test-webhook/debian",
    "myregistry.azurecr.io/hello-world",
    "ghcr.io/codertocat/hello-world",
    "ghcr.io/codertocat/hello-world-npm",
]


@pytest.mark.parametrize(
    ("provider", "name", "reason"),
    [
        ("distribution", "distribution/pull.json", "pull event"),
        ("distribution", "distribution/delete.json", "delete event"),
        ("distribution", "distribution/push_blob.json", "blob event"),
        ("distribution", "distribution/push_by_digest.json", NO_TAG),
        ("distribution", "distribution/envelope.json", NO_TAG),
        ("harbor", "harbor/pull_artifact.json", "pull event"),
        ("acr", "acr/delete.json", "delete event"),
        ("ghcr", "ghcr/package_published_npm.json", "not a container package: npm"),
        ("ghcr", "ghcr/package_published_untagged.json", NO_TAG),
    ],
)
async def test_events_that_are_not_tagged_pushes_are_answered_with_a_reason_and_change_nothing(
    client: httpx.AsyncClient, container: Container, provider: str, name: str, reason: str
) -> None:
    await policy(client, image_pattern="*", update_strategy="auto")
    apps: dict[str, Any] = {}
    for app_id, repository in enumerate(RUNNING, start=1001):
        apps |= target_apps(f"{repository}:{OLD_TAG}", app_id=app_id)
    await register_device(client, uuid="runs-all", apps=apps)
    before = await target_state(client, "runs-all")
    for endpoint in (provider, "docker-registry"):
        response = await deliver(client, provider, raw(name), endpoint=endpoint)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["outcome"], answer["message"]) == ("ignored", reason)
        assert answer["rollout_id"] is None and answer["affected_devices"] == 0
        assert {e["outcome"] for e in answer["events"]} == {"ignored"}
    assert counted(container, provider, "received") == 2
    assert await rollouts(client) == [] and await deliveries(client) == []
    assert await target_state(client, "runs-all") == before


# --- 4. Bursts and redeliveries ----------------------------------------------------------------


async def test_a_push_announced_event_by_event_in_one_envelope_makes_one_rollout(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, image_pattern="registrycluster.local/team/app:*", update_strategy="auto")
    await fleet(client, 3, image="registrycluster.local/team/app:v1.0.0")
    events = [
        distribution_event("e-1", "team/app", digest("layer-1"), media_type=LAYER),
        distribution_event("e-2", "team/app", digest("layer-2"), media_type=LAYER),
        distribution_event("e-3", "team/app", digest("amd64"), media_type=MANIFEST),
        distribution_event("e-4", "team/app", digest("arm64"), media_type=MANIFEST),
        distribution_event("e-5", "team/app", digest("index"), media_type=INDEX, tag="v1.1.0"),
    ]
    answer = (await deliver(client, "distribution", {"events": events})).json()
    assert answer["outcome"] == "rollout_created" and answer["affected_devices"] == 3
    assert [(e["outcome"], e["message"]) for e in answer["events"][:4]] == [
        ("ignored", "blob event"),
        ("ignored", "blob event"),
        ("ignored", NO_TAG),
        ("ignored", NO_TAG),
    ]
    assert len(await rollouts(client)) == 1
    pinned = f"registrycluster.local/team/app:v1.1.0@{digest('index')}"
    assert await target_image(client, "dev-002") == pinned
    # the registry announcing the tagged index again, alone, changes nothing
    again = (await deliver(client, "distribution", {"events": events[-1:]})).json()
    assert again["outcome"] == "duplicate" and len(await rollouts(client)) == 1


async def test_a_redelivered_push_is_a_duplicate_and_counted_on_its_delivery(
    client: httpx.AsyncClient, container: Container
) -> None:
    body, push = await push_setup(client, "distribution")
    answers = [(await deliver(client, "distribution", body)).json() for _ in range(3)]
    assert [a["outcome"] for a in answers] == ["rollout_created", "duplicate", "duplicate"]
    assert "already received" in answers[1]["message"]
    assert len(await rollouts(client)) == 1
    [delivery] = await deliveries(client)
    assert delivery["deliveries"] == 3 and delivery["outcome"] == "rollout_created"
    assert delivery["rollout_id"] == answers[0]["rollout_id"]
    assert (delivery["provider"], delivery["delivery_id"]) == ("distribution", push.delivery_id)
    assert (delivery["tag"], delivery["digest"]) == (push.tag, push.digest)
    assert counted(container, "distribution", "deduplicated") == 2


async def test_identical_deliveries_arriving_together_make_one_rollout(
    client: httpx.AsyncClient,
) -> None:
    body, _ = await push_setup(client, "acr")
    answers = await asyncio.gather(*(deliver(client, "acr", body) for _ in range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert sorted(a.json()["outcome"] for a in answers) == ["duplicate"] * 5 + ["rollout_created"]
    assert len(await rollouts(client)) == 1
    [delivery] = await deliveries(client)
    assert delivery["deliveries"] == 6


async def test_githubs_package_and_registry_package_events_for_one_push_make_one_rollout(
    client: httpx.AsyncClient,
) -> None:
    package, push = await push_setup(client, "ghcr")
    registry_package = load("ghcr/registry_package_published_container.json")
    version = registry_package["registry_package"]["package_version"]
    version["container_metadata"]["tag"]["name"] = push.tag
    version["package_url"] = f"{push.repository}:{push.tag}"
    headers = {"X-GitHub-Event": "registry_package", "X-GitHub-Delivery": "another-delivery"}
    same = pushed("ghcr", registry_package, **headers)
    assert (same.repository, same.tag, same.digest) == (push.repository, push.tag, push.digest)
    first = (await deliver(client, "ghcr", package)).json()
    second = (await deliver(client, "ghcr", registry_package, headers=headers)).json()
    assert (first["outcome"], second["outcome"]) == ("rollout_created", "duplicate")
    assert len(await rollouts(client)) == 1
    [delivery] = await deliveries(client)
    assert delivery["deliveries"] == 2


async def test_a_quay_push_of_two_tags_makes_one_rollout_and_answers_with_it(
    client: httpx.AsyncClient,
) -> None:
    await policy(client, image_pattern="quay.io/dgangaia/test:*", update_strategy="auto")
    await register_device(client, uuid="d", apps=target_apps(f"quay.io/dgangaia/test:{OLD_TAG}"))
    answer = (await deliver(client, "quay", raw("quay/repo_push.json"))).json()
    assert answer["outcome"] == "rollout_created"
    # one push of one image under the tags "latest" and "v2.0.1": one rollout, the one answered
    made = await rollouts(client)
    assert len(made) == 1, [(r["new_tag"], r["status"], r["superseded_by"]) for r in made]
    [rollout] = made
    assert (answer["rollout_id"], answer["status"]) == (rollout["rollout_id"], rollout["status"])
    assert await target_image(client, "d") == f"quay.io/dgangaia/test:{rollout['new_tag']}"


async def test_a_push_announced_through_the_generic_and_the_docker_hub_endpoints_makes_one_rollout(
    client: httpx.AsyncClient,
) -> None:
    body, _ = await push_setup(client, "dockerhub")
    first = (await deliver(client, "dockerhub", body, endpoint="docker-registry")).json()
    second = await client.post(
        f"/api/v1/webhooks/dockerhub/{SECRET}", content=body, headers=NO_ADMIN
    )
    assert (first["outcome"], second.json()["outcome"]) == ("rollout_created", "duplicate")
    assert len(await rollouts(client)) == 1


async def test_a_push_announced_by_harbor_and_by_its_distribution_registry_makes_one_rollout(
    client: httpx.AsyncClient,
) -> None:
    body, push = await push_setup(client, "harbor")
    assert push.digest is not None
    host, _, repository = push.repository.partition("/")
    event = distribution_event(
        "n-1", repository, push.digest, media_type=MANIFEST, tag=push.tag, host=host
    )
    first = (await deliver(client, "harbor", body)).json()
    second = (await deliver(client, "distribution", {"events": [event]})).json()
    assert (first["outcome"], second["outcome"]) == ("rollout_created", "duplicate")
    assert len(await rollouts(client)) == 1
    [delivery] = await deliveries(client)
    assert (delivery["provider"], delivery["deliveries"]) == ("harbor", 2)


# --- 5. Payloads refused -----------------------------------------------------------------------

Change = Callable[[Any], object]


@pytest.mark.parametrize(
    ("provider", "change", "problem"),
    [
        (
            "dockerhub",
            lambda p: p["repository"].pop("repo_name"),
            "repository.repo_name is missing",
        ),
        ("distribution", lambda p: p.update(events={"0": {}}), "events must be a list"),
        (
            "harbor",
            lambda p: p["event_data"].update(resources="x"),
            "event_data.resources must be a list",
        ),
        ("quay", lambda p: p.pop("docker_url"), "docker_url is missing"),
        ("acr", lambda p: p["target"].pop("repository"), "target.repository is missing"),
        (
            "ghcr",
            lambda p: p["package"]["package_version"].pop("container_metadata"),
            "package.package_version.container_metadata is missing",
        ),
    ],
)
async def test_a_payload_not_of_the_providers_shape_is_refused_naming_the_field(
    client: httpx.AsyncClient, provider: str, change: Change, problem: str
) -> None:
    payload = copy.deepcopy(load(PUSHES[provider][0]))
    change(payload)
    response = await deliver(client, provider, payload)
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["field"] == "body" and problem in detail["message"]
    assert problem in response.json()["error"]
    assert await deliveries(client) == []


@pytest.mark.parametrize("endpoint", [*PROVIDERS, "docker-registry"])
async def test_a_body_that_is_not_json_or_not_an_object_is_refused(
    client: httpx.AsyncClient, endpoint: str
) -> None:
    provider = "dockerhub" if endpoint == "docker-registry" else endpoint
    broken = await deliver(client, provider, b'{"events": [', endpoint=endpoint)
    assert broken.status_code == 422, broken.text
    assert "is not valid JSON" in broken.json()["error"]
    array = await deliver(client, provider, b"[1, 2]", endpoint=endpoint)
    assert array.status_code == 422, array.text
    assert array.json()["detail"][0]["field"] == "body"


async def test_an_unknown_provider_is_not_found(client: httpx.AsyncClient) -> None:
    body = raw("dockerhub/push.json")
    for path in ("gitlab", f"gitlab/{SECRET}"):
        response = await client.post(
            f"/api/v1/webhooks/{path}", content=body, params={"secret": SECRET}
        )
        assert response.status_code == 404, (path, response.text)
        assert "no webhook endpoint" in response.json()["error"]


async def test_a_payload_the_generic_endpoint_cannot_recognise_is_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    for payload in ({"hello": "world"}, {"repository": {"repo_name": "a/b"}}, {"events": {}}):
        response = await client.post(
            GENERIC,
            content=as_bytes(payload),
            params={"secret": SECRET},
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        assert response.status_code == 422, (payload, response.text)
        assert "not a webhook from a known registry" in response.json()["error"]
    assert sum(counted(container, p, what) for p in PROVIDERS for what in COUNTED) == 0


async def test_a_body_over_one_mebibyte_is_refused(client: httpx.AsyncClient) -> None:
    body = raw("dockerhub/push.json")
    at_limit = body + b" " * (MAX_BODY_BYTES - len(body))
    accepted = await deliver(client, "dockerhub", at_limit)
    assert accepted.status_code == 200, accepted.text
    too_big = await deliver(client, "dockerhub", at_limit + b" ")
    assert too_big.status_code == 413, too_big.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the size is counted
        for _ in range(3):
            yield b" " * (MAX_BODY_BYTES // 2)

    streamed = await client.post(
        "/api/v1/webhooks/harbor", content=chunks(), headers={"Authorization": SECRET}
    )
    assert streamed.status_code == 413, streamed.text
    assert "larger than" in streamed.json()["error"]
    assert len(await deliveries(client)) == 1


# --- 6. Secrets stay secret --------------------------------------------------------------------


async def test_the_webhook_secret_never_appears_in_a_response(client: httpx.AsyncClient) -> None:
    body, push = await push_setup(client, "harbor")
    answers = [
        await deliver(client, "harbor", body),
        await deliver(client, "harbor", body),
        await deliver(client, "harbor", body, secret=WRONG),
        await client.post(f"/api/v1/webhooks/harbor/{SECRET}", content=body, headers=NO_ADMIN),
        await deliver(client, "dockerhub", {"repository": {}, "push_data": {}}),
        await deliver(client, "dockerhub", b"{not json", endpoint=f"dockerhub/{SECRET}"),
        await client.post(f"/api/v1/webhooks/gitlab/{SECRET}", content=body),
        await client.post(GENERIC, content=b"{}", params={"secret": SECRET}),
        await client.get("/api/v1/webhooks/deliveries"),
    ]
    rollout_id = answers[0].json()["rollout_id"]
    for path in ("", "/events", "/devices"):
        answers.append(await client.get(f"/api/v1/rollouts/{rollout_id}{path}"))
    answers.append(await client.get("/api/v1/rollouts"))
    assert [a.status_code for a in answers[:8]] == [200, 200, 401, 401, 422, 422, 404, 422]
    for answer in answers:
        assert SECRET not in answer.text and SECRET not in str(answer.headers), answer.request.url
        assert WRONG not in answer.text
    assert await target_image(client, "runs-it") == new_target(push)
