"""Webhooks in: the plan's ``/api/v1/webhooks/docker-registry`` and one endpoint per provider.

Docker Hub and Quay cannot sign: their secret rides in the URL (``…/dockerhub/<secret>`` or
``?secret=``). GHCR signs the body; Distribution, Harbor and ACR send a configured header.
A push recorded but not planned within ``FLEETWAVE_WEBHOOK_ANSWER_WAIT`` is answered 202.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from fleetwave.api_document import WEBHOOK_VERIFICATION, errors, requires
from fleetwave.bootstrap import Container
from fleetwave.web import container, raw_body, require_admin

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
App = Annotated[Container, Depends(container)]
WEBHOOK_REFUSALS = errors(
    (401, "the delivery does not prove the webhook secret the provider's way"),
    (404, "no such provider endpoint"),
    400,
    413,
)
Outcome = Literal["rollout_created", "duplicate", "ignored", "rejected", "pending"]


class DeliveryRead(BaseModel):
    id: int
    provider: str
    image_name: str
    tag: str | None
    digest: str | None
    delivery_id: str | None
    outcome: str = Field(description="pending: recorded, its rollout not planned yet")
    reason: str | None
    rollout_id: str | None
    deliveries: int = Field(description="how many times this push was announced")
    received_at: datetime
    last_received_at: datetime
    planned_at: datetime | None


@router.get(
    "/deliveries",
    response_model=list[DeliveryRead],
    dependencies=[Depends(require_admin)],
    summary="Webhook deliveries",
)
async def deliveries(
    app: App,
    provider: str | None = None,
    outcome: Outcome | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Pushes received (admin): what each made, or why it made nothing."""
    return await app.webhooks.deliveries(provider=provider, outcome=outcome, limit=limit)


@router.post(
    "/{endpoint}",
    summary="Receive a registry webhook",
    openapi_extra=requires(WEBHOOK_VERIFICATION),
    responses={202: {"description": "recorded, being planned"}, **WEBHOOK_REFUSALS},
)
async def receive(
    endpoint: str, request: Request, response: Response, app: App, secret: str | None = None
) -> dict[str, Any]:
    """A registry announces a push. ``endpoint``: docker-registry (any provider, by shape),
    or one provider's name (dockerhub, quay, ghcr, distribution, harbor, acr). Each provider
    proves it is the registry its own way: GHCR signs the body (X-Hub-Signature-256);
    Distribution, Harbor and ACR send the secret in a header (X-Fleetwave-Webhook-Secret or
    Authorization); Docker Hub and Quay cannot, so the secret is in the URL (``?secret=`` or
    the path). The answer says what the push made: a rollout, a duplicate, or why nothing."""
    answer = await app.webhooks.receive(endpoint, await raw_body(request), request.headers, secret)
    return _status(answer, response)


@router.post(
    "/{endpoint}/{secret}",
    summary="Receive a registry webhook (secret in the path)",
    responses={202: {"description": "recorded, being planned"}, **WEBHOOK_REFUSALS},
)
async def receive_with_secret(
    endpoint: str, secret: str, request: Request, response: Response, app: App
) -> dict[str, Any]:
    """For Docker Hub and Quay, which cannot sign nor send headers: the webhook secret is the
    last part of the URL they are given. Otherwise as ``POST /api/v1/webhooks/{endpoint}``."""
    answer = await app.webhooks.receive(endpoint, await raw_body(request), request.headers, secret)
    return _status(answer, response)


def _status(answer: dict[str, Any], response: Response) -> dict[str, Any]:
    """202 while a push is recorded and not yet planned, else 200."""
    response.status_code = 202 if answer["outcome"] == "pending" else 200
    return answer
