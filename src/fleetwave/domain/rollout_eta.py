"""When each batch of a planned rollout would start and end: an estimate for the preview.

Pure, following the engine's rules (:mod:`fleetwave.domain.engine`): a manual rollout waits
for approval (each batch with ``approve_each_batch``), a scheduled one for its maintenance
window; a batch after the first starts the batch delay after the previous one finished. A
batch is taken to finish at the latest moment it may: its devices' update timeout plus the
soak. Waiting for an approval is counted as zero: the times then read "after approval".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.windows import next_opening


@dataclass(frozen=True)
class BatchEta:
    batch: int
    starts_at: datetime
    ends_by: datetime
    waits_for: tuple[str, ...]  # approval, maintenance_window, batch_delay

    def as_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "starts_at": self.starts_at.isoformat(),
            "ends_by": self.ends_by.isoformat(),
            "waits_for": list(self.waits_for),
        }


def batch_etas(
    batches: int, strategy: str, settings: RolloutSettings, now: datetime
) -> list[BatchEta]:
    etas: list[BatchEta] = []
    ready = now
    for batch in range(1, batches + 1):
        waits: list[str] = []
        if batch > 1 and settings.batch_delay:
            waits.append("batch_delay")
            ready += settings.batch_delay
        if strategy == "manual" and (batch == 1 or settings.approve_each_batch):
            waits.append("approval")
        start = ready
        if strategy == "scheduled" and settings.has_window:
            assert settings.window_start is not None and settings.window_end is not None
            start = next_opening(
                ready, settings.window_start, settings.window_end, settings.window_timezone
            )
            if start > ready:
                waits.append("maintenance_window")
        soak = settings.soak if settings.health_check_enabled else timedelta(0)
        end = start + settings.update_timeout + soak
        etas.append(BatchEta(batch, start, end, tuple(waits)))
        ready = end
    return etas


def next_window(settings: RolloutSettings, now: datetime) -> dict[str, Any] | None:
    """The policy's maintenance window and its next opening, with its time zone."""
    if not settings.has_window:
        return None
    assert settings.window_start is not None and settings.window_end is not None
    opens = next_opening(now, settings.window_start, settings.window_end, settings.window_timezone)
    return {
        "start": settings.window_start.isoformat(),
        "end": settings.window_end.isoformat(),
        "timezone": settings.window_timezone,
        "next_opening": opens.isoformat(),
        "open_now": opens == now,
    }
