"""The verdict of a ``metric`` health check, from the samples of a device's own state reports.

A metric check is judged over the reports received from the moment the device runs the new
image, for ``window_seconds``: until the window closes it is ``pending``; then the metric's
aggregate (``avg``, ``max`` or ``p95``, nearest rank) over the window's samples is compared
with the bounds. ``min``/``max`` are absolute; ``max_increase_percent`` compares with the same
aggregate over the same length of window just before the update started (the device's own
baseline). Fewer than ``min_reports`` samples in either window is ``unknown``: the rollout
treats it as it treats a health timeout (the device fails with ``health_timeout``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleetwave.domain.health import CheckSpec

PASSED, FAILED, PENDING, UNKNOWN = "passed", "failed", "pending", "unknown"


@dataclass(frozen=True)
class Sample:
    """The metrics of one state report, keyed as a check names them (``cpu_usage``,
    ``metrics.queue_depth``), at the server's time of receipt."""

    at: datetime
    values: Mapping[str, float]


@dataclass(frozen=True)
class MetricVerdict:
    state: str  # passed | failed | pending | unknown
    details: dict[str, Any]


def aggregate(values: Sequence[float], how: str) -> float:
    """``avg``, ``max`` or ``p95`` (nearest rank: the smallest value with 95 % at or below)."""
    if how == "max":
        return max(values)
    if how == "p95":
        ordered = sorted(values)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return sum(values) / len(values)


def values_in(
    samples: Sequence[Sample], metric: str, start: datetime, end: datetime
) -> list[float]:
    """The metric's values reported in ``[start, end)``."""
    return [s.values[metric] for s in samples if start <= s.at < end and metric in s.values]


def metric_verdict(
    check: CheckSpec,
    samples: Sequence[Sample],
    running_since: datetime,
    now: datetime,
    baseline_until: datetime | None = None,
) -> MetricVerdict:
    """The check's verdict at ``now``; ``baseline_until`` is when the update started (the
    baseline window ends there; default ``running_since``)."""
    assert check.metric is not None
    window = timedelta(seconds=check.window_seconds)
    details: dict[str, Any] = {
        "type": "metric",
        "metric": check.metric,
        "aggregate": check.aggregate,
        "window_seconds": check.window_seconds,
    }
    if now < running_since + window:
        return MetricVerdict(PENDING, details | {"passed": False})
    values = values_in(samples, check.metric, running_since, running_since + window)
    details["reports"] = len(values)
    if len(values) < check.min_reports:
        why = f"{len(values)} reports with {check.metric} in the window, {check.min_reports} needed"
        return MetricVerdict(UNKNOWN, details | {"passed": False, "unknown": why})
    value = aggregate(values, check.aggregate)
    details["value"] = value
    problems = _absolute(check, value)
    if check.max_increase_percent is not None:
        end = baseline_until or running_since
        before = values_in(samples, check.metric, end - window, end)
        details["baseline_reports"] = len(before)
        if len(before) < check.min_reports:
            why = (
                f"{len(before)} reports with {check.metric} before the update, "
                f"{check.min_reports} needed for a baseline"
            )
            return MetricVerdict(UNKNOWN, details | {"passed": False, "unknown": why})
        baseline = aggregate(before, check.aggregate)
        limit = baseline * (1 + check.max_increase_percent / 100)
        details |= {"baseline": baseline, "limit": limit}
        if value > limit:
            problems.append(
                f"{check.aggregate} {value:g} is more than {check.max_increase_percent:g} % "
                f"above the baseline {baseline:g}"
            )
    if problems:
        return MetricVerdict(FAILED, details | {"passed": False, "last_error": "; ".join(problems)})
    return MetricVerdict(PASSED, details | {"passed": True})


def _absolute(check: CheckSpec, value: float) -> list[str]:
    problems = []
    if check.max is not None and value > check.max:
        problems.append(f"{check.aggregate} {value:g} is above max {check.max:g}")
    if check.min is not None and value < check.min:
        problems.append(f"{check.aggregate} {value:g} is below min {check.min:g}")
    return problems


def samples_needed_since(checks: Sequence[CheckSpec], since: datetime) -> datetime:
    """How far back a device's samples are read for ``checks`` (a baseline window before)."""
    longest = max((c.window_seconds for c in checks if c.type == "metric"), default=0)
    return since - timedelta(seconds=longest)
