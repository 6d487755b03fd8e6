"""Admin API of rollouts, the manual trigger and the event log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from fleetwave.api_document import AMBIGUOUS_ID, DEVICE_KEY, DEVICE_REFUSALS, errors, requires
from fleetwave.bootstrap import Container
from fleetwave.domain.batches import MAX_BATCHES
from fleetwave.domain.vocabulary import DEVICE_ROLLOUT_STATUSES, ROLLOUT_STATUSES
from fleetwave.errors import InvalidInput
from fleetwave.rollouts.controls import Actor
from fleetwave.rollouts.schemas import (
    ControlRequest,
    EventPage,
    HealthReport,
    PreviewAnswer,
    RolloutDetail,
    RolloutDevicePage,
    RolloutPage,
    TriggerUpdate,
    UpdateAnswer,
)
from fleetwave.schemas import MAX_ROW_ID
from fleetwave.web import (
    Caller,
    DeviceCursor,
    EventCursor,
    RowCursor,
    client_address,
    container,
    device_key,
    require_admin,
)

router = APIRouter(prefix="/api/v1", tags=["rollouts"], dependencies=[Depends(require_admin)])
App = Annotated[Container, Depends(container)]
Statuses = Annotated[list[str], Query(description="repeatable")]
MAX_OFFSET = 1_000_000


async def _full_rollout_id(
    rollout_id: Annotated[
        str, Path(description="the rollout's id, or a unique prefix of it of 8 or more characters")
    ],
    app: App,
) -> str:
    return await app.rollouts.resolve(rollout_id)


RolloutId = Annotated[str, Depends(_full_rollout_id)]
"""A rollout named in a path, by its id or a short id (404, 409 when ambiguous, 422)."""


def _known(values: list[str], allowed: tuple[str, ...], field: str) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise InvalidInput.one(field, f"{unknown[0]!r} is not one of {', '.join(allowed)}")
    return values


@router.post(
    "/images/trigger-update",
    response_model=UpdateAnswer,
    responses=errors((409, "an older version than the one rolling out or running")),
)
async def trigger_update(body: TriggerUpdate, app: App, caller: Caller) -> dict[str, Any]:
    """Roll an image out now, as if its registry had announced it. A version older than the
    one rolling out (or than the devices run) is refused with 409 unless ``force`` is true."""
    return await app.rollouts.trigger(body, caller.name)


@router.post("/rollouts/preview", response_model=PreviewAnswer)
async def preview_update(body: TriggerUpdate, app: App, caller: Caller) -> dict[str, Any]:
    """What ``/images/trigger-update`` would do with the same body, writing nothing: the
    policy chosen and why, the batches (rings) with counts and first uuids, the devices left
    out and why, their current images, and when each batch would start and end."""
    return await app.rollouts.preview(body, caller.name)


@router.get("/rollouts", response_model=RolloutPage)
async def list_rollouts(
    app: App,
    status: Statuses = [],  # noqa: B006
    image: Annotated[str | None, Query(description="e.g. iotistic/myapp")] = None,
    created_from: Annotated[
        datetime | None, Query(description="created at or after (ISO 8601; a date: midnight UTC)")
    ] = None,
    created_until: Annotated[
        datetime | None, Query(description="created before (ISO 8601; a date: midnight UTC)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    cursor: RowCursor = None,
) -> dict[str, Any]:
    """Rollouts newest first, each with its progress, failures against its bound, outcome, old
    images and what it waits for; filtered by status (repeatable), image and creation time.
    Page with ``offset`` (``total`` counts them all) or with ``cursor`` (the previous page's
    ``next_cursor``)."""
    _known(status, ROLLOUT_STATUSES, "status")
    return await app.rollouts.search(
        status=status,
        image=image,
        created_from=_utc(created_from, "created_from"),
        created_until=_utc(created_until, "created_until"),
        limit=limit,
        offset=offset,
        cursor=cursor,
    )


def _utc(value: datetime | None, field: str) -> datetime | None:
    """The time in UTC (one without an offset is UTC); one that UTC cannot hold is a 422."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput.one(field, "out of the range of dates") from None


@router.get("/rollouts/active")
async def active_rollouts(app: App) -> list[dict[str, Any]]:
    """The ``active_rollouts`` view: unfinished rollouts with their progress."""
    return await app.rollouts.active()


@router.get(
    "/rollouts/{rollout_id}", response_model=RolloutDetail, responses=errors(404, AMBIGUOUS_ID)
)
async def get_rollout(rollout_id: RolloutId, app: App) -> dict[str, Any]:
    """One rollout: its status, batches, progress, failure rate against its bound, and what
    it is waiting for."""
    return await app.rollouts.get(rollout_id)


Control = Literal[
    "approve", "reject", "pause", "resume", "cancel", "promote", "retry-failed", "rollback-all"
]


@router.post(
    "/rollouts/{rollout_id}/{control}",
    response_model=RolloutDetail,
    responses=errors(
        404, (409, "the rollout's status does not allow this control, or its short id is ambiguous")
    ),
)
async def control_rollout(
    rollout_id: RolloutId,
    control: Control,
    app: App,
    caller: Caller,
    body: ControlRequest | None = None,
) -> dict[str, Any]:
    """Steer a rollout. Each control is valid only from some statuses (409 elsewhere, saying
    why); ``force`` lets ``resume`` pass a failure gate that is still tripped."""
    request = body or ControlRequest()
    await app.controls.apply(
        control, rollout_id, Actor(caller.name, request.note), force=request.force
    )
    return await app.rollouts.get(rollout_id)


@router.post(
    "/rollouts/{rollout_id}/devices/{uuid}/rollback",
    response_model=RolloutDetail,
    responses=errors(
        (404, "no rollout has this id, or the device is not part of it"),
        (409, "the device cannot be rolled back now, or the short id is ambiguous"),
    ),
)
async def rollback_device(
    rollout_id: RolloutId, uuid: str, app: App, caller: Caller, body: ControlRequest | None = None
) -> dict[str, Any]:
    """Send one device back to its own old images (the others go on)."""
    request = body or ControlRequest()
    await app.controls.rollback_device(rollout_id, uuid, Actor(caller.name, request.note))
    return await app.rollouts.get(rollout_id)


@router.post(
    "/rollouts/{rollout_id}/devices/{uuid}/retry",
    response_model=RolloutDetail,
    responses=errors(
        (404, "no rollout has this id, or the device is not part of it"),
        (409, "the device cannot be retried (the answer says why), or the short id is ambiguous"),
    ),
)
async def retry_device(
    rollout_id: RolloutId, uuid: str, app: App, caller: Caller, body: ControlRequest | None = None
) -> dict[str, Any]:
    """Give one failed or rolled-back device the new image again, counting a retry (409 when
    the rollout's status, the device's status or its used-up retries forbid it)."""
    request = body or ControlRequest()
    await app.controls.retry_device(rollout_id, uuid, Actor(caller.name, request.note))
    return await app.rollouts.get(rollout_id)


@router.get(
    "/rollouts/{rollout_id}/devices",
    response_model=RolloutDevicePage,
    responses=errors(404, AMBIGUOUS_ID),
)
async def rollout_devices(
    rollout_id: RolloutId,
    app: App,
    batch: Annotated[int | None, Query(ge=1, le=MAX_BATCHES)] = None,
    status: Statuses = [],  # noqa: B006
    q: Annotated[
        str | None, Query(max_length=255, description="text in the device's uuid or name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: DeviceCursor = None,
) -> dict[str, Any]:
    """The rollout's devices with their batch, status, old and new images and health; filter
    by batch, status and a search of uuid and name (``q``), page with ``cursor``."""
    _known(status, DEVICE_ROLLOUT_STATUSES, "status")
    return await app.rollouts.devices(
        rollout_id, batch=batch, status=status, q=q, limit=limit, cursor=cursor
    )


@router.get(
    "/rollouts/{rollout_id}/events", response_model=EventPage, responses=errors(404, AMBIGUOUS_ID)
)
async def rollout_events(
    rollout_id: RolloutId,
    app: App,
    after: EventCursor = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    event_type: str | None = None,
    device_uuid: str | None = None,
) -> dict[str, Any]:
    """The rollout's events in order (one device's with ``device_uuid``); page with
    ``after``."""
    return await app.rollouts.events(
        rollout_id=rollout_id,
        after=after,
        limit=limit,
        event_type=event_type,
        device_uuid=device_uuid,
    )


@router.get("/events", response_model=EventPage)
async def event_log(
    app: App,
    after: EventCursor = 0,
    before: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ROW_ID + 1,
            description="read backwards: the newest `limit` events before this id "
            "(the older_cursor of the previous page)",
        ),
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="events per page (default 100)")
    ] = None,
    rollout_id: Annotated[
        str | None, Query(description="a rollout's id or a unique prefix of it")
    ] = None,
    device_uuid: Annotated[str | None, Query(description="only this device's events")] = None,
    event_type: str | None = None,
    tail: Annotated[
        int | None,
        Query(ge=1, le=1000, description="the last N events (after `after`) instead of the first"),
    ] = None,
) -> dict[str, Any]:
    """The whole event log in order; page with ``after`` to miss and repeat nothing, or with
    ``before`` to read it backwards from the newest; ``tail`` gives the newest events instead
    (still oldest first), e.g. a device's latest. Filter by ``rollout_id`` (a short id
    works), ``device_uuid`` (one device's history) or ``event_type``."""
    if limit is not None and tail is not None:
        raise InvalidInput.one("tail", "give limit or tail, not both")
    if rollout_id is not None:
        rollout_id = await app.rollouts.resolve(rollout_id)
    return await app.rollouts.events(
        after=after,
        before=before,
        limit=limit or 100,
        rollout_id=rollout_id,
        device_uuid=device_uuid,
        event_type=event_type,
        tail=tail,
    )


device_router = APIRouter(prefix="/api/v1/device", tags=["device protocol"])


@device_router.post(
    "/{uuid}/health",
    openapi_extra=requires(DEVICE_KEY),
    responses=errors(*DEVICE_REFUSALS),
)
async def report_health(
    uuid: str, body: HealthReport, request: Request, app: App
) -> dict[str, Any]:
    """The agent's results of the device-side health checks a rollout asked it to run;
    ``recorded_for`` counts the results kept (none when the device is not health checking)."""
    kept = await app.device_health.report(
        uuid, device_key(request), body.rollout_id, body.results, address=client_address(request)
    )
    return {"status": "ok", "recorded_for": kept}
