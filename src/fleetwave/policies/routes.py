"""Admin API of image update policies (``/api/v1/image-policies``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from fleetwave.api_document import errors
from fleetwave.bootstrap import Container
from fleetwave.policies.schemas import PolicyCreate, PolicyRead, PolicyUpdate, Strategy
from fleetwave.web import Caller, RowId, container, require_admin

router = APIRouter(
    prefix="/api/v1/image-policies", tags=["policies"], dependencies=[Depends(require_admin)]
)
App = Annotated[Container, Depends(container)]


@router.get("", response_model=list[PolicyRead])
async def list_policies(
    app: App,
    enabled: bool | None = None,
    strategy: Strategy | None = None,
    fleet_id: str | None = None,
    image: str | None = None,
) -> list[dict[str, Any]]:
    """Policies by priority; ``image`` keeps those whose pattern matches that reference."""
    return await app.policies.list(
        enabled=enabled, strategy=strategy, fleet_id=fleet_id, image=image
    )


@router.post("", status_code=201, response_model=PolicyRead)
async def create_policy(body: PolicyCreate, app: App, caller: Caller) -> dict[str, Any]:
    """Add a policy: which images (a pattern) roll out to which devices, how (strategy,
    batches, health checks, failure bound) and when (maintenance window). A bad policy is
    refused with every problem listed, each with its field."""
    return await app.policies.create(body, caller.name)


@router.get("/{policy_id}", response_model=PolicyRead, responses=errors(404))
async def get_policy(policy_id: RowId, app: App) -> dict[str, Any]:
    """One policy, with every field and its defaults filled in."""
    return await app.policies.get(policy_id)


@router.put("/{policy_id}", response_model=PolicyRead, responses=errors(404))
async def replace_policy(
    policy_id: RowId, body: PolicyUpdate, app: App, caller: Caller
) -> dict[str, Any]:
    """Replace a policy whole (fields left out take their defaults). Rollouts already
    running keep the settings they started with."""
    return await app.policies.replace(policy_id, body, caller.name)


@router.delete("/{policy_id}", status_code=204, responses=errors(404))
async def delete_policy(policy_id: RowId, app: App, caller: Caller) -> Response:
    """Remove a policy; its rollouts stay in the history."""
    await app.policies.delete(policy_id, caller.name)
    return Response(status_code=204)
