"""The dashboard's rings page: each deployment ring, its selector and its device count."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from fleetwave.ui.pages import Session, app_of, render
from fleetwave.ui.pages import require_session as session_of

router = APIRouter(prefix="/rings", include_in_schema=False)  # included under /ui
Page = Annotated[Session, Depends(session_of)]


@router.get("", response_class=HTMLResponse)
async def rings_page(request: Request, session: Page) -> Response:
    rings = await app_of(request).rings.list()
    return render(request, "rings.html", session, rings=rings)
