"""Use cases of image update policies, and the policy lookup the pipeline needs.

A policy read by itself (and the answer to its creation or update) also says which of its
health checks some of the devices it covers cannot run (``domain.check_placement``): counted
in one grouped query over the devices whose targets run a repository its pattern matches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.check_placement import DeviceGroup, coverage
from fleetwave.domain.health import effective_checks, parse_checks
from fleetwave.domain.images import parse_image, parse_pattern
from fleetwave.domain.policy_choice import PolicyCandidate
from fleetwave.errors import NotFound
from fleetwave.policies.schemas import PolicyFields
from fleetwave.rings.service import check_ring_names
from fleetwave.settings import Settings
from fleetwave.store.audit import record_change
from fleetwave.store.db import Database
from fleetwave.store.tables import device_target_images, devices
from fleetwave.store.tables import image_update_policies as policies


class PolicyService:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db, self.clock, self.settings = db, clock, settings

    def _row_values(self, data: PolicyFields, now: datetime) -> dict[str, Any]:
        # data passed the policy's rules as it was parsed (PolicyFields, policies.rules)
        values = data.model_dump()
        if data.batch_percentages is not None:
            values["staged_batches"] = len(data.batch_percentages)
        defaults = {
            "batch_delay_minutes": self.settings.batch_delay_minutes,
            "health_check_timeout_seconds": self.settings.health_check_timeout,
            "auto_rollback": self.settings.auto_rollback,
            "max_failure_rate": self.settings.max_failure_rate,
        }
        for name, default in defaults.items():
            if values[name] is None:
                values[name] = default
        return values | {"updated_at": now}

    async def create(self, data: PolicyFields, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        values = self._row_values(data, now) | {"created_at": now}
        async with self.db.transaction() as conn:
            await check_ring_names(conn, data.rings)
            policy_id = (
                await conn.execute(insert(policies).values(**values).returning(policies.c.id))
            ).scalar_one()
            created = await load_policy(conn, policy_id)
            await record_change(
                conn, at=now, actor=actor, action="created", object_type="policy",
                object_id=policy_id, after=created,
            )  # fmt: skip
            return await with_coverage(conn, created)

    async def replace(self, policy_id: int, data: PolicyFields, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        values = self._row_values(data, now)
        async with self.db.transaction() as conn:
            before = await _locked_policy(conn, policy_id)
            await check_ring_names(conn, data.rings)
            await conn.execute(update(policies).where(policies.c.id == policy_id).values(**values))
            after = await load_policy(conn, policy_id)
            await record_change(
                conn, at=now, actor=actor, action="updated", object_type="policy",
                object_id=policy_id, before=before, after=after,
            )  # fmt: skip
            return await with_coverage(conn, after)

    async def get(self, policy_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await with_coverage(conn, await load_policy(conn, policy_id))

    async def delete(self, policy_id: int, actor: str) -> None:
        async with self.db.transaction() as conn:
            before = await _locked_policy(conn, policy_id)
            await conn.execute(delete(policies).where(policies.c.id == policy_id))
            await record_change(
                conn, at=self.clock.now(), actor=actor, action="deleted", object_type="policy",
                object_id=policy_id, before=before,
            )  # fmt: skip

    async def list(
        self,
        *,
        enabled: bool | None = None,
        strategy: str | None = None,
        fleet_id: str | None = None,
        image: str | None = None,
    ) -> list[dict[str, Any]]:
        query = select(policies).order_by(policies.c.priority.desc(), policies.c.id)
        if enabled is not None:
            query = query.where(policies.c.enabled.is_(enabled))
        if strategy is not None:
            query = query.where(policies.c.update_strategy == strategy)
        if fleet_id is not None:
            query = query.where(policies.c.fleet_id == fleet_id)
        async with self.db.read() as conn:
            rows = [policy_view(row) for row in await conn.execute(query)]
        if image is not None:
            ref = parse_image(image, field="image")
            rows = [r for r in rows if parse_pattern(r["image_pattern"]).matches(ref)]
        return rows


def policy_view(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    values["max_failure_rate"] = float(values["max_failure_rate"])
    checks = effective_checks(
        values["health_check_enabled"], values["health_check_config"], values["soak_seconds"]
    )
    values["effective_health_checks"] = [check.as_json() for check in checks]
    return values


async def load_policy(conn: AsyncConnection, policy_id: int) -> dict[str, Any]:
    row = (await conn.execute(select(policies).where(policies.c.id == policy_id))).first()
    if row is None:
        raise NotFound(f"policy {policy_id} not found")
    return policy_view(row)


async def with_coverage(conn: AsyncConnection, policy: dict[str, Any]) -> dict[str, Any]:
    """The policy with ``health_check_coverage``: how many devices it covers, and a warning
    for each check some of them cannot run (their agent does not run it, no address)."""
    groups = await _device_groups(conn, policy)
    warnings = coverage(parse_checks(policy["effective_health_checks"]), groups)
    return policy | {
        "health_check_coverage": {
            "devices": sum(group.devices for group in groups),
            "warnings": [warning.as_json() for warning in warnings],
        }
    }


async def _device_groups(conn: AsyncConnection, policy: dict[str, Any]) -> list[DeviceGroup]:
    """The devices the policy covers (their targets run a repository its pattern matches,
    after its filters), counted by declared capabilities and whether they have an address."""
    pattern = parse_pattern(policy["image_pattern"])
    known = await conn.execute(select(device_target_images.c.repository).distinct())
    repositories = [r for r in known.scalars() if pattern.matches_repository(r)]
    if not repositories:
        return []
    running = select(device_target_images.c.device_uuid).where(
        device_target_images.c.repository.in_(repositories)
    )
    conditions: list[ColumnElement[bool]] = [devices.c.uuid.in_(running)]
    if policy["fleet_id"] is not None:
        conditions.append(devices.c.fleet_id == policy["fleet_id"])
    for key, value in (policy["device_tags"] or {}).items():
        conditions.append(devices.c.tags[key].as_string() == value)
    if policy["device_uuids"] is not None:
        conditions.append(devices.c.uuid.in_(policy["device_uuids"]))
    has_address = devices.c.ip_address.is_not(None)
    rows = await conn.execute(
        select(devices.c.capabilities, has_address, func.count())
        .where(*conditions)
        .group_by(devices.c.capabilities, has_address)
    )
    return [DeviceGroup(frozenset(caps or ()), bool(address), n) for caps, address, n in rows]


async def enabled_policy_candidates(conn: AsyncConnection) -> list[PolicyCandidate]:
    """Every enabled policy, ready for :func:`fleetwave.domain.policy_choice.choose_policy`."""
    rows = await conn.execute(
        select(policies.c.id, policies.c.image_pattern, policies.c.priority).where(
            policies.c.enabled.is_(True)
        )
    )
    return [
        PolicyCandidate(id=row.id, pattern=parse_pattern(row.image_pattern), priority=row.priority)
        for row in rows
    ]


async def _locked_policy(conn: AsyncConnection, policy_id: int) -> dict[str, Any]:
    """The policy as it is, locked until commit (404 if there is none)."""
    found = await conn.execute(
        select(policies.c.id).where(policies.c.id == policy_id).with_for_update()
    )
    if found.first() is None:
        raise NotFound(f"policy {policy_id} not found")
    return await load_policy(conn, policy_id)
