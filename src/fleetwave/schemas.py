"""Shared pieces of the API's request and response models."""

from __future__ import annotations

import re
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

DEVICE_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

T = TypeVar("T")


def _device_uuid(value: str) -> str:
    if not DEVICE_UUID.fullmatch(value):
        raise ValueError("must be 1-64 letters, digits, '-' or '_' (a UUID fits)")
    return value


DeviceUuid = Annotated[str, AfterValidator(_device_uuid)]
Name = Annotated[str, Field(min_length=1, max_length=255)]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    next_cursor: str | None = None
