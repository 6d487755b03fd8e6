"""A batch's Prometheus analysis: when it is due, the query it runs, and the verdict it gives.

A ``prometheus`` check is evaluated once per batch, after the batch finished (its devices run
the new image and passed their own checks) and after its soak (the policy's batch delay; the
last batch waits it too). ``{{rollout_id}}``, ``{{batch}}`` and ``{{image}}`` in the query are
filled in. The result passes when every value it holds is within ``min``/``max``; an empty
result or a value that is not a number fails (nothing to judge is not a pass). A Prometheus that
cannot be reached or refuses the query is asked again on later ticks, until the rollout's
health-check timeout past the soak: then the analysis fails with the last error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleetwave.domain.health import CheckSpec

WAITING, PASSED, FAILED, ACTED = "waiting", "passed", "failed", "acted"


def analysis_checks(checks: Sequence[CheckSpec]) -> list[CheckSpec]:
    return [check for check in checks if check.type == "prometheus"]


def render_query(query: str, rollout_id: str, batch: int, image: str) -> str:
    return (
        query.replace("{{rollout_id}}", rollout_id)
        .replace("{{batch}}", str(batch))
        .replace("{{image}}", image)
    )


def due_at(finished_at: datetime, batch_delay: timedelta) -> datetime:
    """When a finished batch's analysis runs: after its soak."""
    return finished_at + batch_delay


@dataclass(frozen=True)
class Outcome:
    passed: bool
    details: dict[str, Any]


def judge_answer(check: CheckSpec, query: str, answer: Mapping[str, Any]) -> Outcome:
    """The verdict on Prometheus's answer to ``/api/v1/query`` (already a success)."""
    details: dict[str, Any] = {"type": "prometheus", "query": query}
    details |= {k: v for k, v in (("min", check.min), ("max", check.max)) if v is not None}
    values = _values(answer.get("data") or {})
    if values is None:
        return Outcome(False, details | {"error": "the answer holds no scalar or vector"})
    if not values:
        return Outcome(False, details | {"error": "the query returned no data"})
    details["values"] = [{"labels": labels, "value": value} for labels, value in values[:20]]
    for labels, value in values:
        problem = _out_of_bounds(check, value)
        if problem is not None:
            where = f" for {labels}" if labels else ""
            return Outcome(False, details | {"error": f"{problem}{where}"})
    return Outcome(True, details)


def unanswered(check: CheckSpec, query: str, error: str) -> Outcome:
    """The failure recorded when Prometheus gave no usable answer in time."""
    return Outcome(False, {"type": "prometheus", "query": query, "error": error})


def state(checks: Sequence[CheckSpec], results: Mapping[str, tuple[bool, bool]]) -> str | None:
    """The batch's analysis state from its recorded results (check name → (passed, acted
    on)): None without prometheus checks; else waiting, failed, acted (a failure whose
    devices were failed) or passed."""
    names = [check.name for check in analysis_checks(checks)]
    if not names:
        return None
    if any(not passed and not acted for passed, acted in results.values()):
        return FAILED
    if any(not passed for passed, _ in results.values()):
        return ACTED
    if any(name not in results for name in names):
        return WAITING
    return PASSED


def _values(data: Mapping[str, Any]) -> list[tuple[dict[str, str], float]] | None:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return [({}, _float(result[1]))]
    if kind == "vector" and isinstance(result, list):
        return [
            (dict(item.get("metric") or {}), _float((item.get("value") or [0, "NaN"])[1]))
            for item in result
            if isinstance(item, dict)
        ]
    return None


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _out_of_bounds(check: CheckSpec, value: float) -> str | None:
    if math.isnan(value):
        return "the value is not a number"
    if check.max is not None and value > check.max:
        return f"{value:g} is above max {check.max:g}"
    if check.min is not None and value < check.min:
        return f"{value:g} is below min {check.min:g}"
    return None
