"""Request and response models of deployment rings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from fleetwave.policies.schemas import DeviceTags
from fleetwave.schemas import DeviceUuid, FleetId, Label, Prose, Strict

RingName = Annotated[
    Label,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]


class RingFields(Strict):
    fleet_id: FleetId | None = None
    device_tags: DeviceTags | None = Field(default=None, examples=[{"ring": "canary"}])
    device_uuids: list[DeviceUuid] | None = Field(default=None, max_length=10_000)
    description: Prose | None = Field(default=None, max_length=2000)


class RingCreate(RingFields):
    name: RingName = Field(examples=["canary"])


class RingUpdate(RingFields):
    """PUT replaces the ring's selector whole; its name stays."""


class RingRead(BaseModel):
    id: int
    name: str
    fleet_id: str | None
    device_tags: dict[str, str] | None
    device_uuids: list[str] | None
    description: str | None
    devices: int = Field(description="devices the ring's selector matches now")
    used_by_policies: list[int] = Field(description="ids of the policies that list the ring")
    created_at: datetime
    updated_at: datetime
