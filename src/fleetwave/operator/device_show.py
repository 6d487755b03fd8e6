"""``fleetwave devices show``: one device as the dashboard's device page shows it, in text.

:func:`device_report` gathers the answers of five API calls (the device, its target and
current state, its rollouts, its latest events) into one JSON document, which ``--json``
prints as it is; :func:`device_page` draws it for people. Both are pure.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from fleetwave.domain.readings import ago, readings
from fleetwave.domain.service_states import compare_services
from fleetwave.operator.render import Row, cell, event_line, fields, status, table, tags, when

SHORT_TIME = "%m-%d %H:%M:%S"  # the year is the header's
ATTRIBUTES = (
    "uuid", "device_name", "fleet_id", "tags", "device_type", "application_id", "os_version",
    "supervisor_version", "capabilities", "ip_address", "mac_address", "created_at",
)  # fmt: skip


def device_report(
    device: Row,
    target: Row,
    current: Row | None,
    rollouts: Row,
    events: list[Row],
) -> dict[str, Any]:
    """The device with everything ``devices show`` prints, as one JSON document."""
    services = compare_services(target.get("apps"), current.get("apps") if current else None)
    return {
        "device": device,
        "services": [asdict(s) for s in services],
        "target_state": target,
        "current_state": current,
        "rollouts": rollouts,
        "events": events,
    }


def device_page(report: Row, now: datetime) -> RenderableType:
    device, current = report["device"], report["current_state"]
    parts: list[RenderableType] = [presence(device, now), fields(device, ATTRIBUTES), Text()]
    reported = f", reported {when(current['reported_at'])}" if current else ", no report yet"
    parts += [Text(f"services (target against running{reported})", style="bold")]
    parts.append(services_table(report["services"]))
    metrics = readings(current.get("system_info") if current else None)
    if metrics:
        parts += [Text(), Text("metrics", style="bold")]
        parts.append(Text(" · ".join(f"{name} {value}" for name, value in metrics)))
    page = report["rollouts"]
    shown = len(page.get("items") or [])
    parts += [Text(), Text(f"rollouts ({shown} of {page.get('total', shown)}, newest first)",
                           style="bold")]  # fmt: skip
    parts.append(history_table(page))
    parts += [Text(), Text("latest events", style="bold")]
    parts += [event_line(e) for e in report["events"]] or [Text("no events", style="dim")]
    return Group(*parts)


def presence(device: Row, now: datetime) -> Text:
    """``device pump-1  online, last seen 12 s ago (2026-12-06 12:00:00)``."""
    line = Text()
    line.append(f"device {device['uuid']}  ", style="bold")
    online = device.get("is_online")
    line.append("online" if online else "offline", style="green" if online else "yellow")
    seen = device.get("last_connectivity_event")
    moment = datetime.fromisoformat(seen) if seen else None
    line.append(f", last seen {ago(moment, now)}" + (f" ({when(seen)})" if seen else ""))
    stalled = device.get("not_applying_target")
    if stalled:
        line.append(f"  not applying {stalled.get('image')} since {when(stalled.get('since'))}",
                    style="yellow")  # fmt: skip
    return line


def services_table(services: list[Row]) -> RenderableType:
    if not services:
        return Text("no services", style="dim")
    grid = table("SERVICE", "TARGET", "RUNNING", "STATE", "")
    for s in services:
        verdict = s["verdict"]
        style = "green" if verdict == "as targeted" else "cyan" if verdict == "changing" else "red"
        grid.add_row(
            s["service"],
            cell(s["target"]),
            cell(s["running"]),
            cell(s["status"]),
            Text(verdict, style=style),
        )
    return grid


def history_table(page: Row) -> RenderableType:
    items = page.get("items") or []
    if not items:
        return Text("in no rollout yet", style="dim")
    grid = table("ROLLOUT", "IMAGE", "ROLLOUT STATUS", "BATCH", "ITS STATUS", "TAGS",
                 "ASSIGNED", "FINISHED", "HEALTH", "ERROR")  # fmt: skip
    for column in (0, 6, 7):  # a rollout id is copied whole into other commands; times
        grid.columns[column].no_wrap = True
    for r in items:
        finished = r.get("rolled_back_at") or r.get("update_completed_at")
        grid.add_row(
            r["rollout_id"],
            r["image_name"],
            status(r["rollout_status"]),
            str(r["batch_number"]),
            status(r["status"]),
            tags(r.get("old_image_tag"), r.get("new_image_tag")),
            when(r.get("scheduled_at"), SHORT_TIME),
            when(finished, SHORT_TIME),
            _health(r.get("health_check_passed")),
            cell(r.get("error_message")),
        )
    cursor = page.get("next_cursor")
    if cursor is None:
        return grid
    return Group(grid, Text(f"older: --rollouts-cursor {cursor}", style="dim"))


def _health(passed: bool | None) -> str:
    return "-" if passed is None else "passed" if passed else "failed"
