"""Admin API of deployment rings (``/api/v1/rings``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from fleetwave.api_document import errors
from fleetwave.bootstrap import Container
from fleetwave.rings.schemas import RingCreate, RingRead, RingUpdate
from fleetwave.web import Caller, container, require_admin

router = APIRouter(prefix="/api/v1/rings", tags=["rings"], dependencies=[Depends(require_admin)])
App = Annotated[Container, Depends(container)]
RingPath = Annotated[str, Path(min_length=1, max_length=64, description="the ring's name")]


@router.get("", response_model=list[RingRead])
async def list_rings(app: App) -> list[dict[str, Any]]:
    """Every ring by name, each with how many devices it selects now."""
    return await app.rings.list()


@router.post("", status_code=201, response_model=RingRead, responses=errors(409))
async def create_ring(body: RingCreate, app: App, caller: Caller) -> dict[str, Any]:
    """Save a named device selector (fleet, tags, uuids: all given parts must hold) that
    policies can list as their rollouts' batches. 409 if the name is taken."""
    return await app.rings.create(body, caller.name)


@router.get("/{name}", response_model=RingRead, responses=errors(404))
async def get_ring(name: RingPath, app: App) -> dict[str, Any]:
    """One ring, its device count and the policies listing it."""
    return await app.rings.get(name)


@router.put("/{name}", response_model=RingRead, responses=errors(404))
async def replace_ring(
    name: RingPath, body: RingUpdate, app: App, caller: Caller
) -> dict[str, Any]:
    """Replace a ring's selector whole. Rollouts already planned keep their batches."""
    return await app.rings.replace(name, body, caller.name)


@router.delete(
    "/{name}", status_code=204, responses=errors(404, (409, "a policy still lists the ring"))
)
async def delete_ring(name: RingPath, app: App, caller: Caller) -> Response:
    """Remove a ring; refused with 409 naming the policies that still list it."""
    await app.rings.delete(name, caller.name)
    return Response(status_code=204)
