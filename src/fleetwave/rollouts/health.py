"""Health of the devices a rollout moved: results in, verdicts out.

Results arrive from the agent (device-side checks, ``POST /api/v1/device/{uuid}/health``) or
from the server's own probes; both are kept on the device's rollout row. Which checks a device
runs itself, which the server probes and which nobody can run depends on what its agent
declared and whether it reported an address (``domain.check_placement``): the iotistic agent
runs none, so its http and tcp checks are probed from the server where ``run_on`` allows, and
the others are recorded as not runnable, with one event, instead of failing it on a timeout.
Each monitor tick judges the devices in ``health_checking``: all checks that can run passed →
``completed``; a check that failed past its retries → ``failed`` with the check's details; no
verdict by ``health_check_timeout_seconds`` → ``failed`` (``health_timeout``), naming the
checks it waited for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.devices.metric_samples import read_samples
from fleetwave.domain.check_placement import Placement, placement
from fleetwave.domain.health import (
    CheckResult,
    CheckSpec,
    parse_checks,
    results_from_json,
    results_to_json,
    verdict,
)
from fleetwave.domain.metric_checks import Sample, metric_verdict, samples_needed_since
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.health.probes import Probe, Prober
from fleetwave.rollouts.device_moves import move, restore_devices
from fleetwave.rollouts.events import Event
from fleetwave.rollouts.waker import Waker
from fleetwave.store.db import Database
from fleetwave.store.tables import device_rollout_status as device_rows
from fleetwave.store.tables import devices, image_rollouts
from fleetwave.telemetry import Telemetry

MAX_KEPT_RESULTS = 50


async def record_results(
    conn: AsyncConnection,
    results: Mapping[str, Sequence[CheckResult]],
    rollout_id: str | None,
) -> int:
    """Keep devices' check results (device uuid → results) on their rollout rows in
    ``health_checking``: one read and one update, however many devices."""
    if not results:
        return 0
    query = select(
        device_rows.c.id, device_rows.c.device_uuid, device_rows.c.health_check_details
    ).where(
        device_rows.c.device_uuid.in_(list(results)),
        device_rows.c.status == "health_checking",
    )
    if rollout_id is not None:
        query = query.where(device_rows.c.rollout_id == rollout_id)
    rows = list(await conn.execute(query))
    changes = []
    for row in rows:
        new = list(results[row.device_uuid])
        kept = results_from_json(row.health_check_details) + new
        changes.append(
            {
                "row_id": row.id,
                "row_details": (row.health_check_details or {})
                | {"results": results_to_json(kept[-MAX_KEPT_RESULTS:])},
                "row_attempts": len(new),
            }
        )
    if changes:
        await conn.execute(
            update(device_rows)
            .where(device_rows.c.id == bindparam("row_id"))
            .values(
                health_check_details=bindparam("row_details"),
                health_check_attempts=device_rows.c.health_check_attempts
                + bindparam("row_attempts"),
            ),
            changes,
        )
    return len(rows)


async def judge(
    conn: AsyncConnection, rollout: Any, settings: RolloutSettings, now: datetime
) -> list[Event]:
    """Verdicts for the rollout's devices in ``health_checking``, applied set-based."""
    rid = rollout.rollout_id
    checks = parse_checks(list(settings.health_checks))
    rows = list(
        await conn.execute(
            select(
                device_rows.c.device_uuid,
                device_rows.c.container_restarted_at,
                device_rows.c.update_started_at,
                device_rows.c.health_check_details,
                devices.c.capabilities,
                devices.c.ip_address,
            )
            .join(devices, devices.c.uuid == device_rows.c.device_uuid)
            .where(device_rows.c.rollout_id == rid, device_rows.c.status == "health_checking")
        )
    )
    samples = await _metric_samples(conn, checks, rows, now)
    outcomes: dict[str, list[str]] = {"passed": [], "failed": [], "timeout": []}
    waited_for: dict[str, list[str]] = {}
    unknown: dict[str, list[str]] = {}  # metric checks with too few reports to judge
    details = []
    events: list[Event] = []
    for row in rows:
        placed = placement(checks, row.capabilities or (), row.ip_address is not None)
        judged = placed.judged(settings.soak)
        before = row.health_check_details or {}
        running_since = row.container_restarted_at or now
        metrics = {
            check.name: _judged_metric(
                check, samples.get(row.device_uuid, []), running_since, now, row.update_started_at
            )
            for check in judged
            if check.type == "metric"
        }
        found = verdict(
            judged,
            results_from_json(before),
            running_since,
            now,
            settings.health_check_timeout,
            metrics,
        )
        kept = dict(before)
        if placed.not_runnable and before.get("not_runnable") != placed.not_runnable:
            kept["not_runnable"] = dict(placed.not_runnable)
            if "not_runnable" not in before:  # said once, not on every tick
                events.append(_not_runnable(rid, row.device_uuid, placed, judged, settings.soak))
        if found.outcome in outcomes:
            outcomes[found.outcome].append(row.device_uuid)
            waited_for[row.device_uuid] = list(found.details.get("waiting_for", []))
            if found.details.get("unknown"):
                unknown[row.device_uuid] = list(found.details["unknown"])
            kept |= {"verdict": found.outcome} | {
                "checks": {k: v for k, v in found.details.items() if isinstance(v, dict)}
            }
            if "failed_check" in found.details:
                kept["failed_check"] = found.details["failed_check"]
        if kept != before:
            details.append({"row_uuid": row.device_uuid, "row_details": kept})
    if details:
        await conn.execute(
            update(device_rows)
            .where(
                device_rows.c.rollout_id == rid, device_rows.c.device_uuid == bindparam("row_uuid")
            )
            .values(health_check_details=bindparam("row_details")),
            details,
        )
    done = await move(
        conn,
        rid,
        "health_checking",
        "completed",
        device_rows.c.device_uuid.in_(outcomes["passed"]),
        now=now,
        health_check_passed=True,
        health_checked_at=now,
        update_completed_at=now,
    )
    events += [
        Event(rid, "health_check_passed", "every health check passed", device_uuid=u) for u in done
    ]
    timeout = settings.health_check_timeout
    for outcome, reason, message in (
        ("failed", "health_check", "a health check failed past its retries"),
        ("timeout", "health_timeout", f"no health verdict within {_seconds(timeout)}"),
    ):
        failed = await move(
            conn,
            rid,
            "health_checking",
            "failed",
            device_rows.c.device_uuid.in_(outcomes[outcome]),
            now=now,
            health_check_passed=False,
            health_checked_at=now,
            failure_reason=reason,
            error_message=message,
        )
        events += [
            Event(
                rid,
                "health_check_failed",
                _unknown(unknown[u])
                if u in unknown
                else _waiting_for(message, waited_for.get(u, [])),
                {"reason": reason},
                device_uuid=u,
            )
            for u in failed
        ]
        if settings.auto_rollback:
            events += await restore_devices(conn, rid, failed, now)
    return events


async def _metric_samples(
    conn: AsyncConnection, checks: Sequence[CheckSpec], rows: Sequence[Any], now: datetime
) -> dict[str, list[Sample]]:
    """The samples the rollout's metric checks need, for all its devices in one query."""
    if not rows or not any(check.type == "metric" for check in checks):
        return {}
    earliest = min(row.update_started_at or row.container_restarted_at or now for row in rows)
    since = samples_needed_since(checks, earliest)
    return await read_samples(conn, [row.device_uuid for row in rows], since)


def _judged_metric(
    check: CheckSpec,
    samples: Sequence[Sample],
    running_since: datetime,
    now: datetime,
    update_started_at: datetime | None,
) -> tuple[str, dict[str, Any]]:
    found = metric_verdict(check, samples, running_since, now, update_started_at)
    return found.state, found.details


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():g} s"


def _unknown(checks: list[str]) -> str:
    return f"too few reports to judge {', '.join(checks)}: unknown, failed as a health timeout is"


def _waiting_for(message: str, checks: list[str]) -> str:
    """A timeout names the checks that never passed: never a silent failure."""
    return f"{message}: no passing result from {', '.join(checks)}" if checks else message


def _not_runnable(
    rollout_id: str, uuid: str, placed: Placement, judged: list[CheckSpec], soak: timedelta
) -> Event:
    """The event saying which checks cannot run on a device, and what it is judged on."""
    which = "; ".join(f"{name}: {why}" for name, why in placed.not_runnable.items())
    if [*placed.device, *placed.server, *placed.reports]:
        instead = "judged on " + ", ".join(check.name for check in judged)
    else:
        instead = f"judged on its new containers staying up for {_seconds(soak)} instead"
    return Event(
        rollout_id,
        "health_check_not_runnable",
        f"not runnable on this device: {which}; {instead}",
        {"checks": dict(placed.not_runnable), "judged_on": [check.name for check in judged]},
        device_uuid=uuid,
    )


class DeviceHealth:
    """The agent reports the results of the checks it ran (device-side checks)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        protocol: Authenticator,
        waker: Waker,
        telemetry: Telemetry,
    ) -> None:
        self.db, self.clock, self.protocol, self.waker = db, clock, protocol, waker
        self.telemetry = telemetry

    async def report(
        self,
        uuid: str,
        api_key: str | None,
        rollout_id: str | None,
        results: Sequence[Any],
        *,
        address: str,
    ) -> int:
        await self.protocol.authenticate(uuid, api_key, address=address)
        now = self.clock.now()  # the server's clock, not the device's
        found = [CheckResult(r.check, r.passed, now, r.detail) for r in results]
        types: dict[str, str] = {}
        async with self.db.transaction() as conn:
            kept = await record_results(conn, {uuid: found}, rollout_id)
            if kept:
                types = await _check_types(conn, uuid, rollout_id)
                await self.waker.signal(conn)
        if kept:
            for result in found:
                _count(self.telemetry, types.get(result.check, "unknown"), result, "device")
        return kept


class Authenticator(Protocol):
    async def authenticate(self, uuid: str, api_key: str | None, *, address: str) -> None: ...


class ServerProbes:
    """The server's own http/tcp checks against devices in ``health_checking``: those marked
    ``run_on: server``, and ``device_or_server`` ones for devices whose agent does not run
    them. Run by the monitor outside any transaction; results written in one."""

    def __init__(self, db: Database, prober: Prober, telemetry: Telemetry) -> None:
        self.db, self.prober, self.telemetry = db, prober, telemetry

    async def probe(self, rollout_id: str, now: datetime) -> int:
        async with self.db.read() as conn:
            rollout = (
                await conn.execute(
                    select(image_rollouts.c.settings).where(
                        image_rollouts.c.rollout_id == rollout_id
                    )
                )
            ).first()
            if rollout is None or not rollout.settings:
                return 0
            settings = RolloutSettings.from_json(rollout.settings)
            checks = parse_checks(list(settings.health_checks))
            if not any(c.run_on in PROBED for c in checks):
                return 0
            rows = list(
                await conn.execute(
                    select(
                        device_rows.c.device_uuid,
                        device_rows.c.health_check_details,
                        devices.c.ip_address,
                        devices.c.capabilities,
                    )
                    .join(devices, devices.c.uuid == device_rows.c.device_uuid)
                    .where(
                        device_rows.c.rollout_id == rollout_id,
                        device_rows.c.status == "health_checking",
                    )
                )
            )
        probes = [
            Probe(row.device_uuid, check.with_device(row.ip_address))
            for row in rows
            for check in placement(
                checks, row.capabilities or (), row.ip_address is not None
            ).server
            if _due(check.name, check.interval_seconds, row.health_check_details, now)
        ]
        results = await self.prober.run(probes)
        if results:
            by_device: dict[str, list[CheckResult]] = {}
            for uuid, result in results:
                by_device.setdefault(uuid, []).append(result)
            async with self.db.transaction() as conn:
                await record_results(conn, by_device, rollout_id)
            for probe, (_, result) in zip(probes, results, strict=True):
                _count(self.telemetry, probe.check.type, result, "server")
        return len(results)


# The checks the server may probe (for some devices or all).
PROBED = ("server", "device_or_server")


async def _check_types(conn: AsyncConnection, uuid: str, rollout_id: str | None) -> dict[str, str]:
    """Each check's type by name, from the settings of the rollouts judging the device."""
    query = (
        select(image_rollouts.c.settings)
        .join(device_rows, device_rows.c.rollout_id == image_rollouts.c.rollout_id)
        .where(device_rows.c.device_uuid == uuid, device_rows.c.status == "health_checking")
    )
    if rollout_id is not None:
        query = query.where(device_rows.c.rollout_id == rollout_id)
    types: dict[str, str] = {}
    for (settings,) in await conn.execute(query):
        if settings:
            checks = RolloutSettings.from_json(settings).health_checks
            types |= {check.name: check.type for check in parse_checks(list(checks))}
    return types


def _count(telemetry: Telemetry, check_type: str, result: CheckResult, source: str) -> None:
    outcome = "passed" if result.passed else "failed"
    telemetry.health_check_results.labels(
        check_type=check_type, result=outcome, source=source
    ).inc()


def _due(check: str, interval: float, details: dict[str, Any] | None, now: datetime) -> bool:
    past = [r for r in results_from_json(details) if r.check == check]
    return not past or (now - past[-1].at).total_seconds() >= interval
