"""What people read: the API's JSON as tables, summaries and the watch view.

Pure functions from the API's answers to ``rich`` renderables; nothing here speaks HTTP, so
every view is tested without a server.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from fleetwave.domain.rollout_figures import health_label, percent_label
from fleetwave.operator.bars import batch_line

Row = Mapping[str, Any]

STATUS_STYLES = {
    "completed": "green",
    "in_progress": "cyan",
    "paused": "yellow",
    "awaiting_approval": "yellow",
    "scheduled": "blue",
    "failed": "red",
    "rollback_failed": "red",
    "cancelled": "yellow",
    "rolled_back": "magenta",
    "skipped": "cyan",
}


def to_text(renderable: RenderableType, width: int = 120) -> str:
    """A renderable as plain text (no colours): for tests and for logs."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return str(output)


def when(value: str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An API timestamp, shortened for a table; ``-`` when absent."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).strftime(fmt)
    except ValueError:
        return value


def status(value: str | None) -> Text:
    return Text(value or "-", style=STATUS_STYLES.get(value or "", ""))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def table(*columns: str) -> Table:
    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def fields(record: Row, names: Iterable[str]) -> Table:
    """One record as ``name  value`` lines."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name in names:
        grid.add_row(name, field_value(name, record.get(name)))
    return grid


def field_value(name: str, value: Any) -> Text | str:
    if name == "status":
        return status(value)
    if name.endswith("_at") and isinstance(value, str):
        return when(value)
    return cell(value)


def tags(old: str | None, new: str | None) -> str:
    return f"{old or '?'} → {new or '?'}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def next_page(cursor: object) -> Text | None:
    if cursor is None:
        return None
    return Text(f"more: --cursor {cursor}", style="dim")


def with_footer(body: RenderableType, cursor: object) -> RenderableType:
    footer = next_page(cursor)
    return body if footer is None else Group(body, footer)


# policies

POLICY_FIELDS = (
    "id", "image_pattern", "enabled", "priority", "description", "update_strategy",
    "staged_batches", "batch_percentages", "batch_delay_minutes", "approve_each_batch",
    "maintenance_window_start", "maintenance_window_end", "maintenance_window_timezone",
    "fleet_id", "device_tags", "device_uuids", "semver_policy", "allow_prerelease",
    "include_tags", "exclude_tags", "max_failure_rate", "failure_rate_min_devices",
    "health_check_enabled", "health_check_timeout_seconds", "soak_seconds", "auto_rollback",
    "update_timeout_minutes", "max_retries", "offline_grace_minutes", "pin_digest",
    "created_at", "updated_at",
)  # fmt: skip


def policies_table(items: Sequence[Row]) -> RenderableType:
    if not items:
        return Text("no policies")
    grid = table("ID", "PATTERN", "STRATEGY", "BATCHES", "DELAY", "MAX FAIL", "FLEET", "ON", "PRIO")
    for p in items:
        batches = cell(p.get("batch_percentages") or p.get("staged_batches"))
        grid.add_row(
            str(p["id"]),
            p["image_pattern"],
            p["update_strategy"],
            batches,
            f"{p.get('batch_delay_minutes')} min",
            percent(p.get("max_failure_rate")),
            cell(p.get("fleet_id")),
            cell(p.get("enabled")),
            str(p.get("priority")),
        )
    return grid


def policy_view(policy: Row) -> RenderableType:
    checks = policy.get("effective_health_checks") or []
    lines: list[RenderableType] = [fields(policy, POLICY_FIELDS)]
    if checks:
        lines.append(Text("health checks: " + ", ".join(_check(c) for c in checks)))
    return Group(*lines)


def _check(check: Mapping[str, Any]) -> str:
    target = check.get("url") or check.get("service") or check.get("port") or ""
    return f"{check.get('type', '?')}{' ' + str(target) if target else ''}"


# rollouts

ROLLOUT_FIELDS = (
    "rollout_id", "image_name", "old_tag", "new_tag", "strategy", "status", "auto_paused",
    "triggered_by", "policy_id", "digest", "total_devices", "batch_sizes", "current_batch",
    "healthy_devices", "failed_devices", "rolled_back_devices", "failure_rate", "waiting_for",
    "next_action_at", "error_message", "superseded_by", "created_at", "started_at", "paused_at",
    "completed_at",
)  # fmt: skip


def rollouts_table(page: Row) -> RenderableType:
    items = page.get("items") or []
    if not items:
        return Text("no rollouts")
    grid = table(
        "ROLLOUT", "IMAGE", "TAGS", "STATUS", "BATCH", "PROGRESS", "FAILED", "FAIL RATE", "WAITING"
    )  # fmt: skip
    for r in items:
        grid.add_row(
            r["rollout_id"],
            r["image_name"],
            rollout_tags(r),
            outcome_text(r),
            f"{r.get('current_batch', 0)}/{len(r.get('batch_sizes') or [])}",
            percent_label(r.get("progress_percentage", 0)),
            failures_cell(r),
            rate_against_bound(r),
            cell(r.get("waiting_for")),
        )
    shown = page.get("offset", 0)
    footer = Text(
        f"{shown + 1}–{shown + len(items)} of {page.get('total', len(items))} rollouts",
        style="dim",
    )
    return with_footer(Group(grid, footer), page.get("next_cursor"))


def rollout_tags(rollout: Row) -> str:
    """``v1.1.0 → v1.2.0``, or every old tag when the devices came from several."""
    spread = rollout.get("old_images_label")
    if spread:
        return f"{spread} → {rollout.get('new_tag') or '?'}"
    return tags(rollout.get("old_tag"), rollout.get("new_tag"))


def outcome_text(rollout: Row) -> Text:
    """The status, or how a finished rollout ended when something failed."""
    text = status(rollout["status"])
    said = rollout.get("outcome")
    if said and said != rollout["status"].replace("_", " "):
        text = Text(said, style=STATUS_STYLES.get(rollout["status"], ""))
    return text


def failures_cell(rollout: Row) -> str:
    """``5 (5 rolled back)``: every failure, and how many were put back."""
    failed = rollout.get("failures", rollout.get("failed_devices", 0))
    back = rollout.get("rolled_back_devices", 0)
    return f"{failed} ({back} rolled back)" if back else str(failed)


def rate_against_bound(rollout: Row) -> str:
    """``17% / max 20%``."""
    bound = _bound(rollout)
    rate = percent_label(rollout.get("failure_rate"), 1)
    return rate if bound is None else f"{rate} / max {percent_label(bound, 1)}"


def _bound(rollout: Row) -> float | None:
    bound = rollout.get("max_failure_rate")
    if bound is None:
        bound = (rollout.get("settings") or {}).get("max_failure_rate")
    return None if bound is None else float(bound)


def headline(rollout: Row) -> Text:
    """``rollout <id>  iotistic/myapp  v2.0.0 → v2.0.1  staged  in_progress``."""
    line = Text()
    line.append(f"rollout {rollout['rollout_id']}  ", style="bold")
    line.append(f"{rollout['image_name']}  {rollout_tags(rollout)}  ")
    line.append(f"{rollout['strategy']}  ")
    line.append_text(outcome_text(rollout))
    if rollout.get("auto_paused"):
        line.append(" (failure gate)", style="yellow")
    return line


def progress_line(rollout: Row) -> Text:
    """Progress and failure rate, rounded as the dashboard rounds them."""
    batches = len(rollout.get("batch_sizes") or [])
    failed = rollout.get("failures", rollout.get("failed_devices", 0))
    bound = _bound(rollout)
    text = (
        f"batch {rollout.get('current_batch', 0)} of {batches} · "
        f"{percent_label(rollout.get('progress_percentage', 0))} of "
        f"{rollout.get('total_devices', 0)} devices finished · {failed} failed · "
        f"failure rate {percent_label(rollout.get('failure_rate'), 1)}"
    )
    if bound is not None:
        text += f" (max {percent_label(bound, 1)})"
    return Text(text)


def waiting_line(rollout: Row) -> Text | None:
    if rollout.get("waiting_for") in (None, "", rollout.get("status")):
        return None  # "paused" is already in the headline
    until = rollout.get("next_action_at")
    suffix = f" (until {when(until)})" if until else ""
    return Text(f"waiting: {rollout['waiting_for']}{suffix}", style="yellow")


def batch_bars(rollout: Row, width: int = 24) -> list[Text]:
    return [batch_line(batch, width) for batch in rollout.get("batches") or []]


def rollout_view(rollout: Row) -> RenderableType:
    figures = {
        "outcome": rollout.get("outcome"),
        "failures": failures_cell(rollout),
        "old images": rollout.get("old_images_label") or rollout.get("old_tag"),
    }
    parts: list[RenderableType] = [fields(rollout, ROLLOUT_FIELDS), fields(figures, figures)]
    parts.append(Text())
    parts.append(progress_line(rollout))
    parts.extend(batch_bars(rollout))
    return Group(*parts)


def rollout_devices_table(page: Row) -> RenderableType:
    items = page.get("items") or []
    if not items:
        return Text("no devices")
    grid = table(
        "DEVICE", "BATCH", "STATUS", "ONLINE", "TAGS", "RUNS", "HEALTH", "RETRIES", "ERROR"
    )  # fmt: skip
    for d in items:
        grid.add_row(
            d["device_uuid"],
            str(d["batch_number"]),
            status(d["status"]),
            presence(d),
            tags(d.get("old_image_tag"), d.get("new_image_tag")),
            cell(d.get("current_image_tag")),
            health_label(d.get("health_check_passed"), d.get("health_check_attempts", 0)),
            f"{d.get('retry_count', 0)}/{d.get('max_retries', 0)}",
            cell(d.get("error_message")),
        )
    footer = f"{len(items)} of {page.get('total', len(items))} devices"
    return with_footer(Group(grid, Text(footer, style="dim")), page.get("next_cursor"))


def presence(device: Row) -> Text:
    """``online`` or ``offline, seen 03:04:05`` (a device that looks updating may be gone)."""
    seen = device.get("last_seen_at")
    if device.get("online"):
        return Text("online", style="green")
    return Text(f"offline, seen {when(seen)}" if seen else "offline, never seen", style="yellow")


def event_line(event: Row) -> Text:
    """``12:00:01  batch_started  pump-3  Batch 2 started``."""
    line = Text()
    line.append(f"{when(event.get('timestamp'), '%H:%M:%S')}  ", style="dim")
    line.append(f"{event['event_type']:<20} ", style=_event_style(event["event_type"]))
    if event.get("device_uuid"):
        line.append(f"{event['device_uuid']}  ")
    line.append(event.get("message") or "")
    return line


def _event_style(event_type: str) -> str:
    for word, style in (
        ("fail", "red"),
        ("rolled_back", "magenta"),
        ("rollback", "magenta"),
        ("not_", "yellow"),  # not applying its target, not runnable: worth a look
    ):
        if word in event_type:
            return style
    return "green" if event_type.endswith("completed") else "cyan"


def events_table(page: Row) -> RenderableType:
    items = page.get("items") or []
    if not items:
        return Text("no events")
    grid = table("ID", "TIME", "EVENT", "DEVICE", "MESSAGE")
    for e in items:
        grid.add_row(
            str(e["id"]),
            when(e.get("timestamp")),
            e["event_type"],
            cell(e.get("device_uuid")),
            cell(e.get("message")),
        )
    return Group(grid, Text(f"next: --after {page.get('next_cursor')}", style="dim"))


def watch_view(rollout: Row, events: Sequence[Row]) -> RenderableType:
    """The live view: headline, progress, what it waits for, a bar per batch, newest events."""
    parts: list[RenderableType] = [headline(rollout), progress_line(rollout)]
    waiting = waiting_line(rollout)
    if waiting is not None:
        parts.append(waiting)
    parts.extend(batch_bars(rollout))
    parts.append(Text("latest events", style="bold"))
    parts.extend(event_line(e) for e in events)
    return Group(*parts)


def trigger_view(answer: Row) -> RenderableType:
    names = ("outcome", "rollout_id", "status", "affected_devices", "image", "message")
    return fields(answer, names)


def control_view(control: str, rollout: Row) -> RenderableType:
    done = Text(f"{control}: rollout {rollout['rollout_id']} is now ")
    done.append_text(status(rollout["status"]))
    return Group(done, progress_line(rollout), *batch_bars(rollout))


# devices

DEVICE_FIELDS = (
    "uuid", "device_name", "device_type", "fleet_id", "tags", "is_online",
    "last_connectivity_event", "ip_address", "mac_address", "os_version", "supervisor_version",
    "created_at", "updated_at",
)  # fmt: skip


def devices_table(page: Row) -> RenderableType:
    items = page.get("items") or []
    if not items:
        return Text("no devices")
    grid = table("DEVICE", "NAME", "FLEET", "TAGS", "ONLINE", "LAST SEEN", "IP")
    for d in items:
        grid.add_row(
            d["uuid"],
            d["device_name"],
            cell(d.get("fleet_id")),
            cell(d.get("tags")),
            cell(d.get("is_online")),
            when(d.get("last_connectivity_event")),
            cell(d.get("ip_address")),
        )
    footer = Text(f"{len(items)} of {page.get('total', len(items))} devices", style="dim")
    return with_footer(Group(grid, footer), page.get("next_cursor"))


def device_view(device: Row) -> RenderableType:
    view = fields(device, DEVICE_FIELDS)
    if "api_key" not in device:
        return view
    key = Text(f"api key (shown once, only its hash is kept): {device['api_key']}", style="bold")
    return Group(view, key)
