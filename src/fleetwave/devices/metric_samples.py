"""The numeric readings of devices' recent state reports, kept for ``metric`` health checks.

A changed state report that carries metrics (``cpu_usage``, ``temperature``, ...,
``metrics.<key>``) becomes one row of ``device_metric_samples``, written with the report in
one multi-row insert however many devices reported. A report that changes nothing is skipped
before it gets here (its digest); a report whose metrics changed is a changed report. What is
kept is bounded: the monitor's chore deletes samples older than ``MAX_AGE`` and all but each
device's newest ``MAX_PER_DEVICE``, each in one statement, at most once per ``SWEEP_EVERY``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.metric_checks import Sample
from fleetwave.store.db import Database
from fleetwave.store.tables import device_metric_samples as samples_table

# Enough for a baseline window and a judging window of up to an hour each around an update
# that took hours to apply; a device reporting every 10 s keeps 6 h in 2,160 rows.
MAX_AGE = timedelta(hours=6)
MAX_PER_DEVICE = 2_160
SWEEP_EVERY = timedelta(minutes=1)


async def record_samples(
    conn: AsyncConnection, readings: Sequence[tuple[str, datetime, dict[str, float]]]
) -> None:
    """(device uuid, received at, samples) of reports with metrics, in one insert."""
    rows = [
        {"device_uuid": uuid, "received_at": at, "samples": values}
        for uuid, at, values in readings
        if values
    ]
    if rows:
        await conn.execute(insert(samples_table), rows)


async def read_samples(
    conn: AsyncConnection, uuids: Iterable[str], since: datetime
) -> dict[str, list[Sample]]:
    """The devices' samples received since ``since``, oldest first, in one query."""
    wanted = list(uuids)
    found: dict[str, list[Sample]] = {uuid: [] for uuid in wanted}
    if not wanted:
        return found
    c = samples_table.c
    rows = await conn.execute(
        select(c.device_uuid, c.received_at, c.samples)
        .where(c.device_uuid.in_(wanted), c.received_at >= since)
        .order_by(c.received_at, c.id)
    )
    for row in rows:
        found[row.device_uuid].append(Sample(row.received_at, row.samples))
    return found


async def prune(conn: AsyncConnection, now: datetime, per_device: int = MAX_PER_DEVICE) -> int:
    """Delete samples past ``MAX_AGE`` and beyond each device's newest ``per_device``."""
    c = samples_table.c
    old = await conn.execute(delete(samples_table).where(c.received_at < now - MAX_AGE))
    ranked = select(
        c.id,
        func.row_number()
        .over(partition_by=c.device_uuid, order_by=(c.received_at.desc(), c.id.desc()))
        .label("newest"),
    ).subquery()
    surplus = select(ranked.c.id).where(ranked.c.newest > per_device)
    extra = await conn.execute(delete(samples_table).where(c.id.in_(surplus)))
    return int(old.rowcount or 0) + int(extra.rowcount or 0)


class MetricSamplePruning:
    """The monitor's chore that keeps ``device_metric_samples`` bounded."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock
        self.last_sweep: datetime | None = None

    async def tidy(self, now: datetime) -> str | None:
        if self.last_sweep is not None and now - self.last_sweep < SWEEP_EVERY:
            return None
        self.last_sweep = now
        async with self.db.transaction() as conn:
            deleted = await prune(conn, now)
        return f"deleted {deleted} old metric samples" if deleted else None
