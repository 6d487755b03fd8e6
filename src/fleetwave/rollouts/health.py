"""Health of the devices a rollout moved: results in, verdicts out.

Results arrive from the agent (device-side checks, ``POST /api/v1/device/{uuid}/health``) or
from the server's own probes (``run_on: server``); both are kept on the device's rollout row.
Each monitor tick judges the devices in ``health_checking``: all checks passed → ``completed``;
a check that failed past its retries → ``failed`` with the check's details; no verdict by
``health_check_timeout_seconds`` → ``failed`` (``health_timeout``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.clock import Clock
from fleetwave.domain.health import (
    CheckResult,
    parse_checks,
    results_from_json,
    results_to_json,
    verdict,
)
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
    conn: AsyncConnection, uuid: str, results: Sequence[CheckResult], rollout_id: str | None
) -> int:
    """Keep a device's check results on its rollout rows in ``health_checking``."""
    query = select(device_rows.c.id, device_rows.c.health_check_details).where(
        device_rows.c.device_uuid == uuid, device_rows.c.status == "health_checking"
    )
    if rollout_id is not None:
        query = query.where(device_rows.c.rollout_id == rollout_id)
    rows = list(await conn.execute(query))
    for row in rows:
        kept = results_from_json(row.health_check_details) + list(results)
        await conn.execute(
            update(device_rows)
            .where(device_rows.c.id == row.id)
            .values(
                health_check_details=(row.health_check_details or {})
                | {"results": results_to_json(kept[-MAX_KEPT_RESULTS:])},
                health_check_attempts=device_rows.c.health_check_attempts + len(results),
            )
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
                device_rows.c.health_check_details,
            ).where(device_rows.c.rollout_id == rid, device_rows.c.status == "health_checking")
        )
    )
    outcomes: dict[str, list[str]] = {"passed": [], "failed": [], "timeout": []}
    details = []
    for row in rows:
        found = verdict(
            checks,
            results_from_json(row.health_check_details),
            row.container_restarted_at or now,
            now,
            settings.health_check_timeout,
        )
        if found.outcome in outcomes:
            outcomes[found.outcome].append(row.device_uuid)
            kept = (
                (row.health_check_details or {})
                | {"verdict": found.outcome}
                | {"checks": {k: v for k, v in found.details.items() if isinstance(v, dict)}}
            )
            if "failed_check" in found.details:
                kept["failed_check"] = found.details["failed_check"]
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
    events: list[Event] = []
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
    for outcome, reason, message in (
        ("failed", "health_check", "a health check failed past its retries"),
        ("timeout", "health_timeout", "no health verdict within the timeout"),
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
            Event(rid, "health_check_failed", message, {"reason": reason}, device_uuid=u)
            for u in failed
        ]
        if settings.auto_rollback:
            events += await restore_devices(conn, rid, failed, now)
    return events


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
            kept = await record_results(conn, uuid, found, rollout_id)
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
    """The server's own http/tcp checks against devices in ``health_checking``."""

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
            checks = [c for c in parse_checks(list(settings.health_checks)) if c.run_on == "server"]
            if not checks:
                return 0
            rows = list(
                await conn.execute(
                    select(
                        device_rows.c.device_uuid,
                        device_rows.c.health_check_details,
                        devices.c.ip_address,
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
            for check in checks
            if _due(check.name, check.interval_seconds, row.health_check_details, now)
        ]
        results = await self.prober.run(probes)
        if results:
            async with self.db.transaction() as conn:
                for uuid in sorted({u for u, _ in results}):
                    mine = [r for u, r in results if u == uuid]
                    await record_results(conn, uuid, mine, rollout_id)
            for probe, (_, result) in zip(probes, results, strict=True):
                _count(self.telemetry, probe.check.type, result, "server")
        return len(results)


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
