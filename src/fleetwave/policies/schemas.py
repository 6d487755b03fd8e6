"""Request and response models of image update policies (every column of the seed, and more)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from fleetwave.domain.batches import MAX_BATCHES
from fleetwave.domain.errors import Problem
from fleetwave.domain.tags import SemverRule
from fleetwave.policies.rules import policy_problems
from fleetwave.schemas import (
    MAX_COUNT,
    DeviceUuid,
    FleetId,
    JsonDocument,
    Label,
    Prose,
    Strict,
    TagText,
)

Strategy = Literal["auto", "staged", "manual", "scheduled"]


def tag_filters(value: Any) -> Any:
    """Device tags as ``{"k": "v"}``, or as a list of ``"k:v"`` / ``"k=v"`` strings."""
    if not isinstance(value, list):
        return value
    parsed = {}
    for item in value:
        if not isinstance(item, str):
            raise ValueError("tags in a list must be strings written key:value")
        separator = ":" if ":" in item else "="
        key, sep, tag_value = item.partition(separator)
        if not sep or not key:
            raise ValueError(f"{item!r} must be written key:value")
        parsed[key] = tag_value
    return parsed


DeviceTags = Annotated[dict[TagText, TagText], BeforeValidator(tag_filters)]
TagGlob = Annotated[Label, Field(min_length=1, max_length=128)]
Percentage = Annotated[float, Field(gt=0, le=100)]


class PolicyFields(Strict):
    image_pattern: Label = Field(min_length=1, max_length=255, examples=["iotistic/myapp:*"])
    update_strategy: Strategy = "staged"
    staged_batches: int = Field(default=3, ge=1, le=MAX_BATCHES)
    batch_percentages: list[Percentage] | None = Field(
        default=None,
        max_length=MAX_BATCHES,
        description="cumulative percentages, e.g. [5, 25, 100]",
    )
    batch_delay_minutes: int | None = Field(default=None, ge=0, le=10080)
    health_check_enabled: bool = True
    health_check_timeout_seconds: int | None = Field(default=None, gt=0, le=86400)
    auto_rollback: bool | None = None
    health_check_config: JsonDocument | None = None
    maintenance_window_start: time | None = None
    maintenance_window_end: time | None = None
    maintenance_window_timezone: Label = Field(default="UTC", max_length=64)
    fleet_id: FleetId | None = None
    device_tags: DeviceTags | None = None
    device_uuids: list[DeviceUuid] | None = None
    enabled: bool = True
    priority: int = Field(default=100, ge=-1_000_000, le=1_000_000)
    description: Prose | None = Field(default=None, max_length=2000)
    semver_policy: SemverRule | None = None
    allow_prerelease: bool = False
    include_tags: list[TagGlob] | None = None
    exclude_tags: list[TagGlob] | None = None
    max_failure_rate: float | None = Field(default=None, ge=0, le=1)
    pin_digest: bool = True
    update_timeout_minutes: int = Field(default=30, ge=1, le=10080)
    max_retries: int = Field(default=3, ge=0, le=20)
    failure_rate_min_devices: int | None = Field(
        default=None,
        ge=1,
        le=MAX_COUNT,
        description="finished devices before the failure gate judges the rate; unset: "
        "min(5, the first batch's size)",
    )
    offline_grace_minutes: int = Field(default=30, ge=0, le=43200)
    soak_seconds: int = Field(default=60, ge=0, le=86400)
    approve_each_batch: bool = False
    rings: list[Annotated[Label, Field(min_length=1, max_length=64)]] | None = Field(
        default=None,
        max_length=MAX_BATCHES,
        description="deployment rings in order (/api/v1/rings): the rollout's batches are "
        "these rings instead of percentages; a device takes the first ring selecting it",
        examples=[["canary", "early", "everyone"]],
    )
    max_concurrent_devices: int | None = Field(
        default=None,
        ge=1,
        le=MAX_COUNT,
        description="devices of one rollout in flight at once (scheduled to health checking); "
        "unset: only the fleet-wide cap FLEETWAVE_MAX_UPDATING_DEVICES, if any",
    )
    continuous: bool = Field(
        default=True,
        description="after a rollout completed, a device that appears on its old image gets "
        "the rollout's image directly",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem_at_once(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """One answer lists every problem: the fields' own (pydantic's), then the rules across
        fields (``policies.rules``), run on the fields that passed even when others did not."""
        try:
            policy = handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            refused = [_detail(e["type"], tuple(e["loc"]), e["msg"], e["input"]) for e in errors]
            bad = {str(e["loc"][0]) for e in errors if e["loc"]}
            rest = _the_valid_fields(data, bad, handler)
            problems = [] if rest is None else policy_problems(rest, bad)
        else:
            refused, problems = [], policy_problems(policy)
            if not problems:
                return policy
        broken = [_detail("policy_rule", _location(p), p.message, data) for p in problems]
        raise ValidationError.from_exception_data(cls.__name__, refused + broken)


PLACEHOLDER_PATTERN = "placeholder/for-a-refused-pattern"


def _the_valid_fields(
    data: Any, bad: set[str], handler: ValidatorFunctionWrapHandler
) -> PolicyFields | None:
    """The policy without its refused fields (their defaults instead), for the rules that do
    not read them; None if even that is not a policy."""
    if not isinstance(data, dict):
        return None
    rest = {key: value for key, value in data.items() if key not in bad}
    if "image_pattern" not in rest:  # required: a stand-in, whose rule is skipped
        bad.add("image_pattern")
        rest["image_pattern"] = PLACEHOLDER_PATTERN
    try:
        policy: PolicyFields = handler(rest)
    except ValidationError:
        return None
    return policy


def _location(problem: Problem) -> tuple[str | int, ...]:
    return tuple(int(part) if part.isdigit() else part for part in problem.field.split("."))


def _detail(
    kind: str, location: tuple[str | int, ...], message: str, given: Any
) -> InitErrorDetails:
    # the message as it was worded, whatever its kind ("{message}": braces in it stay as sent)
    error = PydanticCustomError(kind, "{message}", {"message": message})
    return InitErrorDetails(type=error, loc=location, input=given)


class PolicyCreate(PolicyFields):
    pass


class PolicyUpdate(PolicyFields):
    """PUT replaces the policy; every field not given takes its default."""


class CoverageWarning(BaseModel):
    check: str
    type: str
    devices: int = Field(description="covered devices that cannot run the check")
    total: int = Field(description="devices the policy covers")
    message: str = Field(
        examples=[
            "3 of 40 devices cannot run http checks (web): their agent does not run http checks"
        ]
    )


class CheckCoverage(BaseModel):
    devices: int = Field(
        description="devices the policy covers: their targets run an image "
        "its pattern matches, after its filters"
    )
    warnings: list[CoverageWarning]


class PolicyRead(BaseModel):
    id: int
    image_pattern: str
    update_strategy: str
    staged_batches: int
    batch_percentages: list[float] | None
    batch_delay_minutes: int
    health_check_enabled: bool
    health_check_timeout_seconds: int
    auto_rollback: bool
    health_check_config: dict[str, Any] | list[Any] | None
    maintenance_window_start: time | None
    maintenance_window_end: time | None
    maintenance_window_timezone: str
    fleet_id: str | None
    device_tags: dict[str, str] | None
    device_uuids: list[str] | None
    enabled: bool
    priority: int
    description: str | None
    semver_policy: str | None
    allow_prerelease: bool
    include_tags: list[str] | None
    exclude_tags: list[str] | None
    max_failure_rate: float
    pin_digest: bool
    update_timeout_minutes: int
    max_retries: int
    failure_rate_min_devices: int | None
    offline_grace_minutes: int
    soak_seconds: int
    approve_each_batch: bool
    rings: list[str] | None = None
    max_concurrent_devices: int | None = None
    continuous: bool = True
    effective_health_checks: list[dict[str, Any]] = Field(
        description="the checks a rollout runs: the configured ones, or the default"
    )
    health_check_coverage: CheckCoverage | None = Field(
        default=None,
        description="how many devices the policy covers now, and which checks some of them "
        "cannot run (given when one policy is read, created or updated; not in lists)",
    )
    created_at: datetime
    updated_at: datetime
