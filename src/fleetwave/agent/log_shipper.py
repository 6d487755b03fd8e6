"""The agent's containers' output, shipped to the server the way the iotistic agent ships it
(``POST /api/v1/device/{uuid}/logs``, gzipped NDJSON), within a budget.

Every ``interval`` seconds the shipper reads what each container of the agent wrote since its
last read, keeps each service's newest lines within a fair share of ``lines_per_interval``
(:mod:`~fleetwave.agent.log_budget`), and says how many it dropped in a line of its own
(source ``agent``, level ``warn``, under the service's name, where the gap is); a container
that wrote more than ``READ_LIMIT`` lines between two reads loses the oldest unread, which is
said too, without a count (the engine does not tell it). Lines the
server could not take (unreachable, restarting) wait for the next round, at most
``MAX_WAITING`` of them, the oldest dropped first and counted too; a batch the server refuses
as invalid is dropped, not sent for ever. The agent calls :meth:`collect` before it applies a
new target, so a container about to be removed (a crashed one, rolled back) is read first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from fleetwave.agent.client import DeviceClient
from fleetwave.agent.log_budget import batches, bounded, ration
from fleetwave.agent.output import (
    Cursor,
    OutputLine,
    clean_text,
    fell_short,
    level_of,
    unseen,
)
from fleetwave.agent.runtime import Container

log = logging.getLogger("fleetwave.agent.logs")
FIRST_TAIL = 100  # lines read of a container seen for the first time (an agent restarted)
READ_LIMIT = 2000  # lines read of a container per round, at most
MAX_WAITING = 2000  # lines kept while the server cannot take them
BATCH_BYTES = 256 * 1024  # NDJSON per request, before gzip (the server takes 1 MiB)
REFUSED = (400, 413, 415, 422)  # the batch itself is wrong: sending it again cannot help
AGENT_SOURCE = {"type": "agent", "name": "fleetwave-agent"}
Entry = dict[str, Any]


class LogSource(Protocol):
    async def containers(self) -> list[Container]: ...

    async def logs(
        self, container: Container, *, since: int | None, tail: int
    ) -> list[OutputLine]: ...


class LogShipper:
    def __init__(
        self,
        client: DeviceClient,
        source: LogSource,
        *,
        interval: float = 5.0,
        lines_per_interval: int = 200,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.source = client, source
        self.interval, self.budget, self.wall = interval, lines_per_interval, wall
        self.cursors: dict[str, Cursor] = {}  # by container id
        self.pending: dict[str, list[Entry]] = {}  # by service: read, not yet rationed
        self.unread: set[str] = set()  # services whose oldest lines a read did not reach
        self.waiting: list[Entry] = []  # rationed, not yet taken by the server
        self.lost = 0  # waiting lines dropped while the server could not take them
        self.lock = asyncio.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        """A round every ``interval`` seconds until ``stop``, then one last round."""
        while not stop.is_set():
            await self.round()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await stop.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.round()  # what the containers said last, if the server takes it

    async def round(self) -> None:
        """Read, ration, send; a failure waits for the next round (an agent never stops)."""
        try:
            await self.collect()
            self.ration()
            await self.send()
        except Exception:
            log.exception("could not ship the containers' logs; trying again")

    async def collect(self) -> None:
        """Read what every container wrote since the last read."""
        async with self.lock:
            containers = await self.source.containers()
            for container in containers:
                cursor = self.cursors.get(container.id)
                lines = await self.source.logs(
                    container,
                    since=None if cursor is None else cursor.since_seconds,
                    tail=FIRST_TAIL if cursor is None else READ_LIMIT,
                )
                new, self.cursors[container.id] = unseen(lines, cursor)
                service = container.key.partition("/")[2] or container.key
                if fell_short(lines, cursor, READ_LIMIT):
                    self.unread.add(service)
                self.pending.setdefault(service, []).extend(_entry(service, n) for n in new)
            alive = {container.id for container in containers}
            self.cursors = {cid: c for cid, c in self.cursors.items() if cid in alive}

    def ration(self) -> None:
        """This round's lines within the budget, each drop said where it happened."""
        kept, dropped = ration(self.pending, self.budget)
        unread, self.pending, self.unread = self.unread, {}, set()
        rationed: list[Entry] = []
        for service in sorted(kept):
            lines = kept[service]
            at = lines[0]["timestamp"] if lines else self._now_ms()
            if service in unread:
                rationed.append(self._unread(service, at))
            if service in dropped:
                rationed.append(self._dropped(service, dropped[service], at))
            rationed += lines
        rationed.sort(key=lambda entry: entry["timestamp"])  # stable: a notice stays first
        self.waiting, overflow = bounded(self.waiting + rationed, MAX_WAITING)
        self.lost += overflow

    async def send(self) -> None:
        """Send what waits, in batches; stop at the first the server cannot take now."""
        notice = [self._lost()] if self.lost else []
        entries = notice + self.waiting
        rows = [json.dumps(entry).encode() + b"\n" for entry in entries]
        sent = 0
        for run in batches([len(row) for row in rows], BATCH_BYTES):
            try:
                await self.client.send_logs(b"".join(rows[run]))
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code not in REFUSED:
                    break
                log.warning(
                    "the server refused %d log lines (HTTP %d); dropped",
                    run.stop - run.start,
                    exc.response.status_code,
                )
            except httpx.HTTPError as exc:
                log.warning("log lines not sent (%s); will retry", type(exc).__name__)
                break
            sent = run.stop
        if sent:  # the notice of lost lines, if any, went first
            self.lost, self.waiting = 0, entries[sent:]

    def _dropped(self, service: str, count: int, at: int) -> Entry:
        return {
            "message": f"fleetwave agent: dropped {count} lines of {service} (at most "
            f"{self.budget} lines per {self.interval:g} s are sent)",
            "timestamp": at,
            "level": "warn",
            "source": AGENT_SOURCE,
            "serviceName": service,
        }

    def _unread(self, service: str, at: int) -> Entry:
        return {
            "message": f"fleetwave agent: dropped lines of {service} unread (it wrote more "
            f"than {READ_LIMIT} lines between two reads)",
            "timestamp": at,
            "level": "warn",
            "source": AGENT_SOURCE,
            "serviceName": service,
        }

    def _lost(self) -> Entry:
        return {
            "message": f"fleetwave agent: dropped {self.lost} log lines the server could not "
            f"take in time (at most {MAX_WAITING} wait)",
            "timestamp": self._now_ms(),
            "level": "warn",
            "source": AGENT_SOURCE,
        }

    def _now_ms(self) -> int:
        return int(self.wall() * 1000)


def _entry(service: str, line: OutputLine) -> Entry:
    """A line of a container's output in the iotistic agent's shape."""
    text = clean_text(line.text)
    return {
        "message": text,
        "timestamp": line.at // 1_000_000,
        "level": level_of(text, line.stderr),
        "source": {"type": "container", "name": service},
        "serviceName": service,
        "isStdErr": line.stderr,
    }
