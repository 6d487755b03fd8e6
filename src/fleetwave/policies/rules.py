"""The rules of a policy that pydantic's field types cannot say: the pattern, the batches, the
window, the health checks. Each rule names the fields it reads, so that a rule is still run
when another field is bad and skipped when one of its own is: one answer lists every problem.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import time
from typing import Any, Protocol

from fleetwave.domain.batches import check_percentages
from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.health import parse_checks
from fleetwave.domain.images import parse_pattern
from fleetwave.domain.windows import check_window_span, zone


class PolicyValues(Protocol):
    """What the rules read: a policy's fields, as ``policies.schemas.PolicyFields`` has them."""

    @property
    def image_pattern(self) -> str: ...

    @property
    def update_strategy(self) -> str: ...

    @property
    def staged_batches(self) -> int: ...

    @property
    def batch_percentages(self) -> list[float] | None: ...

    @property
    def health_check_config(self) -> Any: ...

    @property
    def health_check_timeout_seconds(self) -> int | None: ...

    @property
    def maintenance_window_start(self) -> time | None: ...

    @property
    def maintenance_window_end(self) -> time | None: ...

    @property
    def maintenance_window_timezone(self) -> str: ...

    @property
    def model_fields_set(self) -> set[str]: ...


@dataclass(frozen=True)
class Rule:
    reads: frozenset[str]
    check: Callable[[PolicyValues], None]  # raises InvalidInput naming the field at fault


def _pattern(policy: PolicyValues) -> None:
    parse_pattern(policy.image_pattern)


def _checks(policy: PolicyValues) -> None:
    parse_checks(policy.health_check_config)


def _metric_windows(policy: PolicyValues) -> None:
    """A metric check's window closes before the health timeout would end the wait."""
    config = policy.health_check_config
    path = "health_check_config.checks" if isinstance(config, dict) else "health_check_config"
    timeout = policy.health_check_timeout_seconds
    if timeout is None:  # the server's default applies: judged when a rollout is planned
        return
    try:
        checks = parse_checks(config)
    except InvalidInput:
        return  # the checks' own rule (_checks) names what is wrong with them
    for i, check in enumerate(checks):
        if check.type == "metric" and check.window_seconds >= timeout:
            raise InvalidInput.one(
                f"{path}[{i}].window_seconds",
                f"must be shorter than health_check_timeout_seconds ({timeout})",
            )


def _percentages(policy: PolicyValues) -> None:
    if policy.batch_percentages is not None:
        check_percentages(policy.batch_percentages)


def _batch_count(policy: PolicyValues) -> None:
    percentages = policy.batch_percentages
    if (
        percentages is not None
        and "staged_batches" in policy.model_fields_set
        and policy.staged_batches != len(percentages)
    ):
        raise InvalidInput.one(
            "batch_percentages",
            f"gives {len(percentages)} batches but staged_batches is {policy.staged_batches}",
        )


def _window_span(policy: PolicyValues) -> None:
    check_window_span(policy.maintenance_window_start, policy.maintenance_window_end)


def _time_zone(policy: PolicyValues) -> None:
    zone(policy.maintenance_window_timezone)


def _scheduled_has_window(policy: PolicyValues) -> None:
    if policy.update_strategy == "scheduled" and policy.maintenance_window_start is None:
        raise InvalidInput.one(
            "maintenance_window_start", "a scheduled policy needs a maintenance window"
        )


WINDOW = frozenset({"maintenance_window_start", "maintenance_window_end"})
RULES = (
    Rule(frozenset({"image_pattern"}), _pattern),
    Rule(frozenset({"health_check_config"}), _checks),
    Rule(frozenset({"health_check_config", "health_check_timeout_seconds"}), _metric_windows),
    Rule(frozenset({"batch_percentages"}), _percentages),
    Rule(frozenset({"batch_percentages", "staged_batches"}), _batch_count),
    Rule(WINDOW, _window_span),
    Rule(frozenset({"maintenance_window_timezone"}), _time_zone),
    Rule(frozenset({"update_strategy", "maintenance_window_start"}), _scheduled_has_window),
)


def policy_problems(policy: PolicyValues, bad: Collection[str] = ()) -> list[Problem]:
    """Every rule's problems, skipping the rules that read a field in ``bad`` (a field whose
    own value was refused, so that its rules would only repeat the refusal)."""
    problems: list[Problem] = []
    for rule in RULES:
        if rule.reads.isdisjoint(bad):
            try:
                rule.check(policy)
            except InvalidInput as exc:
                problems += exc.problems
    return problems
