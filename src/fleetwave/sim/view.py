"""What ``fleetwave demo`` shows, computed from the admin API's JSON alone.

Pure functions, no I/O: the rollout detail (``GET /api/v1/rollouts/{id}``) and its events
(``…/events``) in, lines of text or rich renderables out. The demo's two displays — a live
redrawn panel on a terminal, plain lines in a log — are built from the same pieces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.text import Text

from fleetwave.domain.rollout_figures import percent_label

# a device's rollout status → the part of the bar it counts in
BUCKET_OF_STATUS = {
    "completed": "updated",
    "pending": "pending",
    "scheduled": "in_flight",
    "pulling": "in_flight",
    "updating": "in_flight",
    "health_checking": "in_flight",
    "failed": "failed",
    "rollback_failed": "failed",
    "rolled_back": "rolled_back",
    "skipped": "skipped",
}
# the bar's segments, left to right: what is done first, what waits last
BAR_ORDER = ("updated", "rolled_back", "failed", "skipped", "in_flight", "pending")
PLAIN_CELL = {
    "updated": "#",
    "rolled_back": "r",
    "failed": "x",
    "skipped": "s",
    "in_flight": "~",
    "pending": ".",
}
STYLE = {
    "updated": "green",
    "rolled_back": "magenta",
    "failed": "red",
    "skipped": "yellow",
    "in_flight": "cyan",
    "pending": "grey50",
}
LABEL = {
    "updated": "updated",
    "rolled_back": "rolled back",
    "failed": "failed",
    "skipped": "skipped",
    "in_flight": "in flight",
    "pending": "pending",
}
# device events worth a line of their own; the rest (scheduled, pulling, …) only move the bar
NOTABLE_DEVICE_EVENTS = frozenset(
    {
        "device_failed",
        "health_check_failed",
        "rollback_triggered",
        "device_rolled_back",
        "rollback_failed",
        "device_retried",
        "device_skipped",
        "device_not_applying",
        "health_check_not_runnable",
    }
)
FINISHED_ROLLOUT_STATUSES = frozenset({"completed", "failed", "cancelled", "rolled_back"})


@dataclass(frozen=True)
class Tally:
    """Devices of a rollout (or of one batch) by what they amount to."""

    updated: int = 0
    rolled_back: int = 0
    failed: int = 0
    skipped: int = 0
    in_flight: int = 0
    pending: int = 0

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Tally:
        """From a batch's ``counts`` (device status → how many)."""
        buckets: Counter[str] = Counter()
        for status, n in counts.items():
            buckets[BUCKET_OF_STATUS.get(status, "in_flight")] += n
        return cls(**buckets)

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name in BAR_ORDER)

    def parts(self) -> list[tuple[str, int]]:
        return [(name, getattr(self, name)) for name in BAR_ORDER]


def rollout_tally(rollout: Mapping[str, Any]) -> Tally:
    return sum((Tally.of(b["counts"]) for b in rollout.get("batches") or []), Tally())


def rollbacks_pending(rollout: Mapping[str, Any]) -> int:
    """Failed devices whose rollback is still to come (the engine follows rollbacks after a
    rollout has ended, so the last ones may settle a few seconds after it)."""
    if not (rollout.get("settings") or {}).get("auto_rollback", False):
        return 0
    return sum(b["counts"].get("failed", 0) for b in rollout.get("batches") or [])


def settled(rollout: Mapping[str, Any]) -> bool:
    """The rollout has ended and no rollback of its is under way."""
    return rollout["status"] in FINISHED_ROLLOUT_STATUSES and not rollbacks_pending(rollout)


def bar_cells(tally: Tally, width: int) -> list[tuple[str, int]]:
    """How many of ``width`` cells each part gets (largest remainders; a part with devices
    gets at least one cell while there are cells to give)."""
    total = tally.total
    if total == 0 or width <= 0:
        return [("pending", max(width, 0))]
    present = [(name, n) for name, n in tally.parts() if n]
    cells = {name: max(1, n * width // total) for name, n in present}
    while sum(cells.values()) > width:  # the minimum of one cell overflowed a narrow bar
        widest = max(cells, key=lambda name: cells[name])
        cells[widest] -= 1
    by_remainder = sorted(present, key=lambda item: -((item[1] * width) % total))
    for name, _ in by_remainder:
        if sum(cells.values()) >= width:
            break
        cells[name] += 1
    while sum(cells.values()) < width:  # only when every part already has its share
        cells[present[0][0]] += 1
    return [(name, cells[name]) for name, _ in present if cells[name]]


def plain_bar(tally: Tally, width: int = 50) -> str:
    return "[" + "".join(PLAIN_CELL[name] * n for name, n in bar_cells(tally, width)) + "]"


def rich_bar(tally: Tally, width: int = 50) -> Text:
    bar = Text()
    for name, n in bar_cells(tally, width):
        bar.append("━" * n, style=STYLE[name])
    return bar


def tally_words(tally: Tally) -> str:
    """``"24 updated · 1 rolled back · 25 pending"``: updated always, the rest when nonzero."""
    words = [f"{tally.updated} updated"]
    words += [f"{n} {LABEL[name]}" for name, n in tally.parts() if n and name != "updated"]
    return " · ".join(words)


def progress_line(rollout: Mapping[str, Any], width: int = 40) -> str:
    """One line for a log: the whole rollout's bar, counts, batch and status."""
    tally = rollout_tally(rollout)
    return (
        f"{plain_bar(tally, width)} {tally.updated}/{tally.total} · {tally_words(tally)}"
        f" | {batch_position(rollout)} · {rollout['status']}"
    )


def batch_position(rollout: Mapping[str, Any]) -> str:
    return f"batch {rollout['current_batch']}/{len(rollout.get('batches') or [])}"


def batch_line(batch: Mapping[str, Any], current: int, width: int = 20) -> str:
    tally = Tally.of(batch["counts"])
    marker = "▸" if batch["batch"] == current and tally.in_flight else " "
    return (
        f"{marker} batch {batch['batch']} ({devices(batch['size'])}) {plain_bar(tally, width)} "
        f"{tally_words(tally)}"
    )


def devices(n: int) -> str:
    return f"{n:>3} device" + ("" if n == 1 else "s")


def rate_words(rollout: Mapping[str, Any]) -> str:
    """Rounded as the dashboard and ``rollouts watch`` round (domain.rollout_figures)."""
    bound = (rollout.get("settings") or {}).get("max_failure_rate")
    rate = f"failure rate {percent_label(rollout['failure_rate'], 1)}"
    return f"{rate} (bound {percent_label(bound, 1)})" if bound is not None else rate


def is_notable(event: Mapping[str, Any]) -> bool:
    """Rollout-level events, and device events that are news (a failure, a rollback)."""
    return event.get("device_uuid") is None or event["event_type"] in NOTABLE_DEVICE_EVENTS


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def offset(timestamp: str, origin: datetime) -> float:
    """Seconds from the origin to a time the server wrote (the demo's one clock)."""
    return (parse_time(timestamp) - origin).total_seconds()


def event_line(event: Mapping[str, Any], origin: datetime) -> str:
    """``"+  5.1s  batch_started        batch 2 of 3 started: 20 devices"``."""
    offset_seconds = offset(event["timestamp"], origin)
    device = f"{event['device_uuid']}: " if event.get("device_uuid") else ""
    message = event.get("message") or ""
    return f"+{offset_seconds:5.1f}s  {event['event_type']:<20} {device}{message}".rstrip()


def batch_spans(events: Iterable[Mapping[str, Any]]) -> dict[int, tuple[datetime, datetime | None]]:
    """Each batch's start and finish, from its ``batch_started`` / ``batch_completed`` events."""
    spans: dict[int, tuple[datetime, datetime | None]] = {}
    for event in events:
        batch = (event.get("event_data") or {}).get("batch")
        if event.get("device_uuid") is not None or batch is None:
            continue
        if event["event_type"] == "batch_started":
            spans[batch] = (parse_time(event["timestamp"]), None)
        elif event["event_type"] == "batch_completed" and batch in spans:
            spans[batch] = (spans[batch][0], parse_time(event["timestamp"]))
    return spans


def live_panel(
    rollout: Mapping[str, Any],
    recent: Sequence[Mapping[str, Any]],
    origin: datetime,
    width: int = 50,
) -> Group:
    """The redrawn part of the terminal: the rollout's bar, one bar per batch, what it waits
    for, and its newest events."""
    tally = rollout_tally(rollout)
    head = Text.assemble(
        (f"rollout {rollout['rollout_id'][:8]} ", "bold"),
        f"{rollout['image_name']}:{rollout['old_tag'] or '?'} → {rollout['new_tag']}  ",
        (rollout["status"], _status_style(rollout["status"])),
    )
    position = Text(f"{batch_position(rollout)} · {rate_words(rollout)}")
    overall = Text.assemble(rich_bar(tally, width), f" {tally.updated}/{tally.total}")
    lines: list[Text] = [head, position, overall, Text(tally_words(tally)), _legend()]
    for batch in rollout.get("batches") or []:
        batch_tally = Tally.of(batch["counts"])
        current = batch["batch"] == rollout["current_batch"]
        line = Text(f"{'▸' if current else ' '} batch {batch['batch']} ({batch['size']:>3}) ")
        line.append_text(rich_bar(batch_tally, width // 2))
        line.append(f" {tally_words(batch_tally)}")
        lines.append(line)
    if rollout.get("waiting_for"):
        lines.append(Text(f"waiting for: {rollout['waiting_for']}", style="dim"))
    lines.append(Text("newest events:", style="bold"))
    lines += [Text(event_line(event, origin), style=_event_style(event)) for event in recent]
    return Group(*lines)


def _legend() -> Text:
    legend = Text()
    for name in BAR_ORDER:
        legend.append("━ ", style=STYLE[name])
        legend.append(f"{LABEL[name]} ", style="dim")
    return legend


def _status_style(status: str) -> str:
    return {"completed": "bold green", "failed": "bold red", "paused": "bold yellow"}.get(
        status, "bold cyan"
    )


def _event_style(event: Mapping[str, Any]) -> str:
    kind = event["event_type"]
    if "fail" in kind:
        return "red"
    if "roll" in kind and "rollout" not in kind:
        return "magenta"
    return "bold" if event.get("device_uuid") is None else "dim"


def summary_lines(
    rollout: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    images: Mapping[str, int],
    states: Mapping[str, int],
) -> list[str]:
    """The final account: how the rollout ended, each batch's devices and duration, the
    failure rate, and what the devices run now (read from the devices themselves)."""
    created = parse_time(rollout["created_at"])
    finished = parse_time(rollout["completed_at"]) if rollout.get("completed_at") else None
    took = f" in {(finished - created).total_seconds():.1f} s" if finished else ""
    lines = [
        f"rollout {rollout['rollout_id']} {rollout['status']}{took} (push → {rollout['status']})"
    ]
    spans = batch_spans(events)
    for batch in rollout.get("batches") or []:
        start, end = spans.get(batch["batch"], (None, None))
        when = ""
        if start is not None:
            when = f"  +{(start - created).total_seconds():.1f} s"
            if end is not None:
                when += f" → +{(end - created).total_seconds():.1f} s"
        lines.append(
            f"  batch {batch['batch']}: {devices(batch['size'])}, "
            f"{tally_words(Tally.of(batch['counts']))}{when}"
        )
    said = rollout.get("outcome") if rollout.get("failures") else None
    lines.append(f"  {rate_words(rollout)}" + (f": {said}" if said else ""))
    lines.append("devices run: " + _counted(images))
    lines.append("containers: " + _counted(states))
    return lines


def _counted(counts: Mapping[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} × {n}" for name, n in ordered) or "nothing"
