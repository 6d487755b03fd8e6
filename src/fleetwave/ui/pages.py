"""Rendering the dashboard: the templates, the session behind a page, the CSRF check, and the
security headers every page carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from fleetwave.bootstrap import Container
from fleetwave.domain.roles import Principal, Role
from fleetwave.domain.rollout_figures import health_label, percent_label, trigger_label
from fleetwave.domain.short_ids import short_id
from fleetwave.errors import Ambiguous, Conflict, NotFound
from fleetwave.sessions import SESSION_COOKIE, csrf_token, csrf_valid
from fleetwave.ui.views import page_query, readable, short_tag

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["tag"] = short_tag
templates.env.filters["when"] = lambda value: _when(value)
templates.env.filters["number"] = lambda value: f"{value:g}"
templates.env.filters["readable"] = readable
templates.env.filters["clock"] = lambda value: _when(value)[11:19] if value else "—"
templates.env.filters["short"] = short_id
templates.env.globals["query"] = page_query
templates.env.filters["share"] = percent_label  # the CLI rounds with the same rule
templates.env.filters["trigger"] = trigger_label
templates.env.globals["health_label"] = health_label

# Scripts and styles only from our own files; no inline script, no frame, forms only to us.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Session:
    cookie: str
    csrf_token: str
    principal: Principal

    def may(self, role: str) -> bool:
        """Whether the logged-in principal's role covers ``role`` (the templates ask)."""
        return self.principal.role.covers(Role(role))


def app_of(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


async def current_session(request: Request) -> Session | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = await app_of(request).authenticator.session(cookie)
    if cookie is None or principal is None:
        return None
    return Session(cookie, csrf_token(cookie), principal)


async def require_session(request: Request) -> Session:
    """The page's session; without one, the browser is sent to the login page."""
    session = await current_session(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "log in first", {"Location": f"/ui/login?next={quote(target)}"})
    return session


async def require_csrf(request: Request) -> Session:
    """A form post from one of our pages: the session's CSRF token must come with it."""
    session = await require_session(request)
    form = await request.form()
    token = form.get("csrf_token") or request.headers.get("x-csrf-token")
    if not isinstance(token, str) or not csrf_valid(session.cookie, token):
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page")
    return session


def acting_as(role: Role) -> Callable[[Request], Awaitable[Session]]:
    """A form post that changes something only ``role`` (or a higher one) may change."""

    async def allowed(request: Request) -> Session:
        return _covered(await require_csrf(request), role)

    return allowed


def page_for(role: Role) -> Callable[[Request], Awaitable[Session]]:
    """A page only ``role`` (or a higher one) may open: a form that changes something."""

    async def allowed(request: Request) -> Session:
        return _covered(await require_session(request), role)

    return allowed


def _covered(session: Session, role: Role) -> Session:
    if not session.principal.role.covers(role):
        raise HTTPException(
            403, f"{session.principal.name} has the {session.principal.role.value} role; "
            f"this needs {role.value}",
        )  # fmt: skip
    return session


def render(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"session": session, "path": request.url.path, **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    return response


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def install_page_errors(app: FastAPI) -> None:
    """Under ``/ui``, a rollout or device that is not there (or a page that is not) is an HTML
    page with the way back, not the API's JSON; elsewhere the API's handlers answer as before."""
    handlers = app.exception_handlers
    for kind, status, api in (
        (NotFound, 404, NotFound),
        (Ambiguous, 409, Conflict),
        (StarletteHTTPException, 404, StarletteHTTPException),
    ):
        app.add_exception_handler(kind, _page_or(handlers[api], status))


def _page_or(fallback: Any, status: int) -> Any:
    async def handle(request: Request, exc: Exception) -> Response:
        on_page = request.url.path == "/ui" or request.url.path.startswith("/ui/")
        code = getattr(exc, "status_code", status)
        if not on_page or code != status:
            answer: Response = await fallback(request, exc)
            return answer
        message = exc.detail if isinstance(exc, StarletteHTTPException) else str(exc)
        if isinstance(exc, StarletteHTTPException):
            message = f"there is no page {request.url.path}"
        matches = exc.detail["matches"] if isinstance(exc, Ambiguous) else []
        return render(
            request,
            "missing.html",
            await current_session(request),
            status_code=status,
            message=message,
            matches=matches,
        )

    return handle
