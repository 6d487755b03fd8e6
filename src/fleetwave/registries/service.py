"""Receiving a registry's webhook: verify it, read it, hand each push to the update manager.

A delivery that fails verification is answered 401 and leaves no trace but a counter. Pulls,
deletes, blobs and untagged manifests are answered 200 with the reason they change nothing;
redeliveries and bursts are recognised by the update manager and make one rollout.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.images import parse_image
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

GENERIC = "docker-registry"


class WebhookService:
    def __init__(
        self,
        db: Database,
        manager: ImageUpdateManager,
        secrets: Mapping[str, str],
        counters: Counter[str],
    ) -> None:
        self.db, self.manager, self.secrets, self.counters = db, manager, secrets, counters

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
        self.counters[f"{provider}:received"] += 1
        try:
            items = parse(provider, payload, headers)
        except PayloadError as exc:
            raise InvalidInput.one("body", f"not a {provider} webhook: {exc}") from None
        results = [await self._handle(provider, item, payload) for item in items]
        return _answer(provider, results)

    def _verify(
        self, provider: str, raw_body: bytes, headers: Mapping[str, str], url_secret: str | None
    ) -> None:
        if not verify(provider, raw_body, headers, url_secret, self.secrets[provider]):
            self.counters[f"{provider}:rejected"] += 1
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
            return {
                "outcome": "ignored",
                "message": item.reason,
                "rollout_id": None,
                "status": None,
                "affected_devices": 0,
                "image": None,
            }
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
            self.counters[f"{provider}:deduplicated"] += 1
        return outcome.as_json()


def _json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput.one("body", f"is not valid JSON ({exc})") from None


def _answer(provider: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan's ``{rollout_id, status, affected_devices}``, for the push that mattered most."""
    order = {"rollout_created": 0, "duplicate": 1, "ignored": 2}
    if not results:
        results = [
            {
                "outcome": "ignored",
                "message": "the delivery carried no event",
                "rollout_id": None,
                "status": None,
                "affected_devices": 0,
                "image": None,
            }
        ]
    headline = min(results, key=lambda r: order.get(r["outcome"], 3))
    return headline | {"provider": provider, "events": results}
