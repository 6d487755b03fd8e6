"""What the agent ships when its containers say more than it may send: a budget of lines per
interval, shared fairly between services, and a count of what was dropped.

Pure. A chatty service must not crowd out a quiet one whose last lines say why it crashed, so
the budget is shared max-min fair (each service gets what it asks up to an equal share, and
what the small ones leave goes to the others). Within a service the newest lines are kept:
the end of an output is where a crash's reason is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")


def fair_shares(demands: Mapping[str, int], budget: int) -> dict[str, int]:
    """How many lines each service may send: max-min fair shares of ``budget``; every share
    is at most the service's demand, and they add up to ``min(budget, total demand)``. A
    remainder too small to split goes to the services first in name order."""
    shares = dict.fromkeys(demands, 0)
    wanting = sorted(name for name, demand in demands.items() if demand > 0)
    left = budget
    while wanting and left > 0:
        each, extra = divmod(left, len(wanting))
        if each == 0:
            for name in wanting[:extra]:
                shares[name] += 1
            break
        for name in wanting:
            shares[name] += min(each, demands[name] - shares[name])
        left = budget - sum(shares.values())
        wanting = [name for name in wanting if shares[name] < demands[name]]
    return shares


def ration(
    pending: Mapping[str, Sequence[T]], budget: int
) -> tuple[dict[str, list[T]], dict[str, int]]:
    """Each service's newest lines within its fair share, and how many each had to drop."""
    shares = fair_shares({name: len(lines) for name, lines in pending.items()}, budget)
    kept = {name: list(lines[len(lines) - shares[name] :]) if shares[name] else []
            for name, lines in pending.items()}  # fmt: skip
    dropped = {name: len(lines) - shares[name] for name, lines in pending.items()}
    return kept, {name: n for name, n in dropped.items() if n}


def bounded(queue: list[T], limit: int) -> tuple[list[T], int]:
    """The newest ``limit`` entries of a queue that could not be sent, and how many went."""
    overflow = max(0, len(queue) - limit)
    return queue[overflow:], overflow


def batches(sizes: Sequence[int], max_bytes: int) -> list[slice]:
    """Consecutive runs of items whose sizes add up to at most ``max_bytes`` each (an item
    larger than that goes alone)."""
    runs, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and total + size > max_bytes:
            runs.append(slice(start, i))
            start, total = i, 0
        total += size
    if start < len(sizes):
        runs.append(slice(start, len(sizes)))
    return runs
