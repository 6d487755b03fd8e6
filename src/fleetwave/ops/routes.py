"""``/healthz`` says the process answers; ``/readyz`` says it can reach its database;
``/metrics`` is the Prometheus exposition (behind the admin token unless configured public)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from fleetwave import __version__
from fleetwave.bootstrap import Container
from fleetwave.web import container, require_admin

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process answers (its version with it); nothing else is checked."""
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    response_model=None,
    summary="Readiness",
    responses={503: {"description": "the database cannot be reached"}},
)
async def readyz(app: Container = Depends(container)) -> JSONResponse | dict[str, str]:
    """The server can reach its database (503 while it cannot)."""
    try:
        await app.db.ping()
    except Exception as exc:  # the database is down or unreachable: not ready, not a crash
        return JSONResponse(
            {"error": "database unreachable", "detail": type(exc).__name__}, status_code=503
        )
    return {"status": "ready", "database": app.db.dialect}


async def metrics(app: Container = Depends(container)) -> Response:
    """Prometheus metrics: requests, polls, reports, rollouts, health checks, the database
    pool. Behind the admin token unless ``FLEETWAVE_METRICS_PUBLIC`` is set."""
    return Response(await app.metrics.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)


# Mounted by the app as its settings say: behind the admin token (the default), public, or
# alone on its own port (``FLEETWAVE_METRICS_PORT``).
metrics_router = APIRouter(tags=["operations"], dependencies=[Depends(require_admin)])
metrics_router.add_api_route(
    "/metrics", metrics, methods=["GET"], response_class=Response, summary="Metrics"
)
public_metrics_router = APIRouter(tags=["operations"])
public_metrics_router.add_api_route(
    "/metrics", metrics, methods=["GET"], response_class=Response, summary="Metrics"
)
