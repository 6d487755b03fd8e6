"""Admin API of the device registry (``/api/v1/devices``)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from fleetwave.api_document import AMBIGUOUS_ID, errors
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


async def _full_uuid(
    uuid: Annotated[
        str, Path(description="the device's uuid, or a unique prefix of it of 8 or more characters")
    ],
    app: App,
) -> str:
    return await app.devices.resolve(uuid)


DeviceUuidPath = Annotated[str, Depends(_full_uuid)]
"""A device named in a path, by its uuid or a short one (404, 409 when ambiguous, 422)."""


def parse_tag_filters(tags: list[str]) -> dict[str, str]:
    parsed = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if not sep or not key:
            raise InvalidInput.one("tag", f"{tag!r} must be written key:value")
        parsed[key] = value
    return parsed


@router.post(
    "",
    status_code=201,
    response_model=DeviceCreated,
    summary="Add a device",
    responses=errors((409, "a device with this uuid exists")),
)
async def register_device(body: DeviceCreate, app: App) -> dict[str, Any]:
    """Add a device by hand (devices can also register themselves with a provisioning key).
    The answer carries the device's key, shown this once: give it to the device's agent."""
    return await app.devices.register(body)


@router.get("", response_model=Page[DeviceRead])
async def list_devices(
    app: App,
    fleet_id: str | None = None,
    tag: Annotated[list[str], Query(description="key:value, repeatable")] = [],  # noqa: B006
    online: bool | None = None,
    image: Annotated[
        str | None,
        Query(max_length=1024, description="a target image: repository (any tag) or repo:tag"),
    ] = None,
    q: Annotated[
        str | None, Query(max_length=255, description="text in the device's uuid or name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: DeviceCursor = None,
) -> dict[str, Any]:
    """Devices by uuid, filtered by fleet, tags (all must match), online state, image and a
    search of uuid and name; pass the answer's ``next_cursor`` as ``cursor`` for the next page."""
    return await app.devices.list(
        fleet_id=fleet_id,
        tags=parse_tag_filters(tag),
        online=online,
        image=image,
        q=q,
        limit=limit,
        cursor=cursor,
    )


@router.get("/{uuid}", response_model=DeviceRead, responses=errors(404, AMBIGUOUS_ID))
async def get_device(uuid: DeviceUuidPath, app: App) -> dict[str, Any]:
    """One device: its name, fleet, tags, online state and when it was last seen."""
    return await app.devices.get(uuid)


@router.patch("/{uuid}", response_model=DeviceRead, responses=errors(404, AMBIGUOUS_ID))
async def update_device(uuid: DeviceUuidPath, body: DeviceUpdate, app: App) -> dict[str, Any]:
    """Change a device's name, fleet or tags; fields left out keep their values."""
    return await app.devices.update(uuid, body)


@router.delete("/{uuid}", status_code=204, responses=errors(404, AMBIGUOUS_ID))
async def delete_device(uuid: DeviceUuidPath, app: App) -> Response:
    """Remove a device, its states and its key: it can no longer poll or report."""
    await app.devices.delete(uuid)
    return Response(status_code=204)


@router.get(
    "/{uuid}/target-state", response_model=TargetStateRead, responses=errors(404, AMBIGUOUS_ID)
)
async def get_target_state(uuid: DeviceUuidPath, app: App) -> dict[str, Any]:
    """What the device is told to run: its apps, services and images, and its config."""
    return await app.devices.target_state(uuid)


@router.put(
    "/{uuid}/target-state", response_model=TargetStateRead, responses=errors(404, AMBIGUOUS_ID)
)
async def put_target_state(
    uuid: DeviceUuidPath, body: TargetStateWrite, app: App
) -> dict[str, Any]:
    """Replace what the device is told to run; its next poll gets it (rollouts do this for
    you, batch by batch)."""
    return await app.devices.set_target_state(uuid, body.apps, body.config)


@router.get(
    "/{uuid}/current-state",
    response_model=CurrentStateRead,
    responses=errors((404, "no device has this uuid, or it has not reported yet"), AMBIGUOUS_ID),
)
async def get_current_state(uuid: DeviceUuidPath, app: App) -> dict[str, Any]:
    """What the device last reported running, with its metrics and when it reported."""
    return await app.devices.current_state(uuid)


@router.get(
    "/{uuid}/rollouts", response_model=DeviceRolloutPage, responses=errors(404, AMBIGUOUS_ID)
)
async def device_rollouts(
    uuid: DeviceUuidPath,
    app: App,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    cursor: RowCursor = None,
) -> dict[str, Any]:
    """Every rollout the device was part of, newest first: the rollout's status, the device's
    batch, status, old and new image, times, health check details and error. Pass the
    answer's ``next_cursor`` as ``cursor`` for the older ones."""
    return await app.devices.rollouts(uuid, limit=limit, cursor=cursor)


@router.post("/{uuid}/rotate-key", response_model=DeviceKey, responses=errors(404, AMBIGUOUS_ID))
async def rotate_key(uuid: DeviceUuidPath, app: App) -> dict[str, str]:
    """Give the device a new key, shown this once; the old one stops working at once."""
    return await app.devices.rotate_key(uuid)


LinesQuery = Annotated[int | None, Query(ge=1, le=1000)]


@router.get("/{uuid}/logs", response_model=LogPage, responses=errors(404, AMBIGUOUS_ID))
async def device_logs(
    uuid: DeviceUuidPath,
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
