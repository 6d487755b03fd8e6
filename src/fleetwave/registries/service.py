"""Receiving a registry's webhook: verify it, read it, hand each push to the update manager.

A delivery that fails verification is answered 401 and leaves no trace but a counter. Pulls,
deletes, blobs and untagged manifests are answered 200 with the reason they change nothing;
redeliveries and bursts are recognised by the update manager and make one rollout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.images import parse_image
from fleetwave.domain.tags import Version, parse_version
from fleetwave.errors import NotFound, Unauthorized
from fleetwave.registries.payloads import (
    PROVIDERS,
    Ignored,
    PayloadError,
    PushedImage,
    detect_provider,
    parse,
)
from fleetwave.registries.verification import verify
from fleetwave.rollouts.manager import Delivery, ImageUpdateManager, UpdateRequest
from fleetwave.store.db import Database
from fleetwave.store.tables import webhook_deliveries
from fleetwave.telemetry import Telemetry

GENERIC = "docker-registry"


class WebhookService:
    def __init__(
        self,
        db: Database,
        manager: ImageUpdateManager,
        secrets: Mapping[str, str],
        telemetry: Telemetry,
    ) -> None:
        self.db, self.manager, self.secrets, self.telemetry = db, manager, secrets, telemetry

    async def deliveries(
        self, *, provider: str | None = None, outcome: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Recent pushes received, newest first, with what became of each and why."""
        query = select(webhook_deliveries).order_by(webhook_deliveries.c.id.desc()).limit(limit)
        if provider is not None:
            query = query.where(webhook_deliveries.c.provider == provider)
        if outcome is not None:
            query = query.where(webhook_deliveries.c.outcome == outcome)
        async with self.db.read() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def receive(
        self,
        endpoint: str,
        raw_body: bytes,
        headers: Mapping[str, str],
        url_secret: str | None,
    ) -> dict[str, Any]:
        if endpoint != GENERIC and endpoint not in PROVIDERS:
            raise NotFound(
                f"no webhook endpoint for {endpoint!r}; use one of {', '.join(PROVIDERS)}"
            )
        if endpoint == GENERIC:  # the provider is known only once the body is read
            payload = _json(raw_body)
            provider = self._recognise(payload, headers)
            self._verify(provider, raw_body, headers, url_secret)
        else:  # nothing of an unverified body is read
            provider = endpoint
            self._verify(provider, raw_body, headers, url_secret)
            payload = _json(raw_body)
        self.telemetry.webhooks_received.labels(provider=provider).inc()
        try:
            items = parse(provider, payload, headers)
        except PayloadError as exc:
            raise InvalidInput.one("body", f"not a {provider} webhook: {exc}") from None
        results = []
        for group in _pushes(items):
            results += await self._handle_push(provider, group, payload)
        return _answer(provider, results)

    async def _handle_push(
        self, provider: str, tags: list[PushedImage | Ignored], payload: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """One push announced under several tags makes one rollout: the most telling tag
        that a policy takes (a version before ``latest``); the other tags say so."""
        results: list[dict[str, Any]] = []
        created: dict[str, Any] | None = None
        for item in tags:
            if created is not None and isinstance(item, PushedImage):
                results.append(_nothing(f"same push as {created['image']}, rolled out once"))
                continue
            result = await self._handle(provider, item, payload)
            if result["outcome"] == "rollout_created":
                created = result
            results.append(result)
        return results

    def _verify(
        self, provider: str, raw_body: bytes, headers: Mapping[str, str], url_secret: str | None
    ) -> None:
        if not verify(provider, raw_body, headers, url_secret, self.secrets[provider]):
            self.telemetry.webhooks_rejected.labels(provider=provider).inc()
            raise Unauthorized(f"{provider} webhook failed verification")

    def _recognise(self, payload: Any, headers: Mapping[str, str]) -> str:
        provider = detect_provider(payload, headers)
        if provider is None:
            raise InvalidInput.one(
                "body",
                "not a webhook from a known registry (Docker Hub, GHCR, Distribution, "
                "Harbor, Quay, ACR)",
            )
        return provider

    async def _handle(
        self, provider: str, item: PushedImage | Ignored, payload: dict[str, Any]
    ) -> dict[str, Any]:
        if isinstance(item, Ignored):
            return _nothing(item.reason)
        reference = f"{item.repository}:{item.tag}" + (f"@{item.digest}" if item.digest else "")
        image = parse_image(reference, field="body")
        outcome = await self.manager.handle(
            UpdateRequest(
                image=image,
                triggered_by=f"webhook:{provider}",
                delivery=Delivery(provider, item.delivery_id, item.pushed_at),
                payload=payload,
            )
        )
        if outcome.outcome == "duplicate":
            self.telemetry.webhooks_deduplicated.labels(provider=provider).inc()
        return outcome.as_json()


def _pushes(items: list[PushedImage | Ignored]) -> list[list[PushedImage | Ignored]]:
    """Group a delivery's events by push: same repository and digest (or, without a digest,
    the same delivery), each group's tags in order of preference."""
    groups: dict[tuple[str, str], list[PushedImage | Ignored]] = {}
    for index, item in enumerate(items):
        if isinstance(item, Ignored):
            groups[("", str(index))] = [item]
        else:
            groups.setdefault((item.repository, item.digest or ""), []).append(item)
    return [sorted(group, key=_preference) for group in groups.values()]


def _preference(item: PushedImage | Ignored) -> tuple[int, Any]:
    if isinstance(item, Ignored):
        return (3, "")
    version = parse_version(item.tag)
    if version is not None:
        return (0, _Descending(version))
    return (2 if item.tag == "latest" else 1, item.tag)


class _Descending:
    def __init__(self, version: Version) -> None:
        self.version = version

    def __lt__(self, other: _Descending) -> bool:
        return self.version > other.version


def _nothing(reason: str) -> dict[str, Any]:
    return {
        "outcome": "ignored",
        "message": reason,
        "rollout_id": None,
        "status": None,
        "affected_devices": 0,
        "image": None,
    }


def _json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput.one("body", f"is not valid JSON ({exc})") from None


def _answer(provider: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan's ``{rollout_id, status, affected_devices}``, for the push that mattered most."""
    order = {"rollout_created": 0, "duplicate": 1, "ignored": 2}
    if not results:
        results = [_nothing("the delivery carried no event")]
    headline = min(results, key=lambda r: order.get(r["outcome"], 3))
    return headline | {"provider": provider, "events": results}
