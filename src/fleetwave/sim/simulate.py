"""The ``fleetwave simulate`` command's run: a fleet of simulated devices against a server,
with a summary line every few seconds until it is told to stop.

The summary says what the devices run and do, and how well the simulator itself keeps up:
held polls in flight, requests waiting for one of the transport's slots (with how many of
each were answered since the start), and the event loop's worst lag since the last line (a
timer due now that runs 200 ms late means every agent is that late: its polls, its reports
and the times it records) beside the longest garbage collection, e.g. ``held polls 9,990
(120,411 answered), waiting for a slot 0 (20,102 answered), loop lag 12 ms (gc 3 ms)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fleetwave.gc_pauses import CollectionTimes, collect_less
from fleetwave.sim.received import ReceivedLog
from fleetwave.sim.simulator import FleetSimulator, describe
from fleetwave.sim.transport import QueuedTransport, raise_open_files_limit

SPARE_FILES = 200  # the log, the slots' connections, the interpreter's own


@dataclass(frozen=True)
class SimulateOptions:
    server: str
    admin_token: str
    devices: int
    image: str = "iotistic/myapp:v2.0.0"
    failures: Mapping[str, float] = field(default_factory=dict)
    unhealthy: Mapping[str, float] = field(default_factory=dict)
    poll_interval: float = 10
    seed: int | None = None
    long_poll: bool = False
    received_log: Path | None = None
    pull_seconds: tuple[float, float] = (0.0, 0.0)
    slots: int = 50
    summary_every: float = 2


class LoopLag:
    """How late the event loop runs a timer, at worst, since it was last asked."""

    def __init__(self, every: float = 0.25) -> None:
        self.every, self.worst = every, 0.0

    async def watch(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            due = loop.time() + self.every
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(due):
                    await stop.wait()
            self.worst = max(self.worst, loop.time() - due)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


class GcPauses(CollectionTimes):
    """The longest garbage collection since it was last asked: the usual cause of loop lag in
    a process holding thousands of agents."""

    def __init__(self) -> None:
        super().__init__(self._longest)
        self.worst = 0.0

    def _longest(self, seconds: float, _generation: int) -> None:
        self.worst = max(self.worst, seconds)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


async def simulate(
    options: SimulateOptions, stop: asyncio.Event, echo: Callable[[str], None]
) -> None:
    if options.long_poll:
        needed = options.devices + SPARE_FILES
        allowed = raise_open_files_limit(needed)
        if allowed < needed:
            echo(
                f"warning: {options.devices} held polls need about {needed} open files and "
                f"this process may open {allowed}; run several simulators with fewer devices"
            )
    transport = QueuedTransport(options.slots, hold_polls=options.long_poll)
    with _received_log(options.received_log) as received:
        async with httpx.AsyncClient(
            base_url=options.server, transport=transport, timeout=30
        ) as http:
            fleet = FleetSimulator(
                http,
                options.admin_token,
                count=options.devices,
                image=options.image,
                failures=options.failures,
                unhealthy=options.unhealthy,
                poll_interval=options.poll_interval,
                seed=options.seed,
                long_poll=options.long_poll,
                received=received,
                pull_seconds=options.pull_seconds,
            )
            echo(
                f"registering {options.devices} devices ({fleet.pattern}), their agents "
                f"starting over {fleet.start_spread:g} s; Ctrl-C stops"
            )
            await _run(fleet, transport, options, stop, echo)


async def _run(
    fleet: FleetSimulator,
    transport: QueuedTransport,
    options: SimulateOptions,
    stop: asyncio.Event,
    echo: Callable[[str], None],
) -> None:
    lag = LoopLag()
    watching = asyncio.create_task(lag.watch(stop))
    agents = asyncio.create_task(fleet.run(stop))
    started, registered = time.monotonic(), False
    with GcPauses() as pauses:
        while not stop.is_set() and not agents.done():
            if not registered and len(fleet.devices) == fleet.count:
                registered = True
                echo(f"registered {fleet.count} devices in {time.monotonic() - started:.1f} s")
                collect_less()  # the fleet's objects (agents, runtimes, connections) are made
            load = f"{transport.describe()}, {_lag(lag, pauses)}"
            echo(f"{describe(await fleet.summary())} | {load}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(options.summary_every):
                    await stop.wait()
    stop.set()  # also when the agents ended by themselves (a registration refused)
    await watching
    await agents
    echo("stopped: " + describe(await fleet.summary()))


def _lag(lag: LoopLag, pauses: GcPauses) -> str:
    """``"loop lag 12 ms (gc 3 ms)"``: the worst of each since the last line."""
    return f"loop lag {lag.take() * 1000:.0f} ms (gc {pauses.take() * 1000:.0f} ms)"


@contextlib.contextmanager
def _received_log(path: Path | None) -> Iterator[ReceivedLog | None]:
    if path is None:
        yield None
        return
    with path.open("w", buffering=1) as out:  # a line at a time: readable while it runs
        yield ReceivedLog(out)
