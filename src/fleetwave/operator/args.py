"""Command-line values into the API's shapes: tags, ``field=value`` settings, percentages.

Each parser raises ``ValueError`` with a message naming the flag; the commands turn it into a
usage error.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

WINDOW = re.compile(r"(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})")
AGO = re.compile(r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d)")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
LEVEL_ALIASES = {"warning": "warn", "fatal": "error", "critical": "error", "trace": "debug"}


def parse_tags(values: list[str], flag: str = "--tag") -> dict[str, str]:
    """``["site=lyon", "ring:canary"]`` → ``{"site": "lyon", "ring": "canary"}``."""
    tags = {}
    for value in values:
        separator = "=" if "=" in value else ":"
        key, sep, tag_value = value.partition(separator)
        if not sep or not key.strip():
            raise ValueError(f"{flag} {value!r}: write key=value")
        tags[key.strip()] = tag_value.strip()
    return tags


def parse_assignments(values: list[str]) -> dict[str, Any]:
    """``["soak_seconds=0", "description=night"]`` → values read as JSON, else as text."""
    fields: dict[str, Any] = {}
    for value in values:
        name, sep, raw = value.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {value!r}: write field=value")
        try:
            fields[name.strip()] = json.loads(raw)
        except ValueError:
            fields[name.strip()] = raw
    return fields


def parse_percentages(value: str) -> list[float]:
    """``"5,25,100"`` → ``[5.0, 25.0, 100.0]`` (the server checks that they make sense)."""
    try:
        return [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--percentages {value!r}: write numbers, e.g. 5,25,100") from None


def parse_window(value: str) -> tuple[str, str]:
    """``"02:00-04:30"`` → ``("02:00", "04:30")``."""
    match = WINDOW.fullmatch(value.strip())
    if not match:
        raise ValueError(f"--window {value!r}: write HH:MM-HH:MM, e.g. 02:00-04:00")
    return match["start"], match["end"]


def read_json_object(text: str, source: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source} must hold a JSON object")
    return value


def single_service_apps(image: str, service: str = "app", app_id: int = 1001) -> dict[str, Any]:
    """A target state of one app running one service on ``image`` (the iotistic format)."""
    return {
        str(app_id): {
            "appId": app_id,
            "appName": service,
            "services": [
                {
                    "serviceId": 1,
                    "serviceName": service,
                    "imageName": image,
                    "config": {"image": image},
                }
            ],
        }
    }


def parse_since(value: str, now: datetime) -> str:
    """``"10m"`` (ago), or a time (``2026-01-01T12:00``, UTC unless it says) → ISO 8601 UTC."""
    text = value.strip()
    ago = AGO.fullmatch(text)
    if ago:
        try:
            moment = now - timedelta(seconds=float(ago["amount"]) * UNIT_SECONDS[ago["unit"]])
        except OverflowError:
            raise ValueError(f"--since {value!r}: that is too long ago") from None
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"--since {value!r}: write a time (2026-01-01T12:00Z) or how long ago (10m, 2h, 1d)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).isoformat()
    except OverflowError:
        raise ValueError(f"--since {value!r}: outside the years 1 to 9999 in UTC") from None


def parse_level(value: str) -> str:
    """``"WARNING"`` → ``"warn"``: the server's names, in any case, with common aliases."""
    level = value.strip().lower()
    return LEVEL_ALIASES.get(level, level)


def parse_expiry(value: str, now: datetime) -> str:
    """``"90d"`` (from now), or a time (``2027-01-01T00:00``, UTC unless it says) → ISO 8601."""
    text = value.strip()
    ahead = AGO.fullmatch(text)
    try:
        if ahead:
            moment = now + timedelta(seconds=float(ahead["amount"]) * UNIT_SECONDS[ahead["unit"]])
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        raise ValueError(
            f"--expires {value!r}: write a time (2027-01-01T00:00Z) or how long from now (12h, 90d)"
        ) from None
