"""The one settings object, built once at start-up and passed to whoever needs it.

Every value comes from the environment (prefix ``FLEETWAVE_``) or a ``.env`` file; nothing
reads the environment anywhere else. Invalid values stop start-up with the setting named.
"""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetwave.notifications import NotifyTarget

DURATION = re.compile(r"(?P<amount>-?\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d)?")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=3650)  # beyond, "now - duration" leaves the calendar

UpdateStrategy = Literal["auto", "staged", "manual", "scheduled"]


class SettingsError(ValueError):
    """Start-up configuration is invalid; the message names each bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEETWAVE_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    default_strategy: UpdateStrategy = "staged"
    staged_batches: list[float] = Field(default_factory=lambda: [0.1, 0.5, 1.0])
    batch_delay_minutes: int = Field(default=30, ge=0)
    health_check_timeout: int = Field(default=300, gt=0, description="seconds")
    max_failure_rate: float = Field(default=0.2, ge=0.0, le=1.0)
    auto_rollback: bool = True
    webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FLEETWAVE_WEBHOOK_SECRET", "DOCKER_WEBHOOK_SECRET"),
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='per-provider secrets, e.g. {"ghcr": "..."}; others use webhook_secret',
    )
    data_dir: Path = Path("var")
    database_url: str | None = None
    admin_token: SecretStr | None = None
    admin_token_disabled: bool = Field(
        default=False,
        description="retire the break-glass admin token once a real admin user exists",
    )
    device_offline_after: timedelta = timedelta(minutes=5)
    not_applying_after: timedelta = Field(
        default=timedelta(minutes=10),
        description="a device heard from but still not applying its target this long after "
        "it was told (at most half a rollout's update timeout) is flagged 'not applying its "
        "target'",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=3001, ge=1, le=65535)
    register_rate_per_minute: int = Field(default=60, ge=1)
    monitor_interval: float = Field(default=5.0, gt=0, le=3600, description="seconds")
    health_probe_concurrency: int = Field(default=100, ge=1, le=10000)
    notify_webhooks: list[NotifyTarget] = Field(
        default_factory=list,
        description='e.g. [{"url": "https://hooks.slack.com/...", "format": "slack"}]',
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_public: bool = Field(
        default=False, description="serve /metrics on the API port without the admin token"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="serve /metrics on this port, without a token, and not on the API port",
    )
    metrics_host: str | None = Field(default=None, description="default: the API's host")
    session_hours: float = Field(default=12, gt=0, le=24 * 30, description="dashboard login")
    session_cookie_secure: bool | None = Field(
        default=None, description="the cookie's Secure flag; unset: when served over https"
    )
    event_stream_heartbeat: float = Field(default=15, gt=0, le=300, description="seconds")
    long_poll_max: float = Field(
        default=60,
        ge=0,
        le=3600,
        description="seconds a device's poll with ?wait= may be held; 0: long-poll is off",
    )
    poll_cache_size: int = Field(
        default=200_000,
        ge=0,
        le=10_000_000,
        description="devices whose key and target ETag a process keeps in memory; 0: off",
    )
    last_seen_flush_seconds: float = Field(
        default=5, gt=0, le=60, description="how often last-seen refreshes are written"
    )
    database_pool_size: int = Field(
        default=20, ge=1, le=1000, description="PostgreSQL connections per process, at most"
    )
    webhook_answer_wait: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="seconds a webhook's answer waits for its rollout to be planned, else 202 "
        "(planning goes on); 0: answer at once and leave the planning to the rollout monitor",
    )

    device_auth_failures_per_address: int = Field(
        default=600,
        ge=1,
        le=1_000_000,
        description="failed device authentications from one source address per window; past "
        "it, that address gets 429 for anything but keys the poll cache confirms",
    )
    device_auth_failures_per_uuid: int = Field(
        default=30,
        ge=1,
        le=1_000_000,
        description="failed authentications naming one device per window; past it, keys known "
        "to be wrong for that device get 429 (its own key still works)",
    )
    login_failures_per_user: int = Field(
        default=5, ge=1, le=1000, description="failed dashboard logins of one username, a window"
    )
    login_failures_per_address: int = Field(
        default=20, ge=1, le=100_000, description="failed dashboard logins from one address"
    )
    login_failure_window: float = Field(
        default=900, gt=0, le=86_400, description="seconds over which failed logins are counted"
    )
    device_auth_failure_window: float = Field(
        default=60, gt=0, le=3600, description="seconds over which failures are counted"
    )
    device_log_lines: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="log lines kept per device, its newest; older ones are deleted",
    )
    device_log_max_age: timedelta = Field(
        default=timedelta(days=7),
        description="log lines received longer ago than this are deleted (e.g. 7d, 12h)",
    )
    # --- fleet-wide cap on devices updating at once (issue 16, part 3) ---
    max_updating_devices: int | None = Field(
        default=None,
        gt=0,
        description="devices scheduled, pulling, updating or health checking at once, across "
        "all rollouts; unset: no cap",
    )
    batch_chunk: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="a batch's devices get their new targets in transactions of at most this "
        "many, one after the other: the first ones are told while the rest are written",
    )
    late_joiner_interval: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="seconds between the monitor's looks for late joiners (at most one a tick)",
    )

    @field_validator("staged_batches")
    @classmethod
    def _batches_grow_to_whole_fleet(cls, batches: list[float]) -> list[float]:
        if not batches:
            raise ValueError("needs at least one batch fraction")
        if any(not 0 < b <= 1 for b in batches):
            raise ValueError("each batch fraction must be in (0, 1]")
        if any(b <= a for a, b in pairwise(batches)):
            raise ValueError("batch fractions must be strictly increasing")
        if batches[-1] != 1.0:
            raise ValueError("the last batch fraction must be 1.0 (the whole fleet)")
        return batches

    @field_validator(
        "device_offline_after", "not_applying_after", "device_log_max_age", mode="before"
    )
    @classmethod
    def _duration_in_plain_words(cls, value: object) -> object:
        """Accept ``300`` (seconds), ``90s``, ``5m``, ``1h``, ``7d`` besides ISO 8601
        (``PT5M``)."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return timedelta(seconds=value)
            except OverflowError:
                raise ValueError("is too long a duration") from None
        if isinstance(value, str):
            match = DURATION.fullmatch(value.strip())
            if match:
                unit = UNIT_SECONDS[match["unit"] or "s"]
                try:
                    return timedelta(seconds=float(match["amount"]) * unit)
                except OverflowError:
                    raise ValueError("is too long a duration") from None
        return value

    @field_validator("device_offline_after", "not_applying_after", "device_log_max_age")
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        if value > MAX_DURATION:
            raise ValueError(f"must be at most {MAX_DURATION.days} days")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fleetwave.db').resolve()}"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def webhook_secret_path(self) -> Path:
        return self.data_dir / "webhook-secret"

    @property
    def registry_key_path(self) -> Path:
        """The key that seals polled registries' passwords (issue 17), made once."""
        return self.data_dir / "registry-key"

    @field_validator("webhook_secrets")
    @classmethod
    def _known_providers(cls, secrets: dict[str, SecretStr]) -> dict[str, SecretStr]:
        known = ("dockerhub", "ghcr", "distribution", "harbor", "quay", "acr")
        unknown = sorted(set(secrets) - set(known))
        if unknown:
            raise ValueError(f"unknown provider {unknown[0]!r}; expected one of {', '.join(known)}")
        return secrets


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"FLEETWAVE_{name.upper()}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
