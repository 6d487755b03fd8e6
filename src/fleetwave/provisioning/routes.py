"""Provisioning over HTTP: the admin's fleet keys (``/api/v1/provisioning-keys``) and the
device's self-registration (``/api/v1/device/register`` and ``/key-exchange``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from fleetwave.api_document import DEVICE_BEARER, PROVISIONING_KEY, errors, requires
from fleetwave.bootstrap import Container
from fleetwave.errors import InvalidInput, TooManyRequests
from fleetwave.provisioning.schemas import (
    DeviceRegistration,
    KeyExchange,
    ProvisioningKeyCreate,
    ProvisioningKeyCreated,
    ProvisioningKeyRead,
)
from fleetwave.web import Caller, RowId, bearer, client_address, container, require_admin

router = APIRouter(
    prefix="/api/v1/provisioning-keys",
    tags=["provisioning"],
    dependencies=[Depends(require_admin)],
)
device_router = APIRouter(prefix="/api/v1/device", tags=["device protocol"])
App = Annotated[Container, Depends(container)]


@router.post("", status_code=201, response_model=ProvisioningKeyCreated)
async def create_key(body: ProvisioningKeyCreate, app: App, caller: Caller) -> dict[str, Any]:
    """A key devices of a fleet register themselves with, optionally expiring or limited to a
    number of uses. The key itself is in this answer only: it is stored hashed."""
    return await app.provisioning.create_key(body, caller.name)


@router.get("", response_model=list[ProvisioningKeyRead])
async def list_keys(app: App, fleet_id: str | None = None) -> list[dict[str, Any]]:
    """Provisioning keys (never the keys themselves): fleet, uses, expiry, revocation."""
    return await app.provisioning.list_keys(fleet_id)


@router.delete("/{key_id}", response_model=ProvisioningKeyRead, responses=errors(404))
async def revoke_key(key_id: RowId, app: App, caller: Caller) -> dict[str, Any]:
    """Revoke the key: devices can no longer register with it; the record stays."""
    return await app.provisioning.revoke_key(key_id, caller.name)


def _rate_limit(request: Request, app: Container) -> None:
    wait = app.registration_limiter.retry_after(client_address(request))
    if wait is not None:
        raise TooManyRequests("too many registration attempts; retry later", wait)


@device_router.post(
    "/register",
    status_code=201,
    summary="Register a device",
    openapi_extra=requires(PROVISIONING_KEY),
    responses=errors(
        (403, "the provisioning key was revoked, has expired or has no uses left"),
        (409, "the device is already registered with another key"),
        429,
    ),
)
async def register(body: DeviceRegistration, request: Request, app: App) -> dict[str, Any]:
    """A device registers itself with a fleet provisioning key (as the iotistic agent does)."""
    _rate_limit(request, app)
    return await app.provisioning.register_device(bearer(request), body)


@device_router.post(
    "/{uuid}/key-exchange",
    summary="Confirm the device key",
    openapi_extra=requires(DEVICE_BEARER),
    responses=errors(429),
)
async def key_exchange(uuid: str, body: KeyExchange, request: Request, app: App) -> dict[str, Any]:
    """The device proves the key it registered with works: the key as bearer token and in
    the body (``deviceApiKey``), for the device the path names."""
    _rate_limit(request, app)
    if body.uuid != uuid:
        raise InvalidInput.one("uuid", f"is {body.uuid} but the path names {uuid}")
    return await app.provisioning.key_exchange(bearer(request), body)
