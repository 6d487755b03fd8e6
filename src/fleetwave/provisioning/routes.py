"""Admin API of fleet provisioning keys (``/api/v1/provisioning-keys``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from fleetwave.bootstrap import Container
from fleetwave.provisioning.schemas import (
    ProvisioningKeyCreate,
    ProvisioningKeyCreated,
    ProvisioningKeyRead,
)
from fleetwave.web import container, require_admin

router = APIRouter(
    prefix="/api/v1/provisioning-keys",
    tags=["provisioning"],
    dependencies=[Depends(require_admin)],
)
App = Annotated[Container, Depends(container)]


@router.post("", status_code=201, response_model=ProvisioningKeyCreated)
async def create_key(body: ProvisioningKeyCreate, app: App) -> dict[str, Any]:
    return await app.provisioning.create_key(body)


@router.get("", response_model=list[ProvisioningKeyRead])
async def list_keys(app: App, fleet_id: str | None = None) -> list[dict[str, Any]]:
    return await app.provisioning.list_keys(fleet_id)


@router.delete("/{key_id}", response_model=ProvisioningKeyRead)
async def revoke_key(key_id: int, app: App) -> dict[str, Any]:
    """Revoke the key: devices can no longer register with it; the record stays."""
    return await app.provisioning.revoke_key(key_id)
