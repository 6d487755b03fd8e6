"""Admin API of polled registries (``/api/v1/registries``): admins only, since a registry
carries credentials; passwords go in and never come out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from fleetwave.api_document import errors
from fleetwave.bootstrap import Container
from fleetwave.registries.registry_schemas import RegistryCreate, RegistryRead, RegistryUpdate
from fleetwave.web import Caller, RowId, container, require_admin

router = APIRouter(
    prefix="/api/v1/registries", tags=["registries"], dependencies=[Depends(require_admin)]
)
App = Annotated[Container, Depends(container)]


@router.get("", response_model=list[RegistryRead])
async def list_registries(app: App) -> list[dict[str, Any]]:
    """Registries fleetwave polls, by name, with how their last poll went."""
    return await app.registries.list()


@router.post("", status_code=201, response_model=RegistryRead, responses=errors(409))
async def create_registry(body: RegistryCreate, app: App, caller: Caller) -> dict[str, Any]:
    """Poll a registry that cannot send webhooks: every enabled policy whose image pattern
    names its host has that repository's tags listed every ``poll_interval_seconds``."""
    return await app.registries.create(body, caller.name)


@router.get("/{registry_id}", response_model=RegistryRead, responses=errors(404))
async def get_registry(registry_id: RowId, app: App) -> dict[str, Any]:
    """One registry (whether a password is set, never the password)."""
    return await app.registries.get(registry_id)


@router.patch("/{registry_id}", response_model=RegistryRead, responses=errors(404))
async def update_registry(
    registry_id: RowId, body: RegistryUpdate, app: App, caller: Caller
) -> dict[str, Any]:
    """Change some of a registry's fields; ``"password": null`` removes its password."""
    return await app.registries.update(registry_id, body, caller.name)


@router.delete("/{registry_id}", status_code=204, responses=errors(404))
async def delete_registry(registry_id: RowId, app: App, caller: Caller) -> Response:
    """Stop polling a registry (what its polls started stays)."""
    await app.registries.delete(registry_id, caller.name)
    return Response(status_code=204)
