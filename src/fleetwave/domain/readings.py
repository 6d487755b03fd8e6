"""A device's last reported metrics, and how long ago it was heard from, in words for the
device page and ``fleetwave devices show``.

The iotistic agent reports memory and storage in MB; other agents send bytes. The two are told
apart by size: no device reports 16 TB of memory in MB, and none runs in less than 16 MB in
bytes, so a reading of 2^24 or more is taken as bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

BYTES_FROM = 2**24
UNITS = ("MB", "GB", "TB", "PB")


def readings(system_info: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """``(name, value)`` for each metric the report carried, in a fixed order."""
    info = system_info or {}
    rows: list[tuple[str, str]] = []
    if _number(info.get("cpu_usage")):
        rows.append(("CPU", f"{info['cpu_usage']:g}%"))
    for name, used, total in (
        ("Memory", "memory_usage", "memory_total"),
        ("Storage", "storage_usage", "storage_total"),
    ):
        if _number(info.get(used)) or _number(info.get(total)):
            rows.append((name, share(info.get(used), info.get(total))))
    if _number(info.get("temperature")):
        rows.append(("Temperature", f"{info['temperature']:g} °C"))
    if _number(info.get("uptime")):
        rows.append(("Uptime", duration(info["uptime"])))
    if isinstance(info.get("local_ip"), str):
        rows.append(("Local IP", info["local_ip"]))
    return rows


def share(used: Any, total: Any) -> str:
    """``1.5 GB of 3.8 GB (39%)``, or whichever half was reported."""
    if not _number(total):
        return size(used)
    if not _number(used):
        return f"? of {size(total)}"
    percent = f" ({100 * used / total:.0f}%)" if total > 0 else ""
    return f"{size(used)} of {size(total)}{percent}"


def size(value: float) -> str:
    megabytes = value / 2**20 if value >= BYTES_FROM else float(value)
    unit = 0
    while megabytes >= 1024 and unit < len(UNITS) - 1:
        megabytes /= 1024
        unit += 1
    digits = 0 if unit == 0 or megabytes >= 100 else 1
    return f"{megabytes:,.{digits}f} {UNITS[unit]}"


def duration(seconds: float) -> str:
    """``3 d 4 h``, ``5 h 12 min``, ``7 min 5 s``, ``42 s``: the two largest units."""
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    first = next((i for i, (n, _) in enumerate(parts) if n), len(parts) - 1)
    shown = [f"{n} {unit}" for n, unit in parts[first : first + 2] if n or unit == "s"]
    return " ".join(shown) or "0 s"


def ago(then: datetime | None, now: datetime) -> str:
    """``42 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``; ``never`` without a time."""
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    for length, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= length:
            return f"{seconds // length} {unit} ago"
    return f"{seconds} s ago"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
