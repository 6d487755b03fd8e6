"""The dashboard's logs and keys: the full event log (newest first, paged backwards), the
webhook deliveries received, and the fleets' provisioning keys (list, create, revoke)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.roles import Role
from fleetwave.domain.vocabulary import ROLLOUT_EVENT_TYPES, WEBHOOK_OUTCOMES
from fleetwave.errors import Conflict, NotFound
from fleetwave.provisioning.schemas import ProvisioningKeyCreate
from fleetwave.registries.payloads import PROVIDERS
from fleetwave.schemas import MAX_ROW_ID
from fleetwave.ui.pages import SECURITY_HEADERS, Session, acting_as, app_of, render
from fleetwave.ui.pages import require_session as session_of
from fleetwave.web import RowId

router = APIRouter(include_in_schema=False)  # included under /ui
Page = Annotated[Session, Depends(session_of)]
Manage = Annotated[Session, Depends(acting_as(Role.admin))]
EVENT_PAGE = 100
DELIVERY_PAGE = 200
Text = Annotated[str | None, Query(max_length=255)]


@router.get("/events", response_class=HTMLResponse)
async def events_page(
    request: Request,
    session: Page,
    rollout_id: Text = None,
    device_uuid: Text = None,
    event_type: Text = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID + 1)] = None,
) -> Response:
    """The event log, newest first, a page at a time; by rollout (a short id will do), device
    and type."""
    app = app_of(request)
    filters = {
        "rollout_id": (rollout_id or "").strip(),
        "device_uuid": (device_uuid or "").strip(),
        "event_type": event_type if event_type in ROLLOUT_EVENT_TYPES else "",
    }
    page: dict[str, Any] = {"items": [], "older_cursor": None}
    problem, status = None, 200
    try:
        if filters["rollout_id"]:
            filters["rollout_id"] = await app.rollouts.resolve(filters["rollout_id"])
        page = await app.rollouts.events(
            before=before or MAX_ROW_ID + 1,
            limit=EVENT_PAGE,
            rollout_id=filters["rollout_id"] or None,
            device_uuid=filters["device_uuid"] or None,
            event_type=filters["event_type"] or None,
        )
    except (InvalidInput, NotFound, Conflict) as exc:
        problem = exc.problems[0].message if isinstance(exc, InvalidInput) else str(exc)
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422
    return render(
        request,
        "events.html",
        session,
        status_code=status,
        events=list(reversed(page["items"])),
        older=page["older_cursor"],
        before=before,
        filters=filters,
        problem=problem,
        event_types=ROLLOUT_EVENT_TYPES,
    )


@router.get("/webhook-deliveries", response_class=HTMLResponse)
async def deliveries_page(
    request: Request, session: Page, provider: Text = None, outcome: Text = None
) -> Response:
    """Pushes received, newest first: what each made, or why it made nothing."""
    shown = {
        "provider": provider if provider in PROVIDERS else "",
        "outcome": outcome if outcome in WEBHOOK_OUTCOMES else "",
    }
    deliveries = await app_of(request).webhooks.deliveries(
        provider=shown["provider"] or None, outcome=shown["outcome"] or None, limit=DELIVERY_PAGE
    )
    return render(
        request,
        "deliveries.html",
        session,
        deliveries=deliveries,
        limit=DELIVERY_PAGE,
        filters=shown,
        providers=PROVIDERS,
        outcomes=WEBHOOK_OUTCOMES,
    )


# --- provisioning keys -----------------------------------------------------------------------


# A created key's secret travels once, from the form's answer to the page it redirects to, in
# a cookie that page deletes: reloading the page neither shows it again nor makes another key.
NEW_KEY_COOKIE = "fleetwave_new_key"
KEYS_PATH = "/ui/provisioning-keys"


@router.get("/provisioning-keys", response_class=HTMLResponse)
async def keys_page(request: Request, session: Page) -> Response:
    created = None
    flashed = request.cookies.get(NEW_KEY_COOKIE, "")
    key_id, _, secret = flashed.partition(":")
    if key_id.isdigit() and secret:
        created = next(
            (k for k in await app_of(request).provisioning.list_keys() if k["id"] == int(key_id)),
            None,
        )
    shown = await _keys_page(request, session, created=created and created | {"key": secret})
    if flashed:
        shown.delete_cookie(NEW_KEY_COOKIE, path=KEYS_PATH, httponly=True, samesite="strict")
    return shown


async def _keys_page(
    request: Request,
    session: Session,
    created: dict[str, Any] | None = None,
    error: InvalidInput | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The keys; with ``created``, the new key's secret (shown this once: only its hash is
    kept); with ``error``, why the form was refused, beside what was typed."""
    keys = await app_of(request).provisioning.list_keys()
    problems: dict[str, list[str]] = {}
    for problem in error.problems if error else []:
        problems.setdefault(problem.field.split(".", 1)[0], []).append(problem.message)
    return render(
        request,
        "provisioning_keys.html",
        session,
        status_code=422 if error else 200,
        keys=keys,
        created=created,
        problems=problems,
        form=form or {},
        now=app_of(request).clock.now(),
    )


@router.post("/provisioning-keys", response_class=HTMLResponse)
async def create_key(request: Request, session: Manage) -> Response:
    form = {k: v.strip() for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        fields = key_fields(form)
        created = await app_of(request).provisioning.create_key(fields, session.principal.name)
    except InvalidInput as exc:
        return await _keys_page(request, session, error=exc, form=form)
    shown = RedirectResponse(KEYS_PATH, 303, headers=SECURITY_HEADERS)
    shown.set_cookie(
        NEW_KEY_COOKIE,
        f"{created['id']}:{created['key']}",
        max_age=120,
        path=KEYS_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return shown


def _secure(request: Request) -> bool:
    """Secure as the session cookie is: on https, or when the settings say so."""
    setting = app_of(request).settings.session_cookie_secure
    return request.url.scheme == "https" if setting is None else setting


def key_fields(form: dict[str, str]) -> ProvisioningKeyCreate:
    """The form's text as the API's key fields; raises InvalidInput naming each field."""
    values = {
        name: form[name]
        for name in ("fleet_id", "description", "expires_at", "max_uses")
        if form.get(name)
    }
    try:
        return ProvisioningKeyCreate.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(
            [Problem(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()]
        ) from None


@router.post("/provisioning-keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(request: Request, session: Manage, key_id: RowId) -> Response:
    await app_of(request).provisioning.revoke_key(key_id, session.principal.name)
    return RedirectResponse(
        f"/ui/provisioning-keys?revoked={key_id}", 303, headers=SECURITY_HEADERS
    )
