"""``metric`` and ``prometheus`` checks as a policy writes them, and the metric verdict over a
device's own report samples (``domain.metric_checks``), as tables of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleetwave.domain.errors import InvalidInput
from fleetwave.domain.health import CheckSpec, effective_checks, parse_checks, verdict
from fleetwave.domain.metric_checks import Sample, aggregate, metric_verdict
from fleetwave.domain.report import parse_state_report

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def check(**fields: Any) -> CheckSpec:
    return parse_checks([{"type": "metric", "metric": "cpu_usage"} | fields])[0]


def reports(values: list[float], start: float = 0, every: float = 10) -> list[Sample]:
    return [Sample(at(start + i * every), {"cpu_usage": v}) for i, v in enumerate(values)]


# --- parsing --------------------------------------------------------------------------------


def test_a_metric_check_is_parsed_with_its_defaults_and_judged_by_the_server() -> None:
    parsed = check(max=80)
    assert (parsed.metric, parsed.max, parsed.window_seconds) == ("cpu_usage", 80, 120)
    assert (parsed.aggregate, parsed.min_reports, parsed.run_on) == ("avg", 3, "server")
    assert parse_checks([parsed.as_json()]) == [parsed]


def test_a_prometheus_check_round_trips_and_leaves_the_default_device_check() -> None:
    raw = {"type": "prometheus", "url": "http://prom:9090", "query": "up", "min": 1}
    checks = effective_checks(True, [raw], 60)
    assert [c.type for c in checks] == ["container_running", "prometheus"]
    assert parse_checks([checks[1].as_json()]) == [checks[1]]


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"metric": "cpu", "max": 1}, "c[0].metric", "metrics.<key>"),
        ({"metric": "metrics.no spaces", "max": 1}, "c[0].metric", "metrics.<key>"),
        ({"metric": "cpu_usage"}, "c[0]", "needs a bound"),
        ({"metric": "cpu_usage", "min": 90, "max": 80}, "c[0].min", "above max"),
        ({"metric": "cpu_usage", "max": "80"}, "c[0].max", "a number"),
        ({"metric": "cpu_usage", "max": 10**400}, "c[0].max", "finite"),
        ({"metric": "cpu_usage", "max": 1, "aggregate": "median"}, "c[0].aggregate", "avg"),
        ({"metric": "cpu_usage", "max_increase_percent": -5}, "c[0].max_increase_percent", "0"),
        ({"metric": "cpu_usage", "max": 1, "run_on": "device"}, "c[0].run_on", "server"),
        ({"metric": "cpu_usage", "max": 1, "window_seconds": 0}, "c[0].window_seconds", "betw"),
    ],
)
def test_bad_metric_checks_are_refused_naming_the_field(
    raw: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_checks([{"type": "metric"} | raw], field_name="c")
    problems = {p.field: p.message for p in refused.value.problems}
    assert field in problems and words in problems[field], problems


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"url": "file:///etc/passwd", "query": "up", "max": 1}, "c[0].url"),
        ({"url": "prom:9090", "query": "up", "max": 1}, "c[0].url"),
        ({"url": "http://prom:9090", "query": " ", "max": 1}, "c[0].query"),
        ({"url": "http://prom:9090", "query": "up"}, "c[0]"),
        ({"url": "http://prom:9090", "query": "up", "min": 2, "max": 1}, "c[0].min"),
    ],
)
def test_bad_prometheus_checks_are_refused(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_checks([{"type": "prometheus"} | raw], field_name="c")
    assert field in [p.field for p in refused.value.problems]


def test_known_metrics_are_the_report_fields_and_metrics_keys() -> None:
    assert check(metric="temperature", max=70).metric == "temperature"
    assert check(metric="metrics.queue_depth", max=7).metric == "metrics.queue_depth"


def test_a_report_metrics_object_becomes_samples_beside_its_numeric_fields() -> None:
    report = parse_state_report(
        {"cpu_usage": 12, "temperature": 40.5, "metrics": {"queue_depth": 3}}, field_prefix="r"
    )
    assert report.samples == {"cpu_usage": 12, "temperature": 40.5, "metrics.queue_depth": 3}
    with pytest.raises(InvalidInput) as refused:
        parse_state_report({"metrics": {"queue": "deep", "a b": 1}}, field_prefix="r")
    assert {p.field for p in refused.value.problems} == {"r.metrics.queue", "r.metrics.a b"}


# --- aggregates and verdicts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "how", "expected"),
    [
        ([1, 2, 3, 6], "avg", 3),
        ([1, 9, 3], "max", 9),
        (list(range(1, 101)), "p95", 95),
        ([5, 1, 50], "p95", 50),
        ([7], "p95", 7),
    ],
)
def test_aggregates(values: list[float], how: str, expected: float) -> None:
    assert aggregate(values, how) == expected


@pytest.mark.parametrize(
    ("fields", "samples", "now", "state"),
    [
        pytest.param({"max": 80}, reports([50, 60, 70]), 119, "pending", id="window-open"),
        pytest.param({"max": 80}, reports([50, 60, 70]), 120, "passed", id="avg-under-max"),
        pytest.param({"max": 80}, reports([90, 95, 70]), 120, "failed", id="avg-over-max"),
        pytest.param(
            {"max": 80, "aggregate": "max"}, reports([50, 90, 60]), 120, "failed", id="peak"
        ),
        pytest.param({"min": 10}, reports([1, 2, 3]), 120, "failed", id="under-min"),
        pytest.param({"max": 80}, reports([50, 60]), 120, "unknown", id="too-few-reports"),
        pytest.param(
            {"max": 80, "min_reports": 2}, reports([50, 60]), 120, "passed", id="fewer-needed"
        ),
        pytest.param(
            {"max": 80}, reports([99, 99, 99], start=-60), 120, "unknown", id="before-window"
        ),
        pytest.param(
            {"max": 80}, reports([10, 10, 10, 99, 99], every=30), 200, "passed", id="after-window"
        ),
    ],
)
def test_metric_verdict_on_absolute_bounds(
    fields: dict[str, Any], samples: list[Sample], now: float, state: str
) -> None:
    assert metric_verdict(check(**fields), samples, T0, at(now)).state == state


@pytest.mark.parametrize(
    ("before", "after", "state"),
    [
        ([40, 40, 40], [48, 50, 52], "passed"),  # +25 %: at the limit
        ([40, 40, 40], [55, 55, 55], "failed"),
        ([40], [41, 41, 41], "unknown"),  # no baseline to compare with
    ],
)
def test_metric_verdict_against_the_devices_own_baseline(
    before: list[float], after: list[float], state: str
) -> None:
    rule = check(max_increase_percent=25)
    samples = reports(before, start=-100, every=30) + reports(after)
    found = metric_verdict(rule, samples, T0, at(120), baseline_until=at(-10))
    assert found.state == state, found.details
    if state != "unknown":
        assert found.details["baseline"] == 40


def test_an_unknown_metric_ends_the_device_verdict_as_a_timeout() -> None:
    rule = check(max=80)
    judged = verdict([rule], [], T0, at(120), timedelta(seconds=300), {rule.name: ("unknown", {})})
    assert judged.outcome == "timeout"
    assert judged.details["unknown"] == [rule.name]
    failed = verdict([rule], [], T0, at(120), timedelta(seconds=300), {rule.name: ("failed", {})})
    assert (failed.outcome, failed.details["failed_check"]) == ("failed", rule.name)
