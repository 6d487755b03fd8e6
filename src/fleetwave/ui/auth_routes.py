"""Logging in to the dashboard with the admin token, and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fleetwave.security import tokens_equal
from fleetwave.sessions import SESSION_COOKIE
from fleetwave.ui.pages import SECURITY_HEADERS, Session, app_of, current_session, render
from fleetwave.ui.pages import require_csrf as csrf

router = APIRouter(include_in_schema=False)  # included under /ui


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/ui/rollouts") -> Response:
    if current_session(request) is not None:
        return RedirectResponse(_local(next), 303)
    return render(request, "login.html", None, next=_local(next))


@router.post("/login", response_class=HTMLResponse)
async def log_in(
    request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""
) -> Response:
    app = app_of(request)
    if not token or not tokens_equal(token.strip(), app.admin_token):
        return render(
            request,
            "login.html",
            None,
            status_code=401,
            next=_local(next),
            error="That is not the admin token.",
        )
    response = RedirectResponse(_local(next), 303, headers=SECURITY_HEADERS)
    secure = app.settings.session_cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        app.sessions.open(),
        max_age=int(app.settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
    )
    return response


@router.post("/logout")
async def log_out(request: Request, _: Annotated[Session, Depends(csrf)]) -> Response:
    app_of(request).sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/ui/login", 303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _local(target: str) -> str:
    """Only a dashboard path: never redirect elsewhere after login (no open redirect)."""
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/rollouts"
