"""``/metrics``: the process's own counters, and the fleet's state read from the database.

The figures the database holds (rollouts by status, each active rollout's devices per batch
and status, failure rate against its bound) are read when Prometheus scrapes, with four
set-based queries whatever the number of rollouts and devices, so every replica reports the
same truth and nothing is kept in step by hand. Counters of what this process saw happen
(webhooks, polls, health results, rollbacks, monitor ticks) live in ``fleetwave.telemetry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.domain.vocabulary import (
    ACTIVE_ROLLOUT_STATUSES,
    DEVICE_ROLLOUT_STATUSES,
    ROLLOUT_STATUSES,
)
from fleetwave.store.db import Database
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import image_rollouts
from fleetwave.telemetry import Telemetry

ROLLOUT_LABELS = ["rollout_id", "image"]


@dataclass(frozen=True)
class ActiveRollout:
    rollout_id: str
    image: str  # repository:new_tag
    status: str
    strategy: str
    current_batch: int
    batch_sizes: tuple[int, ...]
    failure_rate: float
    max_failure_rate: float


@dataclass(frozen=True)
class FleetFigures:
    """What one scrape read from the database, as plain data."""

    rollouts_by_status: dict[str, int] = field(default_factory=dict)
    device_rows_by_status: dict[str, int] = field(default_factory=dict)
    active: list[ActiveRollout] = field(default_factory=list)
    # (rollout_id, batch, device status) → devices, for the active rollouts
    batch_devices: dict[tuple[str, int, str], int] = field(default_factory=dict)


async def read_figures(conn: AsyncConnection, default_bound: float) -> FleetFigures:
    """The fleet's figures in four GROUP BY / set queries, never one per rollout or device."""
    r, d = image_rollouts.c, device_rows.c
    by_status = await conn.execute(select(r.status, func.count()).group_by(r.status))
    rows_by_status = await conn.execute(select(d.status, func.count()).group_by(d.status))
    active_rows = await conn.execute(
        select(
            r.rollout_id,
            r.image_name,
            r.new_tag,
            r.status,
            r.strategy,
            r.current_batch,
            r.batch_sizes,
            r.failure_rate,
            r.settings,
        )
        .where(r.status.in_(ACTIVE_ROLLOUT_STATUSES))
        .order_by(r.id)
    )
    batch_rows = await conn.execute(
        select(d.rollout_id, d.batch_number, d.status, func.count())
        .join(image_rollouts, r.rollout_id == d.rollout_id)
        .where(r.status.in_(ACTIVE_ROLLOUT_STATUSES))
        .group_by(d.rollout_id, d.batch_number, d.status)
    )
    return FleetFigures(
        rollouts_by_status={status: n for status, n in by_status},
        device_rows_by_status={status: n for status, n in rows_by_status},
        active=[_active(row, default_bound) for row in active_rows],
        batch_devices={(rid, batch, status): n for rid, batch, status, n in batch_rows},
    )


def _active(row: Any, default_bound: float) -> ActiveRollout:
    bound = (
        RolloutSettings.from_json(row.settings).max_failure_rate if row.settings else default_bound
    )
    return ActiveRollout(
        rollout_id=row.rollout_id,
        image=f"{row.image_name}:{row.new_tag}",
        status=row.status,
        strategy=row.strategy,
        current_batch=row.current_batch,
        batch_sizes=tuple(row.batch_sizes or ()),
        failure_rate=float(row.failure_rate),
        max_failure_rate=bound,
    )


def families(figures: FleetFigures) -> list[Metric]:
    """The figures as Prometheus gauges (every status present, zeros included)."""
    rollouts = GaugeMetricFamily("fleetwave_rollouts", "Rollouts by status", labels=["status"])
    for status in ROLLOUT_STATUSES:
        rollouts.add_metric([status], figures.rollouts_by_status.get(status, 0))
    device_rows_total = GaugeMetricFamily(
        "fleetwave_device_rollouts",
        "Devices' rollout rows by status, over every rollout kept",
        labels=["status"],
    )
    for status in DEVICE_ROLLOUT_STATUSES:
        device_rows_total.add_metric([status], figures.device_rows_by_status.get(status, 0))
    active = GaugeMetricFamily(
        "fleetwave_active_rollouts",
        "Rollouts not finished (pending, awaiting approval, scheduled, in progress, paused)",
        value=len(figures.active),
    )
    return [rollouts, device_rows_total, active, *_per_rollout(figures)]


def _per_rollout(figures: FleetFigures) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "fleetwave_rollout_info",
        "One series per active rollout (always 1), naming its status and strategy",
        labels=[*ROLLOUT_LABELS, "status", "strategy"],
    )
    devices = GaugeMetricFamily(
        "fleetwave_rollout_devices",
        "An active rollout's devices by status",
        labels=[*ROLLOUT_LABELS, "status"],
    )
    batch_devices = GaugeMetricFamily(
        "fleetwave_rollout_batch_devices",
        "An active rollout's devices per batch and status",
        labels=[*ROLLOUT_LABELS, "batch", "status"],
    )
    batch_size = GaugeMetricFamily(
        "fleetwave_rollout_batch_size",
        "An active rollout's planned devices per batch",
        labels=[*ROLLOUT_LABELS, "batch"],
    )
    current_batch = GaugeMetricFamily(
        "fleetwave_rollout_current_batch",
        "The batch an active rollout is at (0: not started)",
        labels=ROLLOUT_LABELS,
    )
    batches = GaugeMetricFamily(
        "fleetwave_rollout_batches", "An active rollout's number of batches", labels=ROLLOUT_LABELS
    )
    failure_rate = GaugeMetricFamily(
        "fleetwave_rollout_failure_rate",
        "An active rollout's failure rate: failed / finished devices (ratio)",
        labels=ROLLOUT_LABELS,
    )
    bound = GaugeMetricFamily(
        "fleetwave_rollout_max_failure_rate",
        "The failure rate above which an active rollout pauses (ratio)",
        labels=ROLLOUT_LABELS,
    )
    by_rollout = _devices_by_rollout(figures.batch_devices.items())
    for rollout in figures.active:
        labels = [rollout.rollout_id, rollout.image]
        info.add_metric([*labels, rollout.status, rollout.strategy], 1)
        counts = by_rollout.get(rollout.rollout_id, {})
        for status in DEVICE_ROLLOUT_STATUSES:
            devices.add_metric([*labels, status], counts.get(status, 0))
        for number, size in enumerate(rollout.batch_sizes, start=1):
            batch_size.add_metric([*labels, str(number)], size)
        current_batch.add_metric(labels, rollout.current_batch)
        batches.add_metric(labels, len(rollout.batch_sizes))
        failure_rate.add_metric(labels, rollout.failure_rate)
        bound.add_metric(labels, rollout.max_failure_rate)
    images = {rollout.rollout_id: rollout.image for rollout in figures.active}
    for (rid, batch, status), n in sorted(figures.batch_devices.items()):
        if rid in images:
            batch_devices.add_metric([rid, images[rid], str(batch), status], n)
    yield from (info, devices, batch_devices, batch_size, current_batch, batches)
    yield from (failure_rate, bound)


def _devices_by_rollout(
    batch_devices: Iterable[tuple[tuple[str, int, str], int]],
) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for (rid, _, status), n in batch_devices:
        per_status = totals.setdefault(rid, {})
        per_status[status] = per_status.get(status, 0) + n
    return totals


class _Families:
    """A collector over families already read (prometheus_client collects synchronously)."""

    def __init__(self, found: list[Metric]) -> None:
        self.found = found

    def collect(self) -> Iterable[Metric]:
        return self.found


class FleetMetrics:
    """The exposition served at ``/metrics``: this process's telemetry, then the fleet's."""

    def __init__(self, db: Database, telemetry: Telemetry, default_bound: float) -> None:
        self.db, self.telemetry, self.default_bound = db, telemetry, default_bound

    async def exposition(self) -> bytes:
        async with self.db.read() as conn:
            figures = await read_figures(conn, self.default_bound)
        return render(self.telemetry, figures)


def render(telemetry: Telemetry, figures: FleetFigures) -> bytes:
    """The text exposition: the process's counters, then the fleet's figures."""
    fleet = CollectorRegistry(auto_describe=False)
    fleet.register(_Families(families(figures)))
    return generate_latest(telemetry.registry) + generate_latest(fleet)
