"""Request and response models of the device registry and the device protocol."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Any, Literal

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
    application_id: str | None = Field(
        default=None, description="the iotistic agent's applicationId, given when it registered"
    )
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


class DeviceRolloutRead(BaseModel):
    """One rollout the device was part of, and the device's part in it."""

    rollout_id: str
    rollout_status: str = Field(description="the rollout's status")
    image_name: str
    strategy: str
    triggered_by: str | None
    rollout_created_at: datetime
    rollout_completed_at: datetime | None
    batch_number: int = Field(description="the batch the device was in")
    status: str = Field(description="the device's status in the rollout")
    old_image_tag: str | None
    new_image_tag: str | None
    current_image_tag: str | None = Field(description="the tag it last reported running")
    old_images: dict[str, str] | None = Field(
        description="each changed service's image before the rollout (what a rollback restores)"
    )
    new_image: str | None
    health_check_passed: bool | None
    health_check_details: dict[str, Any] | list[Any] | None
    health_check_attempts: int
    scheduled_at: datetime | None = Field(description="when its batch gave it the new target")
    update_started_at: datetime | None = Field(description="when its update timer started")
    update_completed_at: datetime | None = Field(description="when it was judged healthy")
    rolled_back_at: datetime | None = Field(description="when it ran its old images again")
    rollback_requested_at: datetime | None = Field(description="when it was sent back")
    error_message: str | None
    failure_reason: str | None
    retry_count: int
    max_retries: int


class DeviceRolloutPage(BaseModel):
    items: list[DeviceRolloutRead] = Field(description="newest rollout first")
    total: int = Field(description="rollouts the device was part of")
    limit: int
    next_cursor: int | None = Field(description="pass as ?cursor= for the older rollouts")


LogLevel = Literal["debug", "info", "warn", "error"]


class LogsReceived(BaseModel):
    status: Literal["ok"] = "ok"
    received: int = Field(description="lines in the request")
    stored: int = Field(
        description="lines written: all but those the device's retention would drop at once"
    )


class LogLineRead(BaseModel):
    id: int = Field(description="grows with arrival; a page's next_cursor is its last line's")
    logged_at: datetime = Field(description="the device's time (when it did not say: received_at)")
    received_at: datetime
    level: LogLevel
    source: str = Field(description="container, system, manager, agent, …")
    service: str | None
    stream: Literal["stdout", "stderr"] | None
    message: str


class LogPage(BaseModel):
    items: list[LogLineRead] = Field(description="oldest first")
    next_cursor: int = Field(description="pass it as after= to read the lines that come next")


LOG_LINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "one line, as the iotistic agent's cloud log backend sends it",
    "required": ["message"],
    "properties": {
        "message": {"type": "string", "maxLength": 16384},
        "timestamp": {
            "type": "number",
            "minimum": 0,
            "maximum": 253402300799999,
            "description": "milliseconds since 1970-01-01 UTC, the device's clock",
        },
        "level": {
            "type": "string",
            "enum": ["debug", "info", "warn", "error"],
            "description": "default info; any case, and warning, fatal, critical, trace",
        },
        "source": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "maxLength": 32, "description": "container, system…"},
                "name": {"type": "string", "maxLength": 255},
            },
        },
        "serviceName": {"type": "string", "maxLength": 255},
        "serviceId": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        "isStdErr": {"type": "boolean"},
    },
}
LOG_BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "log lines: NDJSON (one object per line, as the iotistic agent sends) or "
        "a JSON array; gzip allowed (Content-Encoding: gzip); at most 10,000 lines and 1 MiB "
        "(unpacked) per request",
        "content": {
            "application/json": {
                "schema": {"type": "array", "maxItems": 10000, "items": LOG_LINE_SCHEMA}
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}
