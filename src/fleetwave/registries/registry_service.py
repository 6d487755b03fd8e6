"""Use cases of polled registries: add, list, show, change, remove; each one transaction
with its audit entry. A password goes in sealed (``registries/sealing.py``) and never comes
out: answers and the audit log say only whether one is set."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.registry_polling import first_poll_at
from fleetwave.errors import Conflict, NotFound
from fleetwave.registries.registry_schemas import RegistryCreate, RegistryUpdate
from fleetwave.registries.sealing import Sealer
from fleetwave.store.audit import record_change
from fleetwave.store.db import Database
from fleetwave.store.tables import registries

AUDIT_TYPE = "registry"


class RegistryService:
    def __init__(self, db: Database, clock: Clock, sealer: Sealer) -> None:
        self.db, self.clock, self.sealer = db, clock, sealer

    async def create(self, data: RegistryCreate, actor: str) -> dict[str, Any]:
        _check_credentials(data.url, data.username, data.password is not None, data.insecure)
        now = self.clock.now()
        values = data.model_dump(exclude={"password"}) | {
            "password_sealed": self._sealed(data),
            "next_poll_at": first_poll_at(now, data.poll_interval_seconds, data.name),
            "created_at": now,
            "updated_at": now,
        }
        async with self.db.transaction() as conn:
            try:
                async with conn.begin_nested():
                    registry_id = (
                        await conn.execute(
                            insert(registries).values(**values).returning(registries.c.id)
                        )
                    ).scalar_one()
            except IntegrityError:
                raise Conflict(f"a registry named {data.name!r} exists already") from None
            created = await _load(conn, registry_id)
            await record_change(
                conn, at=now, actor=actor, action="created", object_type=AUDIT_TYPE,
                object_id=registry_id, after=created,
            )  # fmt: skip
            return created

    async def list(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(registries).order_by(registries.c.name))
            return [registry_view(row) for row in rows]

    async def get(self, registry_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await _load(conn, registry_id)

    async def update(self, registry_id: int, data: RegistryUpdate, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        given = data.model_dump(include=data.model_fields_set, exclude={"password"})
        async with self.db.transaction() as conn:
            row = await _locked(conn, registry_id)
            merged = dict(row._mapping) | given
            has_password = (
                data.password is not None
                if "password" in data.model_fields_set
                else row.password_sealed is not None
            )
            _check_credentials(merged["url"], merged["username"], has_password, merged["insecure"])
            values = given | {"updated_at": now}
            if "password" in data.model_fields_set:
                values["password_sealed"] = self._sealed(data)
            if "poll_interval_seconds" in given or given.get("enabled"):
                values["next_poll_at"] = now  # changed: polled at once, then on the new interval
            before = registry_view(row)
            await conn.execute(
                update(registries).where(registries.c.id == registry_id).values(**values)
            )
            after = await _load(conn, registry_id)
            await record_change(
                conn, at=now, actor=actor, action="updated", object_type=AUDIT_TYPE,
                object_id=registry_id, before=before, after=after,
            )  # fmt: skip
            return after

    async def delete(self, registry_id: int, actor: str) -> None:
        async with self.db.transaction() as conn:
            before = registry_view(await _locked(conn, registry_id))
            await conn.execute(delete(registries).where(registries.c.id == registry_id))
            await record_change(
                conn, at=self.clock.now(), actor=actor, action="deleted",
                object_type=AUDIT_TYPE, object_id=registry_id, before=before,
            )  # fmt: skip

    def _sealed(self, data: RegistryCreate | RegistryUpdate) -> str | None:
        if data.password is None:
            return None
        return self.sealer.seal(data.password.get_secret_value())


def registry_view(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    values["password_set"] = values.pop("password_sealed") is not None
    return values


def _check_credentials(url: str, username: str | None, password: bool, insecure: bool) -> None:
    """Credentials go over plain http only when the registry is marked ``insecure``."""
    if (username is not None or password) and urlsplit(url).scheme == "http" and not insecure:
        raise InvalidInput(
            [
                Problem(
                    "insecure",
                    "credentials for a plain-http registry would cross the network in clear: "
                    "use https, or set insecure: true",
                )
            ]
        )


async def _load(conn: AsyncConnection, registry_id: int) -> dict[str, Any]:
    row = (await conn.execute(select(registries).where(registries.c.id == registry_id))).first()
    if row is None:
        raise NotFound(f"registry {registry_id} not found")
    return registry_view(row)


async def _locked(conn: AsyncConnection, registry_id: int) -> Any:
    row = (
        await conn.execute(
            select(registries).where(registries.c.id == registry_id).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"registry {registry_id} not found")
    return row
