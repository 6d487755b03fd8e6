"""Request and response models of polled registries (``/api/v1/registries``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError

from fleetwave.schemas import Label, Strict

MIN_INTERVAL, MAX_INTERVAL = 1, 86_400


def _registry_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials: use username and password")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError("must be the registry's root, e.g. https://registry.local:5000")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _password(value: SecretStr) -> SecretStr:
    if any(ord(c) < 32 or ord(c) == 127 for c in value.get_secret_value()):
        raise ValueError("must not contain control characters")
    return value


RegistryName = Annotated[Label, Field(min_length=1, max_length=64)]
RegistryUrl = Annotated[str, Field(max_length=512), AfterValidator(_registry_url)]
Interval = Annotated[int, Field(ge=MIN_INTERVAL, le=MAX_INTERVAL)]
Password = Annotated[SecretStr, Field(min_length=1, max_length=1024), AfterValidator(_password)]


class RegistryCreate(Strict):
    name: RegistryName = Field(examples=["factory"])
    url: RegistryUrl = Field(examples=["https://registry.local:5000"])
    poll_interval_seconds: Interval = 60
    username: Annotated[Label, Field(min_length=1, max_length=255)] | None = None
    password: Password | None = None
    insecure: bool = False  # credentials may go over plain http
    enabled: bool = True


class RegistryUpdate(Strict):
    """Fields left out keep their values; ``password: null`` removes the password."""

    url: RegistryUrl | None = None
    poll_interval_seconds: Interval | None = None
    username: Annotated[Label, Field(min_length=1, max_length=255)] | None = None
    password: Password | None = None
    insecure: bool | None = None
    enabled: bool | None = None

    @field_validator("url", "poll_interval_seconds", "insecure", "enabled", mode="before")
    @classmethod
    def _kept_or_given(cls, value: Any) -> Any:
        """Only the username and the password can be removed; these can be changed or kept."""
        if value is None:
            raise PydanticCustomError("not_null", "cannot be null: leave it out to keep its value")
        return value


class RegistryRead(BaseModel):
    id: int
    name: str
    url: str
    poll_interval_seconds: int
    username: str | None
    password_set: bool
    insecure: bool
    enabled: bool
    next_poll_at: datetime
    last_polled_at: datetime | None
    failures: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
