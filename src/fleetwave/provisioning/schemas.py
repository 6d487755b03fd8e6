"""Request and response models of provisioning."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fleetwave.schemas import DeviceUuid, Strict


class ProvisioningKeyCreate(Strict):
    fleet_id: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=1000)
    expires_at: datetime | None = Field(default=None, description="UTC; omit for no expiry")
    max_uses: int | None = Field(default=None, gt=0)


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


class DeviceRegistration(BaseModel):
    """The iotistic agent's registration body (camelCase, as it sends it)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    uuid: DeviceUuid
    deviceName: str | None = Field(default=None, max_length=255)
    deviceType: str | None = Field(default=None, max_length=100)
    deviceApiKey: str | None = Field(default=None, max_length=512)
    applicationId: int | str | None = None
    macAddress: str | None = Field(default=None, max_length=64)
    osVersion: str | None = Field(default=None, max_length=100)
    supervisorVersion: str | None = Field(default=None, max_length=100)


class KeyExchange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uuid: DeviceUuid
    deviceApiKey: str = Field(max_length=512)
