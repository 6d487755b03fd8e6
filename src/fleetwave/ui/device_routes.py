"""The device page (``/ui/devices/{uuid}``): its services target against running, presence,
tags, last metrics, rollout history with its actions, events and logs; and the per-device
rollback and retry forms it posts.

Each route calls the same services the API calls (the device registry, the rollout history,
the event log, the controls) and renders; what the page computes lives in
:mod:`fleetwave.ui.device_views` and the domain.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fleetwave.domain.readings import ago, readings
from fleetwave.domain.roles import Role
from fleetwave.domain.service_states import compare_services
from fleetwave.errors import Conflict, NotFound
from fleetwave.rollouts.controls import Actor
from fleetwave.schemas import MAX_ROW_ID
from fleetwave.ui.device_views import finished_at, history_actions
from fleetwave.ui.pages import SECURITY_HEADERS, Session, acting_as, app_of, render
from fleetwave.ui.pages import require_session as session_of
from fleetwave.web import RowCursor

router = APIRouter()
Page = Annotated[Session, Depends(session_of)]
Operate = Annotated[Session, Depends(acting_as(Role.operator))]
HISTORY_PAGE = 10  # rollouts per page of the history
EVENTS = 20  # events shown at once; "older events" reads the ones before
PANEL_LINES = 50  # log lines in the log panel (as on the rollout page)
ACTIONS = ("rollback", "retry")
EventsBefore = Annotated[
    int | None, Query(ge=1, le=MAX_ROW_ID, description="show the events before this id")
]


@router.get("/devices/{uuid}", response_class=HTMLResponse)
async def device_page(
    request: Request,
    uuid: str,
    session: Page,
    cursor: RowCursor = None,
    events_before: EventsBefore = None,
) -> Response:
    return await _device_page(request, uuid, session, cursor=cursor, events_before=events_before)


@router.post("/devices/{uuid}/rollouts/{rollout_id}/{action}", response_class=HTMLResponse)
async def device_action(
    request: Request, uuid: str, rollout_id: str, action: str, session: Operate
) -> Response:
    """Roll the device back, or retry it, in one of its rollouts; a refusal (409) shows the
    page again with the reason."""
    if action not in ACTIONS:
        raise NotFound(f"no device action {action}")
    controls = app_of(request).controls
    act = controls.rollback_device if action == "rollback" else controls.retry_device
    try:
        await act(rollout_id, uuid, Actor(session.principal.name))
    except Conflict as exc:
        return await _device_page(request, uuid, session, error=str(exc))
    return RedirectResponse(f"/ui/devices/{quote(uuid, safe='')}", 303, headers=SECURITY_HEADERS)


async def _device_page(
    request: Request,
    uuid: str,
    session: Session,
    *,
    cursor: int | None = None,
    events_before: int | None = None,
    error: str | None = None,
) -> Response:
    context = await _device_context(request, uuid, cursor, events_before)
    return render(
        request, "device.html", session, status_code=409 if error else 200, error=error, **context
    )


async def _device_context(
    request: Request, uuid: str, cursor: int | None, events_before: int | None
) -> dict[str, Any]:
    app = app_of(request)
    device = await app.devices.get(uuid)  # NotFound: no such device
    target = await app.devices.target_state(uuid)
    try:
        current: dict[str, Any] | None = await app.devices.current_state(uuid)
    except NotFound:  # it has not reported yet
        current = None
    history = await app.devices.rollouts(uuid, limit=HISTORY_PAGE, cursor=cursor)
    for row in history["items"]:
        row["actions"] = history_actions(uuid, row)
        row["finished_at"] = finished_at(row)
    events = await app.rollouts.events(device_uuid=uuid, tail=EVENTS, before=events_before)
    now = app.clock.now()
    return {
        "device": device,
        "last_seen": ago(device["last_connectivity_event"], now),
        "services": compare_services(target["apps"], current["apps"] if current else None),
        "target": target,
        "current": current,
        "metrics": readings(current["system_info"] if current else None),
        "history": history,
        "cursor": cursor,
        "events": list(reversed(events["items"])),  # newest first
        "older_events": events["items"][0]["id"] if len(events["items"]) == EVENTS else None,
        "events_before": events_before,
        "lines": await app.device_logs.tail(uuid, PANEL_LINES),
        "log_device": uuid,
    }
