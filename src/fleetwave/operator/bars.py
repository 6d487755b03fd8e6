"""A batch's progress as one bar: completed, failed, rolled back, updating, skipped, pending.

Device statuses fold into a few categories an operator reads at a glance; the bar gives each
category cells in proportion, and never hides a category that has devices (one failure among
a thousand still shows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text

# category: (device statuses, glyph, style, label)
CATEGORIES: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    "completed": (("completed",), "█", "green", "completed"),
    "failed": (("failed", "rollback_failed"), "█", "red", "failed"),
    "rolled_back": (("rolled_back",), "█", "magenta", "rolled back"),
    "updating": (("pulling", "updating", "health_checking"), "▓", "yellow", "updating"),
    "skipped": (("skipped",), "▒", "cyan", "skipped"),
    "pending": (("pending", "scheduled"), "░", "dim", "pending"),
}
CATEGORY_OF = {status: name for name, (statuses, *_) in CATEGORIES.items() for status in statuses}


def tally(counts: Mapping[str, int], size: int) -> dict[str, int]:
    """Devices per category, in the bar's order; devices not counted yet are pending."""
    tallies = dict.fromkeys(CATEGORIES, 0)
    for status, count in counts.items():
        tallies[CATEGORY_OF.get(status, "pending")] += count
    tallies["pending"] += max(0, size - sum(tallies.values()))
    return tallies


def cells(tallies: Mapping[str, int], width: int) -> dict[str, int]:
    """Cells per category, summing to ``width`` (largest remainders), at least one each
    for categories with devices while the width allows."""
    total = sum(tallies.values())
    if total == 0 or width <= 0:
        return dict.fromkeys(tallies, 0)
    exact = {name: count * width / total for name, count in tallies.items()}
    given = {name: int(share) for name, share in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - given[name], reverse=True)
    for name in by_remainder[: width - sum(given.values())]:
        given[name] += 1
    for name in tallies:
        if tallies[name] and not given[name]:
            richest = max(given, key=lambda other: given[other])
            if given[richest] > 1:
                given[richest] -= 1
                given[name] = 1
    return given


def bar(tallies: Mapping[str, int], width: int) -> Text:
    text = Text()
    for name, count in cells(tallies, width).items():
        _, glyph, style, _ = CATEGORIES[name]
        text.append(glyph * count, style=style)
    return text


def legend(tallies: Mapping[str, int]) -> str:
    """``completed 7 · failed 1 · pending 2``: the categories that have devices."""
    parts = [f"{CATEGORIES[name][3]} {n}" for name, n in tallies.items() if n]
    return " · ".join(parts) or "no devices"


def batch_line(batch: Mapping[str, Any], width: int = 24) -> Text:
    """``batch 2  ███▓▓░░░  3/5  completed 3 · updating 1 · pending 1  in_progress``."""
    size = int(batch.get("size") or 0)
    tallies = tally(batch.get("counts") or {}, size)
    done = size - tallies["updating"] - tallies["pending"]
    line = Text(f"batch {batch.get('batch', '?')!s:<3} ")
    line.append_text(bar(tallies, width))
    line.append(f" {done:>3}/{size:<3} ")
    line.append(legend(tallies))
    line.append(f"  ({batch.get('status', '?')})", style="dim")
    return line
