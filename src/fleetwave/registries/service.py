"""Receiving a registry's webhook: verify it, read it, record its pushes, answer, plan.

A delivery that fails verification is answered 401 and leaves no trace but a counter. Pulls,
deletes, blobs and untagged manifests are answered 200 with the reason they change nothing.
Each push is recorded before the answer (``rollouts/deliveries.py``), and planned after: the
answer waits up to ``webhook_answer_wait`` seconds for the plan and is then the plan's own
(200: the rollout, or why none, or "duplicate"), else 202 ``pending`` while planning goes on.
Registries give up after about 10 s and deliver again; a redelivery is a duplicate either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.images import parse_image
from fleetwave.domain.json_input import parse_json
from fleetwave.domain.roles import registry_actor
from fleetwave.domain.tags import Version, parse_version
from fleetwave.domain.text_rules import check_json
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
from fleetwave.rollouts.deliveries import DeliveryPlanner, Recorded
from fleetwave.rollouts.manager import Delivery, UpdateOutcome, UpdateRequest
from fleetwave.store.db import Database
from fleetwave.store.tables import webhook_deliveries
from fleetwave.telemetry import Telemetry

GENERIC = "docker-registry"
PENDING = "pending"
log = logging.getLogger("fleetwave.webhooks")


class WebhookService:
    def __init__(
        self,
        db: Database,
        planner: DeliveryPlanner,
        secrets: Mapping[str, str],
        telemetry: Telemetry,
        *,
        answer_wait: float,
    ) -> None:
        self.db, self.planner, self.secrets, self.telemetry = db, planner, secrets, telemetry
        self.answer_wait = answer_wait
        self._planning: set[asyncio.Task[dict[int, UpdateOutcome]]] = set()

    async def deliveries(
        self, *, provider: str | None = None, outcome: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Recent pushes received, newest first, with what became of each and why."""
        columns = [c for c in webhook_deliveries.c if c.name != "payload"]
        query = select(*columns).order_by(webhook_deliveries.c.id.desc()).limit(limit)
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
            payload = parse_json(raw_body)
            provider = self._recognise(payload, headers)
            self._verify(provider, raw_body, headers, url_secret)
        else:  # nothing of an unverified body is read
            provider = endpoint
            self._verify(provider, raw_body, headers, url_secret)
            payload = parse_json(raw_body)
        self.telemetry.webhooks_received.labels(provider=provider).inc()
        check_json(payload, "body")  # the payload is kept with what it made, as JSON
        try:
            items = parse(provider, payload, headers)
        except PayloadError as exc:
            raise InvalidInput.one("body", f"not a {provider} webhook: {exc}") from None
        groups = group_pushes(items)
        pushes = [
            [_request(provider, item, payload) for item in group if isinstance(item, PushedImage)]
            for group in groups
        ]
        recorded = await self._record([push for push in pushes if push])
        outcomes = await self._planned([r.pending for r in recorded if r.pending is not None])
        results: list[dict[str, Any]] = []
        tags = iter(recorded)
        for group in groups:
            for item in group:
                if isinstance(item, Ignored):
                    results.append(_nothing(item.reason))
                else:
                    results.append(_result(next(tags), outcomes))
        return _answer(provider, results)

    async def settle(self) -> None:
        """Wait for the plans still being made after their webhooks were answered."""
        await asyncio.gather(*self._planning, return_exceptions=True)

    async def _record(self, pushes: list[list[UpdateRequest]]) -> list[Recorded]:
        if not pushes:
            return []
        recorded = await self.planner.record(pushes, wake_monitor=self.answer_wait == 0)
        return [tag for push in recorded for tag in push]

    async def _planned(self, pending: Sequence[int]) -> dict[int, UpdateOutcome]:
        """Plan the recorded pushes, answering with their outcomes if planned within the wait
        (the plan goes on after it); with no wait at all, the rollout monitor plans them."""
        if not pending or self.answer_wait == 0:
            return {}
        task = asyncio.create_task(self.planner.plan(pending))
        self._planning.add(task)
        task.add_done_callback(self._planned_later)
        done, _ = await asyncio.wait({task}, timeout=self.answer_wait)
        if task not in done or task.exception() is not None:
            return {}  # pending: planned later, or by the monitor if this planning failed
        return task.result()

    def _planned_later(self, task: asyncio.Task[dict[int, UpdateOutcome]]) -> None:
        self._planning.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "planning a webhook's pushes failed; the rollout monitor retries",
                exc_info=task.exception(),
            )

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


def _request(provider: str, item: PushedImage, payload: dict[str, Any]) -> UpdateRequest:
    reference = f"{item.repository}:{item.tag}" + (f"@{item.digest}" if item.digest else "")
    return UpdateRequest(
        image=parse_image(reference, field="body"),
        triggered_by=f"webhook:{provider}",
        actor=registry_actor(provider),
        delivery=Delivery(provider, item.delivery_id, item.pushed_at),
        payload=payload,
    )


def _result(tag: Recorded, planned: Mapping[int, UpdateOutcome]) -> dict[str, Any]:
    """A tag's part of the answer: its outcome, or that it is recorded and not planned yet."""
    outcome = tag.outcome or (planned.get(tag.pending) if tag.pending is not None else None)
    if outcome is not None:
        return outcome.as_json()
    return {
        "rollout_id": None,
        "status": None,
        "affected_devices": 0,
        "outcome": PENDING,
        "message": f"recorded as delivery {tag.pending}, being planned: "
        "GET /api/v1/webhooks/deliveries tells what it made",
        "image": str(tag.request.image),
        "delivery_id": tag.pending,
    }


def group_pushes(items: list[PushedImage | Ignored]) -> list[list[PushedImage | Ignored]]:
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


def _answer(provider: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan's ``{rollout_id, status, affected_devices}``, for the push that mattered most
    (a push not planned yet matters most: the answer is then "pending")."""
    order = {PENDING: 0, "rollout_created": 1, "duplicate": 2, "ignored": 3}
    if not results:
        results = [_nothing("the delivery carried no event")]
    headline = min(results, key=lambda r: order.get(r["outcome"], 4))
    return headline | {"provider": provider, "events": results}
