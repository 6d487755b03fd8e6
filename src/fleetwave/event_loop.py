"""Running fleetwave's long-lived processes on uvloop, as ``uvicorn.run`` would.

``fleetwave serve`` drives uvicorn's server itself (beside ``/metrics`` and the rollout
monitor), so uvicorn's own loop set-up never runs; without this, the server ran on the standard
library's event loop. uvloop does the same work with a fraction of the loop's own CPU, which
counts most when a batch wakes thousands of held polls and every answer is a write to a socket.
uvloop ships with ``uvicorn[standard]``; where it is missing (another platform) the standard
loop serves unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop, if it is installed; else None (the standard loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
