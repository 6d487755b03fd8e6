"""The dashboard's pages: rollouts (list, one rollout, its controls), devices, and static files.

Each route reads the request, calls the same service the API calls, and renders; the rules
(which controls apply, what a bar shows) live in :mod:`fleetwave.ui.views` and the domain.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from fleetwave.domain.batches import MAX_BATCHES
from fleetwave.domain.controls import (
    CONTROL_STATUSES,
    FAILED_DEVICE_STATUSES,
    device_can_roll_back,
)
from fleetwave.domain.roles import Role
from fleetwave.domain.text_rules import prose_problem
from fleetwave.domain.vocabulary import DEVICE_ROLLOUT_STATUSES, ROLLOUT_EVENT_TYPES
from fleetwave.errors import Conflict, InvalidInput, NotFound
from fleetwave.rollouts.controls import Actor
from fleetwave.ui import auth_routes, policy_routes
from fleetwave.ui.pages import HERE, SECURITY_HEADERS, Session, acting_as, app_of, render
from fleetwave.ui.pages import require_session as session_of
from fleetwave.ui.views import batch_bar, control_buttons, plan_rows
from fleetwave.web import DeviceCursor

router = APIRouter(prefix="/ui", include_in_schema=False)
router.include_router(auth_routes.router)
router.include_router(policy_routes.router)
Page = Annotated[Session, Depends(session_of)]
Operate = Annotated[Session, Depends(acting_as(Role.operator))]
STATIC = {path.name: path for path in (HERE / "static").iterdir() if path.is_file()}
DEVICE_PAGE = 200
LAST_WORDS = 5  # log lines shown beside a failed device's error
PANEL_LINES = 50  # log lines in a device's log panel


@router.get("", include_in_schema=False)
@router.get("/")
async def home() -> Response:
    return RedirectResponse("/ui/rollouts", 303)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no static file {name}")
    return FileResponse(STATIC[name], headers={"Cache-Control": "max-age=300"})


# --- rollouts -------------------------------------------------------------------------------


async def _rollout_list(request: Request) -> dict[str, Any]:
    app = app_of(request)
    page = await app.rollouts.search(limit=50)
    rollouts = await app.rollouts.with_batches(page["items"])
    for rollout in rollouts:
        rollout["bars"] = [batch_bar(b) for b in rollout["batches"]]
    return {"rollouts": rollouts}


@router.get("/rollouts", response_class=HTMLResponse)
async def rollouts_page(request: Request, session: Page) -> Response:
    context = await _rollout_list(request)
    after = await app_of(request).event_stream.latest_id()
    return render(
        request,
        "rollouts.html",
        session,
        after=after,
        event_types=ROLLOUT_EVENT_TYPES,
        **context,
    )


@router.get("/rollouts/rows", response_class=HTMLResponse)
async def rollout_rows(request: Request, session: Page) -> Response:
    """The list's rows alone: what the page fetches again when events arrive."""
    return render(request, "_rollout_rows.html", session, **await _rollout_list(request))


async def _rollout_live(
    request: Request, rollout_id: str, batch: int | None, status: str | None
) -> dict[str, Any]:
    app = app_of(request)
    rollout = await app.rollouts.get(rollout_id)
    statuses = [status] if status in DEVICE_ROLLOUT_STATUSES else []
    devices = await app.rollouts.devices(
        rollout_id, batch=batch, status=statuses, limit=DEVICE_PAGE
    )
    failed = [d["device_uuid"] for d in devices["items"] if d["status"] in FAILED_DEVICE_STATUSES]
    last_words = await app.device_logs.last_lines(failed, LAST_WORDS)  # where a crash says why
    for device in devices["items"]:
        device["can_roll_back"] = device_can_roll_back(
            device["status"], device["rollback_requested_at"] is not None
        ) and rollout["status"] not in ("cancelled", "rolled_back")
        device["last_lines"] = last_words.get(device["device_uuid"], [])
    return {
        "rollout": rollout,
        "bars": [batch_bar(b) for b in rollout["batches"]],
        "buttons": control_buttons(rollout),
        "devices": devices,
        "batch": batch,
        "status": status if statuses else None,
        "device_statuses": DEVICE_ROLLOUT_STATUSES,
    }


Batch = Annotated[int | None, Query(ge=1, le=MAX_BATCHES)]


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
async def rollout_page(
    request: Request,
    rollout_id: str,
    session: Page,
    batch: Batch = None,
    status: str | None = None,
    logs: Annotated[str | None, Query(description="a device whose log panel to show")] = None,
) -> Response:
    return await _rollout_page(request, rollout_id, session, batch, status, logs=logs)


async def _rollout_page(
    request: Request,
    rollout_id: str,
    session: Session,
    batch: int | None = None,
    status: str | None = None,
    error: str | None = None,
    logs: str | None = None,
) -> Response:
    """The rollout's page; with ``error``, saying why an action was refused (a 409); with
    ``logs``, the log panel of that device."""
    context = await _rollout_live(request, rollout_id, batch, status)
    events = await app_of(request).event_stream.recent(rollout_id, 100)
    panel = await app_of(request).device_logs.last_lines([logs], PANEL_LINES) if logs else {}
    return render(
        request,
        "rollout.html",
        session,
        status_code=409 if error else 200,
        plan=plan_rows(context["rollout"]),
        events=events,
        after=events[-1]["id"] if events else await app_of(request).event_stream.latest_id(),
        event_types=ROLLOUT_EVENT_TYPES,
        error=error,
        log_device=logs,
        lines=panel.get(logs or "", []),
        **context,
    )


@router.get("/rollouts/{rollout_id}/live", response_class=HTMLResponse)
async def rollout_live(
    request: Request,
    rollout_id: str,
    session: Page,
    batch: Batch = None,
    status: str | None = None,
) -> Response:
    """The changing part of a rollout's page: summary, bars, controls, devices."""
    context = await _rollout_live(request, rollout_id, batch, status)
    return render(request, "_rollout_live.html", session, **context)


@router.post("/rollouts/{rollout_id}/devices/{uuid}/rollback", response_class=HTMLResponse)
async def rollback_device(
    request: Request, rollout_id: str, uuid: str, session: Operate
) -> Response:
    app = app_of(request)
    try:
        await app.controls.rollback_device(rollout_id, uuid, Actor(session.principal.name))
    except Conflict as exc:
        return await _refused(request, rollout_id, session, str(exc))
    return RedirectResponse(f"/ui/rollouts/{rollout_id}", 303, headers=SECURITY_HEADERS)


@router.post("/rollouts/{rollout_id}/{control}", response_class=HTMLResponse)
async def control_rollout(
    request: Request, rollout_id: str, control: str, session: Operate
) -> Response:
    if control not in CONTROL_STATUSES:
        raise NotFound(f"no control {control}")
    form = await request.form()
    note = form.get("note")
    if isinstance(note, str) and (problem := prose_problem(note)) is not None:
        raise InvalidInput.one("note", problem)
    actor = Actor(session.principal.name, note if isinstance(note, str) and note.strip() else None)
    try:
        await app_of(request).controls.apply(
            control, rollout_id, actor, force=form.get("force") == "true"
        )
    except Conflict as exc:
        return await _refused(request, rollout_id, session, str(exc))
    return RedirectResponse(f"/ui/rollouts/{rollout_id}", 303, headers=SECURITY_HEADERS)


async def _refused(request: Request, rollout_id: str, session: Session, message: str) -> Response:
    return await _rollout_page(request, rollout_id, session, error=message)


# --- devices --------------------------------------------------------------------------------


@router.get("/devices", response_class=HTMLResponse)
async def devices_page(
    request: Request,
    session: Page,
    fleet_id: str | None = None,
    online: str | None = None,
    cursor: DeviceCursor = None,
) -> Response:
    app = app_of(request)
    online_filter = {"yes": True, "no": False}.get(online or "")
    page = await app.devices.list(
        fleet_id=fleet_id or None, online=online_filter, limit=DEVICE_PAGE, cursor=cursor
    )
    running = await app.devices.running_services([d["uuid"] for d in page["items"]])
    return render(
        request,
        "devices.html",
        session,
        page=page,
        running=running,
        fleet_id=fleet_id or "",
        online=online or "",
    )


@router.get("/devices/{uuid}/logs", response_class=HTMLResponse)
async def device_logs(request: Request, uuid: str, session: Page) -> Response:
    """A device's log panel alone: what the rollout page fetches again every few seconds."""
    lines = await app_of(request).device_logs.tail(uuid, PANEL_LINES)
    return render(request, "_device_logs.html", session, lines=lines, log_device=uuid)
