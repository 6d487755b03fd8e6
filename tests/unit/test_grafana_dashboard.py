"""The Grafana dashboard imports as is, and every query in it names metrics the server exports
(rendered by the server's own exposition code, counters and the fleet's gauges alike)."""

from __future__ import annotations

import pytest
from tests.dashboards import load_dashboard, names_in, panels, queries, unknown_names

from fleetwave.ops.metrics import ActiveRollout, FleetFigures, render
from fleetwave.telemetry import Telemetry

ROLLOUT = ActiveRollout(
    rollout_id="r-1",
    image="iotistic/myapp:v2.0.1",
    status="in_progress",
    strategy="staged",
    current_batch=1,
    batch_sizes=(1, 4, 5),
    failure_rate=0.0,
    max_failure_rate=0.2,
)


def server_exposition() -> str:
    figures = FleetFigures(
        rollouts_by_status={"in_progress": 1},
        device_rows_by_status={"scheduled": 1, "pending": 9},
        active=[ROLLOUT],
        batch_devices={("r-1", 1, "scheduled"): 1, ("r-1", 2, "pending"): 4},
    )
    return render(Telemetry(webhook_providers=["dockerhub"]), figures).decode()


def test_the_dashboard_is_importable_with_a_prometheus_datasource_input() -> None:
    dashboard = load_dashboard()
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 30
    assert dashboard["title"] and dashboard["uid"]
    [source] = dashboard["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == (
        "DS_PROMETHEUS",
        "datasource",
        "prometheus",
    )
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_every_query_in_the_dashboard_names_metrics_the_server_exports() -> None:
    exprs = queries(load_dashboard())
    assert len(exprs) > 20
    assert unknown_names(exprs, server_exposition()) == set()


def test_the_dashboard_shows_what_operators_watch() -> None:
    used = set().union(*(names_in(e)[0] for e in queries(load_dashboard())))
    for metric in (
        "fleetwave_active_rollouts",
        "fleetwave_rollout_batch_devices",
        "fleetwave_rollout_failure_rate",
        "fleetwave_rollout_max_failure_rate",
        "fleetwave_rollbacks_started_total",
        "fleetwave_webhooks_received_total",
        "fleetwave_webhooks_rejected_total",
        "fleetwave_webhooks_deduplicated_total",
        "fleetwave_device_polls_total",
        "fleetwave_device_polls_not_modified_total",
        "fleetwave_monitor_tick_duration_seconds_bucket",
    ):
        assert metric in used, metric


@pytest.mark.parametrize(
    ("expr", "unknown"),
    [
        ("sum(rate(fleetwave_device_pols_total[5m]))", {"fleetwave_device_pols_total"}),
        ("fleetwave_device_polls", {"fleetwave_device_polls"}),  # a counter is read as _total
        ('max by (status) (fleetwave_rollout{status=~"paused"})', {"fleetwave_rollout"}),
        ("rate(fleetwave_active_rollouts_bucket[5m])", {"fleetwave_active_rollouts_bucket"}),
        (
            "histogram_quantil(0.9, fleetwave_monitor_tick_duration_seconds_bucket)",
            {"histogram_quantil()"},
        ),
        ("label_values(fleetwave_rollout_inf, image)", {"fleetwave_rollout_inf"}),
        (
            "histogram_quantile(0.99, sum by (le) "
            "(rate(fleetwave_monitor_tick_duration_seconds_bucket[$__rate_interval])))",
            set(),
        ),
        (
            'sum(rate(fleetwave_health_check_results_total{result="failed"}[1m])) '
            "/ sum(rate(fleetwave_device_polls_total[1m]))",
            set(),
        ),
    ],
)
def test_a_misspelled_metric_or_function_is_caught(expr: str, unknown: set[str]) -> None:
    assert unknown_names([expr], server_exposition()) == unknown
