"""Shared pieces of the API's request and response models, and the input rules they carry.

Every rule about what a request may contain is written here once, as a type, and the schemas
and routes use the types: text rules (:mod:`fleetwave.domain.text_rules`), id and cursor
ranges, and the bounds that keep numbers inside what the database stores.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from fleetwave.domain.text_rules import json_problem, label_problem, prose_problem

DEVICE_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_ROW_ID = 2**31 - 1  # row ids are INTEGERs: one beyond names nothing stored
MAX_APPLICATION_ID = 2**63 - 1  # an agent's applicationId, kept as text: any BIGINT
MAX_COUNT = 1_000_000  # counts of devices or uses: far past any fleet one server holds

T = TypeVar("T")


def _device_uuid(value: str) -> str:
    if not DEVICE_UUID.fullmatch(value):
        raise ValueError("must be 1-64 letters, digits, '-' or '_' (a UUID fits)")
    return value


def _label(value: str) -> str:
    if (problem := label_problem(value)) is not None:
        raise PydanticCustomError("control_character", problem)
    return value


def _prose(value: str) -> str:
    if (problem := prose_problem(value)) is not None:
        raise PydanticCustomError("control_character", problem)
    return value


def _storable_json(value: Any) -> Any:
    if (problem := json_problem(value, "")) is not None:
        where = problem.field.lstrip(".")
        message = f"at {where}: {problem.message}" if where else problem.message
        raise PydanticCustomError("unstorable_text", message)
    return value


def _in_utc_range(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_range", "falls outside the years 1 to 9999 once converted to UTC"
        ) from None
    return value


DeviceUuid = Annotated[str, AfterValidator(_device_uuid)]
Label = Annotated[str, AfterValidator(_label)]
"""A name, id, tag or image reference: no control characters; give lengths at the field."""
Prose = Annotated[str, AfterValidator(_prose)]
"""A description or note: line breaks and tabs, but no other control character."""
Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_label)]
FleetId = Annotated[str, Field(max_length=255), AfterValidator(_label)]
TagText = Annotated[str, Field(max_length=255), AfterValidator(_label)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
"""Free-form JSON stored as it is (apps, config): no NUL or lone surrogate anywhere in it."""
JsonDocument = Annotated[dict[str, Any] | list[Any], AfterValidator(_storable_json)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
UtcDatetime = Annotated[datetime, AfterValidator(_in_utc_range)]


class RequestBody(BaseModel):
    """Every request body: after its fields, a last check that nothing unstorable (NUL, lone
    surrogate) reached the model through a field without a text rule of its own; and before
    them, that the keys it ignores (agents send more than we read) hold nothing unstorable
    either: a request carrying a NUL is refused whole, never half-read."""

    @model_validator(mode="before")
    @classmethod
    def _storable_extras(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _storable_json({k: v for k, v in data.items() if k not in cls.model_fields})
        return data

    @model_validator(mode="after")
    def _storable(self) -> Self:
        _storable_json(self.model_dump(mode="json"))
        return self


class Strict(RequestBody):
    """Request bodies: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    next_cursor: str | None = None
