"""Admin API of rollouts, the manual trigger and the event log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from fleetwave.bootstrap import Container
from fleetwave.domain.batches import MAX_BATCHES
from fleetwave.domain.vocabulary import DEVICE_ROLLOUT_STATUSES, ROLLOUT_STATUSES
from fleetwave.errors import InvalidInput
from fleetwave.rollouts.controls import Actor
from fleetwave.rollouts.schemas import (
    ControlRequest,
    EventPage,
    HealthReport,
    RolloutDetail,
    RolloutDevicePage,
    RolloutPage,
    TriggerUpdate,
    UpdateAnswer,
)
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


def _known(values: list[str], allowed: tuple[str, ...], field: str) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise InvalidInput.one(field, f"{unknown[0]!r} is not one of {', '.join(allowed)}")
    return values


@router.post(
    "/images/trigger-update",
    response_model=UpdateAnswer,
    responses={409: {"description": "an older version than the one rolling out or running"}},
)
async def trigger_update(body: TriggerUpdate, app: App, caller: Caller) -> dict[str, Any]:
    """Roll an image out now, as if its registry had announced it. A version older than the
    one rolling out (or than the devices run) is refused with 409 unless ``force`` is true."""
    return await app.rollouts.trigger(body, caller.name)


@router.get("/rollouts", response_model=RolloutPage)
async def list_rollouts(
    app: App,
    status: Statuses = [],  # noqa: B006
    image: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: RowCursor = None,
) -> dict[str, Any]:
    _known(status, ROLLOUT_STATUSES, "status")
    return await app.rollouts.search(status=status, image=image, limit=limit, cursor=cursor)


@router.get("/rollouts/active")
async def active_rollouts(app: App) -> list[dict[str, Any]]:
    """The ``active_rollouts`` view: unfinished rollouts with their progress."""
    return await app.rollouts.active()


@router.get("/rollouts/{rollout_id}", response_model=RolloutDetail)
async def get_rollout(rollout_id: str, app: App) -> dict[str, Any]:
    return await app.rollouts.get(rollout_id)


Control = Literal[
    "approve", "reject", "pause", "resume", "cancel", "promote", "retry-failed", "rollback-all"
]


@router.post("/rollouts/{rollout_id}/{control}", response_model=RolloutDetail)
async def control_rollout(
    rollout_id: str,
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


@router.post("/rollouts/{rollout_id}/devices/{uuid}/rollback", response_model=RolloutDetail)
async def rollback_device(
    rollout_id: str, uuid: str, app: App, caller: Caller, body: ControlRequest | None = None
) -> dict[str, Any]:
    """Send one device back to its own old images."""
    request = body or ControlRequest()
    await app.controls.rollback_device(rollout_id, uuid, Actor(caller.name, request.note))
    return await app.rollouts.get(rollout_id)


@router.get("/rollouts/{rollout_id}/devices", response_model=RolloutDevicePage)
async def rollout_devices(
    rollout_id: str,
    app: App,
    batch: Annotated[int | None, Query(ge=1, le=MAX_BATCHES)] = None,
    status: Statuses = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: DeviceCursor = None,
) -> dict[str, Any]:
    _known(status, DEVICE_ROLLOUT_STATUSES, "status")
    return await app.rollouts.devices(
        rollout_id, batch=batch, status=status, limit=limit, cursor=cursor
    )


@router.get("/rollouts/{rollout_id}/events", response_model=EventPage)
async def rollout_events(
    rollout_id: str,
    app: App,
    after: EventCursor = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    event_type: str | None = None,
    device_uuid: str | None = None,
) -> dict[str, Any]:
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
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    rollout_id: str | None = None,
    device_uuid: str | None = None,
    event_type: str | None = None,
) -> dict[str, Any]:
    """The whole event log in order; page with ``after`` to miss and repeat nothing."""
    return await app.rollouts.events(
        after=after,
        limit=limit,
        rollout_id=rollout_id,
        device_uuid=device_uuid,
        event_type=event_type,
    )


device_router = APIRouter(prefix="/api/v1/device", tags=["device protocol"])


@device_router.post("/{uuid}/health")
async def report_health(
    uuid: str, body: HealthReport, request: Request, app: App
) -> dict[str, Any]:
    """The agent's results of the device-side health checks a rollout asked it to run."""
    kept = await app.device_health.report(
        uuid, device_key(request), body.rollout_id, body.results, address=client_address(request)
    )
    return {"status": "ok", "recorded_for": kept}
