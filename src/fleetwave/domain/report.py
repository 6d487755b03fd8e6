"""A device's state report (``PATCH /api/v1/device/state``), checked and taken apart.

The iotistic agent sends ``{"<uuid>": {"apps": {...}, "is_online": true, "os_version": ...,
metrics...}}``; services in the current apps carry ``status`` and ``containerId``. fleetwave's
own agent adds ``capabilities`` (``domain.capabilities``). Anything
malformed is rejected whole, naming the field, so a bad report never half-applies.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleetwave.domain.capabilities import parse_capabilities
from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.health import METRICS_PREFIX, metric_key_problem
from fleetwave.domain.target_state import id_problem
from fleetwave.domain.text_rules import json_problem, label_problem

LARGEST_EXACT = 2**53  # the largest whole number every JSON reader carries exactly
HUNDRED_YEARS_IN_SECONDS = 3_155_760_000
# Each metric's unit and the range a real device can report in it (both ends included).
METRIC_BOUNDS: dict[str, tuple[float, float]] = {
    "cpu_usage": (0, 100),  # percent
    "memory_usage": (0, LARGEST_EXACT),  # MB (the iotistic agent) or bytes
    "memory_total": (0, LARGEST_EXACT),
    "storage_usage": (0, LARGEST_EXACT),
    "storage_total": (0, LARGEST_EXACT),
    "temperature": (-273.15, 1000),  # °C
    "uptime": (0, HUNDRED_YEARS_IN_SECONDS),  # seconds
}
METRICS = tuple(METRIC_BOUNDS)
TEXT_FIELDS = ("os_version", "supervisor_version", "local_ip", "mac_address")
SERVICE_TEXT_FIELDS = ("serviceName", "imageName", "status", "containerId")
MAX_CUSTOM_METRICS = 64  # keys of a report's ``metrics`` object


@dataclass(frozen=True)
class StateReport:
    apps: dict[str, Any] | None
    config: dict[str, Any] | None
    is_online: bool
    os_version: str | None
    supervisor_version: str | None
    local_ip: str | None
    system_info: dict[str, Any] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()  # what its agent declares (none: an iotistic agent)
    # its numeric readings as metric checks name them: cpu_usage, ..., metrics.<key>
    samples: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportedApps:
    """What a device's report says it runs, as received at ``now`` (for its rollouts)."""

    uuid: str
    apps: dict[str, Any]
    now: datetime


def report_digest(target_version: int, report: Any) -> str:
    """What makes two reports "the same": their content, and the version of the target they
    answer. A new target (a batch, a retry, a rollback) bumps the version, so the same content
    is judged again against it; the same content under the same target changes nothing."""
    content = json.dumps(report, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{target_version}\n{content}".encode()).hexdigest()


def parse_state_report(value: Any, *, field_prefix: str) -> StateReport:
    problems: list[Problem] = []
    if not isinstance(value, dict):
        raise InvalidInput.one(field_prefix, "must be an object")
    if (unstorable := json_problem(value, field_prefix)) is not None:
        raise InvalidInput([unstorable])  # the report is stored whole, as JSON
    apps = value.get("apps")
    if apps is not None:
        _check_current_apps(apps, f"{field_prefix}.apps", problems)
    config = value.get("config")
    if config is not None and not isinstance(config, dict):
        problems.append(Problem(f"{field_prefix}.config", "must be an object"))
    is_online = value.get("is_online", True)
    if not isinstance(is_online, bool):
        problems.append(Problem(f"{field_prefix}.is_online", "must be true or false"))
    for name in TEXT_FIELDS:
        _check_text(value.get(name), f"{field_prefix}.{name}", problems)
    for name, bounds in METRIC_BOUNDS.items():
        if (problem := metric_problem(value.get(name), bounds)) is not None:
            problems.append(Problem(f"{field_prefix}.{name}", problem))
    capabilities = parse_capabilities(
        value.get("capabilities"), f"{field_prefix}.capabilities", problems
    )
    custom = _custom_metrics(value.get("metrics"), f"{field_prefix}.metrics", problems)
    local_ip = value.get("local_ip")
    if isinstance(local_ip, str):
        try:
            local_ip = str(ipaddress.ip_address(local_ip))
        except ValueError:
            problems.append(Problem(f"{field_prefix}.local_ip", "must be an IP address"))
    if problems:
        raise InvalidInput(problems)
    return StateReport(
        apps=apps,
        config=config,
        is_online=is_online,
        os_version=value.get("os_version"),
        supervisor_version=value.get("supervisor_version"),
        local_ip=local_ip,
        system_info={name: value[name] for name in METRICS if value.get(name) is not None}
        | ({"local_ip": local_ip} if local_ip is not None else {}),
        capabilities=capabilities,
        samples={name: float(value[name]) for name in METRICS if value.get(name) is not None}
        | custom,
    )


def _custom_metrics(value: Any, path: str, problems: list[Problem]) -> dict[str, float]:
    """A report's ``metrics`` object (name → finite number), keyed ``metrics.<name>``."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_CUSTOM_METRICS:
        problems.append(Problem(path, f"must be an object of at most {MAX_CUSTOM_METRICS} numbers"))
        return {}
    found = {}
    for key, reading in value.items():
        if (problem := metric_key_problem(key)) is not None:
            problems.append(Problem(f"{path}.{key}", f"the name {problem}"))
        elif (problem := metric_problem(reading, (-LARGEST_EXACT, LARGEST_EXACT))) is not None:
            problems.append(Problem(f"{path}.{key}", problem))
        elif reading is not None:
            found[f"{METRICS_PREFIX}{key}"] = float(reading)
    return found


def metric_problem(value: Any, bounds: tuple[float, float]) -> str | None:
    """Why ``value`` is not a reading within ``bounds``, or None (also when it is absent)."""
    if value is None:
        return None
    low, high = bounds
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "must be a finite number"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if not low <= value <= high:
        return f"must be from {_number(low)} to {_number(high)}"
    return None


def _number(bound: float) -> str:
    return f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"


def _check_text(value: Any, path: str, problems: list[Problem]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        problems.append(Problem(path, "must be a string"))
    elif (problem := label_problem(value)) is not None:
        problems.append(Problem(path, problem))


def _check_id(value: Any, path: str, problems: list[Problem]) -> None:
    """An appId or serviceId the agent sent, if it sent a number (agents differ in the rest)."""
    if isinstance(value, int | float) and (problem := id_problem(value)) is not None:
        problems.append(Problem(path, problem))


def _check_current_apps(apps: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(apps, dict):
        problems.append(Problem(path, "must be an object keyed by appId"))
        return
    for app_key, app in apps.items():
        app_path = f"{path}.{app_key}"
        if not isinstance(app, dict):
            problems.append(Problem(app_path, "must be an object"))
            continue
        _check_id(app.get("appId"), f"{app_path}.appId", problems)
        services = app.get("services", [])
        if not isinstance(services, list):
            problems.append(Problem(f"{app_path}.services", "must be a list"))
            continue
        for i, service in enumerate(services):
            service_path = f"{app_path}.services[{i}]"
            if not isinstance(service, dict):
                problems.append(Problem(service_path, "must be an object"))
                continue
            for name in ("serviceId", "appId"):
                _check_id(service.get(name), f"{service_path}.{name}", problems)
            for name in SERVICE_TEXT_FIELDS:
                _check_text(service.get(name), f"{service_path}.{name}", problems)
