"""Request and response models of rollouts, the manual trigger and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from fleetwave.policies.schemas import DeviceTags
from fleetwave.schemas import DeviceUuid, FleetId, Label, Prose, RequestBody, Strict


class TriggerFilters(Strict):
    fleet_id: FleetId | None = None
    device_tags: DeviceTags | None = None
    device_uuids: list[DeviceUuid] | None = None


class TriggerUpdate(Strict):
    image: Label = Field(min_length=1, max_length=512, examples=["iotistic/myapp:v2.0.1"])
    strategy: Literal["auto", "staged", "manual", "scheduled"] | None = None
    filters: TriggerFilters | None = None
    force: bool = Field(
        default=False,
        description="roll out even an older version than the one rolling out or running: "
        "the deliberate rollback (without it, that is refused with 409)",
    )


class PreviewBatch(BaseModel):
    batch: int
    ring: str | None = Field(description="the ring this batch is, when the policy has rings")
    devices: int
    offline: int = Field(description="devices of the batch offline now: they update when back")
    sample: list[str] = Field(description="the batch's first few device uuids")
    starts_at: datetime = Field(description="estimate; after approval when waits_for has it")
    ends_by: datetime = Field(description="start + update timeout + soak: the latest end")
    waits_for: list[str] = Field(description="batch_delay, approval, maintenance_window")


class PreviewAnswer(BaseModel):
    outcome: str = Field(description="would_create, or ignored / duplicate as the trigger says")
    message: str
    image: str
    rollout_id: str | None = Field(description="the unfinished rollout a duplicate joins")
    policy: dict[str, Any] | None = None
    strategy: str | None = None
    filters: dict[str, Any] | None = None
    tag_rule: dict[str, Any] | None = None
    rings: list[str] | None = None
    total_devices: int
    batches: list[PreviewBatch]
    excluded: dict[str, Any] = Field(
        description="devices covered but left out, by reason: already_on_new_version, "
        "refused_by_tag_policy, running_newer_version, in_no_ring"
    )
    current_images: list[dict[str, Any]] = []
    superseded: list[str] = []
    approvals_needed: int = 0
    maintenance_window: dict[str, Any] | None = None
    update_timeout_minutes: float | None = None
    soak_seconds: float | None = None
    batch_delay_minutes: float | None = None
    finishes_by: datetime | None = None
    health_checks: list[dict[str, Any]] = Field(
        default=[],
        description="the checks each device (and, for prometheus, each batch) would be judged by",
    )
    device_cap: dict[str, int | None] | None = Field(
        default=None,
        description="devices updating at once: the fleet-wide cap and the policy's, when set",
    )
    warnings: list[str]


class UpdateAnswer(BaseModel):
    rollout_id: str | None
    status: str | None
    affected_devices: int
    outcome: str
    message: str
    image: str | None


class BatchProgress(BaseModel):
    batch: int
    size: int
    status: str
    counts: dict[str, int]


class OldImage(BaseModel):
    tag: str | None
    devices: int


class RolloutRead(BaseModel):
    rollout_id: str
    image_name: str
    old_tag: str | None
    new_tag: str
    digest: str | None
    new_image: str | None
    registry: str | None
    policy_id: int | None
    strategy: str
    status: str
    total_devices: int
    batch_sizes: list[int] | None
    current_batch: int
    updated_devices: int
    failed_devices: int
    healthy_devices: int
    rolled_back_devices: int
    failure_rate: float
    auto_paused: bool
    scheduled_at: datetime | None
    started_at: datetime | None
    paused_at: datetime | None
    resumed_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    triggered_by: str | None
    filters_applied: dict[str, Any] | None
    error_message: str | None
    superseded_by: str | None
    failures: int = Field(
        description="devices the new image failed on, whether or not they were rolled back "
        "(failed_devices + rolled_back_devices: a rolled-back device is a failed one put back)"
    )
    outcome: str | None = Field(
        description="how a finished rollout ended, failures included; null while it runs",
        examples=["completed with 5 failures, all rolled back", "completed"],
    )
    old_images_spread: list[OldImage] = Field(
        description="the old image tags its devices came from, most devices first"
    )
    old_images_label: str | None = Field(
        description="the spread in words when the devices came from more than one old image",
        examples=["v1.1.0 (25), v1.0.0 (5)"],
    )
    progress_percentage: float = Field(description="devices finished (or skipped), in %")
    finished_devices: int = Field(description="devices that completed or failed")
    max_failure_rate: float | None = Field(description="the failure bound it runs under")
    waiting_for: str | None = Field(
        default=None,
        description="why the next step has not happened (delay, window, approval, devices "
        "still updating and how many of them are offline, who paused it and why)",
    )
    next_action_at: datetime | None = Field(
        default=None, description="when time alone lets it happen (e.g. the window opens)"
    )


class RolloutDetail(RolloutRead):
    batches: list[BatchProgress]
    settings: dict[str, Any] | None = None
    approved_batch: int = 0
    webhook_payload: dict[str, Any] | None = None


class RolloutPage(BaseModel):
    items: list[RolloutRead]
    next_cursor: int | None = Field(description="pass as ?cursor= for the next page")
    total: int = Field(description="rollouts the filters match, on every page")
    offset: int = Field(description="the rollouts skipped before this page (?offset=)")


class RolloutDeviceRead(BaseModel):
    device_uuid: str
    batch_number: int
    status: str
    old_image_tag: str | None
    new_image_tag: str | None
    current_image_tag: str | None
    old_images: dict[str, str] | None
    new_image: str | None
    health_check_passed: bool | None
    health_check_details: dict[str, Any] | list[Any] | None
    health_check_attempts: int
    scheduled_at: datetime | None
    update_started_at: datetime | None
    image_pulled_at: datetime | None
    container_restarted_at: datetime | None
    health_checked_at: datetime | None
    update_completed_at: datetime | None
    rolled_back_at: datetime | None
    error_message: str | None
    retry_count: int
    max_retries: int
    online: bool = Field(description="whether the device is online now")
    last_seen_at: datetime | None = Field(description="when the device was last heard from")
    not_applying_since: datetime | None = Field(
        default=None,
        description="when it was seen heard from but not applying its target (it stays set "
        "once the device moves on; a retry clears it)",
    )


class RolloutDevicePage(BaseModel):
    items: list[RolloutDeviceRead]
    total: int
    next_cursor: str | None


class EventRead(BaseModel):
    id: int
    rollout_id: str
    device_uuid: str | None
    event_type: str
    event_data: dict[str, Any] | None
    message: str | None
    timestamp: datetime


class EventPage(BaseModel):
    items: list[EventRead]
    next_cursor: int = Field(description="pass as ?after= to read on; unchanged when empty")
    older_cursor: int | None = Field(
        default=None,
        description="with ?before=: pass as ?before= to read the page of older events; "
        "null when there are none",
    )


class ControlRequest(Strict):
    """The actor is who the request authenticated as (a user, or ``admin-token``): a body
    cannot name it."""

    @model_validator(mode="before")
    @classmethod
    def _no_actor(cls, data: Any) -> Any:
        if isinstance(data, dict) and "by" in data:
            raise PydanticCustomError(
                "actor_given",
                "by: the actor is who the request authenticated as; a request cannot name it",
            )
        return data

    note: Prose | None = Field(default=None, max_length=2000)
    force: bool = Field(default=False, description="resume past the failure gate")


class HealthResult(RequestBody):
    check: Label = Field(min_length=1, max_length=100, description="the check's name")
    passed: bool
    detail: Prose | None = Field(default=None, max_length=2000)


class HealthReport(RequestBody):
    rollout_id: Label | None = Field(default=None, max_length=64)
    results: list[HealthResult] = Field(min_length=1, max_length=100)
