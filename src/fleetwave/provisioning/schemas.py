"""Request and response models of provisioning."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fleetwave.schemas import (
    MAX_APPLICATION_ID,
    MAX_COUNT,
    DeviceUuid,
    FleetId,
    Label,
    Prose,
    RequestBody,
    Strict,
    UtcDatetime,
)


class ProvisioningKeyCreate(Strict):
    fleet_id: FleetId = Field(min_length=1)
    description: Prose | None = Field(default=None, max_length=1000)
    expires_at: UtcDatetime | None = Field(default=None, description="UTC; omit for no expiry")
    max_uses: int | None = Field(default=None, gt=0, le=MAX_COUNT)


class ProvisioningKeyRead(BaseModel):
    id: int
    key_prefix: str
    fleet_id: str
    description: str | None
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked_at: datetime | None
    created_at: datetime


class ProvisioningKeyCreated(ProvisioningKeyRead):
    key: str = Field(description="shown once; only its hash is stored")


class DeviceRegistration(RequestBody):
    """The iotistic agent's registration body (camelCase, as it sends it)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    uuid: DeviceUuid
    deviceName: Label | None = Field(default=None, max_length=255)
    deviceType: Label | None = Field(default=None, max_length=100)
    deviceApiKey: Label | None = Field(default=None, max_length=512)
    applicationId: (
        Annotated[int, Field(ge=0, le=MAX_APPLICATION_ID)]
        | Annotated[Label, Field(max_length=255)]
        | None
    ) = None
    macAddress: Label | None = Field(default=None, max_length=64)
    osVersion: Label | None = Field(default=None, max_length=100)
    supervisorVersion: Label | None = Field(default=None, max_length=100)


class KeyExchange(RequestBody):
    model_config = ConfigDict(extra="ignore")

    uuid: DeviceUuid
    deviceApiKey: Label = Field(max_length=512)
