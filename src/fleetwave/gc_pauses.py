"""Garbage collections, timed. A collection pauses the whole process for as long as it takes:
every request, held poll and agent in it waits. A server holding 10,000 long-polls scans their
objects in each full collection; a long one shows as a stall of every device's answers at once.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any, Self

log = logging.getLogger("fleetwave")

LONG_COLLECTION_SECONDS = 0.25  # a server's collection this long is logged


class CollectionTimes:
    """While entered, calls ``took(seconds, generation)`` after each garbage collection."""

    def __init__(self, took: Callable[[float, int], None]) -> None:
        self._took, self._started = took, 0.0

    def __enter__(self) -> Self:
        gc.callbacks.append(self._timed)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._timed)

    def _timed(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._took(time.perf_counter() - self._started, info.get("generation", -1))


def logged_long_collections(threshold: float = LONG_COLLECTION_SECONDS) -> CollectionTimes:
    """Collections of at least ``threshold`` seconds, each logged as a warning."""

    def took(seconds: float, generation: int) -> None:
        if seconds >= threshold:
            log.warning(
                "a garbage collection (generation %d) paused this process for %.2f s",
                generation,
                seconds,
            )

    return CollectionTimes(took)


YOUNG_COLLECTION_AFTER = 10_000  # objects allocated (net) between young collections (Python: 700)
FULL_COLLECTION_EVERY = 100  # collections of the middle generation per full one (Python: 10)


def collect_less() -> None:
    """Fewer, cheaper full collections for a process that holds thousands of devices' polls.

    With Python's thresholds, a server holding 10,000 long-polls ran a full collection every
    2-3 s, each pausing it 0.5-0.8 s (a quarter of its time during a rollout, and every held
    poll answered that much later): each held poll's objects live a minute, so they reach the
    oldest generation, and each full collection scans them all. So what exists now (modules,
    the application, its tables; a simulator's fleet) is moved out of every later scan, young
    collections wait for 10,000 new objects (most requests' objects are gone by then) and full
    ones are ten times rarer."""
    gc.collect()
    gc.freeze()
    _young, middle, _old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_EVERY)
