"""Request and response models of the device registry and the device protocol."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from fleetwave.schemas import DeviceUuid, FleetId, JsonObject, Label, Name, Strict, TagText


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


def _tags(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not key or len(key) > 100 or ":" in key:
            raise ValueError(f"tag key {key!r} must be 1-100 characters without ':'")
    return value


IpAddress = Annotated[str, AfterValidator(_ip)]
Tags = Annotated[dict[Label, TagText], AfterValidator(_tags)]


class DeviceCreate(Strict):
    uuid: DeviceUuid | None = None
    device_name: Name
    device_type: Label | None = Field(default=None, max_length=100)
    fleet_id: FleetId | None = None
    tags: Tags = Field(default_factory=dict)
    ip_address: IpAddress | None = None
    apps: JsonObject = Field(default_factory=dict, description="initial target apps")
    config: JsonObject = Field(default_factory=dict, description="initial target config")


class DeviceUpdate(Strict):
    device_name: Name | None = None
    device_type: Label | None = Field(default=None, max_length=100)
    fleet_id: FleetId | None = None
    tags: Tags | None = None
    ip_address: IpAddress | None = None


class NotApplyingTarget(BaseModel):
    rollout_id: str
    image: str | None = Field(description="the image the rollout asked it to run")
    since: datetime = Field(description="when it was first seen not applying it")


class DeviceRead(BaseModel):
    uuid: str
    device_name: str
    device_type: str | None
    fleet_id: str | None
    tags: dict[str, str]
    is_online: bool
    last_connectivity_event: datetime | None
    ip_address: str | None
    mac_address: str | None
    os_version: str | None
    supervisor_version: str | None
    capabilities: list[str] = Field(
        default_factory=list,
        description="what its agent declared in its last report: the kinds of health check it "
        "runs (checks.http, checks.tcp, checks.custom), progress (it reports pulling and "
        "updating), logs; none: an iotistic-style agent, whose http and tcp checks fleetwave "
        "probes itself where run_on allows",
    )
    not_applying_target: NotApplyingTarget | None = Field(
        default=None,
        description="set while it keeps polling or reporting but does not apply the target "
        "a rollout gave it (its agent may be stalled)",
    )
    created_at: datetime
    updated_at: datetime


class DeviceCreated(DeviceRead):
    api_key: str = Field(description="shown once; only its hash is stored")


class DeviceKey(BaseModel):
    uuid: str
    api_key: str = Field(description="shown once; only its hash is stored")


class TargetStateWrite(Strict):
    apps: JsonObject
    config: JsonObject = Field(default_factory=dict)


class TargetStateRead(BaseModel):
    uuid: str
    apps: dict[str, Any]
    config: dict[str, Any]
    extensions: dict[str, Any] = Field(
        default_factory=dict, description='served as "fleetwave": health checks of a rollout'
    )
    version: int
    etag: str
    updated_at: datetime


class CurrentStateRead(BaseModel):
    uuid: str
    apps: dict[str, Any]
    config: dict[str, Any]
    system_info: dict[str, Any]
    reported_at: datetime
