"""Provisioning use cases: admins mint fleet keys; devices register themselves with one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.devices.targets import NewTarget, insert_targets
from fleetwave.domain.target_state import state_etag
from fleetwave.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from fleetwave.provisioning.schemas import DeviceRegistration, KeyExchange, ProvisioningKeyCreate
from fleetwave.security import hash_key, key_matches, new_key, weak_key_reason
from fleetwave.store.audit import record_change
from fleetwave.store.db import Database
from fleetwave.store.tables import devices, provisioning_keys

PUBLIC_KEY_COLUMNS = [c for c in provisioning_keys.c if c.name != "key_hash"]


class ProvisioningService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    async def create_key(self, data: ProvisioningKeyCreate, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        if data.expires_at is not None and data.expires_at.tzinfo is None:
            raise InvalidInput.one("expires_at", "must carry a time zone (e.g. ...Z)")
        if data.expires_at is not None and data.expires_at <= now:
            raise InvalidInput.one("expires_at", "is in the past")
        key = new_key("fwp_")
        async with self.db.transaction() as conn:
            key_id = (
                await conn.execute(
                    insert(provisioning_keys)
                    .values(
                        key_hash=hash_key(key),
                        key_prefix=key[:12],
                        fleet_id=data.fleet_id,
                        description=data.description,
                        expires_at=data.expires_at,
                        max_uses=data.max_uses,
                        created_at=now,
                    )
                    .returning(provisioning_keys.c.id)
                )
            ).scalar_one()
            created = dict((await self._load(conn, key_id))._mapping)
            await record_change(
                conn, at=now, actor=actor, action="created", object_type="provisioning_key",
                object_id=key_id, after=created,
            )  # fmt: skip
        return created | {"key": key}

    async def list_keys(self, fleet_id: str | None = None) -> list[dict[str, Any]]:
        query = select(*PUBLIC_KEY_COLUMNS).order_by(provisioning_keys.c.id)
        if fleet_id is not None:
            query = query.where(provisioning_keys.c.fleet_id == fleet_id)
        async with self.db.read() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def revoke_key(self, key_id: int, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            revoked = await conn.execute(
                update(provisioning_keys)
                .where(provisioning_keys.c.id == key_id, provisioning_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            after = dict((await self._load(conn, key_id))._mapping)
            if revoked.rowcount:
                await record_change(
                    conn, at=now, actor=actor, action="revoked", object_type="provisioning_key",
                    object_id=key_id, before=after | {"revoked_at": None}, after=after,
                )  # fmt: skip
            return after

    async def register_device(
        self, provisioning_key: str | None, data: DeviceRegistration
    ) -> dict[str, Any]:
        """A device registers itself; it proposes its key or receives one (shown once)."""
        generated = None
        if data.deviceApiKey is None:
            generated = device_key = new_key("fwd_")
        else:
            device_key = data.deviceApiKey
            reason = weak_key_reason(device_key)
            if reason:
                raise InvalidInput.one("deviceApiKey", reason)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            existing = (
                await conn.execute(
                    select(devices.c.api_key_hash, devices.c.created_at).where(
                        devices.c.uuid == data.uuid
                    )
                )
            ).first()
            if existing is not None:
                if generated is None and key_matches(device_key, existing.api_key_hash):
                    await self._usable_key(conn, provisioning_key, now)
                    return self._registered(data, existing.created_at, None)
                raise Conflict(f"device {data.uuid} is already registered with another key")
            key_row = await self._usable_key(conn, provisioning_key, now)
            await self._spend_use(conn, key_row.id)
            await self._insert_device(conn, data, key_row, device_key, now)
        return self._registered(data, now, generated)

    async def key_exchange(self, device_key: str | None, data: KeyExchange) -> dict[str, Any]:
        """The device proves that the key it registered with works."""
        if not device_key:
            raise Unauthorized("missing device key: send Authorization: Bearer <device key>")
        if not key_matches(device_key, hash_key(data.deviceApiKey)):
            raise InvalidInput.one("deviceApiKey", "differs from the key in Authorization")
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(devices.c.uuid, devices.c.api_key_hash).where(
                        devices.c.uuid == data.uuid
                    )
                )
            ).first()
        if row is None or not key_matches(device_key, row.api_key_hash):
            raise Unauthorized(f"the key is not the registered key of device {data.uuid}")
        return {"status": "ok", "uuid": row.uuid, "message": "device key verified"}

    async def _usable_key(
        self, conn: AsyncConnection, provisioning_key: str | None, now: datetime
    ) -> Any:
        if not provisioning_key:
            raise Unauthorized("missing provisioning key: send Authorization: Bearer <key>")
        row = (
            await conn.execute(
                select(provisioning_keys).where(
                    provisioning_keys.c.key_hash == hash_key(provisioning_key)
                )
            )
        ).first()
        if row is None:
            raise Unauthorized("unknown provisioning key")
        if row.revoked_at is not None:
            raise Forbidden("this provisioning key was revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise Forbidden("this provisioning key has expired")
        if row.max_uses is not None and row.uses >= row.max_uses:
            raise Forbidden(f"this provisioning key has been used its {row.max_uses} times")
        return row

    async def _spend_use(self, conn: AsyncConnection, key_id: int) -> None:
        # The guard in WHERE makes "last use" safe against two devices registering at once.
        spent = await conn.execute(
            update(provisioning_keys)
            .where(
                provisioning_keys.c.id == key_id,
                or_(
                    provisioning_keys.c.max_uses.is_(None),
                    provisioning_keys.c.uses < provisioning_keys.c.max_uses,
                ),
            )
            .values(uses=provisioning_keys.c.uses + 1)
        )
        if spent.rowcount == 0:
            raise Forbidden("this provisioning key has no uses left")

    async def _insert_device(
        self,
        conn: AsyncConnection,
        data: DeviceRegistration,
        key_row: Any,
        device_key: str,
        now: datetime,
    ) -> None:
        try:
            await conn.execute(
                insert(devices).values(
                    uuid=data.uuid,
                    device_name=data.deviceName or data.uuid,
                    device_type=data.deviceType,
                    fleet_id=key_row.fleet_id,
                    tags={},
                    application_id=None if data.applicationId is None else str(data.applicationId),
                    mac_address=data.macAddress,
                    os_version=data.osVersion,
                    supervisor_version=data.supervisorVersion,
                    api_key_hash=hash_key(device_key),
                    target_etag=state_etag({}, {}),
                    provisioning_key_id=key_row.id,
                    created_at=now,
                    updated_at=now,
                )
            )
        except IntegrityError:
            raise Conflict(f"device {data.uuid} or its key is already registered") from None
        await insert_targets(conn, [NewTarget(data.uuid, {}, {})], now)

    @staticmethod
    def _registered(
        data: DeviceRegistration, created_at: datetime, generated_key: str | None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": data.uuid,
            "uuid": data.uuid,
            "deviceName": data.deviceName or data.uuid,
            "deviceType": data.deviceType,
            "applicationId": data.applicationId,
            "createdAt": created_at.isoformat(),
        }
        if generated_key is not None:
            answer["deviceApiKey"] = generated_key
        return answer

    async def _load(self, conn: AsyncConnection, key_id: int) -> Any:
        row = (
            await conn.execute(select(*PUBLIC_KEY_COLUMNS).where(provisioning_keys.c.id == key_id))
        ).first()
        if row is None:
            raise NotFound(f"provisioning key {key_id} not found")
        return row
