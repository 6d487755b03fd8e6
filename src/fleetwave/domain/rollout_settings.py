"""How one rollout is run, fixed when it is planned (a later policy edit does not move it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any


@dataclass(frozen=True)
class RolloutSettings:
    batch_delay: timedelta = timedelta(minutes=30)
    max_failure_rate: float = 0.2
    min_finished: int = 1
    update_timeout: timedelta = timedelta(minutes=30)
    max_retries: int = 3
    offline_grace: timedelta = timedelta(minutes=30)
    soak: timedelta = timedelta(seconds=60)
    health_check_enabled: bool = True
    health_check_timeout: timedelta = timedelta(seconds=300)
    auto_rollback: bool = True
    approve_each_batch: bool = False
    window_start: time | None = None
    window_end: time | None = None
    window_timezone: str = "UTC"
    health_checks: tuple[dict[str, Any], ...] = ()
    max_concurrent_devices: int | None = None  # the policy's own cap on devices in flight
    continuous: bool = True  # after completing, devices appearing on the old image join it

    def as_json(self) -> dict[str, Any]:
        return {
            "batch_delay_minutes": self.batch_delay.total_seconds() / 60,
            "max_failure_rate": self.max_failure_rate,
            "failure_rate_min_devices": self.min_finished,
            "update_timeout_minutes": self.update_timeout.total_seconds() / 60,
            "max_retries": self.max_retries,
            "offline_grace_minutes": self.offline_grace.total_seconds() / 60,
            "soak_seconds": self.soak.total_seconds(),
            "health_check_enabled": self.health_check_enabled,
            "health_check_timeout_seconds": self.health_check_timeout.total_seconds(),
            "auto_rollback": self.auto_rollback,
            "approve_each_batch": self.approve_each_batch,
            "maintenance_window_start": _clock(self.window_start),
            "maintenance_window_end": _clock(self.window_end),
            "maintenance_window_timezone": self.window_timezone,
            "health_checks": list(self.health_checks),
            "max_concurrent_devices": self.max_concurrent_devices,
            "continuous": self.continuous,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RolloutSettings:
        return cls(
            batch_delay=timedelta(minutes=data["batch_delay_minutes"]),
            max_failure_rate=float(data["max_failure_rate"]),
            min_finished=int(data["failure_rate_min_devices"]),
            update_timeout=timedelta(minutes=data["update_timeout_minutes"]),
            max_retries=int(data["max_retries"]),
            offline_grace=timedelta(minutes=data["offline_grace_minutes"]),
            soak=timedelta(seconds=data["soak_seconds"]),
            health_check_enabled=bool(data["health_check_enabled"]),
            health_check_timeout=timedelta(seconds=data["health_check_timeout_seconds"]),
            auto_rollback=bool(data["auto_rollback"]),
            approve_each_batch=bool(data["approve_each_batch"]),
            window_start=_time(data.get("maintenance_window_start")),
            window_end=_time(data.get("maintenance_window_end")),
            window_timezone=data.get("maintenance_window_timezone") or "UTC",
            health_checks=tuple(data.get("health_checks") or ()),
            max_concurrent_devices=data.get("max_concurrent_devices"),
            continuous=bool(data.get("continuous", True)),
        )

    @property
    def has_window(self) -> bool:
        return self.window_start is not None and self.window_end is not None


def _clock(value: time | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None
