"""What this process sees happen, counted as it happens, for ``/metrics``.

One ``Telemetry`` per container, with its own Prometheus registry, handed to the services that
count (bootstrap wires it): nothing here is global, so two apps in one process never share a
number. Counting is an increment in memory: it costs the hot paths (the device poll) nothing.
Figures that the database already holds (rollouts, devices per batch and status, failure
rates) are read at scrape time instead (``ops.metrics``), so every replica reports the truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

# Monitor ticks take milliseconds when idle and seconds under a large rollout.
TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HEALTH_VERDICTS = {"health_check_passed": "passed", "health_check_failed": "failed"}
ROLLBACK_RESULTS = {"device_rolled_back": "rolled_back", "rollback_failed": "rollback_failed"}


class Telemetry:
    def __init__(self, webhook_providers: Sequence[str] = ()) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.webhooks_received = Counter(
            "fleetwave_webhooks_received",
            "Registry webhooks that passed verification, per provider",
            ["provider"],
            registry=registry,
        )
        self.webhooks_rejected = Counter(
            "fleetwave_webhooks_rejected",
            "Registry webhooks refused by verification (401), per provider",
            ["provider"],
            registry=registry,
        )
        self.webhooks_deduplicated = Counter(
            "fleetwave_webhooks_deduplicated",
            "Pushes recognised as redeliveries or bursts of a push already handled",
            ["provider"],
            registry=registry,
        )
        for provider in webhook_providers:  # every provider's series exists from the start
            for counter in (
                self.webhooks_received,
                self.webhooks_rejected,
                self.webhooks_deduplicated,
            ):
                counter.labels(provider=provider)
        # registries fleetwave polls (issue 17)
        self.registry_polls = Counter(
            "fleetwave_registry_polls",
            "Polls of registries, per registry and result (ok, failed)",
            ["registry", "result"],
            registry=registry,
        )
        self.registry_pushes_found = Counter(
            "fleetwave_registry_pushes_found",
            "New tags or changed digests found by polling, per registry",
            ["registry"],
            registry=registry,
        )
        self.device_polls = Counter(
            "fleetwave_device_polls",
            "Target-state polls answered to authenticated devices (200 or 304)",
            registry=registry,
        )
        self.device_polls_not_modified = Counter(
            "fleetwave_device_polls_not_modified",
            "Device polls answered 304 Not Modified",
            registry=registry,
        )
        self.device_polls_from_cache = Counter(
            "fleetwave_device_polls_from_cache",
            "Device polls whose key and ETag were checked from memory (no database read)",
            registry=registry,
        )
        self.device_reports_unchanged = Counter(
            "fleetwave_device_reports_unchanged",
            "Device reports whose content and target had not changed (only last-seen written)",
            registry=registry,
        )
        self.health_check_results = Counter(
            "fleetwave_health_check_results",
            "Health check results recorded, by check type, result and where the check ran",
            ["check_type", "result", "source"],
            registry=registry,
        )
        self.health_verdicts = Counter(
            "fleetwave_health_verdicts",
            "Health verdicts on devices: passed, failed (a check past its retries) or timeout",
            ["verdict"],
            registry=registry,
        )
        self.rollbacks_started = Counter(
            "fleetwave_rollbacks_started",
            "Devices sent back to their own old images (automatic or by an operator)",
            registry=registry,
        )
        self.rollback_results = Counter(
            "fleetwave_rollback_results",
            "Rollbacks finished: rolled_back, or rollback_failed",
            ["result"],
            registry=registry,
        )
        self.monitor_tick_seconds = Histogram(
            "fleetwave_monitor_tick_duration_seconds",
            "Duration of one rollout monitor tick",
            buckets=TICK_BUCKETS,
            registry=registry,
        )
        self.monitor_tick_errors = Counter(
            "fleetwave_monitor_tick_errors",
            "Monitor ticks that raised (the next tick retries)",
            registry=registry,
        )

    def events_committed(self, events: Iterable[object]) -> None:
        """Count rollbacks and health verdicts from the rollout events a transaction committed
        (a ``Database.committed`` listener: work rolled back is never counted)."""
        for event in events:
            kind = getattr(event, "event_type", None)
            data: dict[str, Any] = getattr(event, "data", None) or {}
            if kind == "rollback_triggered" and data.get("rollback") is True:
                self.rollbacks_started.inc()
            elif kind in ROLLBACK_RESULTS:
                self.rollback_results.labels(result=ROLLBACK_RESULTS[kind]).inc()
            elif kind in HEALTH_VERDICTS:
                verdict = HEALTH_VERDICTS[kind]
                if data.get("reason") == "health_timeout":
                    verdict = "timeout"
                self.health_verdicts.labels(verdict=verdict).inc()

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0 if it was never counted), e.g.
        ``value("fleetwave_webhooks_rejected_total", provider="ghcr")``."""
        return self.registry.get_sample_value(name, labels) or 0.0
