"""Webhooks in: the plan's ``/api/v1/webhooks/docker-registry`` and one endpoint per provider.

Docker Hub and Quay cannot sign: their secret rides in the URL (``…/dockerhub/<secret>`` or
``?secret=``). GHCR signs the body; Distribution, Harbor and ACR send a configured header.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from fleetwave.bootstrap import Container
from fleetwave.web import container, raw_body

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
App = Annotated[Container, Depends(container)]


@router.post("/{endpoint}")
async def receive(
    endpoint: str, request: Request, app: App, secret: str | None = None
) -> dict[str, Any]:
    """``endpoint``: docker-registry (any provider, by shape), or one provider's name."""
    return await app.webhooks.receive(endpoint, await raw_body(request), request.headers, secret)


@router.post("/{endpoint}/{secret}")
async def receive_with_secret(
    endpoint: str, secret: str, request: Request, app: App
) -> dict[str, Any]:
    return await app.webhooks.receive(endpoint, await raw_body(request), request.headers, secret)
