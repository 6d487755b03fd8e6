"""The SQL one request runs, counted in-process, for bench/poll.py and bench/report.py.

The real application (``build`` + ``create_app``, its lifespan running as under uvicorn: the
poll cache's notifications, the last-seen writer) is called through httpx's ASGI transport; a
``before_cursor_execute`` listener on ``container.db.engine.sync_engine`` records every
statement, and BEGIN/COMMIT/ROLLBACK, pool checkouts and pre-pings are counted beside them,
as they are round trips too.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from fleetwave.api import create_app
from fleetwave.bootstrap import build
from fleetwave.settings import Settings
from wrk import Request

SETTLE_SECONDS = 1.0  # for the lifespan's background connections (LISTEN) to come up


@dataclass
class SqlTrace:
    statements: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.statements.clear()
        self.events.clear()


@dataclass(frozen=True)
class Probe:
    label: str
    status: int
    statements: list[str]
    events: Counter[str]


def listen(engine: Engine, trace: SqlTrace) -> None:
    def on_execute(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        trace.statements.append(" ".join(statement.split()))

    def counter(name: str) -> Callable[..., None]:
        def count(*_args: Any) -> None:
            trace.events[name] += 1

        return count

    event.listen(engine, "before_cursor_execute", on_execute)
    for name in ("begin", "commit", "rollback"):
        event.listen(engine, name, counter(name.upper()))
    event.listen(engine, "checkout", counter("pool checkout"))
    # pool_pre_ping pings on every checkout, below the Connection events: count it too.
    dialect = engine.dialect
    original_ping = dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        trace.events["pre-ping"] += 1
        return original_ping(dbapi_connection)

    dialect.do_ping = counting_ping  # type: ignore[method-assign]


async def trace_requests(
    settings: Settings, warm_up: Sequence[Request], steps: Sequence[tuple[str, Request]]
) -> list[Probe]:
    """Send ``warm_up`` (untraced), wait for the app to settle, then each labelled step."""
    container = build(settings)
    trace = SqlTrace()
    listen(container.db.engine.sync_engine, trace)
    app = create_app(container)
    probes = []
    # The lifespan wraps SIGINT/SIGTERM for uvicorn, which restores them; here, we do.
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
        ):
            for request in warm_up:
                await request.send_async(client)
            await asyncio.sleep(SETTLE_SECONDS)
            for request in warm_up:
                await request.send_async(client)
            for label, request in steps:
                trace.reset()
                status = (await request.send_async(client)).status_code
                probes.append(Probe(label, status, list(trace.statements), +trace.events))
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        await container.db.dispose()
    return probes


def print_probes(what: str, probes: Sequence[Probe]) -> None:
    print(f"SQL per {what} (in-process, before_cursor_execute on the app's engine):")
    for probe in probes:
        events = ", ".join(f"{n} {name}" for name, n in sorted(probe.events.items()))
        print(f"  {probe.label}: HTTP {probe.status}, {len(probe.statements)} statement(s)")
        for statement in probe.statements:
            print(f"    {statement}")
        print(f"    also: {events or 'nothing'}")
