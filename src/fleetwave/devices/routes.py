"""Admin API of the device registry (``/api/v1/devices``)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from fleetwave.bootstrap import Container
from fleetwave.devices.log_store import LogFilter
from fleetwave.devices.schemas import (
    CurrentStateRead,
    DeviceCreate,
    DeviceCreated,
    DeviceKey,
    DeviceRead,
    DeviceRolloutPage,
    DeviceUpdate,
    LogLevel,
    LogPage,
    TargetStateRead,
    TargetStateWrite,
)
from fleetwave.errors import InvalidInput
from fleetwave.schemas import Page, UtcDatetime
from fleetwave.web import DeviceCursor, LogCursor, RowCursor, container, require_admin

router = APIRouter(
    prefix="/api/v1/devices", tags=["devices"], dependencies=[Depends(require_admin)]
)
App = Annotated[Container, Depends(container)]


def parse_tag_filters(tags: list[str]) -> dict[str, str]:
    parsed = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if not sep or not key:
            raise InvalidInput.one("tag", f"{tag!r} must be written key:value")
        parsed[key] = value
    return parsed


@router.post("", status_code=201, response_model=DeviceCreated)
async def register_device(body: DeviceCreate, app: App) -> dict[str, Any]:
    return await app.devices.register(body)


@router.get("", response_model=Page[DeviceRead])
async def list_devices(
    app: App,
    fleet_id: str | None = None,
    tag: Annotated[list[str], Query(description="key:value, repeatable")] = [],  # noqa: B006
    online: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: DeviceCursor = None,
) -> dict[str, Any]:
    return await app.devices.list(
        fleet_id=fleet_id, tags=parse_tag_filters(tag), online=online, limit=limit, cursor=cursor
    )


@router.get("/{uuid}", response_model=DeviceRead)
async def get_device(uuid: str, app: App) -> dict[str, Any]:
    return await app.devices.get(uuid)


@router.patch("/{uuid}", response_model=DeviceRead)
async def update_device(uuid: str, body: DeviceUpdate, app: App) -> dict[str, Any]:
    return await app.devices.update(uuid, body)


@router.delete("/{uuid}", status_code=204)
async def delete_device(uuid: str, app: App) -> Response:
    await app.devices.delete(uuid)
    return Response(status_code=204)


@router.get("/{uuid}/target-state", response_model=TargetStateRead)
async def get_target_state(uuid: str, app: App) -> dict[str, Any]:
    return await app.devices.target_state(uuid)


@router.put("/{uuid}/target-state", response_model=TargetStateRead)
async def put_target_state(uuid: str, body: TargetStateWrite, app: App) -> dict[str, Any]:
    return await app.devices.set_target_state(uuid, body.apps, body.config)


@router.get("/{uuid}/current-state", response_model=CurrentStateRead)
async def get_current_state(uuid: str, app: App) -> dict[str, Any]:
    return await app.devices.current_state(uuid)


@router.get(
    "/{uuid}/rollouts",
    response_model=DeviceRolloutPage,
    responses={404: {"description": "no such device"}},
)
async def device_rollouts(
    uuid: str,
    app: App,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    cursor: RowCursor = None,
) -> dict[str, Any]:
    """Every rollout the device was part of, newest first: the rollout's status, the device's
    batch, status, old and new image, times, health check details and error. Pass the
    answer's ``next_cursor`` as ``cursor`` for the older ones."""
    return await app.devices.rollouts(uuid, limit=limit, cursor=cursor)


@router.post("/{uuid}/rotate-key", response_model=DeviceKey)
async def rotate_key(uuid: str, app: App) -> dict[str, str]:
    return await app.devices.rotate_key(uuid)


LinesQuery = Annotated[int | None, Query(ge=1, le=1000)]


@router.get("/{uuid}/logs", response_model=LogPage)
async def device_logs(
    uuid: str,
    app: App,
    after: LogCursor = 0,
    limit: Annotated[LinesQuery, Query(description="lines per page (default 100)")] = None,
    tail: Annotated[
        LinesQuery, Query(description="the last N lines (after `after`) instead of the first")
    ] = None,
    service: Annotated[str | None, Query(max_length=255)] = None,
    level: Annotated[
        LogLevel | None, Query(description="this level and the more severe ones")
    ] = None,
    since: Annotated[
        UtcDatetime | None, Query(description="lines the device logged at or after this time")
    ] = None,
) -> dict[str, Any]:
    """The device's log lines, oldest first, paged by ``after`` like the event log: pass the
    answer's ``next_cursor`` as ``after`` to read the lines that arrived since (a follower
    misses and repeats nothing)."""
    if limit is not None and tail is not None:
        raise InvalidInput.one("tail", "give limit or tail, not both")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a time without a zone is UTC, as everywhere here
    where = LogFilter(service=service, level=level, since=since)
    return await app.device_logs.read(uuid, where, after=after, limit=limit or 100, tail=tail)
