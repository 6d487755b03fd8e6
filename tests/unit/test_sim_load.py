"""The simulator says how well it keeps up: its event loop's worst lag and its longest garbage
collection since its last summary line, each forgotten once told."""

from __future__ import annotations

import asyncio
import gc
import time

from fleetwave.sim.simulate import GcPauses, LoopLag


async def test_a_blocked_event_loop_shows_as_lag_once() -> None:
    lag, stop = LoopLag(every=0.01), asyncio.Event()
    watching = asyncio.create_task(lag.watch(stop))
    await asyncio.sleep(0.02)
    time.sleep(0.1)  # noqa: ASYNC251 - the point: the loop is blocked
    await asyncio.sleep(0.02)
    stop.set()
    await watching
    assert lag.take() >= 0.05
    assert lag.take() == 0


def test_garbage_collections_are_timed_while_watched_only() -> None:
    # the youngest generation only: a full collection late in the whole suite, with its heap,
    # took 12 s each
    with GcPauses() as pauses:
        gc.collect(0)
        assert pauses.take() > 0
        assert pauses.take() == 0
    gc.collect(0)
    assert pauses.take() == 0
