"""Helpers for the webhook tests: the providers' published payloads, delivered the way each
provider proves it knows the secret (URL, signature or header)."""

from __future__ import annotations

import hashlib
import hmac
import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx

from fleetwave.registries.payloads import PushedImage, parse
from tests.integration.factories import register_device, target_apps
from tests.integration.pipeline import WEBHOOK_SECRET, policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
GITHUB_DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
NO_ADMIN = {"Authorization": ""}  # the client sends the admin token unless told otherwise
URL_PROVIDERS = ("dockerhub", "quay")


def raw(name: str) -> bytes:
    """A fixture's bytes exactly as stored (GitHub signs these, not a re-serialisation)."""
    return (FIXTURES / name).read_bytes()


def load(name: str) -> Any:
    return json.loads(raw(name))


def github_headers(event: str = "package") -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": GITHUB_DELIVERY}


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def as_bytes(body: bytes | Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def proof(provider: str, body: bytes, secret: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query) proving ``secret`` the provider's way."""
    if provider in URL_PROVIDERS:
        return NO_ADMIN, {"secret": secret}
    if provider == "ghcr":
        return github_headers() | NO_ADMIN | {"X-Hub-Signature-256": sign(body, secret)}, {}
    return {"Authorization": f"Bearer {secret}"}, {}


async def deliver(
    client: httpx.AsyncClient,
    provider: str,
    body: bytes | Any,
    *,
    endpoint: str | None = None,
    secret: str = WEBHOOK_SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST ``body`` to ``/api/v1/webhooks/<endpoint or provider>`` with the provider's proof;
    ``headers`` are added last (e.g. another X-GitHub-Event)."""
    content = as_bytes(body)
    proof_headers, params = proof(provider, content, secret)
    return await client.post(
        f"/api/v1/webhooks/{endpoint or provider}",
        content=content,
        params=params,
        headers={"Content-Type": "application/json"} | proof_headers | (headers or {}),
    )


def pushed(provider: str, body: bytes | Any, tag_glob: str = "*", **headers: str) -> PushedImage:
    """What the application reads from the payload: its last push whose tag fits ``tag_glob``."""
    if provider == "ghcr" and not headers:
        headers = github_headers()
    items = parse(provider, json.loads(as_bytes(body)), headers)
    found = [i for i in items if isinstance(i, PushedImage) and fnmatchcase(i.tag, tag_glob)]
    assert found, items
    return found[-1]


def new_target(push: PushedImage, *, pinned: bool = True) -> str:
    image = f"{push.repository}:{push.tag}"
    return f"{image}@{push.digest}" if pinned and push.digest else image


async def deliveries(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/webhooks/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def target_state(client: httpx.AsyncClient, uuid: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/devices/{uuid}/target-state")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def distribution_event(
    event_id: str,
    repository: str,
    digest: str,
    *,
    media_type: str,
    tag: str | None = None,
    host: str = "registrycluster.local",
) -> dict[str, Any]:
    """One event of a Distribution envelope, shaped like the documented ones."""
    kind = "blobs" if "rootfs" in media_type else "manifests"
    target = {
        "mediaType": media_type,
        "digest": digest,
        "length": 1,
        "repository": repository,
        "url": f"https://{host}/v2/{repository}/{kind}/{digest}",
    }
    return {
        "id": event_id,
        "timestamp": "2024-11-27T10:00:00Z",
        "action": "push",
        "target": target | ({"tag": tag} if tag else {}),
        "request": {"id": "req-1", "host": host, "method": "PUT"},
        "actor": {"name": "ci"},
        "source": {"addr": "registry-0:5000"},
    }


# --- The tests' pushes and proofs --------------------------------------------------

SECRET = WEBHOOK_SECRET
WRONG = "not-the-secret-9876543210"
OLD_TAG = "v0.1.0"
# provider -> (its documented push, the tags the test policy takes)
PUSHES = {
    "dockerhub": ("dockerhub/push.json", "*"),
    "ghcr": ("ghcr/package_published_container.json", "*"),
    "distribution": ("distribution/push_manifest_tag.json", "*"),
    "harbor": ("harbor/push_artifact.json", "*"),
    "quay": ("quay/repo_push.json", "v*"),  # "latest" and "v2.0.1" in one push: take v2.0.1
    "acr": ("acr/push.json", "*"),
}
WITH_DIGEST = ("ghcr", "distribution", "harbor", "acr")


async def push_setup(
    client: httpx.AsyncClient, provider: str, **policy_fields: Any
) -> tuple[bytes, PushedImage]:
    """The provider's push fixture, a policy taking it, a device running its repository at an
    older tag ("runs-it") and one running something else ("other")."""
    name, tag_glob = PUSHES[provider]
    body = raw(name)
    push = pushed(provider, body, tag_glob)
    pattern = f"{push.repository}:{tag_glob}"
    await policy(client, image_pattern=pattern, update_strategy="auto", **policy_fields)
    await register_device(client, uuid="runs-it", apps=target_apps(f"{push.repository}:{OLD_TAG}"))
    await register_device(client, uuid="other", apps=target_apps(f"iotistic/unrelated:{OLD_TAG}"))
    return body, push


def request(
    provider: str,
    content: bytes,
    path: str = "",
    headers: dict[str, str] | None = None,
    **query: str,
) -> dict[str, Any]:
    return {
        "url": f"/api/v1/webhooks/{provider}{path}",
        "content": content,
        "params": query,
        "headers": {"Content-Type": "application/json"} | (headers or {}),
    }


def proofs(provider: str, body: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(requests proving the secret, requests that must not) for ``provider``; a request with
    no headers given carries the admin token only."""
    if provider in URL_PROVIDERS:
        accepted = [
            request(provider, body, f"/{SECRET}", NO_ADMIN),
            request(provider, body, headers=NO_ADMIN, secret=SECRET),
        ]
        rejected = [
            request(provider, body, f"/{WRONG}", NO_ADMIN),
            request(provider, body, headers=NO_ADMIN, secret=WRONG),
            request(provider, body),
            request(provider, body, headers={"Authorization": f"Bearer {SECRET}"}),
        ]
        return accepted, rejected
    if provider == "ghcr":
        github = github_headers() | NO_ADMIN
        reserialised = json.dumps(json.loads(body)).encode()
        one_byte_changed = body.replace(b"hello-world", b"hello-worle", 1)
        assert reserialised != body and one_byte_changed != body

        def signed(signed_body: bytes, secret: str = SECRET) -> dict[str, str]:
            return github | {"X-Hub-Signature-256": sign(signed_body, secret)}

        rejected = [
            request(provider, body, headers=signed(body, WRONG)),
            request(provider, body, headers=github),
            request(provider, reserialised, headers=signed(body)),
            request(provider, body, headers=signed(reserialised)),
            request(provider, one_byte_changed, headers=signed(body)),
            request(provider, body, headers=github, secret=SECRET),
            request(provider, body, f"/{SECRET}", github),
            request(provider, body, headers=github | {"Authorization": f"Bearer {SECRET}"}),
        ]
        return [request(provider, body, headers=signed(body))], rejected
    accepted = [
        request(provider, body, headers={"Authorization": SECRET}),
        request(provider, body, headers={"Authorization": f"Bearer {SECRET}"}),
        request(provider, body, headers={"X-Fleetwave-Webhook-Secret": SECRET}),
    ]
    rejected = [
        request(provider, body, headers={"Authorization": f"Bearer {WRONG}"}),
        request(provider, body, headers=NO_ADMIN | {"X-Fleetwave-Webhook-Secret": WRONG}),
        request(provider, body),
        request(provider, body, headers=NO_ADMIN, secret=SECRET),
        request(provider, body, f"/{SECRET}", NO_ADMIN),
    ]
    return accepted, rejected


LAYER = "application/vnd.docker.container.image.rootfs.diff+x-gtar"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
