"""Polling registries that cannot send webhooks, into the webhooks' own path.

For each registry that is due, the repositories of its host that enabled policies name have
their tags listed and the digests of the tags those policies take read. A tag new since the
last poll, or whose digest changed, is recorded and planned as a webhook's push is
(``rollouts/deliveries.py``): same deduplication key (repository, tag, digest), so a push
both announced and polled makes one rollout; provider ``poll``, digest-pinned. The first
poll of a repository records what it finds and starts nothing.

With several workers, a registry is polled by one of them: the worker claims it in a short
transaction that locks its row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, as the rollout
monitor locks rollouts) and moves its ``next_poll_at`` a lease ahead, so no other worker
takes it; the poll's HTTP requests run outside any transaction. A failed poll is recorded on
the registry (``last_error``, ``failures``), logged as ``registry_poll_failed`` and counted;
the next one waits longer (doubling), and never less than a 429's ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select, update

from fleetwave.clock import Clock
from fleetwave.domain.images import ImagePattern, parse_image, parse_pattern, try_parse_image
from fleetwave.domain.registry_polling import (
    changed_tags,
    next_poll_at,
    polled_repositories,
    registry_host,
)
from fleetwave.domain.roles import registry_actor
from fleetwave.domain.tags import TagRule, pushed_tag_refusal
from fleetwave.registries.payloads import Ignored, PushedImage
from fleetwave.registries.registry_client import Credentials, PollFailed, RegistryClient
from fleetwave.registries.sealing import SealBroken, Sealer
from fleetwave.registries.service import group_pushes
from fleetwave.rollouts.deliveries import POLL, DeliveryPlanner
from fleetwave.rollouts.manager import Delivery, UpdateRequest
from fleetwave.store.db import Database
from fleetwave.store.queries import insert_rows
from fleetwave.store.tables import image_update_policies as policies
from fleetwave.store.tables import registries, registry_repositories
from fleetwave.telemetry import Telemetry

log = logging.getLogger("fleetwave.registry_poller")
LEASE_SECONDS = 300.0  # a claimed registry is another worker's again after this
HttpFactory = Callable[[bool], httpx.AsyncClient]  # insecure → a client


def http_client(insecure: bool) -> httpx.AsyncClient:
    """A client for one poll: bounded redirects and time; ``insecure`` skips TLS checks."""
    return httpx.AsyncClient(
        verify=not insecure, follow_redirects=True, max_redirects=5, timeout=10.0
    )


@dataclass(frozen=True)
class Polled:
    """One poll: the registry, the pushes it found, or why it failed."""

    registry: str
    pushes: int = 0
    error: str | None = None


@dataclass(frozen=True)
class _Watch:
    pattern: ImagePattern
    rule: TagRule


class RegistryPoller:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        planner: DeliveryPlanner,
        sealer: Sealer,
        telemetry: Telemetry,
        http: HttpFactory = http_client,
        *,
        idle_seconds: float = 1.0,
    ) -> None:
        self.db, self.clock, self.planner, self.sealer = db, clock, planner, sealer
        self.telemetry, self.http, self.idle_seconds = telemetry, http, idle_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Poll what is due, then sleep until the next registry is due (looking again at
        least every ``idle_seconds``, for registries added meanwhile), until ``stop``."""
        while not stop.is_set():
            wait = self.idle_seconds
            try:
                await self.tick()
                wait = await self._due_in()
            except Exception:  # the database went away: the next round tries again
                log.exception("polling registries failed; retried")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def _due_in(self) -> float:
        """Seconds until the next registry is due, within [0.05, idle_seconds]."""
        async with self.db.read() as conn:
            due = (
                await conn.execute(
                    select(registries.c.next_poll_at)
                    .where(registries.c.enabled.is_(True))
                    .order_by(registries.c.next_poll_at)
                    .limit(1)
                )
            ).scalar()
        if due is None:
            return self.idle_seconds
        seconds: float = (due - self.clock.now()).total_seconds()
        return min(max(seconds, 0.05), self.idle_seconds)

    async def tick(self) -> list[Polled]:
        """Poll every registry that is due and that no other worker is polling."""
        polled = []
        while (row := await self._claim()) is not None:
            polled.append(await self._poll(row))
        return polled

    async def _claim(self) -> Any:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(
                    select(registries)
                    .where(registries.c.enabled.is_(True), registries.c.next_poll_at <= now)
                    .order_by(registries.c.next_poll_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is not None:
                lease = now + timedelta(seconds=LEASE_SECONDS)
                await conn.execute(
                    update(registries).where(registries.c.id == row.id).values(next_poll_at=lease)
                )
            return row

    async def _poll(self, row: Any) -> Polled:
        host = registry_host(row.url)
        try:
            watches = await self._watches()
            found = await self._read(row, host, watches)
            pushes = await self._record(row, host, found)
        except PollFailed as exc:
            return await self._failed(row, exc.reason, exc.retry_after)
        except SealBroken:
            return await self._failed(row, "its password was sealed with another registry key")
        except Exception as exc:  # a registry answering garbage must not stop the poller
            log.warning("polling registry %s: unexpected %s", row.name, type(exc).__name__)
            return await self._failed(row, f"unexpected answer ({type(exc).__name__})")
        self.telemetry.registry_polls.labels(registry=row.name, result="ok").inc()
        if pushes:
            self.telemetry.registry_pushes_found.labels(registry=row.name).inc(pushes)
        return Polled(row.name, pushes=pushes)

    async def _watches(self) -> list[_Watch]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(
                    policies.c.image_pattern,
                    policies.c.semver_policy,
                    policies.c.allow_prerelease,
                    policies.c.include_tags,
                    policies.c.exclude_tags,
                ).where(policies.c.enabled.is_(True))
            )
            return [
                _Watch(
                    parse_pattern(r.image_pattern),
                    TagRule(
                        semver=r.semver_policy,
                        allow_prerelease=r.allow_prerelease,
                        include=tuple(r.include_tags or ()),
                        exclude=tuple(r.exclude_tags or ()),
                    ),
                )
                for r in rows
            ]

    async def _read(
        self, row: Any, host: str, watches: Sequence[_Watch]
    ) -> dict[str, dict[str, str]]:
        """Each polled repository's tags that a policy takes, with their digests."""
        password = self.sealer.open(row.password_sealed) if row.password_sealed else None
        repositories = polled_repositories(host, [w.pattern.text for w in watches])
        found: dict[str, dict[str, str]] = {}
        async with self.http(row.insecure) as http, asyncio.timeout(LEASE_SECONDS / 2):
            credentials = Credentials(row.username, password)
            client = RegistryClient(
                http, row.url, credentials, self.clock.now(), insecure=row.insecure
            )
            for repository in repositories:
                tags = [
                    tag
                    for tag in await client.tags(repository)
                    if _taken(f"{host}/{repository}:{tag}", tag, watches)
                ]
                digests = {tag: await client.digest(repository, tag) for tag in tags}
                found[repository] = {tag: d for tag, d in digests.items() if d is not None}
        return found

    async def _record(self, row: Any, host: str, found: dict[str, dict[str, str]]) -> int:
        """Record and plan what changed since the last poll, then what this one found (in
        that order: if saving fails, the next poll finds the same pushes, and they are
        duplicates of those recorded)."""
        async with self.db.read() as conn:
            seen = {
                r.repository: r.tags
                for r in await conn.execute(
                    select(registry_repositories).where(
                        registry_repositories.c.registry_id == row.id
                    )
                )
            }
        items: list[PushedImage | Ignored] = [
            PushedImage(POLL, f"{host}/{repository}", tag, tags[tag], row.name, None)
            for repository, tags in found.items()
            for tag in changed_tags(seen.get(repository), tags)
        ]
        pushes = [
            [_request(item) for item in group if isinstance(item, PushedImage)]
            for group in group_pushes(items)
        ]
        if pushes:
            recorded = await self.planner.record(pushes)
            pending = [tag.pending for push in recorded for tag in push if tag.pending is not None]
            if pending:
                await self.planner.plan(pending)
        await self._saved(row, found)
        return len(items)

    async def _saved(self, row: Any, found: dict[str, dict[str, str]]) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await _locked(conn, row.id)
            if current is None:
                return  # removed while it was polled
            await conn.execute(
                delete(registry_repositories).where(
                    registry_repositories.c.registry_id == row.id,
                    registry_repositories.c.repository.in_(list(found)),
                )
            )
            await insert_rows(
                conn,
                registry_repositories,
                [
                    {"registry_id": row.id, "repository": repo, "tags": tags, "polled_at": now}
                    for repo, tags in found.items()
                ],
            )
            await conn.execute(
                update(registries)
                .where(registries.c.id == row.id)
                .values(
                    failures=0,
                    last_error=None,
                    last_polled_at=now,
                    next_poll_at=next_poll_at(now, current.poll_interval_seconds, 0),
                )
            )

    async def _failed(self, row: Any, reason: str, retry_after: float | None = None) -> Polled:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await _locked(conn, row.id)
            if current is not None:
                failures = current.failures + 1
                await conn.execute(
                    update(registries)
                    .where(registries.c.id == row.id)
                    .values(
                        failures=failures,
                        last_error=reason,
                        last_polled_at=now,
                        next_poll_at=next_poll_at(
                            now, current.poll_interval_seconds, failures, retry_after
                        ),
                    )
                )
        self.telemetry.registry_polls.labels(registry=row.name, result="failed").inc()
        log.warning("registry_poll_failed: registry %s: %s", row.name, reason)
        return Polled(row.name, error=reason)


def _taken(reference: str, tag: str, watches: Sequence[_Watch]) -> bool:
    """Whether some enabled policy would take this tag (its pattern and its tag rule)."""
    image = try_parse_image(reference)
    return image is not None and any(
        w.pattern.matches(image) and pushed_tag_refusal(w.rule, tag) is None for w in watches
    )


def _request(item: PushedImage) -> UpdateRequest:
    return UpdateRequest(
        image=parse_image(f"{item.repository}:{item.tag}@{item.digest}"),
        triggered_by=POLL,
        actor=registry_actor(POLL),
        delivery=Delivery(POLL, item.delivery_id),
    )


async def _locked(conn: Any, registry_id: int) -> Any:
    return (
        await conn.execute(
            select(registries).where(registries.c.id == registry_id).with_for_update()
        )
    ).first()
