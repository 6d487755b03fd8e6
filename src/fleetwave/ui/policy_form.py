"""The policy form: which inputs it has, and how its text becomes the API's policy fields.

Validation is the API's own: the fields go through the same pydantic schema and the same
service checks, and their messages are shown next to the inputs they name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import time
from typing import Any

from pydantic import ValidationError

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.json_input import parse_json
from fleetwave.domain.vocabulary import SEMVER_RULES, UPDATE_STRATEGIES
from fleetwave.policies.schemas import PolicyFields


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    kind: str  # text, number, checkbox, select, list, tags, json, time
    hint: str = ""
    choices: tuple[str, ...] = ()


SECTIONS: tuple[tuple[str, tuple[Input, ...]], ...] = (
    (
        "Image",
        (
            Input("image_pattern", "Image pattern", "text", "e.g. iotistic/myapp:*"),
            Input("description", "Description", "text"),
            Input("priority", "Priority", "number", "the highest matching priority wins"),
            Input("enabled", "Enabled", "checkbox"),
            Input("semver_policy", "Semver rule", "select", choices=("", *SEMVER_RULES)),
            Input("allow_prerelease", "Allow pre-releases", "checkbox"),
            Input("include_tags", "Include tags", "list", "globs, comma-separated"),
            Input("exclude_tags", "Exclude tags", "list", "globs, comma-separated"),
            Input("pin_digest", "Pin the pushed digest", "checkbox"),
        ),
    ),
    (
        "Devices",
        (
            Input("fleet_id", "Fleet", "text"),
            Input("device_tags", "Device tags", "tags", "key:value, comma-separated"),
            Input("device_uuids", "Device uuids", "list", "comma-separated"),
        ),
    ),
    (
        "Batches",
        (
            Input("update_strategy", "Strategy", "select", choices=UPDATE_STRATEGIES),
            Input("staged_batches", "Staged batches", "number"),
            Input("batch_percentages", "Batch percentages", "list", "cumulative, e.g. 5, 25, 100"),
            Input("batch_delay_minutes", "Delay between batches (minutes)", "number"),
            Input("rings", "Rings", "list", "ring names in order, comma-separated: the batches"),
            Input("approve_each_batch", "Every batch needs a promote", "checkbox"),
            Input(
                "max_concurrent_devices",
                "Devices updating at once",
                "number",
                "empty: only the fleet-wide cap, if any",
            ),
            Input("continuous", "Continuous: late devices join, even after completion", "checkbox"),
            Input("maintenance_window_start", "Window start", "time"),
            Input("maintenance_window_end", "Window end", "time"),
            Input("maintenance_window_timezone", "Window time zone", "text", "e.g. Europe/Paris"),
        ),
    ),
    (
        "Safety",
        (
            Input("max_failure_rate", "Max failure rate", "number", "0 to 1, e.g. 0.2"),
            Input(
                "failure_rate_min_devices",
                "Finished devices before the gate",
                "number",
                "empty: min(5, the first batch's size)",
            ),
            Input("auto_rollback", "Roll back failed devices", "checkbox"),
            Input("update_timeout_minutes", "Update timeout (minutes)", "number"),
            Input("max_retries", "Retries", "number"),
            Input("offline_grace_minutes", "Offline grace (minutes)", "number"),
        ),
    ),
    (
        "Health",
        (
            Input("health_check_enabled", "Health checks", "checkbox"),
            Input("health_check_timeout_seconds", "Health check timeout (seconds)", "number"),
            Input("soak_seconds", "Soak (seconds)", "number"),
            Input("health_check_config", "Checks (JSON)", "json", '{"checks": [...]}'),
            Input(
                "metric_checks",
                "Metric bounds (JSON)",
                "json",
                'judged on each device\'s own reports, e.g. [{"type": "metric", "metric": '
                '"cpu_usage", "max": 80, "window_seconds": 120, "aggregate": "avg"}] or '
                '"max_increase_percent": 25 against its baseline; metric: a report field or '
                "metrics.<key>",
            ),
            Input(
                "analysis_checks",
                "Prometheus analysis (JSON)",
                "json",
                'per batch after its soak, e.g. [{"type": "prometheus", "url": '
                '"http://prom:9090", "query": "...{{rollout_id}}...{{batch}}...{{image}}", '
                '"max": 0.05}]',
            ),
        ),
    ),
)
INPUTS = {i.name: i for _, inputs in SECTIONS for i in inputs}
# Form-only inputs: the checks of these types, kept in ``health_check_config`` with the others.
SPLIT_CHECKS = {"metric_checks": "metric", "analysis_checks": "prometheus"}
NEW_POLICY: dict[str, Any] = {
    name: info.default
    for name, info in PolicyFields.model_fields.items()
    if not info.is_required() and name in INPUTS
}


def form_values(policy: dict[str, Any]) -> dict[str, str | bool]:
    """A policy (as the service returns it) as the form's input values."""
    shown = policy | _split_checks(policy.get("health_check_config"))
    return {name: _as_text(INPUTS[name].kind, shown.get(name)) for name in INPUTS}


def _split_checks(config: Any) -> dict[str, Any]:
    """``health_check_config`` with its metric and prometheus checks in their own inputs."""
    checks = config.get("checks") if isinstance(config, dict) else config
    if not isinstance(checks, list):
        return {}
    split: dict[str, Any] = {
        name: [c for c in checks if isinstance(c, dict) and c.get("type") == kind] or None
        for name, kind in SPLIT_CHECKS.items()
    }
    if not any(split.values()):
        return split
    rest = [
        c for c in checks if not (isinstance(c, dict) and c.get("type") in SPLIT_CHECKS.values())
    ]
    return split | {"health_check_config": rest or None}


def _joined_checks(values: dict[str, Any]) -> None:
    """The split inputs back into ``health_check_config`` (after its own checks)."""
    extra = [c for name in SPLIT_CHECKS for c in _as_list(values.pop(name, None))]
    if not extra:
        return
    config = values.get("health_check_config")
    if isinstance(config, dict) and isinstance(config.get("checks"), list):
        values["health_check_config"] = config | {"checks": config["checks"] + extra}
    else:
        values["health_check_config"] = _as_list(config) + extra


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _as_text(kind: str, value: Any) -> str | bool:
    if kind == "checkbox":
        return bool(value)
    if value is None:
        return ""
    if kind == "list":
        return ", ".join(_number_or_text(v) for v in value)
    if kind == "tags":
        return ", ".join(f"{k}:{v}" for k, v in value.items())
    if kind == "json":
        return json.dumps(value, indent=2)
    if kind == "time" and isinstance(value, time):
        return value.strftime("%H:%M")
    return _number_or_text(value)


def _number_or_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def policy_fields(form: dict[str, str]) -> PolicyFields:
    """The form's text as the API's policy fields; raises InvalidInput naming every problem
    with its field: text that cannot be read (bad JSON) and what the policy's rules refuse."""
    values: dict[str, Any] = {}
    unreadable: list[Problem] = []
    for name, spec in INPUTS.items():
        raw = form.get(name)
        if spec.kind == "checkbox":
            values[name] = raw is not None
            continue
        text = (raw or "").strip()
        if not text:
            continue  # the schema's default, as when the field is left out of a JSON body
        try:
            values[name] = _parse(spec, text)
        except InvalidInput as exc:  # left out, so that the other fields are still checked
            unreadable += exc.problems
    _joined_checks(values)
    try:
        fields = PolicyFields.model_validate(values)
    except ValidationError as exc:
        refused = [
            Problem(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()
        ]
        raise InvalidInput(unreadable + refused) from None
    if unreadable:
        raise InvalidInput(unreadable)
    return fields


def _parse(spec: Input, text: str) -> Any:
    if spec.kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    if spec.kind == "tags":
        return [item.strip() for item in text.split(",") if item.strip()]
    if spec.kind == "json":
        return parse_json(text, spec.name)
    return text


def problems_by_field(error: InvalidInput) -> dict[str, list[str]]:
    """Messages under the input they name (``batch_percentages.1`` → ``batch_percentages``)."""
    found: dict[str, list[str]] = {}
    for problem in error.problems:
        name = re.split(r"[.\[]", problem.field, maxsplit=1)[0]
        found.setdefault(name if name in INPUTS else "", []).append(problem.message)
    return found
