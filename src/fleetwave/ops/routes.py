"""``/healthz`` says the process answers; ``/readyz`` says it can reach its database."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from fleetwave import __version__
from fleetwave.bootstrap import Container
from fleetwave.web import container

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", response_model=None)
async def readyz(app: Container = Depends(container)) -> JSONResponse | dict[str, str]:
    try:
        await app.db.ping()
    except Exception as exc:  # the database is down or unreachable: not ready, not a crash
        return JSONResponse(
            {"error": "database unreachable", "detail": type(exc).__name__}, status_code=503
        )
    return {"status": "ready", "database": app.db.dialect}
