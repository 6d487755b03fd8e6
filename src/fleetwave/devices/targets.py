"""Writing target states in bulk: the devices feature's interface for other features.

A target state lives in ``device_target_state`` (what devices are served), its ETag in
``devices.target_etag`` (what the poll compares), and one row per service in
``device_target_images`` (what "which devices run this image" looks up). These helpers keep
the three in step, for one device or thousands, with one statement per table; they take the
caller's connection and never commit.

Every change of a target's ETag goes through :func:`replace_targets`, which also announces it
(:class:`DevicesChanged`, handed to the database's listeners on commit; on PostgreSQL also a
NOTIFY on :data:`TARGETS_CHANNEL`, for other replicas): that is what wakes long polls and
what every process's poll cache forgets. A device created, re-keyed or deleted is announced
the same way (:func:`announce_changes`), since each changes what its poll is answered.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.devices.poll_cache import CachedDevice
from fleetwave.devices.records import online_clause
from fleetwave.domain.images import try_parse_image
from fleetwave.domain.target_state import served_state, service_image, state_etag
from fleetwave.errors import NotFound
from fleetwave.store.db import publish
from fleetwave.store.queries import insert_rows, off_loop, one_of, update_rows, value_chunks
from fleetwave.store.tables import device_target_images, device_target_state, devices

__all__ = [
    "EVERYONE",
    "TARGETS_CHANNEL",
    "DevicesChanged",
    "NewTarget",
    "ServedTarget",
    "announce_changes",
    "image_rows",
    "index_images",
    "insert_targets",
    "load_targets",
    "online_clause",
    "read_payload",
    "replace_targets",
    "served_targets",
    "target_version",
]


# NOTIFYed in the writing transaction (so sent on commit): the change's tag, then the uuids,
# separated by spaces, in as many notifications as PostgreSQL's 8,000-byte payload needs. "*"
# (everyone re-checks) is what a listener assumes when it (re)connects.
TARGETS_CHANNEL = "fleetwave_targets"
NOTIFY_PAYLOAD_LIMIT = 7900
EVERYONE = "*"
TAG_MARK = "@"  # no uuid holds it (letters, digits, '-' and '_')
# a change is tagged with where it was written and its number there, so that the process that
# wrote it, which hears of it on commit and again through NOTIFY, can act on it once
_ORIGIN = secrets.token_hex(6)
_changes = itertools.count(1)


@dataclass(frozen=True)
class DevicesChanged:
    """Published with a transaction that changed what these devices' polls are answered:
    their target ETags, their keys, or whether they exist."""

    uuids: frozenset[str]
    tag: str | None = None  # the same as its NOTIFY payloads carry


@dataclass(frozen=True)
class NewTarget:
    uuid: str
    apps: dict[str, Any]
    config: dict[str, Any]
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return state_etag(self.apps, self.config, self.extensions)


def image_rows(uuid: str, apps: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``device_target_images`` rows of one device's apps."""
    rows = []
    for app_id, app in apps.items():
        for service in app.get("services", []):
            image = service_image(service)
            if image is None:
                continue
            ref = try_parse_image(image)
            rows.append(
                {
                    "device_uuid": uuid,
                    "app_id": str(app_id),
                    "service_name": service.get("serviceName") or str(service.get("serviceId")),
                    "repository": ref.repository if ref else image.lower(),
                    "tag": ref.tag if ref else None,
                    "digest": ref.digest if ref else None,
                    "image": image,
                }
            )
    return rows


async def index_images(conn: AsyncConnection, targets: Sequence[NewTarget]) -> None:
    uuids = [t.uuid for t in targets]
    for chunk in value_chunks(conn, uuids):
        await conn.execute(
            delete(device_target_images).where(
                one_of(conn, device_target_images.c.device_uuid, chunk)
            )
        )
    await insert_rows(conn, device_target_images, await off_loop(len(targets), _images, targets))


def _images(targets: Sequence[NewTarget]) -> list[dict[str, Any]]:
    return [row for t in targets for row in image_rows(t.uuid, t.apps)]


async def insert_targets(
    conn: AsyncConnection, targets: Sequence[NewTarget], now: datetime
) -> None:
    """Initial target states of newly registered devices (version 1)."""
    if not targets:
        return
    await insert_rows(
        conn,
        device_target_state,
        [
            {
                "device_uuid": t.uuid,
                "apps": t.apps,
                "config": t.config,
                "version": 1,
                "updated_at": now,
            }
            for t in targets
        ],
    )
    await index_images(conn, targets)
    await announce_changes(conn, frozenset(t.uuid for t in targets))


async def replace_targets(
    conn: AsyncConnection, targets: Sequence[NewTarget], now: datetime
) -> None:
    """Replace the target states of existing devices, bumping each version and ETag."""
    if not targets:
        return
    await update_rows(
        conn,
        device_target_state,
        "device_uuid",
        [
            {
                "device_uuid": t.uuid,
                "apps": t.apps,
                "config": t.config,
                "extensions": t.extensions,
                "updated_at": now,
            }
            for t in targets
        ],
        computed={"version": "version + 1"},
    )
    etags = await off_loop(len(targets), lambda: [t.etag for t in targets])  # hashes JSON
    await update_rows(
        conn,
        devices,
        "uuid",
        [
            {"uuid": t.uuid, "target_etag": etag, "updated_at": now}
            for t, etag in zip(targets, etags, strict=True)
        ],
    )
    await index_images(conn, targets)
    await announce_changes(conn, frozenset(t.uuid for t in targets))


async def announce_changes(conn: AsyncConnection, uuids: frozenset[str]) -> None:
    """Tell this process and the others, once the transaction commits, that the polls of
    ``uuids`` may be answered differently (one statement at most, however many devices)."""
    if not uuids:
        return
    tag = f"{TAG_MARK}{_ORIGIN}.{next(_changes)}"
    publish(conn, [DevicesChanged(uuids, tag)])
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text(
                "SELECT pg_notify(:channel, payload) "
                "FROM unnest(CAST(:payloads AS text[])) AS payload"
            ),
            {"channel": TARGETS_CHANNEL, "payloads": notify_payloads(uuids, tag)},
        )


def notify_payloads(uuids: frozenset[str], tag: str) -> list[str]:
    """The uuids (letters, digits, '-' and '_'), space-separated after the change's ``tag``, in
    payloads of at most :data:`NOTIFY_PAYLOAD_LIMIT` bytes."""
    payloads: list[str] = []
    current: list[str] = [tag]
    size = len(tag)
    for uuid in sorted(uuids):
        if len(current) > 1 and size + 1 + len(uuid) > NOTIFY_PAYLOAD_LIMIT:
            payloads.append(" ".join(current))
            current, size = [tag], len(tag)
        current.append(uuid)
        size += 1 + len(uuid)
    if len(current) > 1:
        payloads.append(" ".join(current))
    return payloads


def read_payload(payload: str) -> tuple[str | None, list[str]]:
    """A NOTIFY payload's change tag (None if untagged) and uuids."""
    words = payload.split()
    if words and words[0].startswith(TAG_MARK):
        return words[0], words[1:]
    return None, words


async def load_targets(conn: AsyncConnection, uuids: Sequence[str]) -> dict[str, NewTarget]:
    """Current target states of ``uuids``, in one query per 5,000 devices."""
    found: dict[str, NewTarget] = {}
    for chunk in value_chunks(conn, list(uuids)):
        rows = await conn.execute(
            select(
                device_target_state.c.device_uuid,
                device_target_state.c.apps,
                device_target_state.c.config,
                device_target_state.c.extensions,
            ).where(one_of(conn, device_target_state.c.device_uuid, chunk))
        )
        for row in rows:
            found[row.device_uuid] = NewTarget(
                row.device_uuid, row.apps, row.config, row.extensions or {}
            )
    return found


@dataclass(frozen=True)
class ServedTarget:
    """What a device's poll is answered: its ETag and the body, read together so they agree;
    and, read with them, what the poll cache keeps of the device (its key, its presence)."""

    etag: str
    body: dict[str, Any]
    device: CachedDevice | None = None


async def served_targets(conn: AsyncConnection, uuids: Sequence[str]) -> dict[str, ServedTarget]:
    """The served target states of ``uuids`` (those that exist), in one query per chunk."""
    target, device = device_target_state.c, devices.c
    found: dict[str, ServedTarget] = {}
    for chunk in value_chunks(conn, list(uuids)):
        rows = await conn.execute(
            select(target.device_uuid, target.apps, target.config, target.extensions)
            .add_columns(
                device.target_etag,
                device.api_key_hash,
                device.is_online,
                device.last_connectivity_event,
            )
            .join(devices, device.uuid == target.device_uuid)
            .where(one_of(conn, target.device_uuid, chunk))
        )
        for row in rows:
            body = {row.device_uuid: served_state(row.apps, row.config, row.extensions)}
            cached = CachedDevice(
                row.api_key_hash, row.target_etag, row.is_online, row.last_connectivity_event
            )
            found[row.device_uuid] = ServedTarget(row.target_etag, body, cached)
    return found


async def target_version(conn: AsyncConnection, uuid: str) -> tuple[int, str]:
    row = (
        await conn.execute(
            select(device_target_state.c.version, devices.c.target_etag)
            .join(devices, devices.c.uuid == device_target_state.c.device_uuid)
            .where(device_target_state.c.device_uuid == uuid)
        )
    ).first()
    if row is None:
        raise NotFound(f"device {uuid} not found")
    return row.version, row.target_etag
