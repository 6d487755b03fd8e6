"""Storing a group of devices' state reports: their current state, their device rows and
their rollout progress, with a fixed number of statements however many reports.

A report that changes nothing but last-seen never comes here (``DeviceProtocol.report``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.devices.metric_samples import record_samples
from fleetwave.devices.targets import announce_changes
from fleetwave.domain.report import ReportedApps, StateReport
from fleetwave.store.queries import update_rows, upsert_rows
from fleetwave.store.tables import device_current_state, devices


@dataclass(frozen=True)
class ReceivedReport:
    uuid: str
    report: StateReport
    digest: str  # of its content and the target version it answers
    now: datetime


class ReportListener(Protocol):
    """Told of every group of reports with apps, inside their transaction (rollout progress).

    It is called first (it locks rollouts before devices, the order every writer follows) and
    returns what to run last, just before the commit."""

    async def devices_reported(
        self, conn: AsyncConnection, reports: Sequence[ReportedApps]
    ) -> Callable[[], Awaitable[None]]: ...


async def store_reports(
    conn: AsyncConnection,
    received: Sequence[ReceivedReport],
    listener: ReportListener | None,
) -> None:
    """Store the reports (one per device) in the caller's transaction."""
    last = None
    with_apps = [
        ReportedApps(r.uuid, r.report.apps, r.now) for r in received if r.report.apps is not None
    ]
    if with_apps and listener is not None:
        last = await listener.devices_reported(conn, with_apps)
    await upsert_rows(
        conn, device_current_state, await _current_states(conn, received), key=["device_uuid"]
    )
    for rows in _device_changes(received):
        await update_rows(conn, devices, "uuid", rows)
    # metric health checks judge devices on their recent readings (``metric_samples``)
    await record_samples(conn, [(r.uuid, r.now, r.report.samples) for r in received])
    # every replica's cache must see a device go offline: its next poll writes
    await announce_changes(conn, frozenset(r.uuid for r in received if not r.report.is_online))
    if last is not None:
        await last()


async def _current_states(
    conn: AsyncConnection, received: Sequence[ReceivedReport]
) -> list[dict[str, Any]]:
    """The devices' new ``device_current_state`` rows: what a report leaves out, it keeps."""
    state = device_current_state.c
    previous = {
        row.device_uuid: row
        for row in await conn.execute(
            select(state.device_uuid, state.apps, state.config, state.system_info).where(
                state.device_uuid.in_([r.uuid for r in received])
            )
        )
    }
    rows = []
    for r in received:
        before = previous.get(r.uuid)
        report = r.report
        kept_apps, kept_config = (before.apps, before.config) if before else ({}, {})
        rows.append(
            {
                "device_uuid": r.uuid,
                "apps": report.apps if report.apps is not None else kept_apps,
                "config": report.config if report.config is not None else kept_config,
                # the iotistic agent sends metrics every 5 minutes and state-only reports in
                # between: a report without metrics keeps the last ones
                "system_info": report.system_info or (before.system_info if before else None) or {},
                "reported_at": r.now,
                "report_digest": r.digest,
            }
        )
    return rows


def _device_changes(received: Sequence[ReceivedReport]) -> list[list[dict[str, Any]]]:
    """The devices' row changes, grouped by the columns they set (a report names its OS
    version or address only sometimes)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in received:
        report = r.report
        row: dict[str, Any] = {
            "uuid": r.uuid,
            "is_online": report.is_online,
            "last_connectivity_event": r.now,
            # every report says what its agent can do: none said is an iotistic-style agent
            "capabilities": list(report.capabilities),
        }
        for name in ("os_version", "supervisor_version"):
            if getattr(report, name) is not None:
                row[name] = getattr(report, name)
        if report.local_ip is not None:
            row["ip_address"] = report.local_ip
        groups[tuple(row)].append(row)
    return list(groups.values())
