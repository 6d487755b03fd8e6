"""The dashboard's policy pages: list, create, edit, enable and disable."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.roles import Role
from fleetwave.policies.schemas import PolicyFields, PolicyUpdate
from fleetwave.rollouts.schemas import TriggerUpdate
from fleetwave.ui.pages import SECURITY_HEADERS, Session, acting_as, app_of, page_for, render
from fleetwave.ui.pages import require_session as session_of
from fleetwave.ui.policy_form import (
    NEW_POLICY,
    SECTIONS,
    form_values,
    policy_fields,
    problems_by_field,
)
from fleetwave.web import RowId

router = APIRouter(prefix="/policies", include_in_schema=False)  # included under /ui
Page = Annotated[Session, Depends(session_of)]
Manage = Annotated[Session, Depends(acting_as(Role.admin))]
Form = Annotated[Session, Depends(page_for(Role.admin))]
Preview = Annotated[Session, Depends(page_for(Role.operator))]


@router.get("", response_class=HTMLResponse)
async def policies_page(request: Request, session: Page) -> Response:
    policies = await app_of(request).policies.list()
    return render(request, "policies.html", session, policies=policies)


@router.get("/new", response_class=HTMLResponse)
async def new_policy_page(request: Request, session: Form) -> Response:
    settings = app_of(request).settings
    defaults = NEW_POLICY | {  # what the service fills in when these are left out
        "auto_rollback": settings.auto_rollback,
        "batch_delay_minutes": settings.batch_delay_minutes,
        "max_failure_rate": settings.max_failure_rate,
        "health_check_timeout_seconds": settings.health_check_timeout,
    }
    return _form(request, session, None, form_values(defaults))


@router.post("", response_class=HTMLResponse)
async def create_policy(request: Request, session: Manage) -> Response:
    form = await _text_form(request)
    try:
        created = await app_of(request).policies.create(policy_fields(form), session.principal.name)
    except InvalidInput as exc:
        return _form(request, session, None, _resubmitted(form), exc)
    return RedirectResponse(f"/ui/policies?saved={created['id']}", 303, headers=SECURITY_HEADERS)


@router.get("/{policy_id}", response_class=HTMLResponse)
async def edit_policy_page(request: Request, policy_id: RowId, session: Form) -> Response:
    policy = await app_of(request).policies.get(policy_id)
    coverage = policy["health_check_coverage"]
    return _form(request, session, policy_id, form_values(policy), coverage=coverage)


@router.get("/{policy_id}/preview", response_class=HTMLResponse)
async def preview_page(
    request: Request, policy_id: RowId, session: Preview, image: str = ""
) -> Response:
    """What a push of ``image`` would do (the API's preview), beside the policy it reads."""
    app = app_of(request)
    policy = await app.policies.get(policy_id)
    preview, error = None, None
    if image:
        try:
            body = TriggerUpdate(image=image)
            preview = await app.rollouts.preview(body, session.principal.name)
        except (InvalidInput, ValidationError) as exc:
            error = str(exc)
    return render(
        request,
        "policy_preview.html",
        session,
        status_code=422 if error else 200,
        policy=policy,
        image=image,
        preview=preview,
        error=error,
    )


@router.post("/{policy_id}", response_class=HTMLResponse)
async def update_policy(request: Request, policy_id: RowId, session: Manage) -> Response:
    form = await _text_form(request)
    try:
        await app_of(request).policies.replace(
            policy_id, policy_fields(form), session.principal.name
        )
    except InvalidInput as exc:
        return _form(request, session, policy_id, _resubmitted(form), exc)
    return RedirectResponse(f"/ui/policies?saved={policy_id}", 303, headers=SECURITY_HEADERS)


@router.post("/{policy_id}/enabled", response_class=HTMLResponse)
async def enable_policy(request: Request, policy_id: RowId, session: Manage) -> Response:
    """Turn a policy on or off, keeping every other field."""
    app = app_of(request)
    form = await request.form()
    policy = await app.policies.get(policy_id)
    kept = {name: policy[name] for name in PolicyFields.model_fields}
    kept["enabled"] = form.get("enabled") == "true"
    await app.policies.replace(policy_id, PolicyUpdate.model_validate(kept), session.principal.name)
    return RedirectResponse("/ui/policies", 303, headers=SECURITY_HEADERS)


async def _text_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _resubmitted(form: dict[str, str]) -> dict[str, Any]:
    """What the operator typed, shown again beside the messages."""
    values = form_values(NEW_POLICY)
    for name, current in values.items():
        values[name] = (name in form) if isinstance(current, bool) else form.get(name, "")
    return values


def _form(
    request: Request,
    session: Session,
    policy_id: int | None,
    values: dict[str, Any],
    error: InvalidInput | None = None,
    *,
    coverage: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "policy_form.html",
        session,
        status_code=422 if error else 200,
        policy_id=policy_id,
        sections=SECTIONS,
        values=values,
        problems=problems_by_field(error) if error else {},
        error=str(error) if error else None,
        coverage=coverage,
    )
