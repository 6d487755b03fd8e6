"""What the dashboard shows, computed from the services' answers: progress bars, the controls
a rollout allows (from the domain's table), labels. Pure functions, no HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fleetwave.domain.controls import (
    FAILED_DEVICE_STATUSES,
    ControlOption,
    RolloutPosition,
    control_options,
)
from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.vocabulary import UNFINISHED_DEVICE_STATUSES

# Each bar segment: its name (also its CSS class), its label, the device statuses it counts.
SEGMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("completed", "completed", ("completed",)),
    ("failed", "failed", ("failed", "rollback_failed")),
    ("rolled-back", "rolled back", ("rolled_back",)),
    ("updating", "updating", ("scheduled", "pulling", "updating", "health_checking")),
    ("skipped", "skipped", ("skipped",)),
    ("pending", "pending", ("pending",)),
)

CONTROL_LABELS = {
    "approve": "Approve",
    "reject": "Reject",
    "pause": "Pause",
    "resume": "Resume",
    "promote": "Promote next batch",
    "cancel": "Cancel",
    "retry-failed": "Retry failed",
    "rollback-all": "Roll back all",
}
CONTROL_QUESTIONS = {
    "approve": "Approve this rollout and start its first batch?",
    "reject": "Reject this rollout? No device will be changed.",
    "pause": "Pause this rollout? Devices already updating will finish.",
    "resume": "Resume this rollout?",
    "promote": "Start the next batch now, skipping the delay?",
    "cancel": "Cancel this rollout? Devices not yet updated go back to their old images.",
    "retry-failed": "Send the new image again to the failed devices?",
    "rollback-all": "Roll every device of this rollout back to its old images?",
}


@dataclass(frozen=True)
class Segment:
    name: str
    label: str
    count: int
    start: float  # percent of the bar
    width: float  # percent of the bar


@dataclass(frozen=True)
class BatchBar:
    batch: int
    size: int
    status: str
    segments: list[Segment]

    @property
    def summary(self) -> str:
        parts = [f"{s.count} {s.label}" for s in self.segments if s.count]
        return f"batch {self.batch}: " + (", ".join(parts) or "no devices")


def batch_bar(batch: dict[str, Any]) -> BatchBar:
    """A batch's progress (as the rollout service gives it) as bar segments."""
    size, counts = batch["size"], batch["counts"]
    segments, start = [], 0.0
    for name, label, statuses in SEGMENTS:
        count = sum(counts.get(status, 0) for status in statuses)
        if name == "pending":  # whatever the counts do not cover is still to come
            count += max(0, size - sum(counts.values()))
        width = 100.0 * count / size if size else 0.0
        segments.append(Segment(name, label, count, round(start, 3), round(width, 3)))
        start += width
    return BatchBar(batch["batch"], size, batch["status"], segments)


def rollout_position(
    rollout: dict[str, Any], retryable_devices: int | None = None
) -> RolloutPosition:
    """What the control rules need, from a rollout with its batches (and, when known, how
    many of its failed devices have retries left)."""
    batches = rollout.get("batches") or []
    current = rollout["current_batch"]
    in_current: dict[str, int] = next((b["counts"] for b in batches if b["batch"] == current), {})
    return RolloutPosition(
        status=rollout["status"],
        current_batch=current,
        total_batches=len(rollout.get("batch_sizes") or []),
        unfinished_in_current_batch=sum(in_current.get(s, 0) for s in UNFINISHED_DEVICE_STATUSES),
        failed_devices=sum(b["counts"].get(s, 0) for b in batches for s in FAILED_DEVICE_STATUSES),
        retryable_devices=retryable_devices,
    )


@dataclass(frozen=True)
class ControlButton:
    control: str
    label: str
    question: str
    allowed: bool
    reason: str | None


def control_buttons(
    rollout: dict[str, Any], retryable_devices: int | None = None
) -> list[ControlButton]:
    position = rollout_position(rollout, retryable_devices)
    return [_button(option) for option in control_options(position)]


def _button(option: ControlOption) -> ControlButton:
    return ControlButton(
        option.control,
        CONTROL_LABELS[option.control],
        CONTROL_QUESTIONS[option.control],
        option.allowed,
        option.reason,
    )


def plan_rows(rollout: dict[str, Any]) -> list[tuple[str, str]]:
    """The rollout's plan in words: batches, delays, window, approvals, bounds."""
    settings = rollout.get("settings") or {}
    sizes = rollout.get("batch_sizes") or []
    rows = [
        ("Strategy", rollout["strategy"]),
        ("Batches", " → ".join(str(size) for size in sizes) + f" devices ({len(sizes)} batches)"),
    ]
    if settings:
        window = "any time"
        if settings.get("maintenance_window_start") and settings.get("maintenance_window_end"):
            window = (
                f"{settings['maintenance_window_start']}–{settings['maintenance_window_end']} "
                f"{settings.get('maintenance_window_timezone') or 'UTC'}"
            )
        approval = "manual approval" if rollout["strategy"] == "manual" else "none"
        if settings.get("approve_each_batch"):
            approval = "every batch needs a promote"
        rows += [
            ("Delay between batches", _minutes(settings["batch_delay_minutes"])),
            ("Maintenance window", window),
            ("Approvals", approval),
            ("Failure bound", f"{float(settings['max_failure_rate']):.0%}"),
            ("Health checks", "on" if settings.get("health_check_enabled") else "off"),
            ("Auto rollback", "on" if settings.get("auto_rollback") else "off"),
            ("Update timeout", _minutes(settings["update_timeout_minutes"])),
        ]
    return rows


def _minutes(value: float) -> str:
    if value == 0:
        return "none"
    if value < 1:
        return f"{round(value * 60)} s"
    return f"{value:g} min"


def short_tag(image: str | None) -> str:
    """The tag of an image reference (without a digest), or the reference itself."""
    if not image:
        return "—"
    name = image.split("@", 1)[0]
    _, _, tag = name.rpartition(":")
    return tag if tag and "/" not in tag else name


# Terminal escape sequences (colours, cursor moves) and other control characters in a device's
# output: noise on a page. Tabs and line breaks stay.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def readable(text: str) -> str:
    """A log line as a page shows it: without terminal escapes or control characters."""
    return _ESCAPES.sub("", text)


def tag_filters(text: str) -> dict[str, str]:
    """``key:value`` pairs, comma-separated, as the devices page's tag filter takes them."""
    wanted: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = pair.partition(":")
        if not sep or not key.strip():
            raise InvalidInput.one("tag", f"{pair!r} must be written key:value")
        wanted[key.strip()] = value.strip()
    return wanted


def page_query(**params: Any) -> str:
    """A page's query string from its filters, leaving out the empty ones: ``?a=1&b=x``."""
    kept = {name: value for name, value in params.items() if value not in (None, "", [])}
    return "?" + urlencode(kept) if kept else ""


def batch_filter(text: str, batches: int) -> int | None:
    """The batch a filter form asks for: none when left at "all" (empty)."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= batches:
        raise InvalidInput.one("batch", f"{text!r} is not a batch number from 1 to {batches}")
    return int(text)
