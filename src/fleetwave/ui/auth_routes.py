"""Logging in to the dashboard (a username and password, or the break-glass admin token), and
out. Failed logins are limited per username and per source address (429)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fleetwave.domain.roles import Principal
from fleetwave.errors import TooManyRequests, Unauthorized
from fleetwave.security import tokens_equal
from fleetwave.sessions import SESSION_COOKIE
from fleetwave.ui.pages import SECURITY_HEADERS, Session, app_of, current_session, render
from fleetwave.ui.pages import require_csrf as csrf
from fleetwave.users.authentication import ADMIN
from fleetwave.web import client_address

router = APIRouter(include_in_schema=False)  # included under /ui


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/ui/rollouts") -> Response:
    if await current_session(request) is not None:
        return RedirectResponse(_local(next), 303)
    return _login_form(request, next)


@router.post("/login", response_class=HTMLResponse)
async def log_in(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    token: Annotated[str, Form(max_length=512)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    app = app_of(request)
    try:
        principal = await _principal(request, username.strip(), password, token.strip())
    except TooManyRequests as limited:
        headers = {"Retry-After": str(int(limited.retry_after) + 1)}
        return _login_form(request, next, str(limited), 429, headers, username)
    except Unauthorized as refused:
        return _login_form(request, next, str(refused), 401, {}, username)
    response = RedirectResponse(_local(next), 303, headers=SECURITY_HEADERS)
    secure = app.settings.session_cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        await app.authenticator.open_session(principal),
        max_age=int(app.settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
    )
    return response


async def _principal(request: Request, username: str, password: str, token: str) -> Principal:
    authenticator = app_of(request).authenticator
    if token:  # the break-glass admin token
        if authenticator.admin_token is None or not tokens_equal(token, authenticator.admin_token):
            raise Unauthorized("That is not the admin token (or it has been retired).")
        return ADMIN
    if not username or not password:
        raise Unauthorized("Give your username and password.")
    return await authenticator.log_in(username, password, client_address(request))


@router.post("/logout")
async def log_out(request: Request, _: Annotated[Session, Depends(csrf)]) -> Response:
    await app_of(request).authenticator.end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/ui/login", 303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _login_form(
    request: Request,
    next: str,
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    username: str = "",
) -> Response:
    page = render(
        request, "login.html", None, status_code=status_code, next=_local(next), error=error,
        username=username, admin_token=app_of(request).authenticator.admin_token is not None,
    )  # fmt: skip
    page.headers.update(headers or {})
    return page


def _local(target: str) -> str:
    """Only a dashboard path: never redirect elsewhere after login (no open redirect)."""
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/rollouts"
