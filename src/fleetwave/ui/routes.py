"""The dashboard's pages: rollouts (list, one rollout, its controls), devices, and static files.

Each route reads the request, calls the same service the API calls, and renders; the rules
(which controls apply, what a bar shows) live in :mod:`fleetwave.ui.views` and the domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from fleetwave.domain.batches import MAX_BATCHES
from fleetwave.domain.controls import (
    CONTROL_STATUSES,
    FAILED_DEVICE_STATUSES,
    device_can_roll_back,
)
from fleetwave.domain.roles import Role
from fleetwave.domain.text_rules import prose_problem
from fleetwave.domain.vocabulary import (
    DEVICE_ROLLOUT_STATUSES,
    ROLLOUT_EVENT_TYPES,
    ROLLOUT_STATUSES,
)
from fleetwave.errors import Conflict, InvalidInput, NotFound
from fleetwave.rollouts.controls import Actor
from fleetwave.ui import auth_routes, device_routes, log_routes, policy_routes, ring_routes
from fleetwave.ui.chart import failure_chart, series
from fleetwave.ui.pages import HERE, SECURITY_HEADERS, Session, acting_as, app_of, render
from fleetwave.ui.pages import require_session as session_of
from fleetwave.ui.views import batch_bar, batch_filter, control_buttons, plan_rows, tag_filters
from fleetwave.web import DeviceCursor

router = APIRouter(prefix="/ui", include_in_schema=False)
router.include_router(auth_routes.router)
router.include_router(policy_routes.router)
router.include_router(ring_routes.router)
router.include_router(log_routes.router)
router.include_router(device_routes.router)
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


ROLLOUT_PAGE = 25


@dataclass(frozen=True)
class RolloutFilters:
    """The rollouts list's filters, as the page's form sends them (empty fields: no filter)."""

    status: str = ""
    image: str = ""
    created_from: str = ""
    created_until: str = ""
    page: int = 1

    def query(self, page: int | None = None) -> str:
        """The filters as a query string, on ``page`` (the page links keep the filters)."""
        values = {
            "status": self.status,
            "image": self.image,
            "from": self.created_from,
            "until": self.created_until,
            "page": str(page or self.page) if (page or self.page) > 1 else "",
        }
        return urlencode({k: v for k, v in values.items() if v})

    def search(self) -> dict[str, Any]:
        """The filters as the rollout service's arguments; a bad one is a 422 naming it."""
        if self.status and self.status not in ROLLOUT_STATUSES:
            raise InvalidInput.one("status", f"{self.status!r} is not a rollout status")
        return {
            "status": [self.status] if self.status else [],
            "image": self.image or None,
            "created_from": _day(self.created_from, "from"),
            "created_until": _day(self.created_until, "until", later=timedelta(days=1)),
            "limit": ROLLOUT_PAGE,
            "offset": (self.page - 1) * ROLLOUT_PAGE,
        }


def _day(value: str, field: str, later: timedelta = timedelta(0)) -> datetime | None:
    """Midnight UTC of a date from the form (``later``: the next midnight, for "until")."""
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC) + later
    except ValueError:
        raise InvalidInput.one(field, f"{value!r} is not a date (YYYY-MM-DD)") from None
    except OverflowError:
        raise InvalidInput.one(field, f"{value!r} is out of the range of dates") from None


def _filters(
    status: str | None = None,
    image: str | None = None,
    created_from: Annotated[str | None, Query(alias="from")] = None,
    created_until: Annotated[str | None, Query(alias="until")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> RolloutFilters:
    return RolloutFilters(
        (status or "").strip(),
        (image or "").strip(),
        (created_from or "").strip(),
        (created_until or "").strip(),
        page,
    )


Filters = Annotated[RolloutFilters, Depends(_filters)]


async def _rollout_list(request: Request, filters: RolloutFilters) -> dict[str, Any]:
    app = app_of(request)
    page = await app.rollouts.search(**filters.search())
    rollouts = page["items"]
    for rollout in rollouts:
        rollout["bars"] = [batch_bar(b) for b in rollout["batches"]]
    pages = max(1, -(-page["total"] // ROLLOUT_PAGE))
    return {"rollouts": rollouts, "filters": filters, "total": page["total"], "pages": pages}


@router.get("/rollouts", response_class=HTMLResponse)
async def rollouts_page(request: Request, session: Page, filters: Filters) -> Response:
    context = await _rollout_list(request, filters)
    after = await app_of(request).event_stream.latest_id()
    return render(
        request,
        "rollouts.html",
        session,
        after=after,
        event_types=ROLLOUT_EVENT_TYPES,
        rollout_statuses=ROLLOUT_STATUSES,
        **context,
    )


@router.get("/rollouts/rows", response_class=HTMLResponse)
async def rollout_rows(request: Request, session: Page, filters: Filters) -> Response:
    """The list's rows alone: what the page fetches again when events arrive."""
    context = await _rollout_list(request, filters)
    return render(request, "_rollout_rows.html", session, **context)


@dataclass(frozen=True)
class DeviceTable:
    """What the rollout page's device table shows: filters, search and page."""

    batch: int | None = None
    status: str | None = None
    q: str | None = None
    cursor: str | None = None


async def _device_table(
    batch: Annotated[str | None, Query(max_length=8, description="a batch number")] = None,
    status: str | None = None,
    q: Annotated[str | None, Query(max_length=255)] = None,
    cursor: DeviceCursor = None,
) -> DeviceTable:
    """The table's filters as the form sends them ("all" is an empty value)."""
    shown = status if status in DEVICE_ROLLOUT_STATUSES else None
    number = batch_filter(batch or "", MAX_BATCHES)
    return DeviceTable(number, shown, (q or "").strip() or None, cursor or None)


Table = Annotated[DeviceTable, Depends(_device_table)]


async def _rollout_live(
    request: Request, rollout_id: str, table: DeviceTable = DeviceTable()
) -> dict[str, Any]:
    app = app_of(request)
    rollout = await app.rollouts.get(rollout_id)
    statuses = [table.status] if table.status else []
    devices = await app.rollouts.devices(
        rollout_id,
        batch=table.batch,
        status=statuses,
        q=table.q,
        limit=DEVICE_PAGE,
        cursor=table.cursor,
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
        "buttons": control_buttons(rollout, await app.rollouts.retryable_devices(rollout_id)),
        "devices": devices,
        "batch": table.batch,
        "status": table.status,
        "q": table.q,
        "cursor": table.cursor,
        "table_query": {"batch": table.batch, "status": table.status, "q": table.q},
        "device_statuses": DEVICE_ROLLOUT_STATUSES,
    }


async def _shown_rollout(
    request: Request,
    rollout_id: Annotated[str, Path(description="a rollout's id, or its first 8+ characters")],
) -> str:
    """The full id of the rollout a page names; a page that names none is a 404 page."""
    try:
        return await app_of(request).rollouts.resolve(rollout_id)
    except InvalidInput as exc:
        raise NotFound(str(exc.problems[0].message)) from None


# After the session: a stranger is sent to log in before anything is looked up.
ShownRollout = Annotated[str, Depends(_shown_rollout)]


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
async def rollout_page(
    request: Request,
    session: Page,
    rollout_id: ShownRollout,
    table: Table,
    logs: Annotated[str | None, Query(description="a device whose log panel to show")] = None,
) -> Response:
    return await _rollout_page(request, rollout_id, session, table, logs=logs)


async def _rollout_page(
    request: Request,
    rollout_id: str,
    session: Session,
    table: DeviceTable = DeviceTable(),
    error: str | None = None,
    logs: str | None = None,
) -> Response:
    """The rollout's page; with ``error``, saying why an action was refused (a 409); with
    ``logs``, the log panel of that device."""
    context = await _rollout_live(request, rollout_id, table)
    events = await app_of(request).event_stream.recent(rollout_id, 100)
    chart = await _chart(request, context["rollout"])
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
        chart=chart,
        **context,
    )


async def _chart(request: Request, rollout: dict[str, Any]) -> Markup:
    """The failure-rate chart of the rollout, from when it started to when it ended (or now)."""
    finishes = await app_of(request).rollouts.finishes(rollout["rollout_id"])
    end = rollout["completed_at"] or (finishes[-1][0] if finishes else None)
    return failure_chart(
        series(finishes),
        rollout["max_failure_rate"],
        rollout["total_devices"],
        start=rollout["started_at"],
        end=end,
    )


@router.get("/rollouts/{rollout_id}/live", response_class=HTMLResponse)
async def rollout_live(
    request: Request, session: Page, rollout_id: ShownRollout, table: Table
) -> Response:
    """The changing part of a rollout's page: summary, bars, controls, devices."""
    context = await _rollout_live(request, rollout_id, table)
    return render(request, "_rollout_live.html", session, **context)


@router.post("/rollouts/{rollout_id}/devices/{uuid}/rollback", response_class=HTMLResponse)
async def rollback_device(
    request: Request, session: Operate, rollout_id: ShownRollout, uuid: str
) -> Response:
    app = app_of(request)
    try:
        await app.controls.rollback_device(rollout_id, uuid, Actor(session.principal.name))
    except Conflict as exc:
        return await _refused(request, rollout_id, session, str(exc))
    return RedirectResponse(f"/ui/rollouts/{rollout_id}", 303, headers=SECURITY_HEADERS)


@router.post("/rollouts/{rollout_id}/{control}", response_class=HTMLResponse)
async def control_rollout(
    request: Request, session: Operate, rollout_id: ShownRollout, control: str
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
    fleet_id: Annotated[str | None, Query(max_length=255)] = None,
    online: str | None = None,
    tag: Annotated[str | None, Query(max_length=512, description="key:value, ...")] = None,
    image: Annotated[str | None, Query(max_length=1024)] = None,
    q: Annotated[str | None, Query(max_length=255)] = None,
    cursor: DeviceCursor = None,
) -> Response:
    app = app_of(request)
    shown = {
        "fleet_id": (fleet_id or "").strip(),
        "online": online if online in ("yes", "no") else "",
        "tag": (tag or "").strip(),
        "image": (image or "").strip(),
        "q": (q or "").strip(),
    }
    empty_page: dict[str, Any] = {"items": [], "total": 0, "next_cursor": None}
    page, problem = empty_page, None
    try:
        page = await app.devices.list(
            fleet_id=shown["fleet_id"] or None,
            online={"yes": True, "no": False}.get(shown["online"]),
            tags=tag_filters(shown["tag"]),
            image=shown["image"] or None,
            q=shown["q"] or None,
            limit=DEVICE_PAGE,
            cursor=cursor,
        )
    except InvalidInput as exc:
        problem = str(exc)
    running = await app.devices.running_services([d["uuid"] for d in page["items"]])
    return render(
        request,
        "devices.html",
        session,
        status_code=422 if problem else 200,
        page=page,
        running=running,
        problem=problem,
        cursor=cursor,
        filters=shown,
        **shown,
    )


@router.get("/devices/{uuid}/logs", response_class=HTMLResponse)
async def device_logs(request: Request, uuid: str, session: Page) -> Response:
    """A device's log panel alone: what the rollout page fetches again every few seconds."""
    lines = await app_of(request).device_logs.tail(uuid, PANEL_LINES)
    return render(request, "_device_logs.html", session, lines=lines, log_device=uuid)
