"""What people read of a push's preview and of deployment rings: pure views of the API's JSON."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from fleetwave.operator.render import Row, cell, table, when

TIME = "%m-%d %H:%M"  # the preview's times: within days, in UTC


def preview_view(preview: Row) -> RenderableType:
    """``fleetwave trigger IMAGE --dry-run``: the batches as a table, then what is left out."""
    parts: list[RenderableType] = [Text(f"dry run: {preview['message']}", style="bold")]
    policy = preview.get("policy") or {}
    if policy.get("chosen") is not None:
        parts.append(Text(f"policy {policy['chosen']}: {policy.get('reason')}"))
    elif preview["outcome"] == "would_create":
        parts.append(Text("no policy matches: the server's defaults apply"))
    if preview.get("batches"):
        grid = table(
            "BATCH", "RING", "DEVICES", "OFFLINE", "STARTS (UTC)", "ENDS BY", "WAITS FOR", "FIRST"
        )
        for b in preview["batches"]:
            grid.add_row(
                str(b["batch"]),
                cell(b.get("ring")),
                str(b["devices"]),
                str(b["offline"]),
                when(b["starts_at"], TIME),
                when(b["ends_by"], TIME),
                ", ".join(b["waits_for"]) or "-",
                ", ".join(b["sample"]),
            )
        parts.append(grid)
    window = preview.get("maintenance_window")
    if window:
        parts.append(
            Text(
                f"maintenance window {window['start']}-{window['end']} {window['timezone']}, "
                f"next opening {when(window['next_opening'], '%Y-%m-%d %H:%M')} UTC"
            )
        )
    if preview.get("approvals_needed"):
        parts.append(Text(f"approvals needed: {preview['approvals_needed']}"))
    parts.extend(_excluded_lines(preview.get("excluded") or {}))
    images = preview.get("current_images") or []
    if images:
        running = ", ".join(f"{i['image']} ({i['devices']})" for i in images)
        parts.append(Text(f"running now: {running}", style="dim"))
    parts.extend(Text(f"warning: {w}", style="yellow") for w in preview.get("warnings") or [])
    return Group(*parts)


def _excluded_lines(excluded: Row) -> list[Text]:
    lines = []
    for reason, found in excluded.items():
        groups: Sequence[Row] = found if isinstance(found, list) else [found]
        for group in groups:
            why = f" ({group['reason']})" if group.get("reason") else ""
            lines.append(
                Text(f"excluded, {reason.replace('_', ' ')}{why}: {group['count']} devices")
            )
    return lines


def rings_table(rings: Sequence[Row]) -> RenderableType:
    if not rings:
        return Text("no rings")
    grid = table("RING", "FLEET", "TAGS", "DEVICES LISTED", "MATCHES", "USED BY POLICIES")
    for r in rings:
        uuids = r.get("device_uuids")
        grid.add_row(
            r["name"],
            cell(r.get("fleet_id")),
            cell(r.get("device_tags")),
            "-" if uuids is None else str(len(uuids)),
            str(r["devices"]),
            ", ".join(str(i) for i in r["used_by_policies"]) or "-",
        )
    return grid


def ring_view(ring: Row) -> RenderableType:
    return rings_table([ring])
