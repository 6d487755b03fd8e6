"""Prometheus analysis of a rollout's batches: queries out, results kept, a failure acted on.

The monitor asks :class:`BatchAnalysis` before each rollout's turn (outside any transaction:
a query takes time) to evaluate the ``prometheus`` checks of a finished batch whose soak is
over (``domain.analysis``); the results are kept in ``batch_analyses``, one row per check and
batch, and go into the batch's devices' ``health_check_details`` under ``analysis``. The pure
``decide`` reads the batch's state from them: it waits, goes on, or fails the batch, which
:func:`fail_batch` applies (devices failed and rolled back, the rollout paused) in the turn's
transaction. The HTTP client comes in as a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetwave.domain.analysis import (
    Outcome,
    analysis_checks,
    due_at,
    judge_answer,
    render_query,
    state,
    unanswered,
)
from fleetwave.domain.health import CheckSpec, parse_checks
from fleetwave.domain.rollout_settings import RolloutSettings
from fleetwave.rollouts.device_moves import move, restore_devices, update_rollout
from fleetwave.rollouts.events import Event
from fleetwave.store.db import Database
from fleetwave.store.tables import batch_analyses, image_rollouts
from fleetwave.store.tables import device_rollout_status as device_rows


class BatchAnalysis:
    def __init__(self, db: Database, client: httpx.AsyncClient | None = None) -> None:
        """``client``: the HTTP client for Prometheus (None: one per evaluation)."""
        self.db, self.client = db, client

    async def evaluate(self, rollout_id: str, now: datetime) -> int:
        """Run the due queries of the rollout's current batch; returns how many were kept."""
        async with self.db.read() as conn:
            rollout = (
                await conn.execute(
                    select(image_rollouts).where(image_rollouts.c.rollout_id == rollout_id)
                )
            ).first()
            if rollout is None or not _due(rollout, now):
                return 0
            settings = RolloutSettings.from_json(rollout.settings)
            checks = analysis_checks(parse_checks(list(settings.health_checks)))
            done = await _results(conn, rollout_id, rollout.current_batch)
        todo = [check for check in checks if check.name not in done]
        if not todo:
            return 0
        image = f"{rollout.image_name}:{rollout.new_tag}"
        give_up = due_at(rollout.current_batch_finished_at, settings.batch_delay)
        give_up += settings.health_check_timeout
        found: dict[str, Outcome] = {}
        for check in todo:
            assert check.query is not None
            query = render_query(check.query, rollout_id, rollout.current_batch, image)
            outcome = await self._ask(check, query)
            if isinstance(outcome, str):  # no usable answer: asked again, until the timeout
                if now < give_up:
                    continue
                outcome = unanswered(check, query, outcome)
            found[check.name] = outcome
        if found:
            await self._keep(rollout_id, rollout.current_batch, found, now)
        return len(found)

    async def _ask(self, check: CheckSpec, query: str) -> Outcome | str:
        """Prometheus's verdict, or why there is none (a transport error, an error answer)."""
        if self.client is None:
            async with httpx.AsyncClient(follow_redirects=False) as client:
                return await _query(client, check, query)
        return await _query(self.client, check, query)

    async def _keep(
        self, rollout_id: str, batch: int, found: Mapping[str, Outcome], now: datetime
    ) -> None:
        rows = [
            {
                "rollout_id": rollout_id,
                "batch_number": batch,
                "check_name": name,
                "passed": outcome.passed,
                "details": outcome.details,
                "evaluated_at": now,
            }
            for name, outcome in found.items()
        ]
        try:
            async with self.db.transaction() as conn:
                await conn.execute(insert(batch_analyses), rows)
                await _into_device_details(conn, rollout_id, batch, found)
        except IntegrityError:  # another worker kept the same batch's results first
            return


async def _query(client: httpx.AsyncClient, check: CheckSpec, query: str) -> Outcome | str:
    assert check.url is not None
    try:
        response = await client.get(
            check.url.rstrip("/") + "/api/v1/query",
            params={"query": query},
            timeout=check.timeout_seconds,
        )
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"Prometheus did not answer: {type(exc).__name__}: {exc}"[:300]
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error") if isinstance(answer, dict) else None
        return f"Prometheus refused the query: HTTP {response.status_code} {error or ''}"[:300]
    return judge_answer(check, query, answer)


def _due(rollout: Any, now: datetime) -> bool:
    if rollout.status != "in_progress" or not rollout.settings:
        return False
    if rollout.current_batch < 1 or rollout.current_batch_finished_at is None:
        return False
    settings = RolloutSettings.from_json(rollout.settings)
    return now >= due_at(rollout.current_batch_finished_at, settings.batch_delay)


async def _results(
    conn: AsyncConnection, rollout_id: str, batch: int
) -> dict[str, tuple[bool, bool]]:
    """The batch's kept results: check name → (passed, acted on)."""
    c = batch_analyses.c
    rows = await conn.execute(
        select(c.check_name, c.passed, c.acted_at).where(
            c.rollout_id == rollout_id, c.batch_number == batch
        )
    )
    return {row.check_name: (row.passed, row.acted_at is not None) for row in rows}


async def _into_device_details(
    conn: AsyncConnection, rollout_id: str, batch: int, found: Mapping[str, Outcome]
) -> None:
    """The batch's devices carry the analysis in ``health_check_details["analysis"]``."""
    rows = list(
        await conn.execute(
            select(device_rows.c.id, device_rows.c.health_check_details).where(
                device_rows.c.rollout_id == rollout_id, device_rows.c.batch_number == batch
            )
        )
    )
    added = {name: {"passed": o.passed} | o.details for name, o in found.items()}
    changes = [
        {
            "row_id": row.id,
            "row_details": (row.health_check_details or {})
            | {"analysis": dict((row.health_check_details or {}).get("analysis") or {}) | added},
        }
        for row in rows
    ]
    if changes:  # one statement for the batch (executemany)
        await conn.execute(
            update(device_rows)
            .where(device_rows.c.id == bindparam("row_id"))
            .values(health_check_details=bindparam("row_details")),
            changes,
        )


async def analysis_state(
    conn: AsyncConnection, rollout: Any, checks: Sequence[CheckSpec]
) -> str | None:
    """The current batch's analysis state for ``decide`` (None: it has none)."""
    if not analysis_checks(checks) or rollout.current_batch < 1:
        return None
    return state(checks, await _results(conn, rollout.rollout_id, rollout.current_batch))


async def fail_batch(
    conn: AsyncConnection, rollout_id: str, batch: int, settings: RolloutSettings, now: datetime
) -> list[Event]:
    """The batch's analysis failed: its healthy devices fail (and roll back when
    auto-rollback is on), the failure is marked acted on, and the rollout pauses."""
    c = batch_analyses.c
    failed_checks = {
        row.check_name: row.details
        for row in await conn.execute(
            select(c.check_name, c.details).where(
                c.rollout_id == rollout_id,
                c.batch_number == batch,
                c.passed.is_(False),
                c.acted_at.is_(None),
            )
        )
    }
    why = "; ".join(f"{name}: {d.get('error', 'failed')}" for name, d in failed_checks.items())
    message = f"batch {batch} failed its Prometheus analysis ({why})"
    failed = await move(
        conn,
        rollout_id,
        "completed",
        "failed",
        device_rows.c.batch_number == batch,
        now=now,
        health_check_passed=False,
        health_checked_at=now,
        failure_reason="analysis",
        error_message=message,
    )
    events = [
        Event(
            rollout_id, "health_check_failed", message, {"batch": batch, "analysis": failed_checks}
        )
    ]
    events += [
        Event(rollout_id, "health_check_failed", message, {"reason": "analysis"}, device_uuid=u)
        for u in failed
    ]
    if settings.auto_rollback:
        events += await restore_devices(conn, rollout_id, failed, now)
    await conn.execute(
        update(batch_analyses)
        .where(c.rollout_id == rollout_id, c.batch_number == batch, c.passed.is_(False))
        .values(acted_at=now)
    )
    await update_rollout(conn, rollout_id, now, status="paused", auto_paused=True, paused_at=now)
    pause = f"paused automatically: {message}"
    events.append(
        Event(rollout_id, "rollout_paused", pause, {"auto": True, "analysis": list(failed_checks)})
    )
    return events
