"""Use cases of deployment rings, and the ring lookup the rollout planner needs.

Each ring read says how many devices it selects now: one ``count(*)`` per ring (rings are
few, a handful per installation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.rings import Ring, unknown_rings
from fleetwave.errors import Conflict, InvalidInput, NotFound
from fleetwave.rings.schemas import RingCreate, RingFields
from fleetwave.store.audit import record_change
from fleetwave.store.db import Database
from fleetwave.store.tables import device_rings, devices
from fleetwave.store.tables import image_update_policies as policies


class RingService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    async def create(self, data: RingCreate, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        values = data.model_dump() | {"created_at": now, "updated_at": now}
        async with self.db.transaction() as conn:
            if await _ring_row(conn, data.name) is not None:
                raise Conflict(f"ring {data.name!r} already exists")
            try:
                await conn.execute(insert(device_rings).values(**values))
            except IntegrityError:  # a concurrent create of the same name
                raise Conflict(f"ring {data.name!r} already exists") from None
            created = await _view(conn, await _existing(conn, data.name))
            await record_change(
                conn, at=now, actor=actor, action="created", object_type="ring",
                object_id=data.name, after=_audit(created),
            )  # fmt: skip
            return created

    async def replace(self, name: str, data: RingFields, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            before = await _view(conn, await _existing(conn, name))
            await conn.execute(
                update(device_rings)
                .where(device_rings.c.name == name)
                .values(**data.model_dump(), updated_at=now)
            )
            after = await _view(conn, await _existing(conn, name))
            await record_change(
                conn, at=now, actor=actor, action="updated", object_type="ring",
                object_id=name, before=_audit(before), after=_audit(after),
            )  # fmt: skip
            return after

    async def get(self, name: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await _view(conn, await _existing(conn, name))

    async def list(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(device_rings).order_by(device_rings.c.name))
            users = await _policies_by_ring(conn)
            return [await _view(conn, row, users) for row in rows.all()]

    async def delete(self, name: str, actor: str) -> None:
        """Refused (409) while a policy lists the ring: its rollouts would lose a batch."""
        async with self.db.transaction() as conn:
            before = await _view(conn, await _existing(conn, name))
            if before["used_by_policies"]:
                ids = ", ".join(str(i) for i in before["used_by_policies"])
                raise Conflict(
                    f"ring {name!r} is used by policies {ids}: remove it from them first"
                )
            await conn.execute(delete(device_rings).where(device_rings.c.name == name))
            await record_change(
                conn, at=self.clock.now(), actor=actor, action="deleted", object_type="ring",
                object_id=name, before=_audit(before),
            )  # fmt: skip


async def load_rings(conn: AsyncConnection, names: Sequence[str]) -> list[Ring]:
    """The rings named, in that order (a name no longer stored selects nothing)."""
    rows = await conn.execute(select(device_rings).where(device_rings.c.name.in_(list(names))))
    found = {row.name: _ring(row) for row in rows}
    return [found.get(name, Ring(name, device_uuids=frozenset())) for name in names]


async def check_ring_names(conn: AsyncConnection, names: Sequence[str] | None) -> None:
    """A policy's rings must exist (422 naming the unknown ones)."""
    if not names:
        return
    rows = await conn.execute(select(device_rings.c.name).where(device_rings.c.name.in_(names)))
    unknown = unknown_rings(names, set(rows.scalars()))
    if unknown:
        raise InvalidInput.one("rings", f"unknown rings: {', '.join(unknown)}")
    if len(set(names)) != len(names):
        raise InvalidInput.one("rings", "a ring may be listed once")


def selector_conditions(ring: Any) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if ring.fleet_id is not None:
        conditions.append(devices.c.fleet_id == ring.fleet_id)
    for key, value in (ring.device_tags or {}).items():
        conditions.append(devices.c.tags[key].as_string() == value)
    if ring.device_uuids is not None:
        conditions.append(devices.c.uuid.in_(ring.device_uuids))
    return conditions


def _ring(row: Any) -> Ring:
    uuids = row.device_uuids
    return Ring(
        row.name,
        fleet_id=row.fleet_id,
        device_tags=dict(row.device_tags or {}),
        device_uuids=frozenset(uuids) if uuids is not None else None,
    )


async def _ring_row(conn: AsyncConnection, name: str) -> Any:
    return (await conn.execute(select(device_rings).where(device_rings.c.name == name))).first()


async def _existing(conn: AsyncConnection, name: str) -> Any:
    row = await _ring_row(conn, name)
    if row is None:
        raise NotFound(f"ring {name!r} not found")
    return row


async def _policies_by_ring(conn: AsyncConnection) -> dict[str, list[int]]:
    rows = await conn.execute(
        select(policies.c.id, policies.c.rings)
        .where(policies.c.rings.is_not(None))
        .order_by(policies.c.id)
    )
    users: dict[str, list[int]] = {}
    for policy_id, names in rows:
        for name in names or ():
            users.setdefault(name, []).append(policy_id)
    return users


async def _view(
    conn: AsyncConnection, row: Any, users: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    if users is None:
        users = await _policies_by_ring(conn)
    count = await conn.execute(
        select(func.count()).select_from(devices).where(*selector_conditions(row))
    )
    return dict(row._mapping) | {
        "devices": count.scalar_one(),
        "used_by_policies": users.get(row.name, []),
    }


def _audit(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in ("devices", "used_by_policies")}
